"""Checkers for assignment 13_spiking_networks.

The references are `course_lib.spiking` and `course_lib.learning_rules.eprop` (Bellec et
al. 2020, Nat. Commun. 11:3625; Zenke & Ganguli 2018, Neural Comput. 30:1514)::

    psi(x)  = 1 / (1 + beta |x|)^2                     SuperSpike's surrogate derivative
    z       = H(x) = [x >= 0]     forward;   grad_x = grad_z psi(x)   backward
    v_t     = decay v_{t-1} + (1 - decay) I_t - theta z_{t-1}      (reset without gradient)
    z_t     = H(v_t - theta)                                       (with the surrogate)
    eps_t   = decay eps_{t-1} + (1 - decay) z_{t-1}                presynaptic trace
    e_t     = psi(v_t - theta) eps_t^T                             e_ji = psi_j eps_i
    y_t     = kappa y_{t-1} + W_out z_t,   err_t = (y_t - y*_t) / (T B)
    ebar_t  = kappa ebar_{t-1} + e_t,      L_t = B err_t
    dE/dW   ~ sum_t sum_b L_t ebar_t

Each check runs seeded cases in float32 (the course's dtype) and one in float64, and the
example printed in the test cell. It computes the expected value itself, in float64, with
private references to torch taken at import (an answer cell that patches torch changes
neither the cases nor the expected values), and never calls the references (a check that
did would be taken for a submission that uses them). The spike function is checked
through its forward values and through ``torch.autograd.grad`` with random incoming
gradients. When an answer is wrong the check names the mistake from a table of plausible
ones, or else says by what factor it is off, or which entry differs most. Every failure
has a stable id ``spiking_networks.<mistake>``.
"""

from __future__ import annotations

import torch

from course_lib import spiking as _spiking
from course_lib.checks._common import (
    call,
    close,
    fail,
    judge,
    own_work,
    single_threaded,
    tensor,
    worst_entry,
)
from course_lib.checks._common import (
    generator as _generator,
)
from course_lib.learning_rules import eprop as _eprop

# Private references (see `_common`).
_randn = torch.randn
_rand = torch.rand
_zeros = torch.zeros
_zeros_like = torch.zeros_like
_ones = torch.ones
_stack = torch.stack
_as_tensor = torch.tensor
_isfinite = torch.isfinite
_bernoulli = torch.bernoulli
_grad = torch.autograd.grad
_Function = torch.autograd.Function
_float32 = torch.float32
_float64 = torch.float64
_bool = torch.bool
_type = type
_isinstance = isinstance
_issubclass = issubclass
_tuple_or_list = (tuple, list)

TOL = 1e-5  # absolute and relative: a correct float32 computation is well inside it
ASSIGNMENT = "spiking_networks"

_REFERENCES = (_spiking.SpikeFunction, _spiking.spike, _spiking.surrogate_derivative,
               _spiking.lif_step, _spiking.readout_step, _eprop.presynaptic_trace_step,
               _eprop.eligibility_trace, _eprop.filtered_trace_step, _eprop.learning_signal,
               _eprop.eprop_gradient, _eprop.eprop_trial)
_own_work = own_work(ASSIGNMENT, _REFERENCES)


def _f64(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.detach().to(_float64) for t in tensors]


def psi(x: torch.Tensor, beta: float) -> torch.Tensor:
    """SuperSpike's surrogate derivative 1 / (1 + beta |x|)^2."""
    return 1.0 / (1.0 + beta * x.abs()) ** 2


def _step(x: torch.Tensor) -> torch.Tensor:
    """H(x) with H(0) = 1, in the dtype of x."""
    return (x >= 0).to(x.dtype)


def _result(value, what: str, shape: tuple, dtype: torch.dtype, name: str, shape_hint: str,
            keep_graph: bool = False) -> torch.Tensor:
    """The student's tensor (exact type; a private copy unless ``keep_graph``), checked for
    shape, dtype and finiteness."""
    out = tensor(value, what, finite=False, keep_graph=keep_graph)
    if tuple(out.shape) != tuple(shape):
        fail(f"{ASSIGNMENT}.{name}_shape",
             f"{what} has shape {tuple(out.shape)}; it should be {tuple(shape)}: {shape_hint}.")
    if out.dtype != dtype:
        hint = (" (a boolean tensor: turn it into numbers with .to(x.dtype))"
                if out.dtype == _bool else "")
        fail("common.wrong_dtype",
             f"{what} has dtype {out.dtype} for {dtype} inputs{hint}: keep the dtype of the "
             "inputs (do not convert with .float() or .double(), and create new tensors "
             "with torch.zeros_like(...) or x.new_zeros(...)).")
    if not bool(_isfinite(out.detach()).all()):
        fail("common.not_finite", f"{what} contains NaN or inf although every input is finite.")
    return out


def _judge(out, expected, what: str, mistakes, case: tuple, name: str, formula: str) -> None:
    """`judge` with this assignment's ids and tolerance."""
    judge(out, expected, what, mistakes, case, name, formula, assignment=ASSIGNMENT, tol=TOL)


def _pick(generator, low: float, high: float, digits: int = 3) -> float:
    return round(low + float(_rand(1, generator=generator)) * (high - low), digits)


# ------------------------------------ parts 1 and 2: the surrogate and the spike function


def _surrogate_mistakes(x, beta, grad_output):
    """(id, message, wrong gradient) for the backward pass, in float64."""
    x, g = _f64(x, grad_output)
    right = g * psi(x, beta)
    return [
        ("spike_backward_ignores_grad_output",
         "the backward pass returns psi(x) alone: it must multiply the incoming gradient "
         "`grad_output` by psi(x) (the chain rule), or every loss gets the same gradient",
         psi(x, beta)),
        ("spike_straight_through",
         "the backward pass hands `grad_output` back unchanged (a straight-through "
         "estimator): multiply it by the surrogate derivative psi(x) = 1 / (1 + beta |x|)^2",
         g),
        ("spike_surrogate_beta_misplaced",
         "this is beta / (1 + beta |x|)^2, the derivative of the fast sigmoid of beta x: "
         "SuperSpike's surrogate here is 1 / (1 + beta |x|)^2, which peaks at 1 at the "
         "threshold",
         beta * right),
        ("spike_surrogate_not_squared",
         "the surrogate derivative is 1 / (1 + beta |x|)^2: the square is missing",
         g / (1 + beta * x.abs())),
        ("spike_surrogate_beta_squared",
         "the surrogate derivative is 1 / (1 + beta |x|)^2: (beta |x|)^2 is squared inside, "
         "not the whole (1 + beta |x|)",
         g / (1 + (beta * x) ** 2)),
        ("spike_surrogate_beta_divides",
         "the surrogate derivative is 1 / (1 + beta |x|)^2: multiply |x| by beta, do not "
         "divide by it",
         g / (1 + x.abs() / beta) ** 2),
        ("spike_surrogate_beta_ignored",
         "the surrogate derivative uses beta = 10 whatever `beta` is: keep the beta that "
         "forward received (e.g. ctx.beta = beta) and use it in backward",
         g * psi(x, 10.0) if beta != 10.0 else None),
        ("spike_surrogate_of_output",
         "the surrogate derivative is taken at the spike H(x), 0 or 1: take it at the "
         "input x (save x in forward with ctx.save_for_backward(x))",
         g * psi(_step(x), beta)),
        ("spike_threshold_twice",
         "the surrogate derivative is taken at x - 1: x is already v - theta, the distance "
         "to the threshold, so psi(x) peaks at x = 0",
         g * psi(x - 1, beta)),
        ("spike_surrogate_is_sigmoid",
         "this is the fast sigmoid x / (1 + beta |x|) itself: the backward pass needs its "
         "DERIVATIVE, psi(x) = 1 / (1 + beta |x|)^2",
         g * x / (1 + beta * x.abs())),
    ]


def _spike_cases(generator):
    """(x, beta, grad_output): voltages around the threshold with exact zeros among them
    (H(0) = 1), beta away from 10 and from 1, float64; then the test cell's example."""
    for shape, low, high, dtype in (((4, 5), 2.0, 6.0, _float32), ((7,), 12.0, 30.0, _float32),
                                    ((2, 3, 4), 0.3, 0.8, _float32), ((3, 6), 2.0, 6.0,
                                                                       _float64)):
        x = _randn(shape, generator=generator, dtype=_float64) * 0.6
        x.view(-1)[::5] = 0.0  # exactly at the threshold
        beta = _pick(generator, low, high)
        grad_output = _randn(shape, generator=generator, dtype=_float64) * 2
        yield x.to(dtype), beta, grad_output.to(dtype)
    yield _as_tensor([-0.5, 0.0, 0.1, 1.0]), 10.0, _ones(4)  # the test cell's


def _psi_mistakes(x, beta):
    """The surrogate's own mistakes (those of `_surrogate_mistakes` that do not concern the
    incoming gradient), for psi alone."""
    return [(mistake, message, wrong) for mistake, message, wrong in
            _surrogate_mistakes(x, beta, _ones(x.shape, dtype=_float64))
            if mistake.startswith(("spike_surrogate", "spike_threshold"))]


@single_threaded
@_own_work
def check_surrogate_derivative(surrogate_derivative, seed: int = 0) -> None:
    """Compare with 1 / (1 + beta |x|)^2 (x exactly 0 included); name the mistake."""
    for x, beta, _ in _spike_cases(_generator(seed)):
        what = f"surrogate_derivative(x, beta={beta})"
        value = call(surrogate_derivative, x.clone(), beta, what=what)
        out = _result(value, what, tuple(x.shape), x.dtype, "psi",
                      "one value per entry of x")
        x64 = x.to(_float64)
        expected = psi(x64, beta)
        below = x64 < 0
        if not close(out, expected, TOL) and close(out[~below], expected[~below], TOL):
            fail(f"{ASSIGNMENT}.spike_surrogate_no_abs",
                 f"{what} is right for x >= 0 but not below 0 ({worst_entry(out, expected)}): "
                 "psi(x) = 1 / (1 + beta |x|)^2 is symmetric, so use the absolute value |x|.")
        _judge(out, expected, what, _psi_mistakes, (x, beta), "psi", "1 / (1 + beta |x|)^2")


def _is_function_class(candidate) -> bool:
    return _isinstance(candidate, _type) and _issubclass(candidate, _Function)


def _spike_forward_mistake(out, x, beta, what: str) -> None:
    """Name what the forward pass computed instead of H(x)."""
    x64, o = _f64(x, out)
    binary = bool(((o == 0) | (o == 1)).all())
    if not binary:
        fail(f"{ASSIGNMENT}.spike_surrogate_in_forward",
             f"{what}: the forward pass returns values other than 0 and 1 "
             f"({worst_entry(o, _step(x64))}): a spike is all or nothing, z = H(x). The "
             "surrogate psi belongs in the backward pass only.")
    if close(o, (x64 > 0).to(_float64), TOL):
        fail(f"{ASSIGNMENT}.spike_strict_threshold",
             f"{what}: at x = 0 exactly the spike is 0; H(0) = 1 here: a unit spikes when "
             "its voltage reaches the threshold, x >= 0, not only when it exceeds it.")
    if close(o, 1 - _step(x64), TOL) or close(o, (x64 <= 0).to(_float64), TOL):
        fail(f"{ASSIGNMENT}.spike_step_reversed",
             f"{what}: the step is the wrong way round: z = 1 where x >= 0 (the voltage has "
             "reached the threshold), 0 below.")
    fail(f"{ASSIGNMENT}.spike_forward_wrong_value",
         f"{what}: the forward pass differs from H(x) = [x >= 0]: {worst_entry(o, _step(x64))}.")


def _spike_gradient(out, leaf, grad_output, what: str):
    """torch.autograd.grad through the student's backward, its errors in student terms."""
    if not out.requires_grad:
        fail(f"{ASSIGNMENT}.spike_no_gradient",
             f"{what} returns a tensor without a gradient: return the result of forward "
             "through SpikeFunction.apply, and do not detach it.")
    try:
        (gradient,) = _grad(out, leaf, grad_output, allow_unused=True)
    except NotImplementedError:
        fail("common.not_implemented", f"the backward of {what} is not implemented yet (it "
             "raised NotImplementedError): replace the `raise NotImplementedError()` with "
             "your code.")
    except RuntimeError as error:
        text = str(error)
        if "incorrect number of gradients" in text or "different than None" in text:
            fail(f"{ASSIGNMENT}.spike_backward_gradient_count",
                 f"the backward of {what} must return one gradient per input of forward, "
                 "(gradient for x, None for beta): beta is a number, not trained "
                 f"(torch said: {text}).")
        fail("common.raised", f"the backward of {what} raised RuntimeError: {text}")
    except Exception as error:  # noqa: BLE001 - any error becomes feedback
        fail("common.raised", f"the backward of {what} raised {_type(error).__name__}: {error}")
    if gradient is None:
        fail(f"{ASSIGNMENT}.spike_no_gradient",
             f"no gradient reaches x through {what}: backward must return grad_output * "
             "psi(x) for x.")
    return gradient


def _check_surrogate(gradient, x, beta, grad_output, what: str) -> None:
    gradient = tensor(gradient, f"the gradient of {what}", shape=tuple(x.shape),
                      dtype=x.dtype, finite=False)
    x64, g = _f64(x, grad_output)
    expected = g * psi(x64, beta)
    if close(gradient, expected, TOL):
        return
    if not bool(_isfinite(gradient).all()):
        fail(f"{ASSIGNMENT}.spike_surrogate_no_abs",
             f"the gradient of {what} contains NaN or inf: the surrogate derivative is "
             "1 / (1 + beta |x|)^2, with the absolute value |x| (without it, 1 + beta x "
             "is 0 at x = -1/beta).")
    below = x64 < 0
    if close(gradient[~below], expected[~below], TOL):
        fail(f"{ASSIGNMENT}.spike_surrogate_no_abs",
             f"the gradient of {what} is right for x >= 0 but not below the threshold "
             f"({worst_entry(gradient, expected)}): psi(x) = 1 / (1 + beta |x|)^2 is "
             "symmetric, so use the absolute value |x|.")
    _judge(gradient, expected, f"the gradient of {what}", _surrogate_mistakes,
           (x, beta, grad_output), "spike_backward", "grad_output * 1 / (1 + beta |x|)^2")


@single_threaded
@_own_work
def check_spike_function(SpikeFunction, seed: int = 0) -> None:  # noqa: N803 - the class
    """Forward: exactly H(x) (H(0) = 1); backward, through torch.autograd.grad with random
    incoming gradients: grad_output * 1 / (1 + beta |x|)^2. Names the mistake."""
    if not _is_function_class(SpikeFunction):
        fail(f"{ASSIGNMENT}.spike_not_a_function_class",
             "SpikeFunction must be a class derived from torch.autograd.Function (with "
             "static methods forward and backward), so that SpikeFunction.apply(x, beta) "
             f"runs your forward and torch calls your backward; got {SpikeFunction!r}.")
    for x, beta, grad_output in _spike_cases(_generator(seed)):
        what = f"SpikeFunction.apply(x, beta={beta})"
        value = call(lambda x, beta: SpikeFunction.apply(x, beta), x.clone(), beta, what=what)
        out = _result(value, what, tuple(x.shape), x.dtype, "spike",
                      "one spike (0 or 1) per entry of x")
        if not close(out, _step(x.to(_float64)), TOL):
            _spike_forward_mistake(out, x, beta, what)
        leaf = x.clone().requires_grad_(True)
        value = call(lambda x, beta: SpikeFunction.apply(x, beta), leaf, beta, what=what)
        out = tensor(value, what, keep_graph=True)
        gradient = _spike_gradient(out, leaf, grad_output.clone(), what)
        _check_surrogate(gradient, x, beta, grad_output, what)


# ---------------------------------------------------------------- part 3: the LIF step


def lif_variant(v, z, current, decay, threshold, *, reset="subtract", order="leak_first",
                input_scaled=True, spike_from="new", spike_at="threshold", strict=False):
    """(v_t, z_t) of one LIF step in float64; the defaults are the expected ones."""
    v, z, current = _f64(v, z, current)
    gain = (1 - decay) if input_scaled else 1.0
    if order == "leak_first":
        integrated = decay * v + gain * current
    elif order == "decay_after_input":
        integrated = decay * (v + gain * current)
    elif order == "swapped":
        integrated = (1 - decay) * v + decay * current
    else:  # "reset_before_leak"
        integrated = decay * (v - threshold * z) + gain * current
    if reset == "subtract":
        new = integrated - threshold * z if order != "reset_before_leak" else integrated
    elif reset == "zero":
        new = integrated * (1 - z)
    elif reset == "zero_before_leak":
        new = decay * v * (1 - z) + gain * current
    elif reset == "one":
        new = integrated - z
    elif reset == "none":
        new = integrated
    else:  # "new_spike": reset by this step's own spike
        spikes = _step(integrated - threshold)
        return integrated - threshold * spikes, spikes
    at = {"threshold": threshold, "zero": 0.0}[spike_at]
    source = new if spike_from == "new" else v
    spikes = ((source - at) > 0).to(_float64) if strict else _step(source - at)
    return new, spikes


_LIF_MISTAKES = [
    ("lif_reset_to_zero",
     "the reset sets the voltage to zero: here it subtracts the threshold, v_t = decay "
     "v_{t-1} + (1 - decay) I_t - theta z_{t-1}, so a unit that overshoots keeps the excess",
     {"reset": "zero"}),
    ("lif_reset_to_zero",
     "the reset sets the old voltage to zero: here it subtracts the threshold, v_t = decay "
     "v_{t-1} + (1 - decay) I_t - theta z_{t-1}, so a unit that overshoots keeps the excess",
     {"reset": "zero_before_leak"}),
    ("lif_reset_by_one",
     "the reset subtracts 1 instead of the threshold theta: v_t = ... - theta z_{t-1}",
     {"reset": "one"}),
    ("lif_no_reset",
     "there is no reset: subtract theta z_{t-1}, the threshold times the previous spike",
     {"reset": "none"}),
    ("lif_reset_with_new_spike",
     "the voltage is reset by the spike of this step: the reset of step t uses the PREVIOUS "
     "spike z_{t-1} (the argument z); z_t is computed from the voltage v_t after that reset",
     {"reset": "new_spike"}),
    ("lif_decay_after_input",
     "the decay is applied after the input: v_t = decay v_{t-1} + (1 - decay) I_t - theta "
     "z_{t-1}, the leak multiplies the old voltage only",
     {"order": "decay_after_input"}),
    ("lif_decay_after_input",
     "the decay is applied after the input (and the input is not scaled): v_t = decay "
     "v_{t-1} + (1 - decay) I_t - theta z_{t-1}",
     {"order": "decay_after_input", "input_scaled": False}),
    ("lif_reset_before_leak",
     "the reset is applied before the leak, decay (v_{t-1} - theta z_{t-1}): subtract "
     "theta z_{t-1} after the leak and the input, v_t = decay v_{t-1} + (1 - decay) I_t - "
     "theta z_{t-1}",
     {"order": "reset_before_leak"}),
    ("lif_input_not_scaled",
     "the input must be scaled by (1 - decay): v_t = decay v_{t-1} + (1 - decay) I_t - theta "
     "z_{t-1}, so that a constant current I makes v settle at I",
     {"input_scaled": False}),
    ("lif_decay_swapped",
     "decay and 1 - decay are swapped: the old voltage keeps the fraction `decay`, the "
     "input enters with (1 - decay)",
     {"order": "swapped"}),
    ("lif_threshold_not_subtracted",
     "the spike is H(v_t), not H(v_t - theta): a unit spikes when its voltage reaches the "
     "threshold, so call SpikeFunction.apply(v_t - threshold, beta)",
     {"spike_at": "zero"}),
    ("lif_spike_from_old_voltage",
     "the spike is computed from the previous voltage: z_t = H(v_t - theta) uses the new "
     "voltage, after the leak, the input and the reset",
     {"spike_from": "old"}),
    ("lif_strict_threshold",
     "a unit whose voltage equals the threshold exactly did not spike: z_t = H(v_t - theta) "
     "with H(0) = 1, so the spike is [v_t >= theta]",
     {"strict": True}),
]


def _lif_cases(generator):
    """(v, z, current, decay, threshold, beta): thresholds away from 1 (so that resetting
    by 1 differs), decays exp(-dt/tau_m) from 0.6 to 0.97, a batch of one, float64; then
    the test cell's example (a voltage exactly at the threshold)."""
    for batch, n, dtype in ((3, 5, _float32), (1, 7, _float32), (4, 3, _float32),
                            (2, 6, _float64)):
        threshold = _pick(generator, 0.4, 0.9) if n != 7 else _pick(generator, 1.2, 2.0)
        v = (_rand(batch, n, generator=generator, dtype=_float64) * 1.6 - 0.3) * threshold
        z = _bernoulli(_ones(batch, n, dtype=_float64) * 0.4, generator=generator)
        current = _randn(batch, n, generator=generator, dtype=_float64) * threshold * 2
        decay = _pick(generator, 0.6, 0.97, 4)
        beta = _pick(generator, 2.0, 8.0)
        yield v.to(dtype), z.to(dtype), current.to(dtype), decay, threshold, beta
    yield (_as_tensor([[0.0, 1.0, 1.0, 2.0]]), _as_tensor([[0.0, 0.0, 1.0, 1.0]]),
           _as_tensor([[0.5, 1.0, 1.0, 3.0]]), 0.5, 1.0, 10.0)  # the test cell's


def _lif_outputs(value, what: str, v: torch.Tensor, keep_graph: bool):
    if not _isinstance(value, _tuple_or_list) or len(value) != 2:
        length = f" of length {len(value)}" if _isinstance(value, _tuple_or_list) else ""
        fail(f"{ASSIGNMENT}.lif_not_two_outputs",
             f"{what} must return the pair (v, z), the new voltage and the new spikes; got "
             f"{_type(value).__name__}{length}.")
    hint = "v_t and z_t have the shape of v, one entry per unit"
    return [_result(value[i], f"{what}: {name}", tuple(v.shape), v.dtype, "lif", hint,
                    keep_graph=keep_graph) for i, name in enumerate(("v", "z"))]


def _check_lif_values(new_v, new_z, case, what: str) -> None:
    v, z, current, decay, threshold, beta = case
    expected_v, expected_z = lif_variant(v, z, current, decay, threshold)
    if close(new_v, expected_v, TOL) and close(new_z, expected_z, TOL):
        return
    if close(new_v, expected_z, TOL) and close(new_z, expected_v, TOL):
        fail(f"{ASSIGNMENT}.lif_outputs_swapped",
             f"{what} returned (z, v): return the voltage first, (v, z).")
    for mistake, message, flags in _LIF_MISTAKES:
        wrong_v, wrong_z = lif_variant(v, z, current, decay, threshold, **flags)
        if close(new_v, wrong_v, TOL) and close(new_z, wrong_z, TOL):
            fail(f"{ASSIGNMENT}.{mistake}", f"{what}: {message}.")
    if close(new_v, expected_v, TOL) and not bool(((new_z == 0) | (new_z == 1)).all()):
        fail(f"{ASSIGNMENT}.lif_spike_not_binary",
             f"{what}: the spikes are not all 0 or 1 ({worst_entry(new_z, expected_z)}): a "
             "spike is all or nothing, z_t = H(v_t - theta). The surrogate belongs in the "
             "backward pass of your SpikeFunction only.")
    if not close(new_v, expected_v, TOL):
        fail(f"{ASSIGNMENT}.lif_voltage_wrong_value",
             f"{what}: the voltage differs from decay v_{{t-1}} + (1 - decay) I_t - theta "
             f"z_{{t-1}}: {worst_entry(new_v, expected_v)}.")
    fail(f"{ASSIGNMENT}.lif_spike_wrong_value",
         f"{what}: the voltage is right but the spikes differ from H(v_t - theta): "
         f"{worst_entry(new_z, expected_z)}.")


def _gradients(output, inputs, weights):
    """d(sum output * weights)/d inputs, None for an input that does not reach it."""
    return _grad(output, inputs, weights, allow_unused=True, retain_graph=True)


def _is_zero(gradient) -> bool:
    return gradient is None or not bool(gradient.detach().abs().max() > 0)


def _check_lif_gradients(lif_step, case, what: str, generator) -> None:
    """The surrogate gradient of z_t reaches v_{t-1} and I_t (at beta), and the reset
    carries none: dv_t/dz_{t-1} = 0."""
    v, z, current, decay, threshold, beta = case
    leaves = [t.clone().requires_grad_(True) for t in (v, z, current)]
    value = call(lif_step, *leaves, decay=decay, threshold=threshold, beta=beta, what=what)
    new_v, new_z = _lif_outputs(value, what, v, keep_graph=True)
    weights = _randn(v.shape, generator=generator, dtype=_float64).to(v.dtype)
    if new_v.requires_grad:
        to_v, to_z, _ = _gradients(new_v, leaves, weights)
        if _is_zero(to_v):
            fail(f"{ASSIGNMENT}.lif_voltage_detached",
                 f"{what}: no gradient flows from v_t back to v_{{t-1}}: do not detach the "
                 "voltage (only the reset term theta z_{t-1} is detached).")
        if not _is_zero(to_z):
            fail(f"{ASSIGNMENT}.lif_reset_not_detached",
                 f"{what}: a gradient flows from v_t back to the previous spikes z_{{t-1}} "
                 "through the reset: the reset carries no gradient here (as in Bellec et al. "
                 "2020's code), subtract threshold * z.detach().")
    else:
        fail(f"{ASSIGNMENT}.lif_voltage_detached",
             f"{what}: the voltage v_t carries no gradient: compute it from v, z and current "
             "with tensor arithmetic, without .detach(), torch.no_grad() or numpy.")
    if not new_z.requires_grad:
        fail(f"{ASSIGNMENT}.lif_spike_without_surrogate",
             f"{what}: the spikes z_t carry no gradient: compute them with your "
             "SpikeFunction.apply(v_t - threshold, beta), whose backward is the surrogate, "
             "not with a comparison such as (v >= threshold).float().")
    to_v, _, to_current = _gradients(new_z, leaves, weights)
    expected_v, _ = lif_variant(v, z, current, decay, threshold)
    slope = weights.to(_float64) * psi(expected_v - threshold, beta)
    for gradient, factor, name in ((to_current, 1 - decay, "I_t"), (to_v, decay, "v_{t-1}")):
        expected = slope * factor
        if gradient is not None and close(gradient, expected, TOL):
            continue
        if gradient is not None and beta != 10.0 and close(
                gradient, weights.to(_float64) * psi(expected_v - threshold, 10.0) * factor,
                TOL):
            fail(f"{ASSIGNMENT}.lif_beta_not_passed",
                 f"{what}: the surrogate gradient uses beta = 10, not the `beta` given: "
                 "pass it on, SpikeFunction.apply(v_t - threshold, beta).")
        got = "none" if gradient is None else worst_entry(gradient, expected)
        fail(f"{ASSIGNMENT}.lif_spike_gradient_wrong",
             f"{what}: the surrogate gradient of z_t with respect to {name} should be "
             f"psi(v_t - theta) * {'(1 - decay)' if name == 'I_t' else 'decay'} "
             f"({got}): z_t must be SpikeFunction.apply(v_t - threshold, beta) of the new "
             "voltage, with your SpikeFunction of Part 2 (make its test pass first).")


@single_threaded
@_own_work
def check_lif_step(lif_step, seed: int = 0) -> None:
    """Compare (v_t, z_t) with decay v + (1 - decay) I - theta z and H(v_t - theta); check
    the surrogate gradient of z_t and that the reset carries none. Names the mistake."""
    generator = _generator(seed)
    cases = list(_lif_cases(generator))

    def describe(case) -> str:
        decay, threshold, beta = case[3:]
        return f"lif_step(v, z, current, decay={decay}, threshold={threshold}, beta={beta})"

    for case in cases:  # the values first: a wrong value names its mistake best
        v, z, current, decay, threshold, beta = case
        value = call(lif_step, v.clone(), z.clone(), current.clone(), decay=decay,
                     threshold=threshold, beta=beta, what=describe(case))
        new_v, new_z = _lif_outputs(value, describe(case), v, keep_graph=False)
        _check_lif_values(new_v, new_z, case, describe(case))
    for case in cases:
        _check_lif_gradients(lif_step, case, describe(case), generator)


# ---------------------------------------------------------------- part 4: eligibility traces


def traces_variant(spikes, voltages, decay, threshold, beta, *, pre_shift=1, post_trace=False,
                   transposed=False, keep=None, gain=None, at="distance", psi_time=0,
                   slope="psi"):
    """The recurrent synapses' eligibility traces e_t (T, B, N, N) in float64; the defaults
    are the expected ones."""
    spikes, voltages = _f64(spikes, voltages)
    keep = decay if keep is None else keep
    gain = (1 - decay) if gain is None else gain
    steps = spikes.shape[0]
    eps = _zeros_like(spikes[0])
    traces = []
    for t in range(steps):
        source = t - pre_shift
        pre = spikes[source] if source >= 0 else _zeros_like(spikes[0])
        eps = keep * eps + gain * pre
        when = t - psi_time
        v = voltages[when] if when >= 0 else _zeros_like(voltages[0])
        x = v - threshold if at == "distance" else v
        post = {"psi": psi(x, beta), "beta_misplaced": beta * psi(x, beta),
                "not_squared": 1 / (1 + beta * x.abs()), "one": _ones(x.shape, dtype=_float64),
                "spikes": spikes[t]}[slope]
        if post_trace:  # e_ji = psi_j eps_j: the postsynaptic unit's own spikes filtered
            traces.append((post * eps)[:, :, None].expand(*eps.shape, eps.shape[-1]))
        elif transposed:
            traces.append(eps[:, :, None] * post[:, None, :])
        else:
            traces.append(post[:, :, None] * eps[:, None, :])
    return _stack(traces)


def _traces_mistakes(spikes, voltages, decay, threshold, beta):
    def variant(**flags):
        return traces_variant(spikes, voltages, decay, threshold, beta, **flags)

    return [
        ("traces_pre_off_by_one",
         "the presynaptic trace takes the spikes of the same step: the spikes that reach "
         "v_t are z_{t-1} (the recurrent current of step t is W_rec z_{t-1}), so eps_t = "
         "decay eps_{t-1} + (1 - decay) z_{t-1}, with z_{-1} = 0",
         variant(pre_shift=0)),
        ("traces_pre_off_by_two",
         "the presynaptic trace is two steps late: eps_t = decay eps_{t-1} + (1 - decay) "
         "z_{t-1}",
         variant(pre_shift=2)),
        ("traces_of_postsynaptic_spikes",
         "the trace filters the POSTsynaptic unit's own spikes: e_ji = psi_j eps_i pairs the "
         "postsynaptic pseudo-derivative psi_j (rows) with the trace eps_i of the "
         "PREsynaptic spikes z_i (columns)",
         variant(post_trace=True)),
        ("traces_outer_transposed",
         "the outer product is transposed: e_ji = psi_j eps_i, the postsynaptic psi_j on the "
         "rows, the presynaptic trace eps_i on the columns, like W_rec (post, pre)",
         variant(transposed=True)),
        ("traces_not_decayed",
         "the presynaptic trace does not decay: eps_t = decay eps_{t-1} + (1 - decay) "
         "z_{t-1}, a low-pass filter of the spikes like the membrane",
         variant(keep=1.0)),
        ("traces_decayed_twice",
         "the presynaptic trace decays twice per step (decay^2): eps_t = decay eps_{t-1} + "
         "(1 - decay) z_{t-1}",
         variant(keep=decay**2)),
        ("traces_old_dropped",
         "the presynaptic trace forgets everything at each step: keep decay eps_{t-1}",
         variant(keep=0.0)),
        ("traces_new_term_not_scaled",
         "the spikes enter the presynaptic trace with (1 - decay), as the current enters "
         "the voltage: eps_t = decay eps_{t-1} + (1 - decay) z_{t-1}",
         variant(gain=1.0)),
        ("traces_decay_after_input",
         "the decay is applied after the new spikes, decay (eps_{t-1} + (1 - decay) "
         "z_{t-1}): the leak multiplies the old trace only, eps_t = decay eps_{t-1} + "
         "(1 - decay) z_{t-1}",
         variant(gain=decay * (1 - decay))),
        ("traces_factors_swapped",
         "decay and 1 - decay are swapped: eps_t = decay eps_{t-1} + (1 - decay) z_{t-1}",
         variant(keep=1 - decay, gain=decay)),
        ("traces_psi_of_voltage",
         "the pseudo-derivative is taken at v_t: take it at the distance to the threshold, "
         "psi(v_t - theta), which peaks where the unit is about to spike",
         variant(at="voltage")),
        ("traces_psi_previous_voltage",
         "the pseudo-derivative is taken at the previous voltage: e_t pairs eps_t with "
         "psi(v_t - theta) of the same step t",
         variant(psi_time=1)),
        ("traces_psi_beta_misplaced",
         "the pseudo-derivative is 1 / (1 + beta |v - theta|)^2 (as in Part 1), not beta "
         "times it",
         variant(slope="beta_misplaced")),
        ("traces_psi_not_squared",
         "the pseudo-derivative is 1 / (1 + beta |v - theta|)^2: the square is missing",
         variant(slope="not_squared")),
        ("traces_psi_missing",
         "the postsynaptic factor is missing: e_ji = psi(v_j - theta) eps_i, the trace times "
         "the postsynaptic pseudo-derivative",
         variant(slope="one")),
        ("traces_spikes_not_psi",
         "the postsynaptic factor is the spike z_j: use the pseudo-derivative psi(v_j - "
         "theta), the surrogate dz_j/dv_j, which is never exactly zero",
         variant(slope="spikes")),
    ]


def _traces_cases(generator):
    """(spikes, voltages, decay, threshold, beta): random recorded trials (a batch of one,
    one unit, one step, float64), then the test cell's example."""
    for steps, batch, n, dtype in ((6, 2, 4, _float32), (5, 1, 3, _float32),
                                   (4, 3, 1, _float32), (1, 2, 3, _float32),
                                   (5, 2, 3, _float64)):
        threshold = _pick(generator, 0.5, 1.5)
        spikes = _bernoulli(_ones(steps, batch, n, dtype=_float64) * 0.35, generator=generator)
        voltages = (_rand(steps, batch, n, generator=generator, dtype=_float64) * 1.8 - 0.5) \
            * threshold
        decay = _pick(generator, 0.6, 0.95, 4)
        beta = _pick(generator, 2.0, 8.0)
        yield spikes.to(dtype), voltages.to(dtype), decay, threshold, beta
    spikes = _as_tensor([[[1.0, 0.0]], [[0.0, 0.0]], [[0.0, 1.0]]])
    voltages = _as_tensor([[[1.0, 0.5]], [[0.2, 1.0]], [[0.9, 0.0]]])
    yield spikes, voltages, 0.5, 1.0, 10.0  # the test cell's


@single_threaded
@_own_work
def check_eligibility_traces(eligibility_traces, seed: int = 0) -> None:
    """Compare with e_t = psi(v_t - theta) eps_t^T, eps_t = decay eps_{t-1} + (1 - decay)
    z_{t-1}, on recorded trials; name the mistake."""
    for case in _traces_cases(_generator(seed)):
        spikes, voltages, decay, threshold, beta = case
        steps, batch, n = spikes.shape
        what = (f"eligibility_traces(spikes, voltages, decay={decay}, threshold={threshold}, "
                f"beta={beta})")
        value = call(eligibility_traces, spikes.clone(), voltages.clone(), decay=decay,
                     threshold=threshold, beta=beta, what=what)
        out = _result(value, what, (steps, batch, n, n), spikes.dtype, "traces",
                      "one trace per step, trial and synapse, (T, B, N_post, N_pre)")
        expected = traces_variant(*case)
        _judge(out, expected, what, _traces_mistakes, case, "traces",
               "psi(v_t - theta) eps_t^T with eps_t = decay eps_{t-1} + (1 - decay) z_{t-1}")


# ---------------------------------------------------------------- part 5: the e-prop gradient


def gradient_variant(eligibility, spikes, targets, w_out, feedback, readout_decay, *,
                     through_w_out=False, filtered=True, filter_gain=1.0, filter_keep=None,
                     sign=1.0, scale=None, leaky_readout=True, readout_gain=1.0, trace_lag=0,
                     readout_lag=0):
    """e-prop's estimate of dE/dW (N, n_pre) in float64; the defaults are the expected ones."""
    eligibility, spikes, targets, w_out, feedback = _f64(eligibility, spikes, targets, w_out,
                                                         feedback)
    steps, batch = spikes.shape[:2]
    scale = 1.0 / (steps * batch) if scale is None else scale
    keep = readout_decay if filter_keep is None else filter_keep
    back = w_out.T if through_w_out else feedback
    y = _zeros(batch, w_out.shape[0], dtype=_float64)
    ebar = _zeros_like(eligibility[0])
    filtered_traces = []
    total = _zeros(eligibility.shape[2:], dtype=_float64)
    for t in range(steps):
        z = spikes[t - readout_lag] if t >= readout_lag else _zeros_like(spikes[0])
        y = (readout_decay * y if leaky_readout else 0.0) + readout_gain * z @ w_out.T
        ebar = keep * ebar + filter_gain * eligibility[t] if filtered else eligibility[t]
        filtered_traces.append(ebar)
        error = sign * scale * (y - targets[t])
        signal = error @ back.T
        lagged = t - trace_lag
        trace = filtered_traces[lagged] if lagged >= 0 else _zeros_like(ebar)
        total = total + (signal[:, :, None] * trace).sum(0)
    return total


def _gradient_mistakes(eligibility, spikes, targets, w_out, feedback, readout_decay):
    steps, batch = spikes.shape[:2]

    def variant(**flags):
        return gradient_variant(eligibility, spikes, targets, w_out, feedback, readout_decay,
                                **flags)

    return [
        ("eprop_through_w_out",
         "the learning signal goes back through W_out^T: that is BPTT's weight transport. "
         "Random e-prop sends the error through the fixed random feedback B: L_t = "
         "err_t @ feedback.T",
         variant(through_w_out=True)),
        ("eprop_sign_flipped",
         "the sign is flipped: the error is err_t = y_t - y*_t (output minus target), the "
         "derivative of the loss 1/2 |y*_t - y_t|^2, and the result is dE/dW",
         variant(sign=-1.0)),
        ("eprop_trace_not_filtered",
         "the eligibility trace is used unfiltered: filter it as the readout filters "
         "spikes, ebar_t = kappa ebar_{t-1} + e_t, and pair L_t with ebar_t (a spike keeps "
         "moving the leaky output after it)",
         variant(filtered=False)),
        ("eprop_filter_scaled",
         "the filtered trace is ebar_t = kappa ebar_{t-1} + e_t: e_t enters unscaled, as "
         "W_out z_t enters y_t",
         variant(filter_gain=1 - readout_decay)),
        ("eprop_filter_decay_after_input",
         "the filtered trace decays after e_t is added, kappa (ebar_{t-1} + e_t): the decay "
         "multiplies the old filtered trace only, ebar_t = kappa ebar_{t-1} + e_t",
         variant(filter_gain=readout_decay)),
        ("eprop_readout_decay_after_input",
         "the readout decays after the spikes are added, kappa (y_{t-1} + W_out z_t): the "
         "decay multiplies the old output only, y_t = kappa y_{t-1} + W_out z_t",
         variant(readout_gain=readout_decay)),
        ("eprop_filter_decayed_twice",
         "the filtered trace decays twice per step (kappa^2): ebar_t = kappa ebar_{t-1} + e_t",
         variant(filter_keep=readout_decay**2)),
        ("eprop_filter_not_decayed",
         "the filtered trace does not decay: ebar_t = kappa ebar_{t-1} + e_t",
         variant(filter_keep=1.0)),
        ("eprop_readout_not_leaky",
         "the readout is not leaky: y_t = kappa y_{t-1} + W_out z_t",
         variant(leaky_readout=False)),
        ("eprop_trace_off_by_one",
         "the learning signal of step t is paired with the filtered trace of step t - 1: "
         "pair L_t with ebar_t of the same step",
         variant(trace_lag=1)),
        ("eprop_readout_off_by_one",
         "the readout uses the previous step's spikes: y_t = kappa y_{t-1} + W_out z_t, "
         "with the spikes z_t of step t",
         variant(readout_lag=1)),
        ("eprop_not_normalised",
         f"the loss is averaged over the T = {steps} steps and B = {batch} trials, so "
         "err_t = (y_t - y*_t) / (T B): divide by T B (here the sum is not divided)",
         variant(scale=1.0) if steps * batch > 1 else None),
        ("eprop_batch_summed",
         f"the loss is averaged over the B = {batch} trials too: err_t = (y_t - y*_t) / "
         "(T B), not / T",
         variant(scale=1.0 / steps) if batch > 1 else None),
        ("eprop_time_summed",
         f"the loss is averaged over the T = {steps} steps too: err_t = (y_t - y*_t) / "
         "(T B), not / B",
         variant(scale=1.0 / batch) if steps > 1 else None),
    ]


def _gradient_cases(generator):
    """(eligibility, spikes, targets, w_out, feedback, readout_decay): square (n_pre = N)
    first, so that a transposed result is named by its values; one output, a batch of
    one, one step, float64; then the test cell's example."""
    for steps, batch, n, n_pre, n_out, dtype in ((5, 2, 4, 4, 2, _float32),
                                                  (6, 3, 3, 5, 1, _float32),
                                                  (4, 1, 5, 2, 3, _float32),
                                                  (1, 3, 2, 3, 2, _float32),
                                                  (5, 2, 3, 4, 2, _float64)):
        eligibility = _rand(steps, batch, n, n_pre, generator=generator, dtype=_float64)
        spikes = _bernoulli(_ones(steps, batch, n, dtype=_float64) * 0.4, generator=generator)
        targets = _randn(steps, batch, n_out, generator=generator, dtype=_float64)
        w_out = _randn(n_out, n, generator=generator, dtype=_float64)
        feedback = _randn(n, n_out, generator=generator, dtype=_float64)
        kappa = _pick(generator, 0.6, 0.95, 4)
        yield (*(t.to(dtype) for t in (eligibility, spikes, targets, w_out, feedback)), kappa)
    yield (_ones(2, 1, 2, 1), _as_tensor([[[1.0, 0.0]], [[0.0, 0.0]]]),
           _zeros(2, 1, 1), _as_tensor([[1.0, -1.0]]), _as_tensor([[0.5], [2.0]]), 0.5)


@single_threaded
@_own_work
def check_eprop_weight_gradient(eprop_weight_gradient, seed: int = 0) -> None:
    """Compare with sum_t sum_b L_t ebar_t (L_t = B err_t, err_t = (y_t - y*_t) / (T B));
    name the mistake."""
    for case in _gradient_cases(_generator(seed)):
        eligibility, spikes, targets, w_out, feedback, kappa = case
        n, n_pre = eligibility.shape[2:]
        what = (f"eprop_weight_gradient(eligibility, spikes, targets, w_out, feedback, "
                f"readout_decay={kappa})")
        value = call(eprop_weight_gradient, *(t.clone() for t in case[:-1]),
                     readout_decay=kappa, what=what)
        hint = "one number per synapse, like the weights (N_post, N_pre)"
        out = tensor(value, what, finite=False)
        expected = gradient_variant(*case)
        if tuple(out.shape) == (n_pre, n) and n != n_pre:
            fail(f"{ASSIGNMENT}.eprop_transposed",
                 f"{what} has shape {tuple(out.shape)}, the transpose of {(n, n_pre)}: {hint}.")
        out = _result(value, what, (n, n_pre), eligibility.dtype, "eprop", hint)
        if n == n_pre and close(out, expected.T, TOL) and not close(out, expected, TOL):
            fail(f"{ASSIGNMENT}.eprop_transposed",
                 f"{what} is transposed: {hint}; row j is the postsynaptic unit that "
                 "receives the learning signal L_j.")
        _judge(out, expected, what, _gradient_mistakes, case, "eprop",
               "sum_t sum_b L_t ebar_t with L_t = err_t @ feedback.T")


__all__ = ["check_eligibility_traces", "check_eprop_weight_gradient", "check_lif_step",
           "check_spike_function", "check_surrogate_derivative", "gradient_variant",
           "lif_variant", "psi", "traces_variant"]
