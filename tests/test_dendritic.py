"""The dendritic error microcircuit (Sacramento et al. 2018).

Ground truth that does not share the library's code path: the self-predicting state
(apical voltage exactly 0, interneurons equal to the layer above, output equal to a
feedforward pass written here), the Euler dynamics against the fixed-point solver, and
backprop gradients by autograd on a feedforward network written here.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from course_lib.learning_rules.dendritic import (
    Conductances,
    DendriticMicrocircuit,
    apical_silencing_update,
    apical_voltage,
    dendritic_prediction_update,
    learn_self_prediction,
    teacher_regression_data,
    train_microcircuit_regression,
)
from course_lib.learning_rules.feedback_alignment import alignment_angle

G = Conductances()
HIDDEN_GAIN = G.basal / (G.leak + G.basal + G.apical)  # soma / basal with a silent apical
OUTPUT_GAIN = G.basal / (G.leak + G.basal)  # output somas have no apical compartment


def inputs(batch: int, n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def feedforward(weights: list[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """The network the self-predicting circuit should compute, written from the paper."""
    somas, r = [], x
    for k, w in enumerate(weights):
        gain = OUTPUT_GAIN if k == len(weights) - 1 else HIDDEN_GAIN
        somas.append(gain * (r @ w.T))
        r = F.softplus(somas[-1])
    return somas


def backprop_directions(weights, x, target) -> list[torch.Tensor]:
    """-dL/dW of L = 1/2 |u_target - u_N|^2 (batch mean) through `feedforward`, by autograd."""
    leaves = [w.clone().requires_grad_(True) for w in weights]
    loss = 0.5 * ((target - feedforward(leaves, x)[-1]) ** 2).sum(1).mean()
    return [-g for g in torch.autograd.grad(loss, leaves)]


def flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.flatten() for t in tensors])


@pytest.fixture
def circuit() -> DendriticMicrocircuit:
    c = DendriticMicrocircuit((5, 7, 6, 3), seed=0)
    c.make_self_predicting()
    return c


def test_self_predicting_state_without_target(circuit):
    x = inputs(11, 5)
    state = circuit.steady_state(x)
    for v_a in state.apical:
        assert v_a.abs().max() <= 1e-12  # exactly zero up to float64 rounding
    for u_int, u_above in zip(state.interneuron, state.pyramidal[1:], strict=True):
        assert_close(u_int, u_above, rtol=0, atol=1e-12)
    for got, want in zip(state.pyramidal, feedforward(circuit.forward, x), strict=True):
        assert_close(got, want, rtol=0, atol=1e-12)


def test_full_dynamics_reach_the_self_predicting_state_from_rest(circuit):
    x = inputs(4, 5, seed=1)
    state = circuit.simulate(x, dt=0.1, n_steps=1500)
    for v_a in state.apical:
        assert v_a.abs().max() < 1e-9
    for got, want in zip(state.pyramidal, feedforward(circuit.forward, x), strict=True):
        assert_close(got, want, rtol=0, atol=1e-9)


def test_euler_dynamics_converge_to_the_steady_state_with_a_target(circuit):
    x = inputs(4, 5, seed=2)
    target = torch.randn(4, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    fixed_point = circuit.steady_state(x, target)
    simulated = circuit.simulate(x, target, dt=0.1, n_steps=1500)
    for got, want in zip(
        simulated.pyramidal + simulated.interneuron,
        fixed_point.pyramidal + fixed_point.interneuron,
        strict=True,
    ):
        assert_close(got, want, rtol=0, atol=1e-9)
    # the target is what makes the apical dendrites speak
    assert min(v.abs().max().item() for v in fixed_point.apical) > 1e-3


def test_output_soma_is_pulled_towards_the_target(circuit):
    x = inputs(6, 5, seed=4)
    free = circuit.steady_state(x).pyramidal[-1]
    target = free + 1.0
    nudged = circuit.steady_state(x, target).pyramidal[-1]
    assert torch.all(nudged > free) and torch.all(nudged < target)


def test_apical_voltage_is_top_down_plus_lateral():
    g = torch.Generator().manual_seed(5)
    r_above, r_int = torch.rand(3, 4, generator=g), torch.rand(3, 4, generator=g)
    top_down, lateral = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    expected = torch.stack(
        [top_down @ r_above[b] + lateral @ r_int[b] for b in range(3)]
    )  # one sample at a time
    assert_close(apical_voltage(r_above, r_int, top_down, lateral), expected)
    # interneurons that copy the layer above, through W^PI = -B, silence the dendrite
    assert apical_voltage(r_above, r_above, top_down, -top_down).abs().max() == 0


def test_apical_voltage_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"pyramid_from_interneuron must have shape \(6, 4\)"):
        apical_voltage(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(6, 4), torch.zeros(4, 6))


def test_soma_basal_rule_by_hand():
    g = torch.Generator().manual_seed(6)
    u, v_hat, r_pre = (
        torch.randn(5, 3, generator=g),
        torch.randn(5, 3, generator=g),
        torch.rand(5, 2, generator=g),
    )
    expected = torch.zeros(3, 2)
    for b in range(5):
        for i in range(3):
            for j in range(2):
                error = F.softplus(u[b, i]) - F.softplus(v_hat[b, i])
                expected[i, j] += error * r_pre[b, j] / 5
    assert_close(dendritic_prediction_update(u, v_hat, r_pre), expected)
    assert dendritic_prediction_update(u, u, r_pre).abs().max() == 0  # predicted: no change


def test_apical_silencing_rule_reduces_the_apical_voltage():
    g = torch.Generator().manual_seed(7)
    r_above, r_int = torch.rand(8, 4, generator=g), torch.rand(8, 4, generator=g)
    top_down, lateral = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    before = apical_voltage(r_above, r_int, top_down, lateral)
    lateral_after = lateral + 0.1 * apical_silencing_update(before, r_int)
    after = apical_voltage(r_above, r_int, top_down, lateral_after)
    assert after.pow(2).sum() < before.pow(2).sum()


def interneuron_mismatch(circuit: DendriticMicrocircuit, x: torch.Tensor) -> list[float]:
    """Mean |u_interneuron - u_layer_above| relative to mean |u_layer_above|, per layer."""
    state = circuit.steady_state(x)
    return [
        ((u_int - u_above).abs().mean() / u_above.abs().mean()).item()
        for u_int, u_above in zip(state.interneuron, state.pyramidal[1:], strict=True)
    ]


def test_learning_silences_the_apical_dendrites_from_random_lateral_weights():
    circuit = DendriticMicrocircuit((5, 7, 6, 3), seed=8)  # lateral weights left random
    x_check = inputs(32, 5, seed=9)
    mismatch_before = interneuron_mismatch(circuit, x_check)
    apical = learn_self_prediction(circuit, n_steps=250, seed=1)
    start, end = apical[0], sum(apical[-10:]) / 10
    assert start > 0.1
    assert end < 0.05 * start, (start, end)
    # the interneurons learned to stand in for the layer above (the deeper population,
    # whose target itself moves while the layer above learns, is the slower one)
    mismatch_after = interneuron_mismatch(circuit, x_check)
    for before, after in zip(mismatch_before, mismatch_after, strict=True):
        assert after < 0.25 * before and after < 0.25, (mismatch_before, mismatch_after)


def test_with_symmetric_feedback_the_hidden_update_is_close_to_backprop():
    circuit = DendriticMicrocircuit((5, 9, 3), seed=10)
    circuit.top_down[0] = circuit.forward[1].T.clone()  # B = W^T: no feedback alignment needed
    circuit.make_self_predicting()
    x = inputs(64, 5, seed=11)
    free = circuit.predict(x)
    target = free + 0.3 * torch.randn(
        free.shape, generator=torch.Generator().manual_seed(12), dtype=torch.float64
    )
    local = circuit.weight_updates(circuit.steady_state(x, target), x)["forward"]
    exact = backprop_directions(circuit.forward, x, target)
    assert alignment_angle(local[0], exact[0]) < 45
    assert alignment_angle(local[1], exact[1]) < 45


def test_regression_from_a_teacher_is_learned_along_backprops_direction():
    circuit, history = train_microcircuit_regression(n_steps=800, eval_every=400, seed=0)
    before, after = history.test_error[0], history.test_error[-1]
    assert after < 0.1 * before, (before, after)
    # the final updates, compared with backprop on an independently written network
    x, target = teacher_regression_data(circuit.sizes, 256, seed=99)
    local = circuit.weight_updates(circuit.steady_state(x, target), x)["forward"]
    exact = backprop_directions(circuit.forward, x, target)
    assert alignment_angle(flat(local), flat(exact)) < 90
    assert alignment_angle(local[-1], exact[-1]) < 90


def test_bad_inputs_raise_value_errors_that_name_the_shape(circuit):
    x = inputs(4, 5)
    with pytest.raises(ValueError, match=r"target must have shape \(4, 3\)"):
        circuit.steady_state(x, torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"x must have shape \(any, 5\)"):
        circuit.steady_state(torch.zeros(4, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least one hidden layer"):
        DendriticMicrocircuit((4, 3))
    with pytest.raises(ValueError, match="conductance leak must be a positive number"):
        Conductances(leak=0.0)
