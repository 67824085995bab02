"""Checkers for assignment 06_feedback_alignment.

The references are `course_lib.learning_rules.feedback_alignment` (Lillicrap et al. 2016,
Fig. 1): the FA error of a tanh hidden layer, the alignment angle, and the FA updates of a
two-layer network ``h = tanh(x W1^T)``, ``y = h W2^T``, ``L = 1/2 mean_batch |y - y*|^2``::

    delta_2 = y - y*                          (output error, batch x n_out)
    delta_1 = (delta_2 B^T) ⊙ (1 - h^2)      (FA: B (n_hidden, n_out) replaces W2^T)
    dW2 = delta_2^T h / batch,   dW1 = delta_1^T x / batch   (gradient-like: subtract them)

Every failure names its mistake with a stable id ``feedback_alignment.<mistake>``. The
expected values are computed here with private references to the torch and math
functions (see `_common`), so an answer cell that patches them changes nothing.
"""

from __future__ import annotations

import math
import numbers

import torch

from course_lib.checks._common import (
    CheckFailure,
    call,
    close,
    fail,
    single_threaded,
    tensor,
    worst_entry,
)
from course_lib.checks._common import (
    generator as _generator,
)

_Tensor = torch.Tensor
_randn = torch.randn
_rand = torch.rand
_tanh = torch.tanh
_clamp = torch.clamp
_as_tensor = torch.tensor
_zeros = torch.zeros
_finfo = torch.finfo
_autograd_grad = torch.autograd.grad
_float64 = torch.float64
_float32 = torch.float32
_acos = math.acos
_degrees = math.degrees
_radians = math.radians
_cos = math.cos
_isnan = math.isnan
_sqrt = math.sqrt
_float = float


# ---------------------------------------------------------------- part 1: FA hidden error


def reference_fa_hidden_error(delta, weight, feedback, pre_activation):
    """``(B delta) ⊙ tanh'(a)`` for a batch of row vectors; ``weight`` is not used."""
    return (delta @ feedback.T) * (1 - _tanh(pre_activation) ** 2)


def _hidden_error_mistakes(delta, weight, feedback, a):
    slope = 1 - _tanh(a) ** 2
    through_b = delta @ feedback.T
    mistakes = [
        ("feedback_alignment.hidden_error_through_weight",
         "the error went down through W^T (that is backprop, which needs weight transport): "
         "feedback alignment sends it through the fixed random feedback B instead",
         (delta @ weight) * slope),
        ("feedback_alignment.hidden_error_no_derivative",
         "the derivative tanh'(a) = 1 - tanh(a)^2 is missing: multiply B delta by it "
         "elementwise",
         through_b),
        ("feedback_alignment.hidden_error_derivative_of_a",
         "tanh'(a) is 1 - tanh(a)^2, not 1 - a^2: `pre_activation` is a, before the tanh",
         through_b * (1 - a**2)),
        ("feedback_alignment.hidden_error_tanh_not_derivative",
         "tanh'(a) is 1 - tanh(a)^2, not tanh(a): use the derivative of the nonlinearity",
         through_b * _tanh(a)),
        ("feedback_alignment.hidden_error_one_minus_tanh",
         "tanh'(a) is 1 - tanh(a)^2, not 1 - tanh(a): square the tanh",
         through_b * (1 - _tanh(a))),
        ("feedback_alignment.hidden_error_sign_flipped",
         "the sign is flipped: the error is +(B delta) ⊙ tanh'(a)",
         -through_b * slope),
    ]
    if feedback.shape[0] == feedback.shape[1]:
        mistakes.append(
            ("feedback_alignment.hidden_error_feedback_not_transposed",
             "B has the shape of W^T, (n_in, n_out): with a batch of row vectors, B delta is "
             "delta @ B.T, not delta @ B",
             (delta @ feedback) * slope))
    return mistakes


def _check_hidden_error_case(fa_hidden_error, delta, weight, feedback, a) -> None:
    batch, n_out = delta.shape
    n_in = feedback.shape[0]
    what = (f"fa_hidden_error(delta {tuple(delta.shape)}, weight {tuple(weight.shape)}, "
            f"feedback {tuple(feedback.shape)}, pre_activation {tuple(a.shape)})")
    out = call(fa_hidden_error, delta.clone(), weight.clone(), feedback.clone(), a.clone(),
               what=what)
    out = tensor(out, what, dtype=delta.dtype)
    expected = reference_fa_hidden_error(delta, weight, feedback, a)
    if tuple(out.shape) != (batch, n_in):
        fail("feedback_alignment.hidden_error_wrong_shape",
             f"{what} returned shape {tuple(out.shape)}; it should be (batch, n_in) = "
             f"{(batch, n_in)}: one error per hidden unit of the layer below.")
    tol = 1e-5 if delta.dtype == _float32 else 1e-6
    if close(out, expected, tol):
        return
    for mistake, message, wrong in _hidden_error_mistakes(delta, weight, feedback, a):
        if close(out, wrong, tol):
            fail(mistake, f"{what}: {message}.")
    fail("feedback_alignment.hidden_error_wrong_value",
         f"{what} differs from (delta @ feedback.T) * (1 - tanh(pre_activation)**2): "
         f"{worst_entry(out, expected)}.")


@single_threaded
def check_fa_hidden_error(fa_hidden_error, seed: int = 0) -> None:
    """Seeded cases, square and not, batch sizes 1 to 4, float32 and float64; names the
    likely mistake; the example of the test cell."""
    rng = _generator(seed)
    sizes = ((5, 3, 3), (4, 4, 2), (6, 2, 1), (3, 3, 4), (2, 5, 3))
    for index, (n_in, n_out, batch) in enumerate(sizes):
        dtype = _float32 if index == 4 else _float64
        delta = _randn(batch, n_out, generator=rng, dtype=dtype)
        weight = _randn(n_out, n_in, generator=rng, dtype=dtype)
        feedback = _randn(n_in, n_out, generator=rng, dtype=dtype)
        a = _randn(batch, n_in, generator=rng, dtype=dtype) * 1.5
        _check_hidden_error_case(fa_hidden_error, delta, weight, feedback, a)
    # errors and pre-activations of every size (magnitudes 1e-3 to 1e3): no clamp or cap
    delta = _randn(3, 4, generator=rng, dtype=_float64) * 10.0 ** (
        _rand(3, 4, generator=rng, dtype=_float64) * 6 - 3)
    a = _randn(3, 5, generator=rng, dtype=_float64) * 4
    try:
        _check_hidden_error_case(fa_hidden_error, delta, _randn(4, 5, generator=rng,
                                 dtype=_float64), _randn(5, 4, generator=rng, dtype=_float64), a)
    except CheckFailure as failure:
        if failure.mistake != "feedback_alignment.hidden_error_wrong_value":
            raise
        fail("feedback_alignment.values_limited",
             f"{failure.message} The answer is right for errors of ordinary size but wrong for "
             "very small or very large ones (and pre-activations up to about 10): do not clamp, "
             "cap or round anything; the formula has no limit.")
    # the example printed in the test cell
    _check_hidden_error_case(
        fa_hidden_error,
        _as_tensor([[1.0, -2.0]]),
        _as_tensor([[5.0, 5.0, 5.0], [5.0, 5.0, 5.0]]),
        _as_tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
        _as_tensor([[0.0, 0.0, 0.0]]),
    )


# ---------------------------------------------------------------- part 2: the angle


def _angle(a: torch.Tensor, b: torch.Tensor) -> float:
    """The angle in degrees between two flattened tensors, in float64."""
    a, b = a.detach().flatten().to(_float64), b.detach().flatten().to(_float64)
    cosine = _clamp(a @ b / (a.norm() * b.norm()), -1.0, 1.0)
    return _degrees(_acos(cosine.item()))


def _tolerance(a: torch.Tensor) -> float:
    """Degrees a correct computation in the input's precision may be off by: near 0 and
    180 degrees, acos turns a cosine off by a few ulps into sqrt(2 eps) radians."""
    eps = _finfo(a.dtype).eps
    return max(1e-3, 1.5 * _degrees(_sqrt(16 * eps)))


def _angle_cases(rng):
    a = _randn(4, 3, generator=rng, dtype=_float64)
    b = _randn(4, 3, generator=rng, dtype=_float64)
    c = _randn(6, generator=rng, dtype=_float64)
    rows = _randn(3, 5, generator=rng, dtype=_float64)
    # rows point in very different directions, so the per-row mean angle is not the angle
    rows_b = rows.clone()
    rows_b[0] = -rows_b[0] * 3
    # fixed vectors whose cosine with +-2.5 times themselves rounds beyond +-1 (float32 and
    # float64, with most ways of writing the cosine)
    small = _randn(6, generator=_generator(1))
    double = _randn(6, generator=_generator(0), dtype=_float64)
    tensor3 = _randn(2, 3, 4, generator=rng, dtype=_float64)
    return [
        ("two random (4, 3) matrices", a, b),
        ("a matrix and 2.5 times itself (parallel)", a, 2.5 * a),
        ("a matrix and minus itself (antiparallel)", a, -a),
        ("two random vectors", c, _randn(6, generator=rng, dtype=_float64)),
        ("a (3, 5) matrix and the same with its first row flipped and scaled", rows, rows_b),
        ("two random (2, 3, 4) tensors", tensor3, _randn(2, 3, 4, generator=rng, dtype=_float64)),
        ("a float64 vector and 2.5 times itself", double, 2.5 * double),
        ("a float64 vector and -2.5 times itself", double, -2.5 * double),
        ("a float32 vector and 2.5 times itself", small, 2.5 * small),
        ("a float32 vector and -2.5 times itself", small, -2.5 * small),
        ("float32 (4, 3) matrices", a.to(_float32), b.to(_float32)),
        ("the first example of the test cell", _as_tensor([1.0, 0.0]), _as_tensor([1.0, 1.0])),
        ("the second example of the test cell", _as_tensor([[1.0, 0.0], [0.0, 1.0]]),
         -_as_tensor([[1.0, 0.0], [0.0, 1.0]])),
    ]


def _angle_value(alignment_angle, a, b, what: str) -> float:
    """Call the student's function; return its answer as a float (it must be a float)."""
    try:
        out = call(alignment_angle, a, b, what=what)
    except CheckFailure as failure:
        if failure.mistake == "common.raised" and "domain" in failure.message:
            fail("feedback_alignment.angle_cosine_not_clamped",
                 f"{failure.message}: rounding can push the cosine just above 1 (or below -1); "
                 "clamp it to [-1, 1] before acos.")
        raise
    if isinstance(out, _Tensor):
        fail("feedback_alignment.angle_not_float",
             f"{what} returned a tensor of shape {tuple(out.shape)}: return the angle as a "
             "Python float (one number for the two whole tensors; use .item()).")
    if not isinstance(out, numbers.Real) or isinstance(out, bool):
        fail("feedback_alignment.angle_not_float",
             f"{what} must return a Python float (degrees), got {type(out).__name__}.")
    return _float(out)


def _check_angle_case(alignment_angle, description, a, b) -> None:
    what = f"alignment_angle(a, b) for {description}"
    out = _angle_value(alignment_angle, a.clone(), b.clone(), what)
    expected = _angle(a, b)
    if _isnan(out):
        fail("feedback_alignment.angle_cosine_not_clamped",
             f"{what} returned nan: rounding can push the cosine just above 1 (or below -1); "
             "clamp it to [-1, 1] before acos.")
    tol = _tolerance(a)
    if abs(out - expected) <= tol:
        return
    cosine = _cos(_radians(expected))
    if abs(out - _radians(expected)) < 1e-5:
        fail("feedback_alignment.angle_in_radians",
             f"{what} returned {out:.4f}: that is radians, give degrees.")
    if abs(out - cosine) < 1e-5:
        fail("feedback_alignment.angle_is_cosine",
             f"{what} returned {out:.4f}: that is the cosine; the angle is arccos of it, in "
             "degrees.")
    if abs(out - _degrees(_acos(abs(cosine)))) <= tol:
        fail("feedback_alignment.angle_sign_of_cosine_lost",
             f"{what} returned {out:.2f} but should be {expected:.2f}: keep the sign of the "
             "cosine (antiparallel matrices are 180 degrees apart, not 0).")
    if a.dim() >= 2:
        per_row = [_angle(ra, rb) for ra, rb in zip(a, b, strict=True)]
        if abs(out - sum(per_row) / len(per_row)) <= tol:
            fail("feedback_alignment.angle_averaged_over_rows",
                 f"{what} averaged the angles of the rows: the angle is between the whole "
                 "tensors, flattened into two long vectors.")
    fail("feedback_alignment.angle_wrong_value",
         f"{what} returned {out:.4f} degrees but should be {expected:.4f}.")


def _expect_angle_value_error(alignment_angle, a, b, description, hint, mistake) -> None:
    what = f"alignment_angle(a, b) for {description}"
    try:
        alignment_angle(a, b)
    except ValueError:
        return
    except NotImplementedError:
        fail("common.not_implemented", f"{what} is not implemented yet (it raised "
             "NotImplementedError): replace the `raise NotImplementedError()` with your code.")
    except Exception as error:  # noqa: BLE001 - any error becomes feedback
        fail(f"{mistake}_wrong_error",
             f"{what} raised {type(error).__name__}; it should raise ValueError: {hint}.")
    fail(mistake, f"{what} should raise ValueError: {hint}.")


@single_threaded
def check_alignment_angle(alignment_angle, seed: int = 0) -> None:
    """Degrees, whole-tensor (flattened) angle of any shape, parallel 0, antiparallel 180
    (within float32 precision for float32 inputs), a float, grad inputs, errors."""
    rng = _generator(seed)
    for description, a, b in _angle_cases(rng):
        _check_angle_case(alignment_angle, description, a, b)
    a = _randn(3, 2, generator=rng, dtype=_float64).requires_grad_(True)
    b = _randn(3, 2, generator=rng, dtype=_float64)
    _check_angle_case(alignment_angle, "a that requires grad (detach it first)", a, b)
    shape_hint = "the two must have one shape (B has the shape of W^T, so compare W.T with B)"
    zero_hint = "the angle of a zero tensor is undefined"
    _expect_angle_value_error(alignment_angle, _randn(3, 2, generator=rng),
                              _randn(2, 3, generator=rng), "a of shape (3, 2) and b of shape "
                              "(2, 3)", shape_hint, "feedback_alignment.angle_shapes_not_checked")
    _expect_angle_value_error(alignment_angle, _randn(3, 2, generator=rng),
                              _randn(6, generator=rng), "a of shape (3, 2) and b of shape (6,)",
                              shape_hint, "feedback_alignment.angle_shapes_not_checked")
    for description, a, b in (
        ("a zero matrix a", _zeros(3, 2), _randn(3, 2, generator=rng)),
        ("a zero matrix b", _randn(3, 2, generator=rng), _zeros(3, 2)),
    ):
        _expect_angle_value_error(alignment_angle, a, b, description, zero_hint,
                                  "feedback_alignment.angle_zero_not_rejected")


# ---------------------------------------------------------------- part 3: FA updates


def reference_fa_updates(x, target, w1, w2, feedback):
    """``(dW1, dW2)``: the FA analogue of the loss gradient, batch means."""
    h = _tanh(x @ w1.T)
    delta_2 = h @ w2.T - target
    delta_1 = (delta_2 @ feedback.T) * (1 - h**2)
    return delta_1.T @ x / x.shape[0], delta_2.T @ h / x.shape[0]


def _output_mistakes(x, target, w1, w2):
    """Wrong dW2 (the delta rule of the output layer)."""
    batch = x.shape[0]
    a = x @ w1.T
    h = _tanh(a)
    delta_2 = h @ w2.T - target
    return [
        ("feedback_alignment.updates_sign_flipped",
         "dW2 has the wrong sign: the output error is y - y* (the updates are gradient-like, "
         "to be subtracted), not y* - y",
         -delta_2.T @ h / batch),
        ("feedback_alignment.updates_summed_over_batch",
         "dW2 must be averaged over the batch (divide by the batch size), not summed",
         delta_2.T @ h),
        ("feedback_alignment.output_update_uses_pre_activation",
         "dW2 multiplies the output error by the hidden pre-activation W1 x: the output layer's "
         "input is the hidden activity h = tanh(W1 x)",
         delta_2.T @ a / batch),
        ("feedback_alignment.output_update_missing",
         "the output weights were not given the delta rule dW2 = delta_2^T h / batch",
         w2 * 0),
    ]


def _hidden_mistakes(x, target, w1, w2, feedback):
    """Wrong dW1 (the FA update of the hidden layer)."""
    batch = x.shape[0]
    h = _tanh(x @ w1.T)
    delta_2 = h @ w2.T - target
    through_b = delta_2 @ feedback.T
    right_1, _ = reference_fa_updates(x, target, w1, w2, feedback)
    return [
        ("feedback_alignment.updates_backprop",
         "dW1 sends the output error down through W2^T: that is backprop. Use the fixed "
         "random feedback B (delta_2 @ feedback.T)",
         ((delta_2 @ w2) * (1 - h**2)).T @ x / batch),
        ("feedback_alignment.updates_no_derivative",
         "dW1 is missing the derivative of tanh, 1 - h^2, on the hidden error",
         through_b.T @ x / batch),
        ("feedback_alignment.updates_one_minus_h",
         "the hidden error uses 1 - h instead of 1 - h^2 as tanh's derivative",
         (through_b * (1 - h)).T @ x / batch),
        ("feedback_alignment.updates_derivative_of_h",
         "the hidden error uses 1 - tanh(h)^2: h is already tanh(W1 x), so tanh'(W1 x) is "
         "1 - h^2 (pass the pre-activation W1 x, not h, if you reuse fa_hidden_error)",
         (through_b * (1 - _tanh(h) ** 2)).T @ x / batch),
        ("feedback_alignment.updates_sign_flipped",
         "dW1 has the wrong sign: the output error is y - y* (the updates are gradient-like, "
         "to be subtracted), not y* - y",
         -right_1),
        ("feedback_alignment.updates_summed_over_batch",
         "dW1 must be averaged over the batch (divide by the batch size), not summed",
         right_1 * batch),
    ]


def _updates(fa_updates, args, what):
    out = call(fa_updates, *(t.clone() for t in args), what=what)
    if type(out) not in (tuple, list) or len(out) != 2:
        fail("feedback_alignment.updates_not_a_pair",
             f"{what} must return a pair (dW1, dW2), got {type(out).__name__}"
             + (f" of length {len(out)}" if type(out) in (tuple, list) else "") + ".")
    dtype = args[2].dtype  # the updates are subtracted from the weights: keep their dtype
    return (tensor(out[0], f"{what}[0] (dW1)", dtype=dtype),
            tensor(out[1], f"{what}[1] (dW2)", dtype=dtype))


def _check_updates_case(fa_updates, x, target, w1, w2, feedback) -> None:
    what = (f"fa_updates(x {tuple(x.shape)}, target {tuple(target.shape)}, w1 "
            f"{tuple(w1.shape)}, w2 {tuple(w2.shape)}, feedback {tuple(feedback.shape)})")
    d1, d2 = _updates(fa_updates, (x, target, w1, w2, feedback), what)
    right_1, right_2 = reference_fa_updates(x, target, w1, w2, feedback)
    for name, got, expected in (("dW1", d1, right_1), ("dW2", d2, right_2)):
        if tuple(got.shape) != tuple(expected.shape):
            fail("feedback_alignment.updates_wrong_shape",
                 f"{what}: {name} has shape {tuple(got.shape)} but should have the shape of its "
                 f"weight, (post, pre) = {tuple(expected.shape)}: error (post) times input "
                 "(pre), delta.T @ input.")
    tol = 1e-5 if x.dtype == _float32 else 1e-6
    if not close(d2, right_2, tol):
        for mistake, message, wrong in _output_mistakes(x, target, w1, w2):
            if close(d2, wrong, tol):
                fail(mistake, f"{what}: {message}.")
        fail("feedback_alignment.output_update_wrong",
             f"{what}: dW2 differs from delta_2^T h / batch: {worst_entry(d2, right_2)}.")
    if not close(d1, right_1, tol):
        for mistake, message, wrong in _hidden_mistakes(x, target, w1, w2, feedback):
            if close(d1, wrong, tol):
                fail(mistake, f"{what}: {message}.")
        fail("feedback_alignment.hidden_update_wrong",
             f"{what}: dW1 differs from delta_1^T x / batch with delta_1 = (delta_2 @ "
             f"feedback.T) * (1 - h^2): {worst_entry(d1, right_1)}.")


@single_threaded
def check_fa_updates(fa_updates, seed: int = 0) -> None:
    """``(dW1, dW2)`` against the reference on several shapes (batch 1 too, float32 too),
    the example of the test cell, and ground truth by another route: with ``B = W2^T``
    FA is backprop, so autograd's gradient of the loss must agree."""
    rng = _generator(seed)
    sizes = ((4, 5, 6, 3), (3, 4, 4, 4), (5, 3, 7, 2), (1, 3, 4, 2), (6, 2, 3, 1))
    for batch, n_in, n_hidden, n_out in sizes:
        x = _randn(batch, n_in, generator=rng, dtype=_float64)
        target = _randn(batch, n_out, generator=rng, dtype=_float64)
        w1 = _randn(n_hidden, n_in, generator=rng, dtype=_float64) / _sqrt(n_in)
        w2 = _randn(n_out, n_hidden, generator=rng, dtype=_float64)
        feedback = _randn(n_hidden, n_out, generator=rng, dtype=_float64)
        _check_updates_case(fa_updates, x, target, w1, w2, feedback)
    # the example of the test cell (float32)
    generator = _generator(0)
    x, target = _randn(8, 4, generator=generator), _randn(8, 2, generator=generator)
    w1, w2 = _randn(5, 4, generator=generator), _randn(2, 5, generator=generator)
    _check_updates_case(fa_updates, x, target, w1, w2, _randn(5, 2, generator=generator))

    x = _randn(4, 3, generator=rng, dtype=_float64)
    target = _randn(4, 2, generator=rng, dtype=_float64)
    w1 = _randn(5, 3, generator=rng, dtype=_float64).requires_grad_(True)
    w2 = _randn(2, 5, generator=rng, dtype=_float64).requires_grad_(True)
    loss = 0.5 * ((_tanh(x @ w1.T) @ w2.T - target) ** 2).sum(1).mean()
    g1, g2 = _autograd_grad(loss, (w1, w2))
    what = "fa_updates(x, target, w1, w2, feedback=w2.T)"
    d1, d2 = _updates(fa_updates, (x, target, w1.detach(), w2.detach(), w2.detach().T), what)
    if not (close(d1, g1) and close(d2, g2)):
        fail("feedback_alignment.updates_not_gradient_when_b_is_w_transposed",
             f"{what} should equal the gradient of L = 1/2 mean_batch |y - y*|^2 (FA with "
             "B = W^T is backprop), but it does not.")
