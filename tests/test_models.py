"""The rate RNN (Song, Yang & Wang 2016, eq. 1, Euler with alpha = dt / tau)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.testing import assert_close

from course_lib.checks.sparse_connectivity import reference_rate_rnn_step
from course_lib.connectivity import random_sparse_mask
from course_lib.models import (
    RateRNN,
    RateRNNEnsemble,
    ensemble_accuracy,
    time_constant_alpha,
    train_ensemble,
)
from course_lib.tasks import BatchPool, TaskDataset
from course_lib.training import evaluate, train


def test_one_step_by_hand():
    """x0 = 0, u = 1, alpha = 0.5: x1 = 0.5 * W_in u, rates relu(x1), outputs W_out r."""
    model = RateRNN(1, 2, 1, dt=10, tau=20)
    with torch.no_grad():
        model.input.weight.copy_(torch.tensor([[2.0], [-4.0]]))
        model.readout.weight.copy_(torch.tensor([[1.0, 1.0]]))
    outputs, rates = model(torch.ones(1, 1, 1))
    assert torch.allclose(rates[0, 0], torch.tensor([1.0, 0.0]))  # relu([1, -2])
    assert torch.allclose(outputs[0, 0], torch.tensor([1.0]))


def test_dynamics_match_an_independent_euler_step():
    torch.manual_seed(0)
    mask = random_sparse_mask(8, 8, 0.5, seed=1, self_connections=False)
    model = RateRNN(3, 8, 2, dt=20, tau=100, mask=mask, seed=3)
    inputs = torch.randn(15, 4, 3)
    _, rates = model(inputs)
    w_rec = model.recurrent.parametrizations.weight.original.detach()
    x = torch.zeros(4, 8)
    for t in range(15):
        # the bias is zero at init; the checker's step has none
        x = reference_rate_rnn_step(x, inputs[t], w_rec, model.input.weight.detach(), mask, 0.2)
        x = x + 0.2 * model.input.bias.detach()
        assert torch.allclose(rates[t], torch.relu(x), atol=1e-5)


def test_alpha_is_dt_over_tau_and_validated():
    assert time_constant_alpha(20, 100) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="dt / tau must be at most 1"):
        time_constant_alpha(200, 100)
    with pytest.raises(ValueError, match="tau must be a positive number"):
        RateRNN(1, 4, 1, tau=0)


def test_initial_spectral_radius_is_near_the_gain_at_any_density():
    for density in (0.1, 1.0):
        mask = random_sparse_mask(400, 400, density, seed=0, self_connections=False)
        model = RateRNN(1, 400, 1, mask=mask, gain=0.8, seed=0)
        radius = torch.linalg.eigvals(model.recurrent.weight.detach()).abs().max().item()
        assert radius == pytest.approx(0.8, rel=0.1)


def test_noise_is_seeded_and_changes_the_trajectory():
    inputs = torch.ones(10, 2, 1)
    a = RateRNN(1, 6, 1, noise_std=0.5, seed=7)(inputs)[1]
    b = RateRNN(1, 6, 1, noise_std=0.5, seed=7)(inputs)[1]
    c = RateRNN(1, 6, 1, noise_std=0.0, seed=7)(inputs)[1]
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_bad_shapes_raise_value_error():
    model = RateRNN(3, 5, 2)
    with pytest.raises(ValueError, match=r"inputs must have shape \(any, any, 3\)"):
        model(torch.zeros(4, 2, 2))
    with pytest.raises(ValueError, match=r"mask must have shape \(5, 5\)"):
        RateRNN(3, 5, 2, mask=torch.ones(4, 4))


# --- RateRNNEnsemble: several networks trained side by side ------------------------------


def _members(noise_std=0.0):
    """A density-0 network, a sparse one and an unmasked one, all 3 -> 6 -> 3."""
    kwargs = dict(dt=100, tau=200, noise_std=noise_std)
    return [
        RateRNN(3, 6, 3, mask=torch.zeros(6, 6), seed=0, **kwargs),
        RateRNN(3, 6, 3, mask=random_sparse_mask(6, 6, 0.4, seed=1), seed=1, **kwargs),
        RateRNN(3, 6, 3, seed=2, **kwargs),
    ]


@pytest.fixture(scope="module")
def pool():
    return BatchPool(TaskDataset("PerceptualDecisionMaking-v0", batch_size=4, seq_len=30,
                                 seed=5, dt=100), n_batches=3)


def test_ensemble_runs_each_member_as_that_member_alone():
    members = _members()
    ensemble = RateRNNEnsemble(members)
    inputs = torch.randn(12, 5, 3)
    outputs, rates = ensemble(inputs)
    assert outputs.shape == (3, 12, 5, 3) and rates.shape == (3, 12, 5, 6)
    for k, model in enumerate(members):
        alone_outputs, alone_rates = model(inputs)
        assert_close(outputs[k], alone_outputs)
        assert_close(rates[k], alone_rates)


@pytest.mark.parametrize("clip_norm", [1.0, 0.05, None])
def test_ensemble_training_equals_training_each_member_alone(pool, clip_norm):
    """`training.train`, run once per member on the same batches, is the ground truth."""
    members = _members()
    ensemble = RateRNNEnsemble(copy.deepcopy(members))
    pool._next = 0
    losses = train_ensemble(ensemble, pool, n_steps=7, lr=0.02, weight_decay=0.1,
                            clip_norm=clip_norm)
    assert losses.shape == (7, 3)
    for k, model in enumerate(members):
        pool._next = 0
        history = train(model, pool, n_steps=7, lr=0.02, weight_decay=0.1,
                        clip_norm=clip_norm, progress=False)
        assert_close(losses[:, k], torch.tensor(history.loss))
        trained = ensemble.member(k)
        for (name, mine), theirs in zip(trained.state_dict().items(),
                                        model.state_dict().values(), strict=True):
            assert_close(mine, theirs, msg=name)


def test_density_zero_member_keeps_no_recurrence_through_training(pool):
    ensemble = RateRNNEnsemble(_members())
    train_ensemble(ensemble, pool, n_steps=5, lr=0.05)
    assert torch.count_nonzero(ensemble.member(0).recurrent.weight) == 0
    assert torch.count_nonzero(ensemble.member(2).recurrent.weight) == 36  # unmasked: all


def test_ensemble_accuracy_equals_evaluate_on_the_same_batches(pool):
    members = _members()
    accuracy = ensemble_accuracy(RateRNNEnsemble(members), pool.batches)
    for k, model in enumerate(members):
        pool._next = 0
        assert accuracy[k] == pytest.approx(evaluate(model, pool, n_batches=3))


def test_ensemble_noise_has_the_rate_networks_scale():
    """Zero weights and inputs, a bias of 1: x_1 = alpha + sqrt(2 alpha) sigma xi (alpha 0.5)."""
    members = [RateRNN(1, 50, 1, dt=10, tau=20, noise_std=0.3, seed=s) for s in range(4)]
    for model in members:
        for parameter in model.parameters():
            parameter.data.zero_()
        model.recurrent.bias.data.fill_(2.0)  # alpha * bias = 1
    _, rates = RateRNNEnsemble(members, seed=3)(torch.zeros(1, 200, 1))
    x1 = rates[:, 0].detach()  # x_1 = 1 + 0.3 xi stays positive, so relu leaves it unchanged
    assert float(x1.mean()) == pytest.approx(1.0, abs=0.01)
    assert float(x1.std()) == pytest.approx(0.3, rel=0.03)
    assert not torch.equal(x1[0], x1[1])  # each member its own noise


def test_ensemble_rejects_members_that_cannot_be_stacked():
    with pytest.raises(ValueError, match="at least one member"):
        RateRNNEnsemble([])
    with pytest.raises(ValueError, match="member 1 differs"):
        RateRNNEnsemble([RateRNN(3, 6, 3), RateRNN(3, 7, 3)])
    with pytest.raises(ValueError, match="member 1 differs"):
        RateRNNEnsemble([RateRNN(3, 6, 3, tau=100), RateRNN(3, 6, 3, tau=200)])
