"""Several seeds trained as one block-diagonal network (`coursework.SeedStack`) must behave
exactly like the seeds trained one by one, and a silenced unit must be a true lesion."""

from __future__ import annotations

import copy

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch

from course_lib.analysis import decision_accuracy
from course_lib.coursework import (
    Run,
    SeedStack,
    ablate,
    answer_selectivity,
    difference_phrase,
    fixed_batches,
    make_seed_stack,
    make_study_model,
    monte_carlo_selectivity,
    plot_ablation,
    plot_seed_curves,
    plot_selective_units,
    run_ablated,
    run_model,
    seed_runs,
    selectivity_scores,
    train_seeds,
    train_study,
)
from course_lib.tasks import TaskDataset

KINDS = ["light_gru", "enu_light_gru", "ei_light_gru"]


@pytest.fixture(scope="module")
def batches():
    data = TaskDataset("PerceptualDecisionMaking-v0", batch_size=6, seq_len=30, seed=3)
    return fixed_batches(data, 3)


def models(kind, seeds=(0, 1, 2), n_hidden=5):
    return [make_study_model(kind, 3, n_hidden, 3, seed=s) for s in seeds]


@pytest.mark.parametrize("kind", KINDS)
def test_stack_runs_each_seed_as_its_own_model(kind, batches):
    singles = models(kind)
    stack = SeedStack(copy.deepcopy(singles))
    outputs, hidden = stack(batches[0].inputs)
    assert outputs.shape == (30, 6, 3, 3) and hidden.shape == (30, 6, 3, 5)
    for s, model in enumerate(singles):
        out, h = model(batches[0].inputs)
        torch.testing.assert_close(outputs[:, :, s], out, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(hidden[:, :, s], h, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_seed_gives_back_the_stacked_model(kind, batches):
    singles = models(kind)
    stack = SeedStack(copy.deepcopy(singles))
    for s, model in enumerate(singles):
        back = stack.seed(s)
        assert type(back.cell) is type(model.cell)
        for (key, a), b in zip(model.state_dict().items(), back.state_dict().values(), strict=True):
            assert torch.equal(a, b), key


@pytest.mark.parametrize("kind", KINDS)
def test_training_the_stack_is_training_each_seed_alone(kind, batches):
    singles = models(kind)
    stack = SeedStack(copy.deepcopy(singles))
    settings = dict(n_steps=4, lr=1e-2, lr_final=1e-3, beta_l2=1e-2, eval_every=2)
    histories = train_seeds(stack, batches, **settings)
    assert len(histories) == 3
    # The ENU's dendrite biases feed batch norm, which removes a constant shift: their
    # true gradient is ~0, and Adam scales float rounding (1e-9) up to steps of ~lr in
    # both runs alike, so two equally right ENU runs agree less closely.
    enu = kind == "enu_light_gru"
    for s, model in enumerate(singles):
        alone = train_study(model, batches, progress=False, **settings)
        assert histories[s].loss == pytest.approx(alone.loss, rel=5e-3 if enu else 1e-4)
        assert histories[s].eval_steps == alone.eval_steps == [2, 4]
        assert histories[s].accuracy == pytest.approx(alone.accuracy)
        # after training, the seed taken out of the stack computes what the model does
        x = batches[1].inputs
        tolerance = 1e-2 if enu else 1e-4
        torch.testing.assert_close(run_model(stack.seed(s), x, batches[1].targets).outputs,
                                   run_model(model, x, batches[1].targets).outputs,
                                   atol=tolerance, rtol=1e-3)


def test_weights_between_seeds_stay_zero(batches):
    stack = make_seed_stack("light_gru", 3, 5, 3, seeds=[0, 1])
    train_seeds(stack, batches, n_steps=3)
    recurrent = stack.network.cell.recurrent_h.weight  # the masked, effective weight
    assert torch.all(recurrent[:5, 5:] == 0) and torch.all(recurrent[5:, :5] == 0)
    assert torch.all(stack.network.readout.weight[:3, 5:] == 0)
    assert recurrent[:5, :5].abs().sum() > 0


def test_stack_refuses_mixed_cells():
    with pytest.raises(ValueError, match="same cell type"):
        SeedStack([make_study_model("light_gru", 3, 4, 3),
                   make_study_model("ei_light_gru", 3, 4, 3)])


# --- lesions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_silencing_nothing_changes_nothing(kind, batches):
    model = models(kind, seeds=(0,))[0]
    x = batches[0].inputs
    outputs, hidden = run_ablated(model, x, torch.zeros(5, dtype=torch.bool))
    reference = run_model(model, x, batches[0].targets)
    torch.testing.assert_close(outputs, reference.outputs)
    torch.testing.assert_close(hidden, reference.hidden)


@pytest.mark.parametrize("kind", ["light_gru", "ei_light_gru"])
def test_silencing_a_unit_is_cutting_its_outgoing_synapses(kind, batches):
    """Ground truth without the lesion code: a unit whose outgoing weights (its columns of
    U_z, U_h and the readout) are all zero can do nothing, whatever its own activity."""
    model = models(kind, seeds=(1,))[0]
    model.eval()
    silenced = torch.tensor([False, True, False, False, True])
    cut = copy.deepcopy(model)
    with torch.no_grad():
        cell = cut.cell
        cell.recurrent_z.weight[:, silenced] = 0
        if kind == "ei_light_gru":  # relu(0) * sign = 0
            cell.recurrent_h.parametrizations.weight.original[:, silenced] = 0
        else:
            cell.recurrent_h.weight[:, silenced] = 0
        cut.readout.weight[:, silenced] = 0
    x = batches[2].inputs
    outputs, hidden = run_ablated(model, x, silenced)
    with torch.no_grad():
        expected, expected_hidden = cut(x)
    torch.testing.assert_close(outputs, expected, atol=1e-5, rtol=1e-4)
    assert torch.all(hidden[..., silenced] == 0)
    torch.testing.assert_close(hidden[..., ~silenced], expected_hidden[..., ~silenced],
                               atol=1e-5, rtol=1e-4)


def test_silencing_every_unit_leaves_the_readout_bias(batches):
    model = models("light_gru", seeds=(2,))[0]
    with torch.no_grad():
        model.readout.bias.copy_(torch.tensor([0.3, -1.0, 2.0]))
    outputs, hidden = run_ablated(model, batches[0].inputs, torch.ones(5, dtype=torch.bool))
    assert torch.all(hidden == 0)
    assert torch.allclose(outputs, torch.tensor([0.3, -1.0, 2.0]).expand_as(outputs))


def test_a_lesion_per_batch_column(batches):
    """A (B, n_hidden) mask silences different units in different columns."""
    model = models("light_gru", seeds=(0,))[0]
    x = batches[0].inputs
    silenced = torch.zeros(6, 5, dtype=torch.bool)
    silenced[3:, 2] = True
    _, hidden = run_ablated(model, x, silenced)
    _, intact = run_ablated(model, x, torch.zeros(5, dtype=torch.bool))
    _, lesioned = run_ablated(model, x, torch.tensor([False, False, True, False, False]))
    torch.testing.assert_close(hidden[:, :3], intact[:, :3])
    torch.testing.assert_close(hidden[:, 3:], lesioned[:, 3:])


# --- ranking, lesion experiment, phrases -------------------------------------------------------


def test_ablate_silences_the_top_units_and_random_active_ones(batches):
    """Checked against `run_ablated` on each seed taken out of the stack (another path)."""
    stack = make_seed_stack("light_gru", 3, 5, 3, seeds=[0, 1])
    train_seeds(stack, batches, n_steps=2)
    scores = torch.tensor([[0.1, 3.0, 2.0, -torch.inf, 0.5],
                           [5.0, 0.2, -torch.inf, 1.0, 0.3]])
    batch = batches[2]
    result = ablate(stack, batch, scores, 2, n_random=4, seed=1)
    assert result.k == 2 and result.random.shape == (2, 4)
    top = [torch.tensor([False, True, True, False, False]),
           torch.tensor([True, False, False, True, False])]
    for s in range(2):
        model = stack.seed(s)
        outputs, _ = run_ablated(model, batch.inputs, top[s])
        assert result.selective[s] == pytest.approx(decision_accuracy(outputs, batch.targets))
        intact = run_model(model, batch.inputs, batch.targets).accuracy()
        assert result.intact[s] == pytest.approx(intact)
    # silencing every active unit of every seed, at random or not, gives the same accuracy
    every = ablate(stack, batch, scores, 4, n_random=3)
    assert torch.all(every.random == every.selective[:, None])


def test_ablate_refuses_more_units_than_are_active(batches):
    stack = make_seed_stack("light_gru", 3, 3, 3, seeds=[0])
    scores = torch.tensor([[1.0, -torch.inf, -torch.inf]])
    with pytest.raises(ValueError, match="fewer than k"):
        ablate(stack, batches[0], scores, 2)


def test_selectivity_scores_are_each_seeds_own(batches):
    stack = make_seed_stack("ei_light_gru", 3, 5, 3, seeds=[3, 4])
    scores = selectivity_scores(stack, batches[:2], stimulus_channels=slice(1, 3))
    assert scores.shape == (2, 5)
    for s in range(2):
        mc = monte_carlo_selectivity(stack.seed(s), batches[:2], stimulus_channels=slice(1, 3))
        values = torch.where(mc.active, mc.max_abs, torch.nan).nanmean(dim=0)
        expected = torch.where(mc.active.any(dim=0), values, -torch.inf)
        torch.testing.assert_close(scores[s], expected.to(scores.dtype), rtol=1e-4, atol=1e-5)


def test_answer_selectivity_hand_values():
    hidden = torch.tensor([[[1.0]], [[3.0]], [[0.0]], [[0.0]]])  # (T=4, B=1, 1 unit)
    targets = torch.tensor([[1], [2], [0], [0]])
    run = Run(torch.zeros(4, 1, 2), targets, torch.zeros(4, 1, 3), hidden)
    # answering: mean 2, variance 1; fixating: mean 0, variance 0 -> s = 2 * 2 / 1
    assert answer_selectivity(run).item() == pytest.approx(4.0)


def test_difference_phrase_states_only_clear_differences():
    assert difference_phrase([0.9, 0.92, 0.91], [0.5, 0.52, 0.51], "A", "B") == (
        "A is clearly higher than B (A: 91% ± 1%; B: 51% ± 1%)")
    assert difference_phrase([0.5, 0.9], [0.6, 0.7], "A", "B").startswith(
        "A and B do not clearly differ")
    assert "lower" in difference_phrase([1.0, 1.2], [3.0, 3.1], "A", "B", percent=False)
    assert "1.10 ± 0.14" in difference_phrase([1.0, 1.2], [3.0, 3.1], "A", "B", percent=False)


def test_new_figures_draw(batches):
    matplotlib.use("Agg")
    stack = make_seed_stack("light_gru", 3, 4, 3, seeds=[0, 1])
    histories = train_seeds(stack, batches, n_steps=3)
    plot_seed_curves({"a": histories, "b": histories})
    run = seed_runs(stack, batches[0].inputs, batches[0].targets)[0]
    fig = plot_selective_units(run, {"action": 0, "choice 1": 1}, input_labels=list("abc"),
                               dt=100)
    assert len(fig.axes) == 3
    scores = torch.ones(2, 4)
    results = [ablate(stack, batches[0], scores, k, n_random=2) for k in (1, 2)]
    fig = plot_ablation({"light-GRU": results, "other": results}, chance=0.5)
    assert len(fig.axes) == 2
    plt.close("all")
