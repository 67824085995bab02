"""Chapter 13's experiment module: the ensemble computes what each network computes alone,
members train independently, the constraints hold, and the measurements agree with
hand computations and with the e-prop/BPTT identity."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib import spiking_experiment as sx  # noqa: E402
from course_lib.spiking import SpikingRNN, spike_count_penalty, task_loss  # noqa: E402


@pytest.fixture(scope="module")
def batches():
    return sx.decision_batches(3, 8, seed=0)


def _alone(seed: int) -> SpikingRNN:
    kwargs = {k: v for k, v in sx.NETWORK.items() if k != "n_hidden"}
    return SpikingRNN(3, sx.NETWORK["n_hidden"], 1, **kwargs, seed=seed)


def test_trials_are_reproducible_and_have_the_go_cue(batches):
    again = sx.decision_batches(3, 8, seed=0)
    other = sx.decision_batches(3, 8, seed=1)
    for (x, y), (x2, y2) in zip(batches, again, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(batches[0][0], other[0][0])
    inputs, targets = batches[0]
    steps = sum(sx.TIMING.values()) / sx.DT
    assert inputs.shape == (steps, 8, 3) and targets.shape == (steps, 8, 1)
    # the fixation input is off exactly where an answer (+1 or -1) is due
    answer_due = targets[..., 0] != 0
    assert torch.equal(inputs[..., 0] == 0, answer_due)
    assert set(targets[answer_due].unique().tolist()) <= {-1.0, 1.0}


def test_each_member_computes_what_its_network_computes_alone(batches):
    inputs = batches[0][0]
    ensemble = sx.initial_ensemble([3, 7])
    outputs, spikes = ensemble_run = sx.simulate_ensemble(ensemble, inputs)
    assert outputs.shape == (2, *inputs.shape[:2], 1) and spikes.shape[-1] == 64
    for index, seed in enumerate((3, 7)):
        run = _alone(seed).simulate(inputs)
        assert spikes[index].sum() > 0, "the network must fire for the test to mean anything"
        assert torch.equal(run.spikes, spikes[index].detach())
        torch.testing.assert_close(run.outputs, outputs[index].detach(), rtol=0, atol=1e-5)
    assert len(ensemble_run) == 2
    # as a SpikingRNN, a member keeps its weights and gets its own seed's random feedback
    member = ensemble.member(1)
    assert torch.equal(member.recurrent.weight, _alone(7).recurrent.weight)
    assert torch.equal(member.feedback, _alone(7).feedback)
    assert not torch.equal(member.feedback, ensemble.member(0).feedback)


def test_a_constrained_member_equals_its_parametrized_network(batches):
    inputs = batches[0][0]
    ensemble = sx.dale_sparse_ensemble([0, 1])
    outputs, spikes = sx.simulate_ensemble(ensemble, inputs)
    net = ensemble.member(1)  # a SpikingRNN with DaleWeight registered on its recurrence
    run = net.simulate(inputs)
    assert torch.equal(run.spikes, spikes[1])
    torch.testing.assert_close(run.outputs, outputs[1], rtol=0, atol=1e-5)


def test_the_constrained_start_obeys_dale_the_mask_and_balance():
    ensemble = sx.dale_sparse_ensemble([0, 1, 2])
    w = ensemble.recurrent()
    signs, mask = ensemble.signs, ensemble.mask
    n_exc = int((signs > 0).sum())
    assert n_exc == round(0.8 * 64)
    assert (w[:, :, signs > 0] >= 0).all() and (w[:, :, signs < 0] <= 0).all()
    assert (w[:, mask == 0] == 0).all() and (mask.diagonal() == 0).all()
    assert abs(mask.mean().item() - sx.DENSITY * 63 / 64) < 0.01  # no self-connections
    # balanced: every row's excitation equals its inhibition
    torch.testing.assert_close(w.sum(-1), torch.zeros(3, 64), rtol=0, atol=1e-4)
    # the same input and readout weights as the unconstrained control
    dense = sx.initial_ensemble([0, 1, 2])
    assert torch.equal(ensemble.w_in, dense.w_in) and torch.equal(ensemble.w_out, dense.w_out)


def test_the_loss_is_each_members_own_task_loss_plus_penalty(batches):
    inputs, targets = batches[0]
    ensemble = sx.initial_ensemble([0, 1])
    outputs, spikes = sx.simulate_ensemble(ensemble, inputs)
    penalties = torch.tensor([0.0, 0.01])
    expected = sum(task_loss(outputs[i], targets) + spike_count_penalty(spikes[i], p)
                   for i, p in enumerate(penalties.tolist()))
    torch.testing.assert_close(sx.ensemble_loss(outputs, spikes, targets, penalties), expected)


def test_members_train_as_they_would_alone(batches):
    together = sx.train_bptt(sx.initial_ensemble([0, 1]), batches, steps=3,
                             penalties=[0.0, 0.01])
    alone = sx.train_bptt(sx.initial_ensemble([1]), batches, steps=3, penalties=[0.01])
    for name in ("w_in", "w_rec", "w_out"):
        trained_together = getattr(together.ensemble, name)[1]
        trained_alone = getattr(alone.ensemble, name)[0]
        assert not torch.equal(trained_alone, getattr(sx.initial_ensemble([1]), name)[0])
        torch.testing.assert_close(trained_together, trained_alone, rtol=0, atol=1e-5)
    assert len(together.losses) == 3
    with pytest.raises(ValueError, match="one penalty per member"):
        sx.train_bptt(sx.initial_ensemble([0, 1]), batches, steps=1, penalties=[0.0])


def test_constraints_hold_after_training(batches):
    trained = sx.train_bptt(sx.dale_sparse_ensemble([0]), batches, steps=5, lr=0.05)
    w, signs = trained.ensemble.recurrent(), trained.ensemble.signs
    assert (w[:, :, signs > 0] >= 0).all() and (w[:, :, signs < 0] <= 0).all()
    assert (w[:, trained.ensemble.mask == 0] == 0).all()


def test_eprop_training_changes_the_weights_and_keeps_the_constraint(batches):
    start = sx.dale_sparse_ensemble([0])
    trained = sx.train_eprop(start, batches, steps=2)
    assert not torch.equal(trained.w_rec, start.w_rec)
    assert not torch.equal(trained.w_in, start.w_in)
    w, signs = trained.recurrent(), trained.signs
    assert (w[:, :, signs > 0] >= 0).all() and (w[:, :, signs < 0] <= 0).all()
    assert (w[:, trained.mask == 0] == 0).all()


def test_evaluate_agrees_with_a_hand_count(batches):
    inputs, targets = batches[1]
    ensemble = sx.initial_ensemble([0, 1])
    accuracy, spikes = sx.evaluate(ensemble, (inputs, targets))
    outputs, raster = sx.simulate_ensemble(ensemble, inputs)
    answer = (targets[..., 0] != 0).numpy()
    for i in range(2):
        count = raster[i].numpy().sum() / inputs.shape[1]
        assert spikes[i] == pytest.approx(count)
        out, tgt = outputs[i, ..., 0].detach().numpy(), targets[..., 0].numpy()
        correct = [np.sign(out[answer[:, b], b].mean()) == np.sign(tgt[answer[:, b], b].mean())
                   for b in range(inputs.shape[1])]
        assert accuracy[i] == pytest.approx(np.mean(correct))
    silent = sx.initial_ensemble([0])
    silent.w_out.zero_()  # the readout stays at 0: no trial gets a side
    assert sx.evaluate(silent, (inputs, targets))[0] == [0.0]


def test_eprop_equals_bptt_without_recurrence_and_differs_with_random_feedback(batches):
    """The identity of Bellec et al. 2020: with W_rec = 0 and B = W_out^T, e-prop's
    gradient is BPTT's, so the cosine is 1; a random B is not."""
    net = _alone(0)
    with torch.no_grad():
        net.recurrent.weight.zero_()
    feedback = net.feedback.clone()
    result = sx.gradient_alignment(net, batches[0])
    for layer in ("input", "recurrent"):
        assert result["B = W_out^T"][layer] == pytest.approx(1.0, abs=1e-5)
        assert result["random B"][layer] < 0.9
    assert torch.equal(net.feedback, feedback) and net.input.weight.grad is None


def test_sweep_members_and_by_penalty_line_up():
    seeds, penalties = sx.sweep_members([0, 1, 2], [0.0, 0.5])
    assert seeds == [0, 1, 2, 0, 1, 2] and penalties == [0.0, 0.0, 0.0, 0.5, 0.5, 0.5]
    table = sx.by_penalty([10, 11, 12, 20, 21, 22], 3)
    assert table.tolist() == [[10, 11, 12], [20, 21, 22]]


def test_a_spike_penalty_cuts_spikes(batches):
    seeds, penalties = sx.sweep_members([0], [0.0, 0.2])
    trained = sx.train_bptt(sx.initial_ensemble(seeds), batches, penalties=penalties,
                            steps=15, lr=0.05)
    _, spikes = sx.evaluate(trained.ensemble, batches[0])
    assert spikes[1] < 0.5 * spikes[0]


def test_counts_and_rates_in_words():
    assert sx.count_text([500, 560, 620]) == "560 ± 60"
    trial_seconds = sum(sx.TIMING.values()) / 1000
    assert sx.spike_rate_hz(64 * 10 * trial_seconds) == pytest.approx(10.0)


def test_plots_draw_what_they_are_given(batches):
    inputs, targets = batches[0]
    outputs, spikes = sx.simulate_ensemble(sx.initial_ensemble([0]), inputs)
    axes = sx.plot_raster(spikes[0], outputs[0].detach(), inputs, targets, trial=2)
    assert len(axes[1].collections[0].get_offsets()) == int(spikes[0][:, 2].sum())
    plt.close("all")
    fig, ax = plt.subplots()
    accuracy = np.array([[0.8, 0.7, 0.9], [0.6, 0.65, 0.7]])
    counts = np.array([[500.0, 520, 540], [50, 60, 70]])
    sx.plot_tradeoff([0.0, 0.01], accuracy, counts, ax=ax)
    line = ax.lines[-2]  # the grey line through the means, before the chance line
    np.testing.assert_allclose(line.get_xdata(), [520, 60])
    np.testing.assert_allclose(line.get_ydata(), [80, 65])
    plt.close(fig)
