"""Checkers for assignment 06_feedback_alignment.

The references are `course_lib.learning_rules.feedback_alignment` (Lillicrap et al. 2016,
Fig. 1): the FA error of a tanh hidden layer, the alignment angle, and the FA updates of a
two-layer network ``h = tanh(x W1^T)``, ``y = h W2^T``, ``L = 1/2 mean_batch |y - y*|^2``::

    delta_2 = y - y*                          (output error, batch x n_out)
    delta_1 = (delta_2 B^T) ⊙ (1 - h^2)      (FA: B (n_hidden, n_out) replaces W2^T)
    dW2 = delta_2^T h / batch,   dW1 = delta_1^T x / batch   (gradient-like: subtract them)
"""

from __future__ import annotations

import math

import torch

from course_lib._validate import make_generator
from course_lib.checks._common import (
    as_tensor,
    call,
    close,
    fail,
    single_threaded,
    worst_entry,
)
from course_lib.learning_rules.feedback_alignment import alignment_angle, fa_backward

# ---------------------------------------------------------------- part 1: FA hidden error


def reference_fa_hidden_error(delta, weight, feedback, pre_activation):
    """``(B delta) ⊙ tanh'(a)`` for a batch of row vectors; ``weight`` is not used."""
    return fa_backward(delta, feedback) * (1 - torch.tanh(pre_activation) ** 2)


def _hidden_error_mistakes(delta, weight, feedback, a):
    slope = 1 - torch.tanh(a) ** 2
    through_b = delta @ feedback.T
    mistakes = [
        (
            "the error went down through W^T (that is backprop, which needs weight transport): "
            "feedback alignment sends it through the fixed random feedback B instead",
            (delta @ weight) * slope,
        ),
        (
            "the derivative tanh'(a) = 1 - tanh(a)^2 is missing: multiply B delta by it "
            "elementwise",
            through_b,
        ),
        (
            "tanh'(a) is 1 - tanh(a)^2, not 1 - a^2: `pre_activation` is a, before the tanh",
            through_b * (1 - a**2),
        ),
        (
            "tanh'(a) is 1 - tanh(a)^2, not tanh(a): use the derivative of the nonlinearity",
            through_b * torch.tanh(a),
        ),
        ("the sign is flipped: the error is +(B delta) ⊙ tanh'(a)", -through_b * slope),
        (
            "B has the shape of W^T, (n_in, n_out): with a batch of row vectors, B delta is "
            "delta @ B.T, not delta @ B",
            (delta @ feedback) * slope if feedback.shape[0] == feedback.shape[1] else None,
        ),
    ]
    return [(m, w) for m, w in mistakes if w is not None]


@single_threaded
def check_fa_hidden_error(fa_hidden_error, seed: int = 0) -> None:
    """Compare with the reference on seeded cases (square and not); name the likely mistake."""
    rng = make_generator(seed)
    for n_in, n_out in ((5, 3), (4, 4), (6, 2), (3, 3)):
        batch = 3
        delta = torch.randn(batch, n_out, generator=rng, dtype=torch.float64)
        weight = torch.randn(n_out, n_in, generator=rng, dtype=torch.float64)
        feedback = torch.randn(n_in, n_out, generator=rng, dtype=torch.float64)
        a = torch.randn(batch, n_in, generator=rng, dtype=torch.float64) * 1.5
        what = "fa_hidden_error(delta, weight, feedback, pre_activation)"
        args = (delta.clone(), weight.clone(), feedback.clone(), a.clone())
        out = as_tensor(call(fa_hidden_error, *args, what=what), what)
        expected = reference_fa_hidden_error(delta, weight, feedback, a)
        if tuple(out.shape) != tuple(expected.shape):
            fail(
                f"{what} returned shape {tuple(out.shape)} for delta {tuple(delta.shape)} and "
                f"feedback {tuple(feedback.shape)}; it should be (batch, n_in) = "
                f"{tuple(expected.shape)}: one error per hidden unit of the layer below."
            )
        if close(out, expected):
            continue
        for message, wrong in _hidden_error_mistakes(delta, weight, feedback, a):
            if close(out, wrong):
                fail(f"{what}: {message}.")
        fail(
            f"{what} differs from (delta @ feedback.T) * (1 - tanh(a)**2): "
            f"{worst_entry(out, expected)}."
        )


# ---------------------------------------------------------------- part 2: the angle


# A float32 vector whose cosine with 2.5 times itself rounds to just above 1.
_FLOAT32_VECTOR = torch.randn(6, generator=torch.Generator().manual_seed(1))


def _angle_cases(rng):
    a = torch.randn(4, 3, generator=rng, dtype=torch.float64)
    b = torch.randn(4, 3, generator=rng, dtype=torch.float64)
    c = torch.randn(6, generator=rng, dtype=torch.float64)
    rows = torch.randn(3, 5, generator=rng, dtype=torch.float64)
    # rows point in very different directions, so the per-row mean angle is not the angle
    rows_b = rows.clone()
    rows_b[0] = -rows_b[0] * 3
    return [
        ("two random (4, 3) matrices", a, b),
        ("a matrix and 2.5 times itself (parallel)", a, 2.5 * a),
        ("a matrix and minus itself (antiparallel)", a, -a),
        ("two random vectors", c, torch.randn(6, generator=rng, dtype=torch.float64)),
        ("a (3, 5) matrix and the same with its first row flipped and scaled", rows, rows_b),
        ("a float32 vector and 2.5 times itself", _FLOAT32_VECTOR, 2.5 * _FLOAT32_VECTOR),
    ]


@single_threaded
def check_alignment_angle(alignment_angle_fn, seed: int = 0) -> None:
    """Degrees, whole-tensor (flattened) angle, parallel 0, antiparallel 180, errors."""
    rng = make_generator(seed)
    what = "alignment_angle(a, b)"
    for description, a, b in _angle_cases(rng):
        try:
            out = alignment_angle_fn(a.clone(), b.clone())
        except NotImplementedError:
            fail(f"{what} is not implemented yet (it raised NotImplementedError).")
        except ValueError as error:
            if "domain" in str(error):
                fail(
                    f"{what} raised ValueError ({error}) for {description}: rounding can push "
                    "the cosine just above 1 (or below -1); clamp it to [-1, 1] before acos."
                )
            fail(f"{what} raised ValueError for {description}: {error}")
        except Exception as error:  # noqa: BLE001 - any error becomes feedback
            fail(f"{what} raised {type(error).__name__} for {description}: {error}")
        if isinstance(out, torch.Tensor):
            if out.numel() != 1:
                fail(
                    f"{what} returned a tensor of shape {tuple(out.shape)} for {description}: "
                    "it must return one number, the angle between a and b seen as flat "
                    "vectors (flatten them first)."
                )
            out = out.item()
        try:
            out = float(out)
        except (TypeError, ValueError):
            fail(f"{what} must return a float (degrees), got {type(out).__name__}.")
        expected = alignment_angle(a, b)
        if math.isnan(out):
            fail(
                f"{what} returned nan for {description}: rounding can push the cosine just "
                "above 1 (or below -1); clamp it to [-1, 1] before acos."
            )
        if abs(out - expected) < 1e-3:
            continue
        cosine = math.cos(math.radians(expected))
        if abs(out - math.radians(expected)) < 1e-5:
            fail(f"{what} returned {out:.4f} for {description}: that is radians, give degrees.")
        if abs(out - cosine) < 1e-5:
            fail(
                f"{what} returned {out:.4f} for {description}: that is the cosine; the angle "
                "is arccos of it, in degrees."
            )
        if abs(out - math.degrees(math.acos(abs(cosine)))) < 1e-3:
            fail(
                f"{what} returned {out:.2f} for {description} but should be {expected:.2f}: "
                "keep the sign of the cosine (antiparallel matrices are 180 degrees apart, "
                "not 0)."
            )
        if a.dim() == 2:
            per_row = [
                math.degrees(
                    math.acos(max(-1.0, min(1.0, float(ra @ rb / (ra.norm() * rb.norm())))))
                )
                for ra, rb in zip(a.double(), b.double(), strict=True)
            ]
            if abs(out - sum(per_row) / len(per_row)) < 1e-3:
                fail(
                    f"{what} averaged the angles of the rows for {description}: the angle is "
                    "between the whole matrices, flattened into two long vectors."
                )
        fail(f"{what} returned {out:.4f} degrees for {description} but should be {expected:.4f}.")

    a = torch.randn(3, 2, generator=rng, requires_grad=True)
    b = torch.randn(3, 2, generator=rng)
    out = call(alignment_angle_fn, a, b, what=f"{what} with a that requires grad")
    out = out.item() if isinstance(out, torch.Tensor) else float(out)
    if abs(out - alignment_angle(a, b)) > 1e-3:
        fail(f"{what} is wrong when a requires grad (detach it first).")

    for description, a, b in (
        ("a of shape (3, 2) and b of shape (2, 3)", torch.ones(3, 2), torch.ones(2, 3)),
        ("a zero matrix", torch.zeros(3, 2), torch.ones(3, 2)),
    ):
        try:
            alignment_angle_fn(a, b)
        except ValueError:
            continue
        except Exception as error:  # noqa: BLE001
            fail(
                f"{what} for {description} raised {type(error).__name__}; "
                "it should raise ValueError."
            )
        hint = (
            "the two must have one shape (B has the shape of W^T, so compare W.T with B)"
            if "shape" in description
            else "the angle of a zero tensor is undefined"
        )
        fail(f"{what} for {description} should raise ValueError: {hint}.")


# ---------------------------------------------------------------- part 3: FA updates


def reference_fa_updates(x, target, w1, w2, feedback):
    """``(dW1, dW2)``: the FA analogue of the loss gradient, batch means."""
    h = torch.tanh(x @ w1.T)
    delta_2 = h @ w2.T - target
    delta_1 = fa_backward(delta_2, feedback) * (1 - h**2)
    return delta_1.T @ x / x.shape[0], delta_2.T @ h / x.shape[0]


def _update_mistakes(x, target, w1, w2, feedback):
    batch = x.shape[0]
    h = torch.tanh(x @ w1.T)
    delta_2 = h @ w2.T - target
    slope = 1 - h**2
    right_1, right_2 = reference_fa_updates(x, target, w1, w2, feedback)
    backprop_1 = ((delta_2 @ w2) * slope).T @ x / batch
    no_slope_1 = (delta_2 @ feedback.T).T @ x / batch
    mistakes = [
        (
            "dW1 sends the output error down through W2^T: that is backprop. Use the fixed "
            "random feedback B (delta_2 @ feedback.T)",
            backprop_1,
            right_2,
        ),
        (
            "dW1 is missing the derivative of tanh, 1 - h^2, on the hidden error",
            no_slope_1,
            right_2,
        ),
        (
            "the sign is flipped: the output error is y - y* (the updates are gradient-like, "
            "to be subtracted), not y* - y",
            -right_1,
            -right_2,
        ),
        (
            "the updates must be averaged over the batch (divide by the batch size), not summed",
            right_1 * batch,
            right_2 * batch,
        ),
        (
            "the hidden error uses 1 - h instead of 1 - h^2 as tanh's derivative",
            ((delta_2 @ feedback.T) * (1 - h)).T @ x / batch,
            right_2,
        ),
        (
            "the output weights were not given the delta rule dW2 = delta_2^T h / batch",
            right_1,
            torch.zeros_like(right_2),
        ),
    ]
    return mistakes


@single_threaded
def check_fa_updates(fa_updates, seed: int = 0) -> None:
    """Compare ``(dW1, dW2)`` with the reference; check ``B = W2^T`` gives the gradient."""
    rng = make_generator(seed)
    what = "fa_updates(x, target, w1, w2, feedback)"
    for batch, n_in, n_hidden, n_out in ((4, 5, 6, 3), (3, 4, 4, 4), (5, 3, 7, 2)):
        x = torch.randn(batch, n_in, generator=rng, dtype=torch.float64)
        target = torch.randn(batch, n_out, generator=rng, dtype=torch.float64)
        w1 = torch.randn(n_hidden, n_in, generator=rng, dtype=torch.float64) / math.sqrt(n_in)
        w2 = torch.randn(n_out, n_hidden, generator=rng, dtype=torch.float64)
        feedback = torch.randn(n_hidden, n_out, generator=rng, dtype=torch.float64)
        args = (x.clone(), target.clone(), w1.clone(), w2.clone(), feedback.clone())
        out = call(fa_updates, *args, what=what)
        if not isinstance(out, tuple | list) or len(out) != 2:
            fail(f"{what} must return a pair (dW1, dW2), got {type(out).__name__}.")
        d1, d2 = (as_tensor(o, f"{what}[{i}]") for i, o in enumerate(out))
        right_1, right_2 = reference_fa_updates(x, target, w1, w2, feedback)
        for name, got, expected in (("dW1", d1, right_1), ("dW2", d2, right_2)):
            if tuple(got.shape) != tuple(expected.shape):
                fail(
                    f"{what}: {name} has shape {tuple(got.shape)} but should have the shape of "
                    f"its weight, (post, pre) = {tuple(expected.shape)}: error (post) times "
                    "input (pre), delta.T @ input."
                )
        if close(d1, right_1) and close(d2, right_2):
            continue
        for message, wrong_1, wrong_2 in _update_mistakes(x, target, w1, w2, feedback):
            if close(d1, wrong_1) and close(d2, wrong_2):
                fail(f"{what}: {message}.")
        wrong_output = not close(d2, right_2)
        name, got, expected = ("dW2", d2, right_2) if wrong_output else ("dW1", d1, right_1)
        fail(f"{what}: {name} differs from the FA update: {worst_entry(got, expected)}.")

    # Ground truth by another route: with B = W2^T, FA is backprop, so autograd must agree.
    x = torch.randn(4, 3, generator=rng, dtype=torch.float64)
    target = torch.randn(4, 2, generator=rng, dtype=torch.float64)
    w1 = torch.randn(5, 3, generator=rng, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(2, 5, generator=rng, dtype=torch.float64, requires_grad=True)
    loss = 0.5 * ((torch.tanh(x @ w1.T) @ w2.T - target) ** 2).sum(1).mean()
    g1, g2 = torch.autograd.grad(loss, (w1, w2))
    d1, d2 = call(fa_updates, x, target, w1.detach(), w2.detach(), w2.detach().T.clone(), what=what)
    if not (close(d1, g1) and close(d2, g2)):
        fail(
            f"{what} with feedback = w2.T should equal the gradient of "
            "L = 1/2 mean_batch |y - y*|^2 (FA with B = W^T is backprop), but it does not."
        )
