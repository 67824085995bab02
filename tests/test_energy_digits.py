"""Chapter 12's experiment (`course_lib.learning_rules.energy_digits`), checked against
ground truths written here, sharing no code with it: an MLP differentiated by autograd
(backprop), EqProp's energy written from its definition with its fixed-point gradient by
implicit differentiation (a dense linear solve), angles of hand-made vectors, and each
seed of a batched run against the library's single-network function run alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_predictive_coding import backprop_update
from torch.testing import assert_close

from course_lib.learning_rules import energy_digits as ed
from course_lib.learning_rules import equilibrium_propagation as ep
from course_lib.learning_rules import predictive_coding as pc
from course_lib.learning_rules.feedback_alignment import load_digits_split

EXACT = {"rtol": 1e-10, "atol": 1e-12}


def seeded_network(seeds, sizes, dtype=torch.float64, scale=1.0):
    weights = [torch.stack(layer) for layer in zip(
        *[[scale * w for w in pc.init_weights(sizes, seed=s, dtype=dtype)] for s in seeds],
        strict=True)]
    g = torch.Generator().manual_seed(123)
    x = torch.rand(len(seeds), 6, sizes[0], generator=g, dtype=dtype)
    y = torch.rand(len(seeds), 6, sizes[-1], generator=g, dtype=dtype)
    return weights, x, y


# ---------------------------------------------------------- updates against backprop


@pytest.mark.parametrize("rule", ["bp", "zil"])
def test_backprop_and_zil_updates_equal_autograd_for_every_seed(rule):
    sizes = (5, 7, 6, 3)
    weights, x, y = seeded_network((0, 1, 2), sizes, scale=2.0)
    updates, steps = ed.rule_updates(rule, x, y, weights)
    assert steps == (0 if rule == "bp" else len(sizes) - 2)
    for m in range(3):
        truth = backprop_update([w[m] for w in weights], x[m], y[m])
        for ours, expected in zip([u[m] for u in updates], truth, strict=True):
            assert_close(ours, expected, **EXACT)


def test_fa_with_transposed_weights_as_feedback_is_backprop():
    sizes = (5, 7, 6, 3)
    weights, x, y = seeded_network((0, 1), sizes)
    transposed = [w.mT.clone() for w in weights[1:]]  # B = W^T for every weight above W_0
    fa, _ = ed.rule_updates("fa", x, y, weights, transposed)
    for m in range(2):
        truth = backprop_update([w[m] for w in weights], x[m], y[m])
        for ours, expected in zip([u[m] for u in fa], truth, strict=True):
            assert_close(ours, expected, **EXACT)


def test_fa_with_random_feedback_is_not_backprop_below_the_output():
    sizes = (5, 7, 6, 3)
    weights, x, y = seeded_network((0,), sizes)
    feedback = [torch.rand(w.shape[2], w.shape[1], dtype=torch.float64)[None] - 0.5
                for w in weights[1:]]
    fa, _ = ed.rule_updates("fa", x, y, weights, feedback)
    truth = backprop_update([w[0] for w in weights], x[0], y[0])
    assert_close(fa[-1][0], truth[-1], **EXACT)  # the output layer learns by the delta rule
    assert (fa[0][0] - truth[0]).norm() > 0.1 * truth[0].norm()


def test_batched_pc_and_eqprop_equal_each_seed_alone():
    """Seeds relaxed together stop when the slowest has settled: each seed's update is
    the one it gets alone, within the relaxation's tolerance."""
    sizes = (5, 7, 3)
    weights, x, y = seeded_network((0, 1, 2), sizes)
    tight = {"tol": 1e-10, "max_steps": 5000}
    batched, _ = ed.pc_updates(x, y, weights, **tight)
    eqprop, _ = ed.eqprop_updates(x, y, weights, beta=0.3, **tight)
    for m in range(3):
        w = [layer[m] for layer in weights]
        alone, _ = pc.pc_update(x[m], y[m], w, step_size=0.2, **tight)
        for ours, expected in zip([u[m] for u in batched], alone, strict=True):
            assert_close(ours, expected, rtol=1e-6, atol=1e-8)
        alone, _ = ep.eqprop_gradient(x[m], y[m], w, beta=0.3, step_size=0.5, **tight)
        for ours, expected in zip([u[m] for u in eqprop], alone, strict=True):
            assert_close(ours, expected, rtol=1e-6, atol=1e-8)


def test_unknown_rule_is_refused():
    weights, x, y = seeded_network((0,), (3, 4, 2))
    with pytest.raises(ValueError, match="rule must be one of"):
        ed.rule_updates("hebb", x, y, weights)
    with pytest.raises(ValueError, match="rule must be one of"):
        ed.train_energy_rules((0,), rules=("hebb",), epochs=1)


# ------------------------------------------------ EqProp's gradient, by implicit diff


def reference_energy_gradient(flat_states, x, weights, sizes):
    """dE/ds of E = sum ||s||^2/2 - sum rho(s_{l+1})^T W_l rho(s_l), rho = sigmoid(4s - 2)."""
    batch = x.shape[0]
    states, start = [x], 0
    for n in sizes[1:]:
        states.append(flat_states[start:start + batch * n].reshape(batch, n))
        start += batch * n

    def energy(free):
        rates = [torch.sigmoid(4 * s - 2) for s in [x, *free]]
        total = sum(0.5 * (s**2).sum() for s in free)
        return total - sum((rates[k + 1] * (rates[k] @ w.T)).sum()
                           for k, w in enumerate(weights))

    free = [s.requires_grad_(True) if not s.requires_grad else s for s in states[1:]]
    grads = torch.autograd.grad(energy(free), free, create_graph=True)
    return torch.cat([g.flatten() for g in grads])


def test_fixed_point_gradient_equals_implicit_differentiation():
    sizes = (4, 5, 3)
    weights = pc.init_weights(sizes, seed=3)
    g = torch.Generator().manual_seed(4)
    x = torch.rand(3, sizes[0], generator=g, dtype=torch.float64)
    y = torch.rand(3, sizes[-1], generator=g, dtype=torch.float64)
    free, _ = ep.free_phase(x, weights, step_size=0.5, max_steps=20_000, tol=1e-13)
    s_star = torch.cat([s.flatten() for s in free[1:]]).detach()
    assert reference_energy_gradient(s_star.clone(), x, weights, sizes).abs().max() < 1e-10
    # H v = dJ/ds, then dJ/dW = -(d/dW dE/ds)^T v  (recurrent backprop's fixed point)
    hessian = torch.autograd.functional.jacobian(
        lambda s: reference_energy_gradient(s, x, weights, sizes), s_star)
    output = free[-1].detach()
    dj_ds = torch.zeros_like(s_star)
    dj_ds[-output.numel():] = ((output - y) / x.shape[0]).flatten()
    v = torch.linalg.solve(hessian, dj_ds)
    params = [w.clone().requires_grad_(True) for w in weights]
    mixed = reference_energy_gradient(s_star.clone(), x, params, sizes) @ v
    truth = [g for g in torch.autograd.grad(mixed, params)]  # -dJ/dW = +(dG/dW)^T v
    ours = ed.fixed_point_gradient(x, y, weights, steps=600, max_steps=20_000, tol=1e-13)
    for mine, expected in zip(ours, truth, strict=True):
        assert_close(mine, expected, rtol=1e-6, atol=1e-9)


def test_eqprop_angle_to_its_gradient_falls_with_beta():
    sizes = (4, 6, 3)
    weights = pc.init_weights(sizes, seed=5)
    g = torch.Generator().manual_seed(6)
    x = torch.rand(4, sizes[0], generator=g, dtype=torch.float64)
    y = torch.rand(4, sizes[-1], generator=g, dtype=torch.float64)
    tight = {"step_size": 0.5, "max_steps": 20_000, "tol": 1e-12}
    truth = ed.fixed_point_gradient(x, y, weights, steps=600, **tight)
    angles = [ed.angle(ep.eqprop_gradient(x, y, weights, beta=b, **tight)[0], truth)
              for b in (0.4, 0.1, 0.025)]
    assert angles[0] > angles[1] > angles[2]
    assert angles[2] < 0.2 * angles[0]  # first order: a quarter per factor 4, or better


# --------------------------------------------------------------------------- angle


def test_angle_of_known_vectors():
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert ed.angle([e1], [e1 * 3]) == pytest.approx(0.0, abs=1e-6)
    assert ed.angle([e1], [e2]) == pytest.approx(90.0)
    assert ed.angle([e1], [-e1]) == pytest.approx(180.0)
    assert ed.angle([e1], [e1 + e2]) == pytest.approx(45.0)
    # lists of tensors are one long vector: (1, 0 | 0) against (0, 0 | 1) is 90 degrees
    assert ed.angle([e1, torch.zeros(1)], [torch.zeros(2), torch.ones(1)]) == pytest.approx(90)


# ------------------------------------------------------------------- data, training


def test_digits_are_chapter_06s_split_with_a_bias_unit():
    data = ed.digits_for_seeds((0, 3))
    for m, seed in enumerate((0, 3)):
        x_train, y_train, x_test, y_test = load_digits_split(seed=seed)
        assert torch.equal(data.x_train[m, :, :64], x_train)
        assert torch.equal(data.x_test[m, :, :64], x_test)
        assert torch.equal(data.labels_test[m], y_test)
        assert torch.equal(data.y_train[m].argmax(1), y_train)
        assert (data.x_train[m, :, 64] == 1).all() and (data.x_test[m, :, 64] == 1).all()
        assert (data.y_train[m].sum(1) == 1).all()


@pytest.fixture(scope="module")
def small_run():
    return ed.train_energy_rules((0, 1), epochs=1, hidden=(8,), n_train=320)


def test_zil_trains_exactly_as_backprop(small_run):
    assert_close(small_run.test_accuracy["zil"], small_run.test_accuracy["bp"])
    for zil, bp in zip(small_run.weights["zil"], small_run.weights["bp"], strict=True):
        assert_close(zil, bp, rtol=1e-4, atol=1e-6)  # float32: summation order differs
    assert np.all(small_run.angle["zil"] < 0.1)
    assert np.all(small_run.angle["bp"] < 0.1)


def test_training_learns_and_records_what_it_promises(small_run):
    for rule in ed.RULES:
        assert small_run.test_accuracy[rule].shape == (2, 2)
        assert small_run.angle[rule].shape == (2, 2)
    assert small_run.steps["bp"] == 0 and small_run.steps["zil"] == 1
    assert small_run.steps["pc"] > 1 and small_run.steps["eqprop"] > 1
    # one epoch of 10 batches: every rule but FA already well above chance (10%, whose
    # SD on 450 test digits is 1.4%)
    for rule in ("bp", "zil", "pc"):
        assert (small_run.final_accuracy(rule) > 0.2).all(), rule
    assert (small_run.angle["fa"][:, 0] > 45).all()  # random feedback starts far away
    assert (small_run.angle["pc"] < 30).all()


def test_a_seed_trained_with_others_equals_that_seed_alone():
    together = ed.train_energy_rules((0, 1), rules=("bp", "fa"), epochs=1, hidden=(8,),
                                     n_train=320)
    alone = ed.train_energy_rules((1,), rules=("bp", "fa"), epochs=1, hidden=(8,),
                                  n_train=320)
    for rule in ("bp", "fa"):
        assert_close(together.test_accuracy[rule][1], alone.test_accuracy[rule][0])
        for a, b in zip(together.weights[rule], alone.weights[rule], strict=True):
            assert_close(a[1], b[0], rtol=1e-5, atol=1e-6)


def test_inference_steps_count():
    weights, x, y = seeded_network((0,), (5, 6, 4, 3), dtype=torch.float32)
    w = [layer[0] for layer in weights]
    assert ed.inference_steps("bp", x[0], y[0], w) == 0
    assert ed.inference_steps("zil", x[0], y[0], w) == 2
    # the library's own count, not a copy of its loop
    assert ed.inference_steps("pc", x[0], y[0], w) == pc.pc_update(
        x[0], y[0], w, **ed.PC_RELAX)[1]
    assert ed.inference_steps("pc", x[0], y[0], w) > 2


# ------------------------------------------------------------------- relaxation traces


def test_pc_energy_trace_never_rises_and_matches_the_energy():
    weights, x, y = seeded_network((0,), (5, 6, 4, 3))
    w = [layer[0] for layer in weights]
    trace = ed.pc_energy_trace(x[0], y[0], w, steps=80)
    assert trace.shape == (81, 6)
    assert (np.diff(trace, axis=0) <= 1e-12).all()
    assert (trace[-1] < trace[0]).all()
    start = pc.feedforward(x[0], w)
    miss = y[0] - start[-1]  # at step 0 only the clamped output is surprised
    assert_close(torch.tensor(trace[0]), 0.5 * (miss**2).sum(1), **EXACT)


def test_eqprop_phase_trace_descends_each_phase_and_moves_toward_the_target():
    weights, x, y = seeded_network((0,), (5, 6, 3))
    w = [layer[0] for layer in weights]
    target = torch.zeros(1, 3, dtype=torch.float64)
    target[0, 1] = 1.0
    trace = ed.eqprop_phase_trace(x[0, :1], target, w, beta=0.5, steps=200)
    assert (np.diff(trace.free_energy) <= 1e-12).all()
    assert (np.diff(trace.nudged_energy) <= 1e-12).all()
    assert np.allclose(trace.free_output[0], 0) and np.allclose(trace.nudged_output[0],
                                                                trace.free_output[-1])
    moved = trace.nudged_output[-1] - trace.free_output[-1]
    assert moved[1] > 0  # the target unit is pulled up
    free, _ = ep.free_phase(x[0, :1], w, step_size=0.5, max_steps=20_000, tol=1e-13)
    assert_close(torch.tensor(trace.free_output[-1]), free[-1][0], rtol=1e-6, atol=1e-8)


def test_angle_against_nudge_falls_and_zil_is_exact():
    nudges = (0.3, 0.03)
    sweep = ed.angle_against_nudge((0,), nudges, batch_size=8, hidden=(6,))
    assert sweep["pc"].shape == (1, 2)
    assert sweep["pc"][0, 1] < 0.2 * sweep["pc"][0, 0]  # first order: a tenth
    assert sweep["eqprop"][0, 1] < 0.2 * sweep["eqprop"][0, 0]
    assert sweep["zil"].max() < 1e-5
    assert math.isfinite(sweep["pc"].sum())
