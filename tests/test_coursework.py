"""The coursework-study helpers: hand-computed class weights and selectivity summaries,
the EI rescaling, the training loop's schedule and penalty, held-out runs, figures."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

from course_lib import coursework
from course_lib.coursework import (
    CONTRASTS,
    MonteCarloSelectivity,
    Run,
    class_weights,
    condition_masks,
    decay_factor,
    fixed_batches,
    make_study_model,
    monte_carlo_selectivity,
    run_model,
    set_recurrent_radius,
    single_trial,
    spectral_radius,
    train_study,
    unit_selectivity,
)
from course_lib.gated_cells import make_gated_rnn
from course_lib.regularisers import l2_rates
from course_lib.tasks import Batch, TaskDataset

matplotlib.use("Agg")

TASK = "PerceptualDecisionMaking-v0"


@pytest.fixture(scope="module")
def batches():
    return fixed_batches(TaskDataset(TASK, batch_size=8, seq_len=40, seed=0), 4)


# --- class weights and the schedule --------------------------------------------------------


def test_class_weights_hand_values():
    targets = torch.tensor([[0, 0], [0, 1]])  # 3 fixations, 1 choice 1, no choice 2
    weights = class_weights(targets, n_classes=3)
    expected = torch.tensor([4 / (3 * 3), 4 / (3 * 1), 0.0])
    assert torch.allclose(weights, expected)
    # weighted, each present class contributes the same total weight
    assert math.isclose(3 * weights[0].item(), 1 * weights[1].item(), rel_tol=1e-6)


def test_decay_factor_reaches_the_final_rate():
    gamma = decay_factor(1e-2, 1e-4, 1000)
    assert math.isclose(1e-2 * gamma**1000, 1e-4, rel_tol=1e-9)
    with pytest.raises(ValueError, match="n_steps"):
        decay_factor(1e-2, 1e-3, 0)
    with pytest.raises(ValueError, match="lr_final"):
        decay_factor(1e-2, 0.0, 10)


def test_train_study_decays_the_learning_rate(batches, monkeypatch):
    seen = []
    real_step = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    model = make_study_model("light_gru", 3, 6, 3, seed=0)
    train_study(model, batches, n_steps=4, lr=1e-2, lr_final=1e-3)
    assert math.isclose(seen[0], 1e-2) and len(seen) == 4
    assert math.isclose(seen[-1], 1e-2 * decay_factor(1e-2, 1e-3, 4) ** 3, rel_tol=1e-9)


# --- training --------------------------------------------------------------------------------


def test_train_study_adds_the_l2_penalty_to_the_loss(batches):
    first = batches[0]
    plain = make_study_model("light_gru", 3, 6, 3, seed=1)
    penalised = make_study_model("light_gru", 3, 6, 3, seed=1)
    with torch.no_grad():
        outputs, hidden = penalised(first.inputs)
    history_plain = train_study(plain, batches, n_steps=1)
    history_l2 = train_study(penalised, batches, n_steps=1, beta_l2=0.5)
    expected = history_plain.loss[0] + l2_rates(hidden, 0.5).item()
    assert math.isclose(history_l2.loss[0], expected, rel_tol=1e-5)


def test_train_study_weights_the_classes(batches):
    first = batches[0]
    weight = torch.tensor([0.1, 5.0, 5.0])
    model = make_study_model("light_gru", 3, 6, 3, seed=2)
    reference = make_study_model("light_gru", 3, 6, 3, seed=2)
    reference.train()
    outputs, _ = reference(first.inputs)
    expected = torch.nn.functional.cross_entropy(
        outputs.flatten(0, 1), first.targets.flatten(), weight=weight
    )
    history = train_study(model, batches, n_steps=1, class_weight=weight)
    assert math.isclose(history.loss[0], expected.item(), rel_tol=1e-5)


def test_train_study_cycles_fixed_batches_and_learns(batches):
    model = make_study_model("light_gru", 3, 8, 3, seed=0)
    history = train_study(model, batches, n_steps=30, lr=2e-2, eval_every=10)
    assert len(history.loss) == 30 and all(math.isfinite(x) for x in history.loss)
    assert history.eval_steps == [10, 20, 30]
    assert sum(history.loss[-4:]) < sum(history.loss[:4])


def test_train_study_accepts_a_task_dataset():
    data = TaskDataset(TASK, batch_size=4, seq_len=40, seed=0)
    history = train_study(make_study_model("ei_light_gru", 3, 6, 3), data, n_steps=2)
    assert len(history.loss) == 2


def test_train_study_bad_arguments(batches):
    model = make_study_model("light_gru", 3, 4, 3)
    with pytest.raises(ValueError, match="n_steps"):
        train_study(model, batches, n_steps=0)
    with pytest.raises(ValueError, match="beta_l2"):
        train_study(model, batches, n_steps=1, beta_l2=-1.0)


# --- the EI initialisation --------------------------------------------------------------------


def test_ei_study_model_starts_at_the_requested_radius_with_its_signs():
    raw = make_gated_rnn("ei_light_gru", 3, 20, 3, seed=0)
    model = make_study_model("ei_light_gru", 3, 20, 3, seed=0, ei_radius=0.7)
    assert math.isclose(spectral_radius(model.cell.recurrent_h.weight), 0.7, rel_tol=1e-5)
    before, after = raw.cell.recurrent_h.weight.detach(), model.cell.recurrent_h.weight.detach()
    assert torch.equal(torch.sign(before), torch.sign(after))


def test_set_recurrent_radius_needs_an_ei_cell():
    with pytest.raises(ValueError, match="EI light-GRU"):
        set_recurrent_radius(make_gated_rnn("light_gru", 3, 4, 3), 0.8)
    with pytest.raises(ValueError, match="radius"):
        set_recurrent_radius(make_gated_rnn("ei_light_gru", 3, 4, 3), 0.0)


def test_other_study_models_are_the_library_models():
    a = make_study_model("enu_light_gru", 3, 5, 3, seed=4)
    b = make_gated_rnn("enu_light_gru", 3, 5, 3, seed=4)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


# --- held-out activity ---------------------------------------------------------------------


def test_run_model_uses_eval_mode_and_restores_training_mode(batches):
    model = make_study_model("light_gru", 3, 6, 3)
    model.train()
    run = run_model(model, batches[0].inputs, batches[0].targets)
    assert model.training
    model.eval()
    with torch.no_grad():
        outputs, hidden = model(batches[0].inputs)
    assert torch.equal(run.hidden, hidden) and torch.equal(run.outputs, outputs)
    assert run.choices.shape == batches[0].targets.shape
    assert 0.0 <= run.accuracy() <= 1.0


def test_single_trial_is_one_seeded_trial_with_the_requested_conditions(capfd):
    inputs, targets = single_trial("DualDelayMatchSample-v0", seed=3, ground_truth1=2)
    assert inputs.shape == (40, 1, 7) and targets.shape == (40, 1)
    first_test = targets[:, 0][targets[:, 0] != 0]
    again, _ = single_trial("DualDelayMatchSample-v0", seed=3, ground_truth1=2)
    assert torch.equal(inputs, again)
    assert set(first_test.tolist()) <= {1, 2}
    x, y = single_trial("ContextDecisionMaking-v0", seed=0, ground_truth=2)
    assert y[-1, 0] == 2 and (y[:-1] == 0).all()
    assert capfd.readouterr().err == ""


# --- selectivity ----------------------------------------------------------------------------


def hand_run() -> Run:
    """4 steps, 1 trial, 3 units: unit 0 is on exactly when the stimulus is, unit 1 when
    the answer is 1, unit 2 never activates."""
    inputs = torch.zeros(4, 1, 3)
    inputs[1:3, 0, 1] = 0.7  # stimulus at steps 1 and 2 (channel 1)
    targets = torch.tensor([[0], [0], [1], [2]])
    hidden = torch.zeros(4, 1, 3)
    hidden[1:3, 0, 0] = 1.0
    hidden[2, 0, 1] = 2.0
    return Run(inputs, targets, torch.zeros(4, 1, 3), hidden)


def test_condition_masks_hand_values():
    run = hand_run()
    masks = condition_masks(run.inputs, run.targets, slice(1, 3))
    on, off = masks[CONTRASTS[0]]
    assert on[:, 0].tolist() == [False, True, True, False] and torch.equal(off, ~on)
    accept, reject = masks[CONTRASTS[1]]
    assert accept[:, 0].tolist() == [False, False, True, False]
    assert reject[:, 0].tolist() == [False, False, False, True]


def test_unit_selectivity_hand_values():
    s = unit_selectivity(hand_run(), slice(1, 3))
    stimulus, answer = s[CONTRASTS[0]], s[CONTRASTS[1]]
    assert stimulus[0] == math.inf  # constant 1 with the stimulus, 0 without
    assert math.isclose(stimulus[1].item(), 2 * (1.0 - 0.0) / math.sqrt(1.0 + 0.0))
    assert stimulus[2] == 0 and answer[2] == 0  # silent unit
    assert answer[1] == math.inf and answer[0] == math.inf  # 1 vs 0 at the two answer steps


def test_monte_carlo_summary_ignores_inactive_units():
    abs_s = {
        CONTRASTS[0]: torch.tensor([[0.5, 3.0, 0.0], [0.5, 2.0, 0.0]]),
        CONTRASTS[1]: torch.tensor([[1.5, 0.1, 0.0], [0.2, 0.1, 0.0]]),
    }
    active = torch.tensor([[True, True, False], [True, True, False]])
    mc = MonteCarloSelectivity(abs_s=abs_s, active=active)
    assert torch.equal(mc.max_abs, torch.tensor([[1.5, 3.0, 0.0], [0.5, 2.0, 0.0]]))
    assert mc.fraction_above(1.0) == 3 / 4
    assert mc.fraction_above(1.0, CONTRASTS[1]) == 1 / 4
    assert mc.most_selective_unit() == 1
    assert mc.least_selective_unit() == 0  # unit 2 never activates: not a candidate


def test_monte_carlo_selectivity_runs_every_batch(batches):
    model = make_study_model("light_gru", 3, 5, 3)
    mc = monte_carlo_selectivity(model, batches[:3], stimulus_channels=slice(1, 3))
    assert set(mc.abs_s) == set(CONTRASTS) and mc.active.shape == (3, 5)
    assert all(v.shape == (3, 5) and (v >= 0).all() for v in mc.abs_s.values())


# --- figures and explorer -------------------------------------------------------------------


def test_figures_draw_without_error(batches):
    import matplotlib.pyplot as plt

    models = {"light-GRU": make_study_model("light_gru", 3, 4, 3)}
    runs = {n: run_model(m, batches[0].inputs, batches[0].targets) for n, m in models.items()}
    histories = {n: train_study(m, batches, n_steps=2, eval_every=1) for n, m in models.items()}
    labels, actions = ["fixation", "left", "right"], ["fixate", "left", "right"]
    run = runs["light-GRU"]
    selectivity = {"light-GRU": unit_selectivity(run, slice(1, 3))}
    mc = {
        "light-GRU": monte_carlo_selectivity(
            models["light-GRU"], batches[:2], stimulus_channels=slice(1, 3)
        )
    }
    coursework.plot_predictions(
        run.inputs, run.targets, runs, input_labels=labels, action_labels=actions, dt=100
    )
    coursework.plot_learning_curves(histories, title="t")
    coursework.plot_max_activation({"light-GRU": run.hidden.amax(dim=(0, 1))})
    coursework.plot_selectivity(selectivity)
    coursework.plot_selectivity_histogram(mc)
    coursework.plot_unit_activity(run, 1, input_labels=labels, dt=100, title="unit")
    from course_lib.analysis import fit_pca

    for k in (2, 3):
        pca = fit_pca(run.hidden, k)
        coursework.plot_pca_trajectories(pca, [(run.hidden[:, 0], "a"), (run.hidden[:, 1], "b")])
    with pytest.raises(ValueError, match="2 or 3"):
        coursework.plot_pca_trajectories(fit_pca(run.hidden, 1), [(run.hidden[:, 0], "a")])
    coursework.draw_unit_view(run, selectivity["light-GRU"], 0, input_labels=labels, dt=100)
    explorer = coursework.unit_explorer(runs, selectivity, input_labels=labels, dt=100)
    assert [w.description for w in explorer.children[:3]] == ["model", "unit", "trial"]
    plt.close("all")


def test_batches_are_reused_not_regenerated(batches):
    assert all(isinstance(b, Batch) for b in batches)
    assert not torch.equal(batches[0].inputs, batches[1].inputs)
