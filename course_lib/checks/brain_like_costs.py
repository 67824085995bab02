"""Checkers for assignment 04_brain_like_costs.

The references are `course_lib.regularisers.l1_weights` (Yang et al. 2019:
``beta * Σ_ij |w_ij|`` over one or several matrices), `course_lib.regularisers.l2_rates`
(Goudar et al. 2023: ``beta * Σ_i a_it²``, summed over units and averaged over batch and
time) and `course_lib.sparsity.soft_threshold`, the proximal step of the L1 penalty
(``sign(w) max(|w| - lam, 0)``), which is why L1 lands weights on exactly zero.
"""

from __future__ import annotations

import torch

from course_lib._validate import make_generator
from course_lib.checks._common import as_tensor, call, close, fail, single_threaded, worst_entry
from course_lib.regularisers import l1_weights as reference_l1_weights
from course_lib.regularisers import l2_rates as reference_l2_rates
from course_lib.sparsity import soft_threshold as reference_soft_threshold


def _scalar(value, what: str) -> torch.Tensor:
    value = as_tensor(value, what)
    if value.dim() != 0:
        fail(
            f"{what} must return a scalar tensor (shape ()), got shape {tuple(value.shape)}: "
            "a penalty is one number added to the loss."
        )
    return value


def _expect_value_error(fn, args: tuple, what: str, reason: str) -> None:
    try:
        fn(*args)
    except ValueError:
        return
    except Exception as error:  # noqa: BLE001 - any error becomes feedback
        fail(f"{what} raised {type(error).__name__}; it should raise ValueError: {reason}.")
    fail(f"{what} should raise ValueError: {reason}.")


def _signed(shape, generator, dtype=torch.float64) -> torch.Tensor:
    """Entries with |w| in [0.1, 1.1] and random signs (away from the kink at 0)."""
    magnitude = 0.1 + torch.rand(shape, generator=generator, dtype=dtype)
    sign = torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0).to(dtype)
    return magnitude * sign


# ---------------------------------------------------------------- part 1: L1 on weights


def _l1_mistakes(tensors, beta):
    flat = torch.cat([w.flatten() for w in tensors])
    return [
        (
            "take the absolute value: Σ|w| counts an inhibitory (negative) weight as a cost "
            "too, while Σw lets positive and negative weights cancel",
            beta * flat.sum(),
        ),
        (
            "this is the L2 penalty Σw²: the L1 penalty sums |w|, not w²",
            beta * flat.pow(2).sum(),
        ),
        (
            "this is the Euclidean norm sqrt(Σw²): the L1 penalty is Σ|w|, with no square",
            beta * flat.pow(2).sum().sqrt(),
        ),
        (
            "sum |w| over the entries, do not average: the penalty is beta Σ_ij |w_ij|",
            beta * flat.abs().mean(),
        ),
        (
            "sum |w| over every entry, do not average each matrix",
            beta * sum(w.abs().mean() for w in tensors),
        ),
        ("multiply by beta", flat.abs().sum()),
        (
            "with several matrices, add up the penalty of every one of them, not only the first",
            beta * tensors[0].abs().sum(),
        ),
        (
            "with several matrices, add up the penalty of every one of them, not only the last",
            beta * tensors[-1].abs().sum(),
        ),
    ]


def _check_l1_case(l1_weights, tensors, beta, container: str) -> None:
    leaves = [w.detach().clone().requires_grad_(True) for w in tensors]
    if container == "tensor":
        argument, shown = leaves[0], "a single tensor"
    elif container == "list":
        argument, shown = list(leaves), f"a list of {len(leaves)} tensors"
    elif container == "tuple":
        argument, shown = tuple(leaves), f"a tuple of {len(leaves)} tensors"
    else:
        argument, shown = iter(leaves), f"an iterator of {len(leaves)} tensors (model.parameters())"
    what = f"l1_weights({shown}, beta={beta:.3g})"
    out = _scalar(call(l1_weights, argument, beta, what=what), what)
    used = leaves[:1] if container == "tensor" else leaves
    expected = reference_l1_weights([w.detach() for w in used], beta)
    if not close(out.detach(), expected):
        for message, wrong in _l1_mistakes([w.detach() for w in used], beta):
            if close(out.detach(), wrong):
                fail(f"{what} is {out.item():.5g}: {message}.")
        fail(f"{what} is {out.item():.5g} but should be beta Σ|w_ij| = {expected.item():.5g}.")
    if not out.requires_grad:
        fail(
            f"{what} carries no gradient: build it from the tensors with torch operations "
            "(no .item(), .detach(), numpy or torch.no_grad()), so it can train the network."
        )
    out.backward()
    for index, w in enumerate(used):
        if w.grad is None or not close(w.grad, beta * torch.sign(w.detach())):
            fail(
                f"the gradient of {what} with respect to matrix {index} should be "
                "beta * sign(w) (each weight pulled towards zero by the same amount beta)."
            )


@single_threaded
def check_l1_weights(l1_weights, seed: int = 0) -> None:
    """Value, scalar shape, gradient, several matrices (list, tuple, iterator), ValueError."""
    rng = make_generator(seed)
    for container in ("tensor", "list", "tuple", "iterator"):
        n_matrices = 1 if container == "tensor" else int(torch.randint(2, 4, (1,), generator=rng))
        tensors = []
        for _ in range(n_matrices):
            rows, cols = (int(n) for n in torch.randint(2, 7, (2,), generator=rng))
            tensors.append(_signed((rows, cols), rng))
        beta = round(float(torch.rand(1, generator=rng)) * 0.9 + 0.1, 3)
        _check_l1_case(l1_weights, tensors, beta, container)
    _expect_value_error(
        l1_weights,
        (torch.ones(2, 2), -0.1),
        "l1_weights(w, beta=-0.1)",
        "beta must be >= 0 (a negative coefficient would reward large weights)",
    )


# ---------------------------------------------------------------- part 2: L2 on rates


def _l2_mistakes(rates, beta):
    squared = rates.pow(2)
    return [
        (
            "sum over the units (the last axis), do not average over them: the cost of one more "
            "active unit must not depend on the network size",
            beta * squared.mean(),
        ),
        (
            "average over the batch and over time: with a plain sum, doubling the sequence "
            "length or the batch doubles the penalty and beta loses its meaning",
            beta * squared.sum(),
        ),
        (
            "average over time too: you summed over time (the per-trial cost) and averaged only "
            "over the batch",
            beta * squared.sum(dim=(0, 2)).mean(),
        ),
        (
            "average over the batch too: you summed over the batch and averaged only over time",
            beta * squared.sum(dim=(1, 2)).mean(),
        ),
        (
            "rates are (T, B, n_units): sum over the last axis (units), average over the first "
            "two (time, batch); you summed over the first axis instead",
            beta * squared.sum(dim=0).mean(),
        ),
        (
            "square the rates: the L2 penalty is Σ_i a_it², not Σ_i a_it (nor Σ_i |a_it|)",
            beta * rates.sum(dim=-1).mean(),
        ),
        (
            "do not take a square root: the penalty is the squared norm Σ_i a_it², not its norm",
            beta * squared.sum(dim=-1).sqrt().mean(),
        ),
        ("multiply by beta", squared.sum(dim=-1).mean()),
    ]


@single_threaded
def check_l2_rates(l2_rates, seed: int = 0) -> None:
    """Normalisation (sum units, mean batch and time), gradient, ValueError for beta < 0."""
    rng = make_generator(seed)
    shapes = [(5, 3, 4)]
    for _ in range(2):
        steps, batch, units = (int(n) for n in torch.randperm(8, generator=rng)[:3] + 2)
        shapes.append((steps, batch, units))
    for shape in shapes:
        rates = torch.relu(torch.randn(shape, generator=rng, dtype=torch.float64) + 0.3)
        beta = round(float(torch.rand(1, generator=rng)) * 0.9 + 0.1, 3)
        leaf = rates.clone().requires_grad_(True)
        what = f"l2_rates(rates of shape (T, B, n_units) = {shape}, beta={beta:.3g})"
        out = _scalar(call(l2_rates, leaf, beta, what=what), what)
        expected = reference_l2_rates(rates, beta)
        if not close(out.detach(), expected):
            for message, wrong in _l2_mistakes(rates, beta):
                if close(out.detach(), wrong):
                    fail(f"{what} is {out.item():.5g}: {message}.")
            fail(
                f"{what} is {out.item():.5g} but should be beta mean_(t, b) Σ_i a_it² = "
                f"{expected.item():.5g}."
            )
        if not out.requires_grad:
            fail(
                f"{what} carries no gradient: build it from the rates with torch operations "
                "(no .item(), .detach() or numpy), so it can train the network."
            )
        out.backward()
        steps, batch, _ = shape
        if leaf.grad is None or not close(leaf.grad, 2 * beta * rates / (steps * batch)):
            fail(f"the gradient of {what} should be 2 beta a / (T B).")
    _expect_value_error(
        l2_rates,
        (torch.ones(2, 2, 2), -1.0),
        "l2_rates(rates, beta=-1.0)",
        "beta must be >= 0 (a negative coefficient would reward high rates)",
    )


# ---------------------------------------------------------------- part 3: soft threshold


def _threshold_mistakes(w, lam):
    return [
        (
            "this is a hard threshold (zero the small weights, keep the others unchanged): the "
            "L1 step also shrinks the surviving weights by lam towards zero",
            w * (w.abs() > lam),
        ),
        (
            "a weight smaller than lam must stop at exactly zero, not cross it and change sign: "
            "clamp |w| - lam at 0",
            w - lam * torch.sign(w),
        ),
        (
            "keep the sign of the weight: sign(w) * max(|w| - lam, 0)",
            (w.abs() - lam).clamp_min(0),
        ),
        (
            "negative weights must shrink towards zero as well (towards zero from below); "
            "relu(w - lam) sets every inhibitory weight to zero",
            torch.relu(w - lam),
        ),
        (
            "subtract lam from the magnitude |w|, not from w itself: negative weights must move "
            "up towards zero",
            w - lam,
        ),
        (
            "this scales every weight (the L2 step, w / (1 + lam)); L1 subtracts the same "
            "amount lam from every magnitude, which makes small weights exactly zero",
            w / (1 + lam),
        ),
        (
            "this scales every weight (w (1 - lam), like weight decay); L1 subtracts the same "
            "amount lam from every magnitude, which makes small weights exactly zero",
            w * (1 - lam),
        ),
    ]


@single_threaded
def check_soft_threshold(soft_threshold, seed: int = 0) -> None:
    """sign(w) max(|w| - lam, 0): exact zeros, signs kept, not in place, ValueError."""
    rng = make_generator(seed)
    for _ in range(4):
        rows, cols = (int(n) for n in torch.randint(3, 8, (2,), generator=rng))
        w = torch.randn(rows, cols, generator=rng, dtype=torch.float64)
        lam = round(float(torch.rand(1, generator=rng)) * 0.6 + 0.2, 3)
        before = w.clone()
        what = f"soft_threshold(w, lam={lam})"
        out = as_tensor(call(soft_threshold, w, lam, what=what), what)
        if not torch.equal(w, before):
            fail(f"{what} changed w in place: return a new tensor and leave w as it was.")
        expected = reference_soft_threshold(before, lam)
        if tuple(out.shape) != tuple(expected.shape):
            fail(f"{what} returned shape {tuple(out.shape)} for w of shape {tuple(w.shape)}.")
        if close(out, expected):
            small = before.abs() <= lam
            if small.any() and not torch.all(out[small] == 0):
                fail(
                    f"{what}: weights with |w| <= lam must become exactly 0, not just small "
                    f"(largest leftover {out[small].abs().max().item():.3g})."
                )
            continue
        for message, wrong in _threshold_mistakes(before, lam):
            if close(out, wrong):
                fail(f"{what}: {message}.")
        fail(f"{what} should be sign(w) max(|w| - lam, 0); {worst_entry(out, expected)}.")
    _expect_value_error(
        soft_threshold,
        (torch.ones(2, 2), -0.5),
        "soft_threshold(w, lam=-0.5)",
        "lam must be >= 0 (it is a step size times a penalty coefficient)",
    )
