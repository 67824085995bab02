"""The assignment-03 checkers: the reference passes; each plausible mistake is rejected
with its own message, in the student's terms."""

from __future__ import annotations

import pytest
import torch

from course_lib import cell_types, ei_balance
from course_lib.checks.cell_types import (
    check_cell_type_weight,
    check_type_mask,
    check_vogels_update,
)


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# ------------------------------------------------------------------ part 1: the type mask


def loop_mask(types, connections):
    """A correct student version, with explicit loops."""
    n = len(types)
    mask = torch.zeros(n, n)
    for i in range(n):
        for j in range(n):
            if i != j and (types[j], types[i]) in connections:
                mask[i, j] = 1
    return mask


def transposed(types, connections):
    return loop_mask(types, connections).T


def keeps_diagonal(types, connections):
    return torch.tensor([[float((pre, post) in connections) for pre in types] for post in types])


def symmetric(types, connections):
    both = list(connections) + [(post, pre) for pre, post in connections]
    return loop_mask(types, both)


def sorted_blocks(types, connections):
    """Assumes the units come sorted in CELL_TYPES order."""
    return loop_mask(sorted(types, key=cell_types.CELL_TYPES.index), connections)


def bool_mask(types, connections):
    return loop_mask(types, connections).bool()


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (transposed, "the mask is transposed"),
        (keeps_diagonal, "must not synapse onto itself"),
        (symmetric, "connections are directed"),
        (lambda t, c: 1 - loop_mask(t, c), "the mask is inverted"),
        (lambda t, c: 1 - torch.eye(len(t)), "ignores the connection table"),
        (sorted_blocks, "the units are not sorted by type"),
        (lambda t, c: loop_mask(t, c)[:-1], "returned shape"),
        (lambda t, c: loop_mask(t, c).numpy(), "must return a torch.Tensor"),
        (lambda t, c: 2 * loop_mask(t, c), "a mask contains only 0s and 1s"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_masks_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_type_mask(wrong)


def test_reference_masks_pass():
    for seed in (0, 1, 77):
        check_type_mask(cell_types.type_mask, seed=seed)
        check_type_mask(loop_mask, seed=seed)
    check_type_mask(bool_mask)  # a boolean mask is an acceptable 0/1 mask


# ------------------------------------------------------------------ part 2: the weight


def reference_weight(w, m, f, s):
    return (m * w.abs() + f) @ torch.diag(s)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda w, m, f, s: (m * torch.relu(w) + f) * s, "not relu"),
        (lambda w, m, f, s: (m * w + f) * s, "made non-negative with \\|W_plastic\\|"),
        (lambda w, m, f, s: m * (w.abs() + f) * s, "W_fixed is missing or was masked away"),
        (lambda w, m, f, s: m * w.abs() * s + f, "W_fixed must also be signed by D"),
        (lambda w, m, f, s: torch.diag(s) @ (m * w.abs() + f), "applied to the rows"),
        (lambda w, m, f, s: (w.abs() + f) * s, "the mask M was not applied"),
        (lambda w, m, f, s: m * w.abs() * s, "W_fixed is missing"),
        (lambda w, m, f, s: (m * w.abs() + f.T) * s, "should be \\(mask"),
        (lambda w, m, f, s: m * w.abs() + f, "the signs D were not applied"),
        (lambda w, m, f, s: ((m * w.abs() + f) * s).detach(), "no gradient flows"),
        (lambda w, m, f, s: (m * w.data.abs_() + f) * s, "changed w_plastic in place"),
        (lambda w, m, f, s: (m * w.abs() + f) * s + 0.1, "should be \\(mask \\* \\|w_plastic\\|"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_weights_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_cell_type_weight(wrong)


def test_reference_weights_pass():
    check_cell_type_weight(cell_types.cell_type_weight)
    check_cell_type_weight(reference_weight, seed=5)


def test_gradient_leaking_into_masked_entries_is_caught():
    def leaky(w, m, f, s):
        return (m * w.abs() + f) * s + 0.0 * w  # right values, gradient 0 ... still zero

    check_cell_type_weight(leaky)  # 0 * w adds a zero gradient: acceptable

    def straight_through(w, m, f, s):
        value = (m * w.abs() + f) * s
        return value.detach() + (w - w.detach())  # right values, wrong gradient

    with pytest.raises(AssertionError, match="must be exactly zero where mask is 0"):
        check_cell_type_weight(straight_through)


# ------------------------------------------------------------------ part 3: Vogels rule


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda w, x, y, r0, eta: torch.clamp_min(w - eta * x * (y - r0), 0), "sign is inverted"),
        (lambda w, x, y, r0, eta: w + eta * x * (y - r0), "clamp the result at 0"),
        (lambda w, x, y, r0, eta: (w + eta * x * (y - r0)).abs(), "not flipped with abs"),
        (lambda w, x, y, r0, eta: torch.clamp_min(w + eta * x * y, 0), "use \\(y - r0\\)"),
        (lambda w, x, y, r0, eta: torch.clamp_min(w + eta * (y - r0), 0), "factor x is missing"),
        (lambda w, x, y, r0, eta: eta * x * (y - r0), "not the change"),
        (
            lambda w, x, y, r0, eta: torch.clamp_min(w + eta * w * x * (y - r0), 0),
            "do not multiply it by the weight",
        ),
        (lambda w, x, y, r0, eta: w.add_(eta * x * (y - r0)).clamp_(min=0), "in place"),
        (lambda w, x, y, r0, eta: torch.clamp_min(w + eta * x * (y - r0), 0).sum(), "shape"),
        (
            lambda w, x, y, r0, eta: torch.clamp_min(w + 0.5 * eta * x * (y - r0), 0),
            "should be max\\(0, w_inh \\+ eta x \\(y - r0\\)\\)",
        ),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_updates_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_vogels_update(wrong)


def test_reference_update_passes():
    check_vogels_update(ei_balance.vogels_update)
    check_vogels_update(lambda w, x, y, r0, eta: (w + eta * x * (y - r0)).clamp(min=0), seed=9)


def test_checkers_write_nothing_to_stderr(capfd):
    check_type_mask(cell_types.type_mask)
    check_cell_type_weight(cell_types.cell_type_weight)
    check_vogels_update(ei_balance.vogels_update)
    assert capfd.readouterr().err == ""
