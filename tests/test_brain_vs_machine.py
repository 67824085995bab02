"""Chapter 14's experiment: the shifts change what they say they change, silenced units are
exactly silent, every network gets the same training budget, and each seed trains as it
would alone (checked against `course_lib.training.train`, a separate code path)."""

from __future__ import annotations

import copy

import pytest
import torch

from course_lib import brain_vs_machine as bvm
from course_lib.tasks import Batch, TaskDataset
from course_lib.training import train

N_IN, N_OUT = 3, 3  # PerceptualDecisionMaking-v0: fixation + 2 stimulus channels; 3 actions


def _period_steps(shift: bvm.Shift, period: str) -> int:
    """Length in steps of ``period`` in a fresh trial of the task under ``shift``."""
    data = TaskDataset(bvm.TASK, batch_size=1, seq_len=10, seed=3, **bvm.task_kwargs(shift))
    env = data.env
    env.new_trial()
    return int(env.end_ind[period] - env.start_ind[period])


# ----------------------------------------------------------------------- the shifts


def test_training_trials_have_the_designed_periods():
    # dt = 100 ms: stimulus 500 ms = 5 steps, delay 200 ms = 2 steps
    assert _period_steps(bvm.Shift(), "stimulus") == 5
    assert _period_steps(bvm.Shift(), "delay") == 2


@pytest.mark.parametrize(("shift", "period", "steps"), [
    ("longer delay", "delay", 6), ("longer stimulus", "stimulus", 15)])
def test_a_longer_period_really_lengthens_the_trials(shift, period, steps):
    assert _period_steps(bvm.SHIFTS[shift], period) == steps
    other = "stimulus" if period == "delay" else "delay"
    assert _period_steps(bvm.SHIFTS[shift], other) == _period_steps(bvm.Shift(), other)


def _coherences(shift: bvm.Shift, n: int = 200) -> set[float]:
    data = TaskDataset(bvm.TASK, batch_size=1, seq_len=10, seed=5, **bvm.task_kwargs(shift))
    return {float(data.env.new_trial()["coh"]) for _ in range(n)}


def test_lower_coherence_trials_are_all_harder_than_every_training_trial():
    trained = _coherences(bvm.Shift())
    shifted = _coherences(bvm.SHIFTS["lower coherence"])
    assert trained == {12.8, 25.6, 51.2}
    assert shifted == {3.2, 6.4}
    assert max(shifted) < min(trained)


def test_added_input_noise_has_the_requested_sd_and_spares_the_fixation_input():
    zeros = Batch(inputs=torch.zeros(200, 100, 3), targets=torch.zeros(200, 100, dtype=torch.long))
    noisy = bvm.add_input_noise(zeros, [1, 2], 0.7, torch.Generator().manual_seed(0))
    added = noisy.inputs[..., 1:]
    assert added.std().item() == pytest.approx(0.7, rel=0.02)  # 40 000 samples: ~0.4% error
    assert added.mean().item() == pytest.approx(0.0, abs=0.01)
    assert torch.equal(noisy.inputs[..., 0], zeros.inputs[..., 0])
    assert torch.equal(zeros.inputs, torch.zeros(200, 100, 3)), "the batch must not change"


def test_the_noisy_test_trials_are_the_clean_ones_plus_noise_of_the_shifts_sd():
    clean = bvm.held_out_batch(bvm.Shift())
    noisy = bvm.held_out_batch(bvm.SHIFTS["input noise"])
    difference = noisy.inputs - clean.inputs
    assert torch.equal(noisy.targets, clean.targets)
    assert torch.equal(difference[..., 0], torch.zeros_like(difference[..., 0]))
    assert difference[..., 1:].std().item() == pytest.approx(0.5, rel=0.03)


def test_only_the_silencing_shift_silences_and_it_takes_a_tenth_of_the_units():
    assert [name for name, s in bvm.SHIFTS.items() if s.silenced > 0] == ["silenced units"]
    units = bvm.silenced_units(bvm.SHIFTS["silenced units"].silenced, seed=0)
    assert len(units) == round(0.1 * 36) == 4
    assert len(set(units)) == len(units) and all(0 <= u < 36 for u in units)


def test_each_seed_silences_its_own_units():
    picks = {tuple(bvm.silenced_units(0.25, seed)) for seed in range(5)}
    assert len(picks) == 5
    assert bvm.silenced_units(0.25, 2) == bvm.silenced_units(0.25, 2)


@pytest.mark.parametrize("network", list(bvm.NETWORKS))
def test_silenced_units_have_exactly_zero_activity_and_the_rest_do_not(network):
    model, _ = bvm.NETWORKS[network](N_IN, N_OUT, 0)
    with torch.no_grad():  # make every weight non-zero so silence cannot come from zeros
        for parameter in model.parameters():
            parameter.add_(0.05)
    units = [0, 7, 20, 35]
    inputs = torch.rand(30, 8, N_IN, generator=torch.Generator().manual_seed(1)) + 0.5
    lesioned = bvm.silence(model, units)
    with torch.no_grad():
        _, rates = lesioned(inputs)
        _, intact_rates = model(inputs)
    assert torch.count_nonzero(rates[..., units]) == 0
    others = [u for u in range(36) if u not in units]
    assert torch.count_nonzero(rates[..., others]) > 0
    assert torch.count_nonzero(intact_rates[..., units]) > 0, "the original is left intact"


@pytest.mark.parametrize("network", ["unconstrained", "Dale (E/I)", "subLSTM"])
def test_nothing_downstream_reads_a_silenced_unit(network):
    """The output is the same whatever the silenced units' outgoing weights were."""
    model, _ = bvm.NETWORKS[network](N_IN, N_OUT, 0)
    units = [3, 4]
    changed = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in changed.parameters():  # perturb every weight leaving units 3 and 4
            if parameter.dim() == 2 and parameter.shape[1] == 36:
                parameter[:, units] += 1.0
    inputs = torch.rand(20, 4, N_IN, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = bvm.silence(model, units)(inputs)[0]
        b = bvm.silence(changed, units)(inputs)[0]
    assert torch.equal(a, b)


# ----------------------------------------------------------------- training and budget


def _pool(n_batches=3, seed=0):
    data = TaskDataset(bvm.TASK, batch_size=8, seq_len=30, seed=seed, **bvm.task_kwargs())
    return [data.next_batch() for _ in range(n_batches)]


class _Cycle:
    """Serves ``batches`` in order, cycled: the data interface of `training.train`."""

    def __init__(self, batches):
        self.batches, self.next = batches, 0

    def next_batch(self):
        batch = self.batches[self.next % len(self.batches)]
        self.next += 1
        return batch


@pytest.mark.parametrize("network", ["L1 on weights", "Dale (E/I)", "spatial (seRNN)",
                                     "subLSTM"])
def test_each_seed_of_a_stack_trains_as_training_train_trains_it_alone(network):
    batches = _pool()
    built = [bvm.NETWORKS[network](N_IN, N_OUT, seed) for seed in (0, 1, 2)]
    models, penalty = [m for m, _ in built], built[0][1]
    trained, losses = bvm.train_stack(models, penalty, batches, n_steps=4)
    assert losses.shape == (4, 3)
    alone = copy.deepcopy(models[1])
    history = train(alone, _Cycle(batches), n_steps=4, lr=1e-2, penalty=penalty,
                    progress=False)
    torch.testing.assert_close(losses[:, 1], torch.tensor(history.loss), rtol=1e-4, atol=1e-5)
    for (name, mine), theirs in zip(trained[1].state_dict().items(),
                                    alone.state_dict().values(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5, msg=name)


def test_a_seed_ends_the_same_whichever_seeds_train_beside_it():
    batches = _pool()
    build = bvm.NETWORKS["sparse"]
    three, _ = bvm.train_stack([build(N_IN, N_OUT, s)[0] for s in (0, 1, 2)], None, batches,
                               n_steps=3)
    one, _ = bvm.train_stack([build(N_IN, N_OUT, 1)[0]], None, batches, n_steps=3)
    for a, b in zip(three[1].state_dict().values(), one[0].state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # and different seeds are different networks
    assert not torch.equal(three[0].recurrent.weight, three[1].recurrent.weight)


def test_train_stack_leaves_the_given_models_untouched():
    model, _ = bvm.NETWORKS["unconstrained"](N_IN, N_OUT, 0)
    before = copy.deepcopy(model.state_dict())
    bvm.train_stack([model], None, _pool(1), n_steps=2)
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_every_network_gets_the_same_batches_steps_and_seeds(monkeypatch):
    calls = []

    def record(models, penalty, batches, *, n_steps, **kwargs):
        calls.append((len(models), [id(b) for b in batches], n_steps, kwargs))
        return list(models), torch.zeros(n_steps, len(models))

    monkeypatch.setattr(bvm, "train_stack", record)
    shifts = {"in distribution": bvm.Shift(), "silenced units": bvm.SHIFTS["silenced units"]}
    result = bvm.brain_vs_machine([4, 9, 11], n_steps=5, n_batches=2, batch_size=4, seq_len=30,
                                  shifts=shifts)
    assert len(calls) == len(bvm.NETWORKS) == 7
    assert {(n, tuple(ids), steps, tuple(kw.items())) for n, ids, steps, kw in calls} == {
        (3, tuple(calls[0][1]), 5, ())}
    assert len(calls[0][1]) == 2
    assert set(result.accuracy) == set(bvm.NETWORKS)
    for network in result.accuracy.values():
        assert set(network) == set(shifts)
        assert all(len(values) == 3 for values in network.values())


def test_the_networks_are_the_courses_and_all_have_36_units():
    assert set(bvm.NETWORKS) == {"unconstrained", "sparse", "Dale (E/I)", "L1 on weights",
                                 "L2 on rates", "spatial (seRNN)", "subLSTM"}
    for build in bvm.NETWORKS.values():
        model, _ = build(N_IN, N_OUT, 0)
        _, rates = model(torch.zeros(5, 2, N_IN))
        assert rates.shape == (5, 2, 36)


def test_drop_is_in_distribution_minus_shifted_accuracy_per_seed():
    result = bvm.Result(seeds=[0, 1], losses={}, accuracy={
        "a": {"in distribution": [0.9, 0.8], "noise": [0.6, 0.75]}})
    assert result.drop("a", "noise") == pytest.approx([0.3, 0.05])


def test_compared_with_control_states_a_difference_only_beyond_the_spread():
    def result(drops_a, drops_b):
        return bvm.Result(seeds=[0, 1, 2], losses={}, accuracy={
            "a": {"in distribution": [1.0] * 3, "s": [1 - d for d in drops_a]},
            "unconstrained": {"in distribution": [1.0] * 3, "s": [1 - d for d in drops_b]}})

    assert bvm.compared_with_control(result([0.1, 0.11, 0.09], [0.3, 0.31, 0.29]), "a",
                                     "s") == "smaller"
    assert bvm.compared_with_control(result([0.3, 0.31, 0.29], [0.1, 0.11, 0.09]), "a",
                                     "s") == "larger"
    assert bvm.compared_with_control(result([0.1, 0.3, 0.2], [0.25, 0.35, 0.3]), "a",
                                     "s") == "within the spread"


def test_the_noise_goes_on_the_tasks_stimulus_channels():
    data = TaskDataset(bvm.TASK, batch_size=1, seq_len=10, seed=0, **bvm.task_kwargs())
    assert bvm.STIMULUS_CHANNELS == list(data.env.observation_space.name["stimulus"])
    assert data.env.observation_space.name["fixation"] not in bvm.STIMULUS_CHANNELS


def test_shared_test_trials_are_those_each_shift_would_get_alone():
    shifts = {name: bvm.SHIFTS[name] for name in
              ("in distribution", "input noise", "silenced units", "lower coherence")}
    together = bvm.held_out_batches(shifts, batch_size=8, seq_len=40)
    for name, shift in shifts.items():
        alone = bvm.held_out_batch(shift, batch_size=8, seq_len=40)
        assert torch.equal(together[name].inputs, alone.inputs), name
        assert torch.equal(together[name].targets, alone.targets), name
    assert not torch.equal(together["lower coherence"].inputs, together["in distribution"].inputs)


def test_the_drop_figure_has_a_panel_per_shift_and_a_row_per_network():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shifts = [s for s in bvm.SHIFTS if s != "in distribution"]
    accuracy = {name: {s: [0.9, 0.8, 0.7] for s in bvm.SHIFTS} for name in ("a", "b")}
    fig = bvm.plot_drops(bvm.Result(seeds=[0, 1, 2], losses={}, accuracy=accuracy))
    assert [ax.get_title(loc="left") for ax in fig.axes] == shifts
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    plt.close(fig)
