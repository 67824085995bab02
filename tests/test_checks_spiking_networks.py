"""The assignment-13 checkers: the library's references (composed where the assignment asks
for a whole trial) and correct variants pass at several seeds; each plausible mistake is
rejected with its own id and a message in the student's terms; the expected values agree
with the references and with autograd."""

from __future__ import annotations

import re

import pytest
import torch
from catalogue import AlwaysEqual, not_implemented, rejects, solution_answers
from conftest import ROOT

from course_lib.checks import spiking_networks as checks
from course_lib.checks.spiking_networks import (
    check_eligibility_traces,
    check_eprop_weight_gradient,
    check_lif_step,
    check_spike_function,
    check_surrogate_derivative,
)
from course_lib.learning_rules import eprop
from course_lib.spiking import (
    SpikeFunction,
    lif_step,
    readout_step,
    spike,
    surrogate_derivative,
)

SEEDS = (0, 1, 2018, 3625)
ID = "spiking_networks."


def allowed(check):
    """The checker with the course's references allowed (the wrong answers below are built
    on them)."""
    return lambda fn, **kwargs: check(fn, allow_reference=True, **kwargs)


# ------------------------------------------------------------ the references, composed


def reference_traces(spikes, voltages, *, decay, threshold=1.0, beta=10.0):
    """Part 4 from the library's pieces: eps of z_{t-1}, times psi(v_t - theta)."""
    trace, previous, traces = torch.zeros_like(spikes[0]), torch.zeros_like(spikes[0]), []
    for z, v in zip(spikes, voltages, strict=True):
        trace = eprop.presynaptic_trace_step(trace, previous, decay)
        traces.append(eprop.eligibility_trace(surrogate_derivative(v - threshold, beta), trace))
        previous = z
    return torch.stack(traces)


def reference_gradient(eligibility, spikes, targets, w_out, feedback, *, readout_decay):
    """Part 5 from the library's pieces, as `eprop.eprop_trial` runs them."""
    steps, batch = spikes.shape[:2]
    y, ebar = torch.zeros_like(targets[0]), torch.zeros_like(eligibility[0])
    gradient = torch.zeros_like(eligibility[0, 0])
    for t in range(steps):
        y = readout_step(y, spikes[t], w_out, readout_decay)
        ebar = eprop.filtered_trace_step(ebar, eligibility[t], readout_decay)
        signal = eprop.learning_signal((y - targets[t]) / (steps * batch), feedback)
        gradient = gradient + eprop.eprop_gradient(signal, ebar)
    return gradient


def test_the_references_themselves_are_refused():
    for check, reference in ((check_spike_function, SpikeFunction),
                             (check_lif_step, lif_step),
                             (check_surrogate_derivative, surrogate_derivative),
                             (check_eligibility_traces, reference_traces),
                             (check_eprop_weight_gradient, reference_gradient)):
        with pytest.raises(AssertionError, match="uses the course's reference") as excinfo:
            check(reference)
        assert excinfo.value.mistake == ID + "uses_reference"

    class Inherited(SpikeFunction):
        pass

    # inherited, or called from the student's own backward (which torch runs): both seen
    for borrowed in (Inherited, spike_class(
            backward=lambda x, b, g: (g * surrogate_derivative(x, b), None))):
        with pytest.raises(AssertionError, match="uses the course's reference") as excinfo:
            check_spike_function(borrowed)
        assert excinfo.value.mistake == ID + "uses_reference"


# ------------------------------------------------------------ the checker's own formulas


def test_the_expected_values_agree_with_the_references_and_autograd():
    """The checkers' float64 formulas (written without the library) equal the references:
    psi, the LIF step, the traces; and e-prop's estimate, with W_rec = 0 and B = W_out^T,
    is autograd's gradient of the loss (Bellec et al. 2020), for the input weights."""
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(50, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(checks.psi(x, 3.0), surrogate_derivative(x, 3.0))
    v, z, current = (torch.randn(3, 4, generator=generator, dtype=torch.float64)
                     for _ in range(3))
    z = (z > 0).double()
    for got, want in zip(checks.lif_variant(v, z, current, 0.8, 0.7),
                         lif_step(v, z, current, decay=0.8, threshold=0.7), strict=True):
        torch.testing.assert_close(got, want)
    spikes = (torch.rand(6, 2, 3, generator=generator, dtype=torch.float64) < 0.4).double()
    voltages = torch.randn(6, 2, 3, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(
        checks.traces_variant(spikes, voltages, 0.9, 0.6, 4.0),
        reference_traces(spikes, voltages, decay=0.9, threshold=0.6, beta=4.0))

    # a feed-forward LIF layer driven by inputs, its readout, and autograd's gradient
    steps, batch, n_in, n, n_out, decay, kappa, beta = 7, 2, 3, 4, 2, 0.8, 0.7, 2.0
    inputs = torch.rand(steps, batch, n_in, generator=generator, dtype=torch.float64) * 3
    w_in = torch.randn(n, n_in, generator=generator, dtype=torch.float64).requires_grad_()
    w_out = torch.randn(n_out, n, generator=generator, dtype=torch.float64)
    targets = torch.randn(steps, batch, n_out, generator=generator, dtype=torch.float64)
    v, z = torch.zeros(batch, n, dtype=torch.float64), torch.zeros(batch, n, dtype=torch.float64)
    y, loss, all_z, all_v = torch.zeros(batch, n_out, dtype=torch.float64), 0.0, [], []
    for t in range(steps):
        v, z = lif_step(v, z, inputs[t] @ w_in.T, decay=decay, beta=beta)
        y = kappa * y + z @ w_out.T
        loss = loss + 0.5 * ((targets[t] - y) ** 2).sum(-1).mean() / steps
        all_z.append(z.detach())
        all_v.append(v.detach())
    (autograd,) = torch.autograd.grad(loss, w_in)
    # input synapses: the trace filters x_t (not x_{t-1}), times psi(v_t - theta)
    trace, eligibility = torch.zeros(batch, n_in, dtype=torch.float64), []
    for t in range(steps):
        trace = decay * trace + (1 - decay) * inputs[t]
        eligibility.append(surrogate_derivative(all_v[t] - 1.0, beta)[:, :, None]
                           * trace[:, None, :])
    estimate = checks.gradient_variant(torch.stack(eligibility), torch.stack(all_z), targets,
                                       w_out, w_out.T, kappa)
    assert autograd.abs().max() > 1e-3, "the case must have a gradient to compare"
    torch.testing.assert_close(estimate, autograd)


# ------------------------------------------------------------ part 1: the surrogate derivative


def psi_rule(formula):
    return lambda x, beta: formula(x, beta)


@pytest.mark.parametrize("correct", [
    surrogate_derivative,
    psi_rule(lambda x, b: (1 + b * x.abs()) ** -2),
    psi_rule(lambda x, b: 1 / ((1 + b * x.abs()) * (1 + b * x.abs()))),
    psi_rule(lambda x, b: torch.where(x >= 0, 1 / (1 + b * x) ** 2, 1 / (1 - b * x) ** 2)),
])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_surrogates_pass(correct, seed):
    check_surrogate_derivative(correct, seed=seed, allow_reference=True)


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (psi_rule(lambda x, b: b / (1 + b * x.abs()) ** 2), "spike_surrogate_beta_misplaced",
         "this is beta / \\(1 \\+ beta \\|x\\|\\)\\^2"),
        (psi_rule(lambda x, b: 1 / (1 + b * x.abs())), "spike_surrogate_not_squared",
         "the square is missing"),
        (psi_rule(lambda x, b: 1 / (1 + (b * x) ** 2)), "spike_surrogate_beta_squared",
         "\\(beta \\|x\\|\\)\\^2 is squared inside"),
        (psi_rule(lambda x, b: 1 / (1 + x.abs() / b) ** 2), "spike_surrogate_beta_divides",
         "multiply \\|x\\| by beta, do not divide by it"),
        (psi_rule(lambda x, b: 1 / (1 + 10 * x.abs()) ** 2), "spike_surrogate_beta_ignored",
         "uses beta = 10 whatever `beta` is"),
        (psi_rule(lambda x, b: 1 / (1 + b * (x - 1).abs()) ** 2), "spike_threshold_twice",
         "x is already v - theta"),
        (psi_rule(lambda x, b: x / (1 + b * x.abs())), "spike_surrogate_is_sigmoid",
         "this is the fast sigmoid x / \\(1 \\+ beta \\|x\\|\\) itself"),
        (psi_rule(lambda x, b: 1 / (1 + b * x.clamp(min=0)) ** 2), "spike_surrogate_no_abs",
         "use the absolute value \\|x\\|"),
        (psi_rule(lambda x, b: 1 / (1 + b * x) ** 2), "spike_surrogate_no_abs",
         "absolute value"),
        (psi_rule(lambda x, b: 1 / (1 + b * x.abs()) ** 2 / 2), "psi_scaled",
         "is 0.5 times 1 / \\(1 \\+ beta \\|x\\|\\)\\^2"),
        (psi_rule(lambda x, b: torch.exp(-b * x.abs())), "psi_wrong_value",
         "differs from 1 / \\(1 \\+ beta \\|x\\|\\)\\^2"),
        (psi_rule(lambda x, b: (1 / (1 + b * x.abs()) ** 2).clamp(max=0.5)), "psi_clipped",
         "clipped to"),
    ],
)
def test_surrogate_mistakes_rejected(wrong, mistake, message):
    rejects(allowed(check_surrogate_derivative), wrong, ID + mistake, message)


def psi_in_place(x, beta):
    x.abs_()
    return 1 / (1 + beta * x) ** 2


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (psi_in_place, "common.in_place", "changed its argument x in place"),
        (lambda x, b: surrogate_derivative(x, b).double(), "common.wrong_dtype",
         "keep the dtype of the inputs"),
        (lambda x, b: surrogate_derivative(x, b).numpy(), "common.wrong_type",
         "must return a torch.Tensor"),
        (lambda x, b: surrogate_derivative(x, b).as_subclass(AlwaysEqual),
         "common.tensor_subclass", "plain torch.Tensor"),
        (lambda x, b: surrogate_derivative(x, b).reshape(-1, 1), ID + "psi_shape",
         "one value per entry of x"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_surrogate_generic_mistakes_rejected(wrong, mistake, message):
    rejects(allowed(check_surrogate_derivative), wrong, mistake, message)


# ------------------------------------------------------------ part 2: the spike function


def spike_class(forward=None, backward=None, style="ctx"):
    """A student's SpikeFunction with the forward value and/or the backward gradient
    replaced: forward(x, beta) -> z; backward(x, beta, grad_output) -> the gradient tuple."""
    forward = forward or (lambda x, beta: (x >= 0).to(x.dtype))
    backward = backward or (lambda x, beta, g: (g * surrogate_derivative(x, beta), None))

    class Student(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, beta):
            ctx.save_for_backward(x)
            ctx.beta = beta
            return forward(x, beta)

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return backward(x, ctx.beta, grad_output)

    return Student


class SavesOutput(torch.autograd.Function):
    """Saves the spike instead of the voltage: psi at H(x)."""

    @staticmethod
    def forward(ctx, x, beta):
        z = (x >= 0).to(x.dtype)
        ctx.save_for_backward(z)
        ctx.beta = beta
        return z

    @staticmethod
    def backward(ctx, grad_output):
        (z,) = ctx.saved_tensors
        return grad_output * surrogate_derivative(z, ctx.beta), None


class WithSetupContext(torch.autograd.Function):
    """The newer style, as the library writes it: also correct."""

    @staticmethod
    def forward(x, beta):
        return torch.heaviside(x, torch.ones_like(x))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.beta = inputs[1]

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (1 + ctx.beta * x.abs()) ** 2, None


class ForwardInPlace(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_for_backward(x.clone())
        ctx.beta = beta
        return x.sign_().add_(1).clamp_(max=1).ceil_()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * surrogate_derivative(x, ctx.beta), None


@pytest.mark.parametrize("correct", [
    SpikeFunction, WithSetupContext, spike_class(),
    spike_class(forward=lambda x, b: torch.where(x < 0, 0.0, 1.0).to(x.dtype)),
    spike_class(backward=lambda x, b, g: (g / (1 + b * x.abs()) ** 2,)
                + (None,)),
])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_spike_functions_pass(correct, seed):
    check_spike_function(correct, seed=seed, allow_reference=True)


def surrogate_forward(x, beta):
    return x / (1 + beta * x.abs())  # the fast sigmoid in the forward pass


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (spike_class(forward=surrogate_forward), ID + "spike_surrogate_in_forward",
         "The surrogate psi belongs in the backward pass only"),
        (spike_class(forward=lambda x, b: torch.sigmoid(b * x)),
         ID + "spike_surrogate_in_forward", "values other than 0 and 1"),
        (spike_class(forward=lambda x, b: (x > 0).to(x.dtype)), ID + "spike_strict_threshold",
         "H\\(0\\) = 1 here"),
        (spike_class(forward=lambda x, b: (x < 0).to(x.dtype)), ID + "spike_step_reversed",
         "the step is the wrong way round"),
        (spike_class(forward=lambda x, b: (x >= 0.1).to(x.dtype)),
         ID + "spike_forward_wrong_value", "differs from H\\(x\\)"),
        (spike_class(forward=lambda x, b: x >= 0), "common.wrong_dtype", "a boolean tensor"),
        (spike_class(backward=lambda x, b, g: (surrogate_derivative(x, b), None)),
         ID + "spike_backward_ignores_grad_output", "multiply the incoming gradient"),
        (spike_class(backward=lambda x, b, g: (g, None)), ID + "spike_straight_through",
         "straight-through estimator"),
        (spike_class(backward=lambda x, b, g: (g * b / (1 + b * x.abs()) ** 2, None)),
         ID + "spike_surrogate_beta_misplaced", "SuperSpike's surrogate here is"),
        (spike_class(backward=lambda x, b, g: (g / (1 + b * x.abs()), None)),
         ID + "spike_surrogate_not_squared", "the square is missing"),
        (spike_class(backward=lambda x, b, g: (g / (1 + (b * x) ** 2), None)),
         ID + "spike_surrogate_beta_squared", "squared inside"),
        (spike_class(backward=lambda x, b, g: (g * surrogate_derivative(x, 10.0), None)),
         ID + "spike_surrogate_beta_ignored", "keep the beta that forward received"),
        (SavesOutput, ID + "spike_surrogate_of_output", "take it at the input x"),
        (spike_class(backward=lambda x, b, g: (g * surrogate_derivative(x - 1, b), None)),
         ID + "spike_threshold_twice", "psi\\(x\\) peaks at x = 0"),
        (spike_class(backward=lambda x, b, g: (g * x / (1 + b * x.abs()), None)),
         ID + "spike_surrogate_is_sigmoid", "needs its DERIVATIVE"),
        (spike_class(backward=lambda x, b, g: (g / (1 + b * x) ** 2, None)),
         ID + "spike_surrogate_no_abs", "absolute value"),
        (spike_class(backward=lambda x, b, g: (g * surrogate_derivative(x, b),)),
         ID + "spike_backward_gradient_count", "one gradient per input of forward"),
        (spike_class(backward=lambda x, b, g: g * surrogate_derivative(x, b)),
         ID + "spike_backward_gradient_count", "None for beta"),
        (spike_class(backward=lambda x, b, g: (g * surrogate_derivative(x, b),) * 2),
         ID + "spike_backward_gradient_count", "beta is a number, not trained"),
        (spike_class(backward=lambda x, b, g: (None, None)), ID + "spike_no_gradient",
         "no gradient reaches x"),
        (spike_class(backward=lambda x, b, g: (-g * surrogate_derivative(x, b), None)),
         ID + "spike_backward_scaled", "-1 times grad_output"),
        (spike_class(backward=lambda x, b, g: (g * torch.exp(-b * x.abs()), None)),
         ID + "spike_backward_wrong_value", "differs from grad_output"),
        (spike_class(backward=not_implemented), "common.not_implemented",
         "the backward of .* is not implemented yet"),
        (spike_class(forward=not_implemented), "common.not_implemented", "not implemented yet"),
        (spike_class(backward=lambda x, b, g: 1 / 0), "common.raised",
         "raised ZeroDivisionError"),
        (ForwardInPlace, "common.in_place", "changed its argument x in place"),
        (spike_class(forward=lambda x, b: (x >= 0).to(x.dtype).as_subclass(AlwaysEqual)),
         "common.tensor_subclass", "plain torch.Tensor"),
        (spike, ID + "spike_not_a_function_class", "a class derived from torch.autograd"),
        (lambda x, beta: (x >= 0).float(), ID + "spike_not_a_function_class",
         "static methods forward and backward"),
    ],
)
def test_spike_mistakes_rejected(wrong, mistake, message):
    rejects(allowed(check_spike_function), wrong, mistake, message)


def test_a_class_that_only_looks_like_a_function_is_refused():
    """An `apply` on a plain class is not a torch.autograd.Function: torch never calls a
    backward of it."""
    lookalike = type("SpikeFunction", (), {"apply": staticmethod(
        lambda x, beta: SpikeFunction.apply(x, beta))})
    rejects(allowed(check_spike_function), lookalike, ID + "spike_not_a_function_class",
            "derived from torch.autograd.Function")


# ------------------------------------------------------------ part 3: the LIF step


def lif_rule(*, reset="subtract", order="leak_first", scaled=True, spike_at="threshold",
             strict=False, from_old=False, detach_reset=True, surrogate=True, beta_fixed=None,
             detach_voltage=False, swap=False):
    """A student's lif_step with one piece changed (torch, float32-safe)."""

    def step(v, z, current, *, decay, threshold=1.0, beta=10.0):
        old = v
        reset_by = z.detach() if detach_reset else z
        gain = (1 - decay) if scaled else 1.0
        if order == "decay_after_input":
            integrated = decay * (v + gain * current)
        elif order == "swapped":
            integrated = (1 - decay) * v + decay * current
        elif order == "reset_before_leak":
            integrated = decay * (v - threshold * reset_by) + gain * current
        else:
            integrated = decay * v + gain * current
        if order == "reset_before_leak":
            v = integrated
        elif reset == "subtract":
            v = integrated - threshold * reset_by
        elif reset == "zero":
            v = integrated * (1 - reset_by)
        elif reset == "zero_before_leak":
            v = decay * v * (1 - reset_by) + gain * current
        elif reset == "one":
            v = integrated - reset_by
        elif reset == "none":
            v = integrated
        elif reset == "new_spike":
            new = spike(integrated - threshold, beta)
            return integrated - threshold * new.detach(), new
        if detach_voltage:
            v = v.detach()
        source = (old if from_old else v) - (threshold if spike_at == "threshold" else 0.0)
        if strict:
            new = (source > 0).to(v.dtype) + 0 * spike(source, beta)  # surrogate kept
        elif surrogate:
            new = spike(source, beta if beta_fixed is None else beta_fixed)
        else:
            new = (source >= 0).to(v.dtype)
        return (new, v) if swap else (v, new)

    return step


def lif_where(v, z, current, *, decay, threshold=1.0, beta=10.0):
    v = torch.where(z.detach() > 0, decay * v + (1 - decay) * current - threshold,
                    decay * v + (1 - decay) * current)
    return v, SpikeFunction.apply(v - threshold, beta)


@pytest.mark.parametrize("correct", [lif_step, lif_rule(), lif_where])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_lif_steps_pass(correct, seed):
    check_lif_step(correct, seed=seed, allow_reference=True)


def lif_in_place(v, z, current, *, decay, threshold=1.0, beta=10.0):
    v.mul_(decay).add_((1 - decay) * current).sub_(threshold * z)
    return v, spike(v - threshold, beta)


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (lif_rule(reset="zero"), ID + "lif_reset_to_zero", "here it subtracts the threshold"),
        (lif_rule(reset="zero_before_leak"), ID + "lif_reset_to_zero",
         "sets the old voltage to zero"),
        (lif_rule(reset="one"), ID + "lif_reset_by_one", "subtracts 1 instead of the threshold"),
        (lif_rule(reset="none"), ID + "lif_no_reset", "there is no reset"),
        (lif_rule(reset="new_spike"), ID + "lif_reset_with_new_spike",
         "reset by the spike of this step"),
        (lif_rule(order="decay_after_input"), ID + "lif_decay_after_input",
         "the decay is applied after the input: v_t"),
        (lif_rule(order="decay_after_input", scaled=False), ID + "lif_decay_after_input",
         "and the input is not scaled"),
        (lif_rule(order="reset_before_leak"), ID + "lif_reset_before_leak",
         "the reset is applied before the leak"),
        (lif_rule(scaled=False), ID + "lif_input_not_scaled",
         "the input must be scaled by \\(1 - decay\\)"),
        (lif_rule(order="swapped"), ID + "lif_decay_swapped", "are swapped"),
        (lif_rule(spike_at="zero"), ID + "lif_threshold_not_subtracted",
         "the spike is H\\(v_t\\), not H\\(v_t - theta\\)"),
        (lif_rule(from_old=True), ID + "lif_spike_from_old_voltage",
         "computed from the previous voltage"),
        (lif_rule(strict=True), ID + "lif_strict_threshold",
         "equals the threshold exactly did not spike"),
        (lif_rule(swap=True), ID + "lif_outputs_swapped", "returned \\(z, v\\)"),
        (lambda v, z, c, *, decay, threshold=1.0, beta=10.0: (
            lif_step(v, z, c, decay=decay, threshold=threshold, beta=beta)[0],
            torch.sigmoid(beta * (lif_step(v, z, c, decay=decay, threshold=threshold,
                                           beta=beta)[0] - threshold))),
         ID + "lif_spike_not_binary", "the spikes are not all 0 or 1"),
        (lif_rule(surrogate=False), ID + "lif_spike_without_surrogate",
         "the spikes z_t carry no gradient"),
        (lif_rule(detach_reset=False), ID + "lif_reset_not_detached",
         "subtract threshold \\* z.detach\\(\\)"),
        (lif_rule(beta_fixed=10.0), ID + "lif_beta_not_passed", "uses beta = 10"),
        (lif_rule(detach_voltage=True), ID + "lif_voltage_detached",
         "the voltage v_t carries no gradient"),
        (lambda v, z, c, **kw: lif_rule()(v, z, c, **kw)[0], ID + "lif_not_two_outputs",
         "must return the pair \\(v, z\\)"),
        (lambda v, z, c, **kw: (*lif_rule()(v, z, c, **kw), v), ID + "lif_not_two_outputs",
         "of length 3"),
        (lambda v, z, c, *, decay, threshold=1.0, beta=10.0: lif_rule()(
            v, z, c, decay=decay, threshold=threshold, beta=beta * 2),
         ID + "lif_spike_gradient_wrong", "the surrogate gradient of z_t with respect to"),
        (lambda v, z, c, *, decay, threshold=1.0, beta=10.0: (
            decay * v + (1 - decay) * c - threshold * z.detach() + 1e-3,
            spike(decay * v + (1 - decay) * c - threshold * z.detach() - threshold, beta)),
         ID + "lif_voltage_wrong_value", "the voltage differs from"),
        (lambda v, z, c, *, decay, threshold=1.0, beta=10.0: (
            decay * v + (1 - decay) * c - threshold * z.detach(),
            spike(decay * v + (1 - decay) * c - threshold * z.detach() - 0.5 * threshold,
                  beta)),
         ID + "lif_spike_wrong_value", "the voltage is right but the spikes differ"),
        (lif_in_place, "common.in_place", "changed its argument v in place"),
        (lambda *a, **kw: tuple(t.double() for t in lif_step(*a, **kw)), "common.wrong_dtype",
         "keep the dtype of the inputs"),
        (lambda *a, **kw: tuple(t.as_subclass(AlwaysEqual) for t in lif_step(*a, **kw)),
         "common.tensor_subclass", "plain torch.Tensor"),
        (lambda *a, **kw: tuple(t.reshape(-1) for t in lif_step(*a, **kw)),
         ID + "lif_shape", "v_t and z_t have the shape of v"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_lif_mistakes_rejected(wrong, mistake, message):
    rejects(allowed(check_lif_step), wrong, mistake, message)


def test_the_lif_spike_gradient_depends_on_a_working_spike_function():
    """A lif_step that uses a SpikeFunction with a wrong backward is told to fix Part 2."""
    broken = spike_class(backward=lambda x, b, g: (g, None))

    def with_broken_spike(v, z, current, *, decay, threshold=1.0, beta=10.0):
        v = decay * v + (1 - decay) * current - threshold * z.detach()
        return v, broken.apply(v - threshold, beta)

    rejects(allowed(check_lif_step), with_broken_spike, ID + "lif_spike_gradient_wrong",
            "with your SpikeFunction of Part 2")


# ------------------------------------------------------------ part 4: eligibility traces


def traces_rule(*, pre_shift=1, post_trace=False, transposed=False, keep=None, gain=None,
                at_distance=True, psi_lag=0, factor="psi"):
    """A student's eligibility_traces with one piece changed (a loop in torch)."""

    def traces(spikes, voltages, *, decay, threshold=1.0, beta=10.0):
        eps, out = torch.zeros_like(spikes[0]), []
        for t in range(spikes.shape[0]):
            pre = spikes[t - pre_shift] if t >= pre_shift else torch.zeros_like(spikes[0])
            eps = (decay if keep is None else keep(decay)) * eps + (
                (1 - decay) if gain is None else gain(decay)) * pre
            v = voltages[t - psi_lag] if t >= psi_lag else torch.zeros_like(voltages[0])
            x = v - threshold if at_distance else v
            post = {"psi": surrogate_derivative(x, beta),
                    "beta": beta * surrogate_derivative(x, beta),
                    "not_squared": 1 / (1 + beta * x.abs()),
                    "one": torch.ones_like(x), "spikes": spikes[t]}[factor]
            if post_trace:
                out.append((post * eps)[:, :, None].expand(-1, -1, eps.shape[-1]))
            elif transposed:
                out.append(eps[:, :, None] * post[:, None, :])
            else:
                out.append(post[:, :, None] * eps[:, None, :])
        return torch.stack(out)

    return traces


def traces_einsum(spikes, voltages, *, decay, threshold=1.0, beta=10.0):
    """Vectorised: the trace of the shifted spikes by a filter over all steps at once."""
    shifted = torch.cat([torch.zeros_like(spikes[:1]), spikes[:-1]])
    steps = spikes.shape[0]
    t = torch.arange(steps)
    lags = (t[:, None] - t[None, :]).to(spikes.dtype)
    kernel = torch.where(lags >= 0, (1 - decay) * decay ** lags.clamp(min=0),
                         torch.zeros_like(lags))
    eps = torch.einsum("ts,sbi->tbi", kernel, shifted)
    return torch.einsum("tbj,tbi->tbji", surrogate_derivative(voltages - threshold, beta), eps)


@pytest.mark.parametrize("correct", [reference_traces, traces_rule(), traces_einsum])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_traces_pass(correct, seed):
    check_eligibility_traces(correct, seed=seed, allow_reference=True)


def traces_in_place(spikes, voltages, *, decay, threshold=1.0, beta=10.0):
    voltages -= threshold
    return traces_rule()(spikes, voltages + threshold, decay=decay, threshold=threshold,
                         beta=beta)


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (traces_rule(pre_shift=0), "traces_pre_off_by_one", "the spikes that reach v_t are"),
        (traces_rule(pre_shift=2), "traces_pre_off_by_two", "two steps late"),
        (traces_rule(post_trace=True), "traces_of_postsynaptic_spikes",
         "filters the POSTsynaptic unit's own spikes"),
        (traces_rule(transposed=True), "traces_outer_transposed",
         "the outer product is transposed"),
        (traces_rule(keep=lambda d: 1.0), "traces_not_decayed",
         "the presynaptic trace does not decay"),
        (traces_rule(keep=lambda d: d**2), "traces_decayed_twice", "decays twice per step"),
        (traces_rule(keep=lambda d: 0.0), "traces_old_dropped", "forgets everything"),
        (traces_rule(gain=lambda d: 1.0), "traces_new_term_not_scaled",
         "the spikes enter the presynaptic trace with \\(1 - decay\\)"),
        (traces_rule(gain=lambda d: d * (1 - d)), "traces_decay_after_input",
         "the leak multiplies the old trace only"),
        (traces_rule(keep=lambda d: 1 - d, gain=lambda d: d), "traces_factors_swapped",
         "decay and 1 - decay are swapped"),
        (traces_rule(at_distance=False), "traces_psi_of_voltage",
         "take it at the distance to the threshold"),
        (traces_rule(psi_lag=1), "traces_psi_previous_voltage",
         "taken at the previous voltage"),
        (traces_rule(factor="beta"), "traces_psi_beta_misplaced", "not beta times it"),
        (traces_rule(factor="not_squared"), "traces_psi_not_squared", "the square is missing"),
        (traces_rule(factor="one"), "traces_psi_missing", "the postsynaptic factor is missing"),
        (traces_rule(factor="spikes"), "traces_spikes_not_psi",
         "the postsynaptic factor is the spike z_j"),
        (lambda *a, **kw: traces_rule()(*a, **kw) * 2, "traces_scaled", "is 2 times"),
        (lambda *a, **kw: traces_rule()(*a, **kw) + 1e-3, "traces_wrong_value",
         "differs from psi\\(v_t - theta\\) eps_t"),
    ],
)
def test_traces_mistakes_rejected(wrong, mistake, message):
    rejects(allowed(check_eligibility_traces), wrong, ID + mistake, message)


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (traces_in_place, "common.in_place", "changed its argument voltages in place"),
        (lambda *a, **kw: traces_rule()(*a, **kw).double(), "common.wrong_dtype",
         "keep the dtype of the inputs"),
        (lambda *a, **kw: traces_rule()(*a, **kw).sum(0), ID + "traces_shape",
         "one trace per step, trial and synapse"),
        (lambda *a, **kw: traces_rule()(*a, **kw).as_subclass(AlwaysEqual),
         "common.tensor_subclass", "plain torch.Tensor"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_traces_generic_mistakes_rejected(wrong, mistake, message):
    rejects(allowed(check_eligibility_traces), wrong, mistake, message)


# ------------------------------------------------------------ part 5: the e-prop gradient


def gradient_rule(*, through_w_out=False, filtered=True, gain=None, keep=None, sign=1.0,
                  normalise="both", leaky=True, trace_lag=0, readout_lag=0,
                  transpose=False, decay_after_spikes=False):
    """A student's eprop_weight_gradient with one piece changed."""

    def gradient(eligibility, spikes, targets, w_out, feedback, *, readout_decay):
        steps, batch = spikes.shape[:2]
        divide = {"both": steps * batch, "none": 1, "time": steps, "batch": batch}[normalise]
        y, ebar = torch.zeros_like(targets[0]), torch.zeros_like(eligibility[0])
        history, total = [], torch.zeros_like(eligibility[0, 0])
        for t in range(steps):
            z = spikes[t - readout_lag] if t >= readout_lag else torch.zeros_like(spikes[0])
            y = (readout_decay * y if leaky else 0) + z @ w_out.T
            if decay_after_spikes:  # y = kappa (y + W_out z): decays what just arrived
                y = y - z @ w_out.T + readout_decay * z @ w_out.T
            k = readout_decay if keep is None else keep(readout_decay)
            g = 1.0 if gain is None else gain(readout_decay)
            ebar = k * ebar + g * eligibility[t] if filtered else eligibility[t]
            history.append(ebar)
            error = sign * (y - targets[t]) / divide
            signal = error @ (w_out if through_w_out else feedback.T)
            trace = history[t - trace_lag] if t >= trace_lag else torch.zeros_like(ebar)
            total = total + (signal[:, :, None] * trace).sum(0)
        return total.T if transpose else total

    return gradient


def gradient_means(eligibility, spikes, targets, w_out, feedback, *, readout_decay):
    """The mean over time and trials of L ebar, with err = y - y* (the same thing)."""
    y, ebar, shares = torch.zeros_like(targets[0]), torch.zeros_like(eligibility[0]), []
    for t in range(spikes.shape[0]):
        y = readout_decay * y + spikes[t] @ w_out.T
        ebar = readout_decay * ebar + eligibility[t]
        shares.append(torch.einsum("bj,bji->bji", (y - targets[t]) @ feedback.T, ebar))
    return torch.stack(shares).mean((0, 1))


@pytest.mark.parametrize("correct", [reference_gradient, gradient_rule(), gradient_means])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_gradients_pass(correct, seed):
    check_eprop_weight_gradient(correct, seed=seed, allow_reference=True)


def gradient_in_place(eligibility, spikes, targets, w_out, feedback, *, readout_decay):
    for t in range(1, eligibility.shape[0]):
        eligibility[t] += readout_decay * eligibility[t - 1]  # filters the caller's tensor
    return gradient_rule(filtered=False)(eligibility, spikes, targets, w_out, feedback,
                                         readout_decay=readout_decay)


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (gradient_rule(through_w_out=True), "eprop_through_w_out",
         "the learning signal goes back through W_out\\^T"),
        (gradient_rule(sign=-1.0), "eprop_sign_flipped", "the sign is flipped"),
        (gradient_rule(filtered=False), "eprop_trace_not_filtered",
         "the eligibility trace is used unfiltered"),
        (gradient_rule(gain=lambda k: 1 - k), "eprop_filter_scaled", "e_t enters unscaled"),
        (gradient_rule(gain=lambda k: k), "eprop_filter_decay_after_input",
         "kappa \\(ebar_\\{t-1\\} \\+ e_t\\)"),
        (gradient_rule(decay_after_spikes=True), "eprop_readout_decay_after_input",
         "the readout decays after the spikes are added"),
        (gradient_rule(keep=lambda k: k**2), "eprop_filter_decayed_twice",
         "decays twice per step"),
        (gradient_rule(keep=lambda k: 1.0), "eprop_filter_not_decayed",
         "the filtered trace does not decay"),
        (gradient_rule(leaky=False), "eprop_readout_not_leaky", "the readout is not leaky"),
        (gradient_rule(trace_lag=1), "eprop_trace_off_by_one",
         "paired with the filtered trace of step t - 1"),
        (gradient_rule(readout_lag=1), "eprop_readout_off_by_one",
         "uses the previous step's spikes"),
        (gradient_rule(normalise="none"), "eprop_not_normalised", "divide by T B"),
        (gradient_rule(normalise="time"), "eprop_batch_summed",
         "averaged over the B = \\d+ trials too"),
        (gradient_rule(normalise="batch"), "eprop_time_summed",
         "averaged over the T = \\d+ steps too"),
        (gradient_rule(transpose=True), "eprop_transposed", "transpose"),
        (lambda *a, **kw: gradient_rule()(*a, **kw) * 0.5, "eprop_scaled", "is 0.5 times"),
        (lambda *a, **kw: gradient_rule()(*a, **kw) + 1e-3, "eprop_wrong_value",
         "differs from sum_t sum_b L_t ebar_t"),
    ],
)
def test_gradient_mistakes_rejected(wrong, mistake, message):
    rejects(allowed(check_eprop_weight_gradient), wrong, ID + mistake, message)


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (gradient_in_place, "common.in_place", "changed its argument eligibility in place"),
        (lambda *a, **kw: gradient_rule()(*a, **kw).double(), "common.wrong_dtype",
         "keep the dtype of the inputs"),
        (lambda *a, **kw: gradient_rule()(*a, **kw)[None], ID + "eprop_shape",
         "like the weights \\(N_post, N_pre\\)"),
        (lambda *a, **kw: gradient_rule()(*a, **kw).as_subclass(AlwaysEqual),
         "common.tensor_subclass", "plain torch.Tensor"),
        (lambda *a, **kw: gradient_rule()(*a, **kw).tolist(), "common.wrong_type",
         "must return a torch.Tensor"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_gradient_generic_mistakes_rejected(wrong, mistake, message):
    rejects(allowed(check_eprop_weight_gradient), wrong, mistake, message)


# ------------------------------------------------------------ the tables themselves


def test_every_named_mistake_has_a_distinct_message():
    """No two mistake ids of one table share a message (each is named in its own terms)."""
    x, beta, g = next(checks._spike_cases(checks._generator(0)))
    tables = [
        [(m, s) for m, s, _ in checks._surrogate_mistakes(x, beta, g)],
        [(m, s) for m, s, _ in checks._LIF_MISTAKES],
        [(m, s) for m, s, _ in checks._traces_mistakes(
            *next(checks._traces_cases(checks._generator(0))))],
        [(m, s) for m, s, _ in checks._gradient_mistakes(
            *next(checks._gradient_cases(checks._generator(0))))],
    ]
    for table in tables:
        messages = [message for _, message in table]
        assert len(messages) == len(set(messages))


def test_the_solution_notebooks_answers_pass():
    """The functions of the source notebook's answer cells pass every checker at every
    seed (the nbgrader round trip, tests/test_nbgrader_pipeline.py, is slower)."""
    namespace = solution_answers("13_spiking_networks")
    answers = {"surrogate_derivative": check_surrogate_derivative,
               "SpikeFunction": check_spike_function, "lif_step": check_lif_step,
               "eligibility_traces": check_eligibility_traces,
               "eprop_weight_gradient": check_eprop_weight_gradient}
    for name, check in answers.items():
        for seed in SEEDS:
            check(namespace[name], seed=seed)


def test_every_named_mistake_has_a_wrong_answer_in_this_catalogue():
    """Each id of the checkers' tables is the verdict of at least one wrong answer above."""
    source = (ROOT / "tests" / "test_checks_spiking_networks.py").read_text()
    tested = set(re.findall(r'"((?:spike|lif|traces|eprop)_\w+)"', source))
    x, beta, g = next(checks._spike_cases(checks._generator(0)))
    named = {m for m, _, _ in checks._surrogate_mistakes(x, beta, g)}
    named |= {m for m, _, _ in checks._LIF_MISTAKES}
    named |= {m for m, _, _ in checks._traces_mistakes(
        *next(checks._traces_cases(checks._generator(0))))}
    named |= {m for m, _, _ in checks._gradient_mistakes(
        *next(checks._gradient_cases(checks._generator(0))))}
    assert named <= tested, f"no wrong answer for {sorted(named - tested)}"
