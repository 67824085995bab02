"""The assignment-06 checkers: the reference passes; each plausible mistake is rejected
with its own message, in the student's terms."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.checks.feedback_alignment import (
    check_alignment_angle,
    check_fa_hidden_error,
    check_fa_updates,
    reference_fa_hidden_error,
    reference_fa_updates,
)
from course_lib.learning_rules.feedback_alignment import alignment_angle


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# ------------------------------------------------------------ part 1: the FA hidden error


def slope(a):
    return 1 - torch.tanh(a) ** 2


def through_weight(delta, weight, feedback, a):
    return (delta @ weight) * slope(a)


def no_derivative(delta, weight, feedback, a):
    return delta @ feedback.T


def derivative_of_wrong_thing(delta, weight, feedback, a):
    return (delta @ feedback.T) * (1 - a**2)


def tanh_not_derivative(delta, weight, feedback, a):
    return (delta @ feedback.T) * torch.tanh(a)


def sign_flip(delta, weight, feedback, a):
    return -(delta @ feedback.T) * slope(a)


def feedback_not_transposed(delta, weight, feedback, a):
    return (delta @ feedback) * slope(a)


def returns_numpy(delta, weight, feedback, a):
    return reference_fa_hidden_error(delta, weight, feedback, a).numpy()


def test_reference_hidden_error_passes():
    check_fa_hidden_error(reference_fa_hidden_error)
    check_fa_hidden_error(reference_fa_hidden_error, seed=606)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (through_weight, "went down through W\\^T .*through the fixed random feedback B"),
        (no_derivative, "derivative tanh'\\(a\\) = 1 - tanh\\(a\\)\\^2 is missing"),
        (derivative_of_wrong_thing, "not 1 - a\\^2"),
        (tanh_not_derivative, "not tanh\\(a\\)"),
        (sign_flip, "the sign is flipped"),
        (feedback_not_transposed, "raised RuntimeError"),
        (returns_numpy, "must return a torch.Tensor"),
        (not_implemented, "not implemented yet"),
    ],
)
def test_hidden_error_mistakes_rejected(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_fa_hidden_error(wrong)


def test_transposed_feedback_named_on_square_layers():
    """When the layer is square, delta @ B runs: the checker names the transpose."""

    def square_only(delta, weight, feedback, a):
        if feedback.shape[0] != feedback.shape[1]:
            return reference_fa_hidden_error(delta, weight, feedback, a)
        return feedback_not_transposed(delta, weight, feedback, a)

    with pytest.raises(AssertionError, match="delta @ B.T, not delta @ B"):
        check_fa_hidden_error(square_only)


# ------------------------------------------------------------ part 2: the alignment angle


def radians(a, b):
    return math.radians(alignment_angle(a, b))


def cosine(a, b):
    return math.cos(math.radians(alignment_angle(a, b)))


def absolute_cosine(a, b):
    a, b = a.detach().flatten().double(), b.detach().flatten().double()
    c = torch.clamp((a @ b).abs() / (a.norm() * b.norm()), -1, 1)
    return math.degrees(math.acos(c.item()))


def row_average(a, b):
    if a.dim() < 2:
        return alignment_angle(a, b)
    angles = [alignment_angle(ra, rb) for ra, rb in zip(a, b, strict=True)]
    return sum(angles) / len(angles)


def no_clamp(a, b):
    if a.shape != b.shape:
        raise ValueError("shapes differ")
    a, b = a.detach().flatten(), b.detach().flatten()
    return torch.rad2deg(torch.acos(a @ b / (a.norm() * b.norm()))).item()


def math_no_clamp(a, b):
    if a.shape != b.shape:
        raise ValueError("shapes differ")
    a, b = a.detach().flatten(), b.detach().flatten()
    return math.degrees(math.acos((a @ b / (a.norm() * b.norm())).item()))


def no_detach(a, b):
    if a.requires_grad:
        return float(a.numpy().sum())  # RuntimeError: can't call numpy() on a grad tensor
    return alignment_angle(a, b)


def no_shape_check(a, b):
    if a.numel() == b.numel() and a.shape != b.shape:
        return alignment_angle(a.flatten(), b.flatten())
    return alignment_angle(a, b)


def zero_gives_nan(a, b):
    if a.norm() == 0 or b.norm() == 0:
        return float("nan")
    return alignment_angle(a, b)


def per_element(a, b):
    return torch.full(a.shape, alignment_angle(a, b))


def test_reference_angle_passes():
    check_alignment_angle(alignment_angle)
    check_alignment_angle(alignment_angle, seed=61)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (radians, "that is radians, give degrees"),
        (cosine, "that is the cosine"),
        (absolute_cosine, "keep the sign of the cosine"),
        (row_average, "averaged the angles of the rows"),
        (no_clamp, "clamp it to \\[-1, 1\\] before acos"),
        (math_no_clamp, "clamp it to \\[-1, 1\\] before acos"),
        (no_detach, "raised RuntimeError"),
        (no_shape_check, "shape \\(3, 2\\) and b of shape \\(2, 3\\) should raise ValueError"),
        (zero_gives_nan, "a zero matrix should raise ValueError"),
        (per_element, "must return one number"),
        (not_implemented, "not implemented yet"),
    ],
)
def test_angle_mistakes_rejected(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_alignment_angle(wrong)


# ------------------------------------------------------------ part 3: the FA updates


def _forward(x, target, w1, w2):
    h = torch.tanh(x @ w1.T)
    return h, h @ w2.T - target


def backprop(x, target, w1, w2, feedback):
    return reference_fa_updates(x, target, w1, w2, w2.T)


def updates_no_slope(x, target, w1, w2, feedback):
    h, delta_2 = _forward(x, target, w1, w2)
    return (delta_2 @ feedback.T).T @ x / len(x), delta_2.T @ h / len(x)


def updates_sign_flip(x, target, w1, w2, feedback):
    d1, d2 = reference_fa_updates(x, target, w1, w2, feedback)
    return -d1, -d2


def updates_summed(x, target, w1, w2, feedback):
    d1, d2 = reference_fa_updates(x, target, w1, w2, feedback)
    return d1 * len(x), d2 * len(x)


def updates_one_minus_h(x, target, w1, w2, feedback):
    h, delta_2 = _forward(x, target, w1, w2)
    return ((delta_2 @ feedback.T) * (1 - h)).T @ x / len(x), delta_2.T @ h / len(x)


def output_frozen(x, target, w1, w2, feedback):
    d1, d2 = reference_fa_updates(x, target, w1, w2, feedback)
    return d1, torch.zeros_like(d2)


def transposed_update(x, target, w1, w2, feedback):
    d1, d2 = reference_fa_updates(x, target, w1, w2, feedback)
    return d1.T, d2


def only_one(x, target, w1, w2, feedback):
    return reference_fa_updates(x, target, w1, w2, feedback)[0]


def test_reference_updates_pass():
    check_fa_updates(reference_fa_updates)
    check_fa_updates(reference_fa_updates, seed=6060)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (backprop, "through W2\\^T: that is backprop"),
        (updates_no_slope, "missing the derivative of tanh"),
        (updates_sign_flip, "the sign is flipped"),
        (updates_summed, "averaged over the batch"),
        (updates_one_minus_h, "1 - h instead of 1 - h\\^2"),
        (output_frozen, "delta rule dW2"),
        (transposed_update, "dW1 has shape \\(5, 6\\) but should have the shape of its weight"),
        (only_one, "must return a pair"),
        (not_implemented, "not implemented yet"),
    ],
)
def test_update_mistakes_rejected(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_fa_updates(wrong)
