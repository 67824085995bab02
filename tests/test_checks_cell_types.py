"""The assignment-03 checkers: the reference and correct variants pass at several seeds;
each plausible mistake is rejected with its own message and mistake id, in the student's
terms."""

from __future__ import annotations

import functools

import pytest
import torch
from catalogue import not_implemented, rejects

from course_lib import cell_types, ei_balance
from course_lib.checks import cell_types as checks

# The catalogue builds many cases on the reference; a submission may not (tested below).
check_type_mask = functools.partial(checks.check_type_mask, allow_reference=True)
check_cell_type_weight = functools.partial(checks.check_cell_type_weight, allow_reference=True)
check_vogels_update = functools.partial(checks.check_vogels_update, allow_reference=True)

SEEDS = (0, 11, 2024)


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


def comprehension_mask(types, connections):
    allowed = set(connections)
    mask = torch.tensor([[float((pre, post) in allowed) for pre in types] for post in types])
    return mask * (1 - torch.eye(len(types)))


def index_mask(types, connections):
    """Type indices and a type-by-type table, then gather."""
    kinds = sorted(set(types))
    index = torch.tensor([kinds.index(t) for t in types], dtype=torch.long)
    table = torch.zeros(len(kinds), len(kinds))  # table[post, pre]
    for pre, post in connections:
        if pre in kinds and post in kinds:
            table[kinds.index(post), kinds.index(pre)] = 1.0
    mask = table[index][:, index]
    mask.fill_diagonal_(0)
    return mask


@pytest.mark.parametrize("seed", SEEDS)
def test_correct_masks_pass(seed):
    for fn in (cell_types.type_mask, loop_mask, comprehension_mask, index_mask):
        check_type_mask(fn, seed=seed)


def keeps_diagonal(types, connections):
    return torch.tensor([[float((pre, post) in connections) for pre in types] for post in types])


def symmetric(types, connections):
    both = list(connections) + [(post, pre) for pre, post in connections]
    return loop_mask(types, both)


def sorted_blocks(types, connections):
    """Assumes the units come sorted in CELL_TYPES order."""
    return loop_mask(sorted(types, key=cell_types.CELL_TYPES.index), connections)


def sorts_in_place(types, connections):
    types.sort(key=cell_types.CELL_TYPES.index)
    return loop_mask(types, connections)


MASK_MISTAKES = [
    (lambda t, c: loop_mask(t, c).T, "cell_types.mask_transposed", "the mask is transposed"),
    (keeps_diagonal, "cell_types.mask_diagonal", "must not synapse onto itself"),
    (symmetric, "cell_types.mask_undirected", "connections are directed"),
    (lambda t, c: 1 - loop_mask(t, c), "cell_types.mask_inverted", "the mask is inverted"),
    (lambda t, c: (1 - loop_mask(t, c)) * (1 - torch.eye(len(t))), "cell_types.mask_inverted",
     "the mask is inverted"),
    (lambda t, c: 1 - torch.eye(len(t)), "cell_types.mask_ignores_table",
     "ignores the connection table"),
    (sorted_blocks, "cell_types.mask_wrong_entry", "the units are not sorted by type"),
    (sorts_in_place, "common.in_place", "changed the list types"),
    (lambda t, c: loop_mask(t, c)[:-1], "common.wrong_shape", "returned shape"),
    (lambda t, c: loop_mask(t, c).numpy(), "common.wrong_type", "must return a torch.Tensor"),
    (lambda t, c: 2 * loop_mask(t, c), "cell_types.mask_not_binary", "only 0s and 1s"),
    (lambda t, c: loop_mask(t, c).double(), "common.wrong_dtype", "torch.float64"),
    (lambda t, c: loop_mask(t, c) if len(t) > 1 else torch.zeros(0, 0), "common.wrong_shape",
     r"\(one unit\) returned shape \(0, 0\)"),
    (lambda t, c: loop_mask(t, c) if c else torch.eye(len(t)),
     "cell_types.mask_wrong_entry", r"empty connection table\): mask\[0, 0\] is 1"),
    (not_implemented, "common.not_implemented", "is not implemented yet"),
]


@pytest.mark.parametrize(("wrong", "mistake", "message"), MASK_MISTAKES)
def test_wrong_masks_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_type_mask, wrong, mistake, message)


@pytest.mark.parametrize("dtype", [torch.bool, torch.int64])
def test_a_boolean_or_integer_mask_passes(dtype):
    """The mask only multiplies float32 weights in cell_type_weight, and float32 * bool (or
    int) stays float32: not a mistake."""
    check_type_mask(lambda t, c: loop_mask(t, c).to(dtype))


# ------------------------------------------------------------------ part 2: the weight


def loop_weight(w, m, f, s):
    out = torch.zeros_like(w)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            out[i, j] = (m[i, j] * torch.abs(w[i, j]) + f[i, j]) * s[j]
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_correct_weights_pass(seed):
    for fn in (cell_types.cell_type_weight, lambda w, m, f, s: (m * w.abs() + f) @ torch.diag(s),
               lambda w, m, f, s: torch.einsum("ij,j->ij", m * w.abs() + f, s),
               lambda w, m, f, s: (torch.where(m > 0, w.abs(), 0.0) + f) * s, loop_weight,
               lambda w, m, f, s: (m * w.abs() + f) * s + 0.0 * w):
        check_cell_type_weight(fn, seed=seed)


def straight_through(w, m, f, s):
    value = (m * w.abs() + f) * s
    return value.detach() + (w - w.detach())  # right values, gradient everywhere


WEIGHT_MISTAKES = [
    (lambda w, m, f, s: (m * torch.relu(w) + f) * s, "cell_types.relu_not_abs", "not relu"),
    (lambda w, m, f, s: (m * w + f) * s, "cell_types.plastic_not_abs",
     r"made non-negative with \|W_plastic\|"),
    (lambda w, m, f, s: m * (w.abs() + f) * s, "cell_types.fixed_missing",
     "W_fixed is missing or was masked away"),
    (lambda w, m, f, s: m * w.abs() * s + f, "cell_types.fixed_not_signed",
     "W_fixed must also be signed by D"),
    (lambda w, m, f, s: torch.diag(s) @ (m * w.abs() + f), "cell_types.rows_not_columns",
     "applied to the rows"),
    (lambda w, m, f, s: (w.abs() + f) * s, "cell_types.mask_not_applied",
     "the mask M was not applied"),
    (lambda w, m, f, s: m * w.abs() * s, "cell_types.fixed_missing", "W_fixed is missing"),
    (lambda w, m, f, s: (m * w.abs() + f.T) * s, "cell_types.weight_wrong", r"should be \(mask"),
    (lambda w, m, f, s: m * w.abs() + f, "cell_types.signs_missing", "the signs D were not"),
    (lambda w, m, f, s: m * (w * s).abs() + f * s, "cell_types.abs_after_signs",
     r"take \|W_plastic\| before the signs"),
    (lambda w, m, f, s: ((m * w.abs() + f) * s).detach(), "common.no_gradient",
     "no gradient flows"),
    (lambda w, m, f, s: (m * w.data.abs_() + f) * s, "common.in_place",
     "changed its argument w in place"),
    (lambda w, m, f, s: (m * w.abs() + f) * s + 0.1, "cell_types.weight_wrong",
     r"should be \(mask \* \|w_plastic\|"),
    (lambda w, m, f, s: ((m * w.abs() + f) * s).double(), "common.wrong_dtype",
     "dtype torch.float64 for a torch.float32 w_plastic"),
    (lambda w, m, f, s: (m * torch.sqrt(w**2) + f) * s, "common.gradient_not_finite",
     "the gradient contains NaN"),
    (straight_through, "cell_types.gradient_through_mask", "must be exactly zero where mask is 0"),
    (lambda w, m, f, s: (m * w.abs() + f) * s + m * (w - w.detach()),
     "cell_types.wrong_gradient", "wrong gradient with respect to w_plastic"),
    (not_implemented, "common.not_implemented", "is not implemented yet"),
]


@pytest.mark.parametrize(("wrong", "mistake", "message"), WEIGHT_MISTAKES)
def test_wrong_weights_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_cell_type_weight, wrong, mistake, message)


# ------------------------------------------------------------------ part 3: Vogels rule


def loop_update(w, x, y, r0, eta):
    out = w.clone()
    for k in range(len(w)):
        out[k] = max(0.0, float(w[k] + eta * x[k] * (y - r0)))
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_correct_updates_pass(seed):
    for fn in (ei_balance.vogels_update, loop_update,
               lambda w, x, y, r0, eta: (w + eta * x * (y - r0)).clamp(min=0),
               lambda w, x, y, r0, eta: torch.relu(w + eta * (y - r0) * x),
               lambda w, x, y, r0, eta: torch.maximum(w + eta * x * (y - r0),
                                                      torch.zeros_like(w))):
        check_vogels_update(fn, seed=seed)


UPDATE_MISTAKES = [
    (lambda w, x, y, r0, eta: torch.clamp_min(w - eta * x * (y - r0), 0),
     "cell_types.vogels_sign_inverted", "sign is inverted"),
    (lambda w, x, y, r0, eta: w + eta * x * (y - r0), "cell_types.vogels_not_clamped",
     "clamp the result at 0"),
    (lambda w, x, y, r0, eta: (w + eta * x * (y - r0)).abs(), "cell_types.vogels_abs_not_clamp",
     "not flipped with abs"),
    (lambda w, x, y, r0, eta: torch.clamp_min(w + eta * x * y, 0),
     "cell_types.vogels_target_missing", r"use \(y - r0\)"),
    (lambda w, x, y, r0, eta: torch.clamp_min(w + eta * (y - r0), 0),
     "cell_types.vogels_presynaptic_missing", "factor x is missing"),
    (lambda w, x, y, r0, eta: eta * x * (y - r0), "cell_types.vogels_returns_change",
     "not the change"),
    (lambda w, x, y, r0, eta: torch.clamp_min(w + eta * w * x * (y - r0), 0),
     "cell_types.vogels_multiplicative", "do not multiply it by the weight"),
    (lambda w, x, y, r0, eta: torch.clamp(w + eta * x * (y - r0), 0, 1),
     "cell_types.vogels_upper_clamp", "no upper limit"),
    (lambda w, x, y, r0, eta: w.add_(eta * x * (y - r0)).clamp_(min=0), "common.in_place",
     "changed its argument w in place"),
    (lambda w, x, y, r0, eta: torch.clamp_min(w + eta * x * (y - r0), 0).sum(),
     "common.wrong_shape", "shape"),
    (lambda w, x, y, r0, eta: torch.clamp_min(w + 0.5 * eta * x * (y - r0), 0),
     "cell_types.vogels_wrong_value", r"should be max\(0, w_inh \+ eta x \(y - r0\)\)"),
    (lambda w, x, y, r0, eta: torch.clamp_min(w + eta * x * (y - r0), 0).double(),
     "common.wrong_dtype", "dtype torch.float64 for a torch.float32 w_inh"),
    (lambda w, x, y, r0, eta: torch.clamp_min(w + eta * x * (float(y) - r0), 0.01),
     "cell_types.vogels_wrong_value", "should be max"),
    (lambda w, x, y, r0, eta: torch.clamp_min(w + eta * x * (y - r0), 0) if eta else None,
     "common.wrong_type", "did you forget `return`"),
    (not_implemented, "common.not_implemented", "is not implemented yet"),
]


@pytest.mark.parametrize(("wrong", "mistake", "message"), UPDATE_MISTAKES)
def test_wrong_updates_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_vogels_update, wrong, mistake, message)


def test_checkers_write_nothing_to_stderr(capfd):
    check_type_mask(cell_types.type_mask)
    check_cell_type_weight(cell_types.cell_type_weight)
    check_vogels_update(ei_balance.vogels_update)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("seed", SEEDS)
def test_correct_float32_computations_pass_on_float64_cases(seed):
    """Issue 13 §2: computing in float32 and handing back the caller's dtype is correct."""

    def weight32(w, m, f, s):
        return cell_types.cell_type_weight(w.float(), m.float(), f.float(), s.float()).to(w.dtype)

    def update32(w, x, y, r0, eta):
        y = y.float() if torch.is_tensor(y) else y
        return ei_balance.vogels_update(w.float(), x.float(), y, r0, eta).to(w.dtype)

    check_cell_type_weight(weight32, seed=seed)
    check_vogels_update(update32, seed=seed)


@pytest.mark.parametrize(
    ("check", "submission"),
    [
        (checks.check_type_mask, cell_types.type_mask),
        (checks.check_cell_type_weight, lambda w, m, f, s: cell_types.cell_type_weight(w, m, f, s)),
        (checks.check_vogels_update, ei_balance.vogels_update),
    ],
)
def test_a_submission_may_not_use_the_reference(check, submission):
    rejects(check, submission, "cell_types.uses_reference", "reference implementation")


def test_own_code_passes_without_the_reference_flag():
    checks.check_type_mask(loop_mask)
    checks.check_cell_type_weight(loop_weight)
    checks.check_vogels_update(loop_update)
