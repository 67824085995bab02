"""Checkers for assignment 04_brain_like_costs.

The references are `course_lib.regularisers.l1_weights` (Yang et al. 2019:
``beta * Σ_ij |w_ij|`` over one or several matrices), `course_lib.regularisers.l2_rates`
(Goudar et al. 2023: ``beta * Σ_i a_it²``, summed over units and averaged over batch and
time) and `course_lib.sparsity.soft_threshold`, the proximal step of the L1 penalty
(``sign(w) max(|w| - lam, 0)``), which is why L1 lands weights on exactly zero.

Every failure names its mistake with a stable id ``brain_like_costs.<mistake>``.
"""

from __future__ import annotations

import torch

from course_lib.checks._common import (
    CheckFailure,
    call,
    close,
    fail,
    finite_gradient,
    single_threaded,
    tensor,
    worst_entry,
)
from course_lib.checks._common import (
    generator as _generator,
)
from course_lib.regularisers import l1_weights as reference_l1_weights
from course_lib.regularisers import l2_rates as reference_l2_rates

# Private references (see `_common`): an answer cell that patches torch changes neither
# the cases nor the expected values.
_rand = torch.rand
_randn = torch.randn
_randint = torch.randint
_randperm = torch.randperm
_sign = torch.sign
_where = torch.where
_as_tensor = torch.tensor
_float64 = torch.float64
_float32 = torch.float32


def _expected_soft_threshold(w: torch.Tensor, lam: float) -> torch.Tensor:
    """sign(w) max(|w| - lam, 0), with the private references."""
    return _sign(w) * (w.abs() - lam).clamp_min(0)


def _scalar(value, what: str) -> torch.Tensor:
    """The student's penalty: an exact tensor of shape (), graph kept for backward."""
    value = tensor(value, what, keep_graph=True)
    if value.dim() != 0:
        fail("brain_like_costs.penalty_not_scalar",
             f"{what} must return a scalar tensor (shape ()), got shape {tuple(value.shape)}: "
             "a penalty is one number added to the loss (sum it up).")
    return value


def _zero_allowed(fn, args: tuple, what: str, name: str):
    """Call ``fn`` with a coefficient of exactly 0, which must be accepted."""
    try:
        return call(fn, *args, what=what)
    except CheckFailure as failure:
        if failure.mistake == "common.raised" and "ValueError" in failure.message:
            fail(f"brain_like_costs.zero_{name}_rejected",
                 f"{what} raised ValueError, but {name} = 0 is allowed (it switches the "
                 f"penalty off): raise only for {name} < 0.")
        raise


def _expect_value_error(fn, args: tuple, what: str, reason: str) -> None:
    try:
        fn(*args)
    except ValueError:
        return
    except NotImplementedError:
        fail("common.not_implemented", f"{what} is not implemented yet (it raised "
             "NotImplementedError): replace the `raise NotImplementedError()` with your code.")
    except Exception as error:  # noqa: BLE001 - any error becomes feedback
        fail("brain_like_costs.negative_coefficient_wrong_error",
             f"{what} raised {type(error).__name__}; it should raise ValueError: {reason}.")
    fail("brain_like_costs.negative_coefficient_accepted",
         f"{what} should raise ValueError: {reason}.")


def _signed(shape, generator, dtype=_float64, zeros: bool = False) -> torch.Tensor:
    """Entries with |w| in [0.1, 1.1] and random signs (away from the kink at 0); with
    ``zeros``, about a quarter of them exactly 0 (pruned synapses)."""
    magnitude = 0.1 + _rand(shape, generator=generator, dtype=_float64)
    sign = _where(_rand(shape, generator=generator) < 0.5, -1.0, 1.0).to(_float64)
    values = magnitude * sign
    if zeros:
        values = values * (_rand(shape, generator=generator) > 0.25)
    return values.to(dtype)


def _wide(shape, generator, dtype=_float64) -> torch.Tensor:
    """Signed entries whose magnitudes span 1e-3 to 1e3: values that reach any clamp or
    cap an answer might add (the instructions ask for none)."""
    exponent = _rand(shape, generator=generator, dtype=_float64) * 6 - 3
    sign = _where(_rand(shape, generator=generator) < 0.5, -1.0, 1.0).to(_float64)
    return (sign * 10.0 ** exponent).to(dtype)


def _unlimited(check_case, *args, name: str, **kwargs) -> None:
    """Run ``check_case`` on a case with very small and very large values; a wrong value
    there (after the ordinary cases passed) is a clamp or a cap the instructions never
    asked for."""
    try:
        check_case(*args, **kwargs)
    except CheckFailure as failure:
        if not failure.mistake.endswith("wrong_value"):
            raise
        fail("brain_like_costs.values_limited",
             f"{failure.message} The answer is right for values of ordinary size but wrong "
             f"when {name} are very small or very large (magnitudes from 0.001 to 1000): do "
             "not clamp, cap or round anything; the formula has no limit.")


def _beta(generator) -> float:
    return round(float(_rand(1, generator=generator)) * 0.9 + 0.1, 3)


# ---------------------------------------------------------------- part 1: L1 on weights


def _l1_mistakes(tensors, beta):
    flat = torch.cat([w.flatten() for w in tensors])
    return [
        ("brain_like_costs.l1_no_abs",
         "take the absolute value: Σ|w| counts an inhibitory (negative) weight as a cost "
         "too, while Σw lets positive and negative weights cancel",
         beta * flat.sum()),
        ("brain_like_costs.l1_squared",
         "this is the L2 penalty Σw²: the L1 penalty sums |w|, not w²",
         beta * flat.pow(2).sum()),
        ("brain_like_costs.l1_euclidean_norm",
         "this is the Euclidean norm sqrt(Σw²): the L1 penalty is Σ|w|, with no square",
         beta * flat.pow(2).sum().sqrt()),
        ("brain_like_costs.l1_mean",
         "sum |w| over the entries, do not average: the penalty is beta Σ_ij |w_ij|",
         beta * flat.abs().mean()),
        ("brain_like_costs.l1_mean_per_matrix",
         "sum |w| over every entry, do not average each matrix",
         beta * sum(w.abs().mean() for w in tensors)),
        ("brain_like_costs.l1_no_beta", "multiply by beta", flat.abs().sum()),
        ("brain_like_costs.l1_first_only",
         "with several matrices, add up the penalty of every one of them, not only the first",
         beta * tensors[0].abs().sum()),
        ("brain_like_costs.l1_last_only",
         "with several matrices, add up the penalty of every one of them, not only the last",
         beta * tensors[-1].abs().sum()),
    ]


def _check_l1_case(l1_weights, tensors, beta, container: str, tol: float = 1e-6) -> None:
    leaves = [w.detach().clone().requires_grad_(True) for w in tensors]
    shapes = ", ".join(str(tuple(w.shape)) for w in leaves)
    if container == "tensor":
        argument, shown = leaves[0], f"a single tensor of shape {shapes}"
    elif container == "list":
        argument, shown = list(leaves), f"a list of {len(leaves)} tensors of shapes {shapes}"
    elif container == "tuple":
        argument, shown = tuple(leaves), f"a tuple of {len(leaves)} tensors of shapes {shapes}"
    else:
        argument = iter(leaves)
        shown = f"an iterator of {len(leaves)} tensors (like model.parameters())"
    what = f"l1_weights({shown}, beta={beta:.3g})"
    out = _scalar(_zero_allowed(l1_weights, (argument, beta), what, "beta") if beta == 0
                  else call(l1_weights, argument, beta, what=what), what)
    value = out.detach().clone()
    expected = reference_l1_weights([w.detach().clone() for w in leaves], beta)
    if not close(value, expected, tol):
        for mistake, message, wrong in _l1_mistakes([w.detach() for w in leaves], beta):
            if close(value, wrong, tol):
                fail(mistake, f"{what} is {value.item():.5g}: {message}.")
        fail("brain_like_costs.l1_wrong_value",
             f"{what} is {value.item():.5g} but should be beta Σ|w_ij| = {expected.item():.5g}.")
    if not out.requires_grad:
        fail("brain_like_costs.l1_no_gradient",
             f"{what} carries no gradient: build it from the tensors with torch operations "
             "(no .item(), .detach(), numpy or torch.no_grad()), so it can train the network.")
    out.backward()
    for index, w in enumerate(leaves):
        gradient = finite_gradient(w.grad, f"{what}, matrix {index}")
        nonzero = w.detach() != 0
        right = close(gradient[nonzero], beta * _sign(w.detach()[nonzero]), tol)
        # at w = 0, |w| has no derivative: any value in [-beta, beta] is a valid subgradient
        if not right or bool((gradient[~nonzero].abs() > beta * (1 + tol)).any()):
            fail("brain_like_costs.l1_wrong_gradient",
                 f"the gradient of {what} with respect to matrix {index} should be "
                 "beta * sign(w) (each weight pulled towards zero by the same amount beta).")


@single_threaded
def check_l1_weights(l1_weights, seed: int = 0) -> None:
    """Value, scalar shape, gradient (also at w = 0), one tensor or several (list, tuple,
    iterator, of any shapes), beta = 0 allowed, ValueError for beta < 0, the example."""
    rng = _generator(seed)
    for container in ("tensor", "list", "tuple", "iterator"):
        n_matrices = 1 if container == "tensor" else int(_randint(2, 4, (1,), generator=rng))
        tensors = []
        for index in range(n_matrices):
            rows, cols = (int(n) for n in _randint(2, 7, (2,), generator=rng))
            shape = (rows,) if index == 1 else (rows, cols)  # a bias vector among matrices
            tensors.append(_signed(shape, rng, zeros=index == 0))
        _check_l1_case(l1_weights, tensors, _beta(rng), container)
    # a scalar parameter (a learnable gain): a tensor of shape () is one weight, not a list
    _check_l1_case(l1_weights, [_signed((), rng)], _beta(rng), "tensor")
    # float32 weights, a 3-D tensor (a stack of matrices), and beta = 0 (no penalty)
    weights = [_signed((3, 2, 4), rng, _float32, zeros=True), _signed((5, 3), rng, _float32)]
    _unlimited(_check_l1_case, l1_weights, [_wide((4, 5), rng), _wide((3,), rng)],
               _beta(rng), "list", name="weights")
    _check_l1_case(l1_weights, weights, _beta(rng), "list", tol=1e-5)
    _check_l1_case(l1_weights, [_signed((4, 3), rng), _signed((3,), rng)], 0.0, "list")
    # the example printed in the test cell
    example = _as_tensor([[1.0, -2.0], [0.0, 3.0]])
    _check_l1_case(l1_weights, [example], 0.5, "tensor", tol=1e-6)
    _check_l1_case(l1_weights, [example, _as_tensor([[-1.0]])], 0.5, "list", tol=1e-6)
    _expect_value_error(
        l1_weights,
        (_as_tensor([[1.0, 1.0], [1.0, 1.0]]), -0.1),
        "l1_weights(w, beta=-0.1)",
        "beta must be >= 0 (a negative coefficient would reward large weights)",
    )


# ---------------------------------------------------------------- part 2: L2 on rates


def _l2_mistakes(rates, beta):
    squared = rates.pow(2)
    return [
        ("brain_like_costs.l2_mean_over_units",
         "sum over the units (the last axis), do not average over them: the cost of one more "
         "active unit must not depend on the network size",
         beta * squared.mean()),
        ("brain_like_costs.l2_sum_over_batch_and_time",
         "average over the batch and over time: with a plain sum, doubling the sequence "
         "length or the batch doubles the penalty and beta loses its meaning",
         beta * squared.sum()),
        ("brain_like_costs.l2_sum_over_time",
         "average over time too: you summed over time (the per-trial cost) and averaged only "
         "over the batch",
         beta * squared.sum(dim=(0, 2)).mean()),
        ("brain_like_costs.l2_sum_over_batch",
         "average over the batch too: you summed over the batch and averaged only over time",
         beta * squared.sum(dim=(1, 2)).mean()),
        ("brain_like_costs.l2_wrong_axis",
         "rates are (T, B, n_units): sum over the last axis (units), average over the first "
         "two (time, batch); you summed over the first axis instead",
         beta * squared.sum(dim=0).mean()),
        ("brain_like_costs.l2_not_squared",
         "square the rates: the L2 penalty is Σ_i a_it², not Σ_i a_it (nor Σ_i |a_it|)",
         beta * rates.sum(dim=-1).mean()),
        ("brain_like_costs.l2_not_squared",
         "square the rates: the L2 penalty is Σ_i a_it², not Σ_i a_it (nor Σ_i |a_it|)",
         beta * rates.abs().sum(dim=-1).mean()),
        ("brain_like_costs.l2_rectified",
         "square the rates as they are: a negative rate (a tanh unit) costs a² too; do not "
         "rectify or clamp the rates first",
         beta * rates.clamp_min(0).pow(2).sum(dim=-1).mean()),
        ("brain_like_costs.l2_square_root",
         "do not take a square root: the penalty is the squared norm Σ_i a_it², not its norm",
         beta * squared.sum(dim=-1).sqrt().mean()),
        ("brain_like_costs.l2_no_beta", "multiply by beta", squared.sum(dim=-1).mean()),
    ]


def _check_l2_case(l2_rates, rates, beta, tol: float = 1e-6) -> None:
    leaf = rates.clone().requires_grad_(True)
    shape = tuple(rates.shape)
    what = f"l2_rates(rates of shape (T, B, n_units) = {shape}, beta={beta:.3g})"
    out = _scalar(_zero_allowed(l2_rates, (leaf, beta), what, "beta") if beta == 0
                  else call(l2_rates, leaf, beta, what=what), what)
    value = out.detach().clone()
    expected = reference_l2_rates(rates, beta)
    if not close(value, expected, tol):
        for mistake, message, wrong in _l2_mistakes(rates, beta):
            if close(value, wrong, tol):
                fail(mistake, f"{what} is {value.item():.5g}: {message}.")
        fail("brain_like_costs.l2_wrong_value",
             f"{what} is {value.item():.5g} but should be beta mean_(t, b) Σ_i a_it² = "
             f"{expected.item():.5g}.")
    if not out.requires_grad:
        fail("brain_like_costs.l2_no_gradient",
             f"{what} carries no gradient: build it from the rates with torch operations "
             "(no .item(), .detach() or numpy), so it can train the network.")
    out.backward()
    gradient = finite_gradient(leaf.grad, what)
    steps, batch, _ = shape
    if not close(gradient, 2 * beta * rates / (steps * batch), tol):
        fail("brain_like_costs.l2_wrong_gradient",
             f"the gradient of {what} should be 2 beta a / (T B).")


@single_threaded
def check_l2_rates(l2_rates, seed: int = 0) -> None:
    """Normalisation (sum units, mean batch and time) on shapes with distinct T, B, n,
    negative rates and silent units, gradient, beta = 0 allowed, ValueError for beta < 0,
    T = 1 or B = 1, float32, the examples."""
    rng = _generator(seed)
    shapes = [(5, 3, 4)]
    for _ in range(2):
        shapes.append(tuple(int(n) for n in _randperm(8, generator=rng)[:3] + 2))
    for shape in shapes:
        rates = _randn(shape, generator=rng, dtype=_float64) * 0.8 + 0.3  # tanh-like: some < 0
        rates[..., 0] = 0.0  # a silent unit
        _check_l2_case(l2_rates, rates, _beta(rng))
    for shape in ((1, 3, 4), (6, 1, 3)):  # one time step; one trial
        _check_l2_case(l2_rates, _randn(shape, generator=rng, dtype=_float64), _beta(rng))
    _check_l2_case(l2_rates, _randn((4, 3, 5), generator=rng), _beta(rng), tol=1e-5)
    _unlimited(_check_l2_case, l2_rates, _wide((3, 2, 5), rng), _beta(rng), name="rates")
    _check_l2_case(l2_rates, _randn((3, 2, 4), generator=rng, dtype=_float64), 0.0)
    _check_l2_case(l2_rates, _randn((3, 2, 4), generator=rng, dtype=_float64) * 0, 0.5)
    # the examples printed in the test cell
    _check_l2_case(l2_rates, _as_tensor([1.0, 2.0, 0.0, 0.0]).reshape(1, 1, 4), 0.1)
    _check_l2_case(l2_rates, _as_tensor([1.0, 2.0, 0.0, 0.0]).reshape(4, 1, 1), 1.0)
    _expect_value_error(
        l2_rates,
        (_rand((2, 2, 2), generator=rng), -1.0),
        "l2_rates(rates, beta=-1.0)",
        "beta must be >= 0 (a negative coefficient would reward high rates)",
    )


# ---------------------------------------------------------------- part 3: soft threshold


def _threshold_mistakes(w, lam):
    return [
        ("brain_like_costs.hard_threshold",
         "this is a hard threshold (zero the small weights, keep the others unchanged): the "
         "L1 step also shrinks the surviving weights by lam towards zero",
         w * (w.abs() > lam)),
        ("brain_like_costs.threshold_crosses_zero",
         "a weight smaller than lam must stop at exactly zero, not cross it and change sign: "
         "clamp |w| - lam at 0",
         w - lam * _sign(w)),
        ("brain_like_costs.threshold_sign_lost",
         "keep the sign of the weight: sign(w) * max(|w| - lam, 0)",
         (w.abs() - lam).clamp_min(0)),
        ("brain_like_costs.threshold_rectified",
         "negative weights must shrink towards zero as well (towards zero from below); "
         "relu(w - lam) sets every inhibitory weight to zero",
         (w - lam).clamp_min(0)),
        ("brain_like_costs.threshold_not_on_magnitude",
         "subtract lam from the magnitude |w|, not from w itself: negative weights must move "
         "up towards zero",
         w - lam),
        ("brain_like_costs.threshold_is_l2_step",
         "this scales every weight (the L2 step, w / (1 + lam)); L1 subtracts the same "
         "amount lam from every magnitude, which makes small weights exactly zero",
         w / (1 + lam)),
        ("brain_like_costs.threshold_is_weight_decay",
         "this scales every weight (w (1 - lam), like weight decay); L1 subtracts the same "
         "amount lam from every magnitude, which makes small weights exactly zero",
         w * (1 - lam)),
    ]


def _check_threshold_case(soft_threshold, w, lam) -> None:
    what = f"soft_threshold(w of shape {tuple(w.shape)} and dtype {w.dtype}, lam={lam})"
    argument = w.clone()
    out = _zero_allowed(soft_threshold, (argument, lam), what, "lam") if lam == 0 else \
        call(soft_threshold, argument, lam, what=what)
    out = tensor(out, what, shape=tuple(w.shape), dtype=w.dtype, keep_graph=True)
    if out.untyped_storage().data_ptr() == argument.untyped_storage().data_ptr():
        fail("brain_like_costs.threshold_returns_input",
             f"{what} returned w itself (or a view of it), not a new tensor: whoever changes "
             "the result would change w too. Return a new tensor (e.g. `w.clone()` when "
             "nothing changes).")
    out = out.detach().clone()
    expected = _expected_soft_threshold(w, lam)
    tol = 1e-6 if w.dtype == _float64 else 1e-5
    if close(out, expected, tol):
        small = w.abs() <= lam
        if small.any() and not bool((out[small] == 0).all()):
            fail("brain_like_costs.threshold_not_exact_zero",
                 f"{what}: weights with |w| <= lam must become exactly 0, not just small "
                 f"(largest leftover {out[small].abs().max().item():.3g}).")
        return
    for mistake, message, wrong in _threshold_mistakes(w, lam):
        if close(out, wrong, tol):
            fail(mistake, f"{what}: {message}.")
    fail("brain_like_costs.threshold_wrong_value",
         f"{what} should be sign(w) max(|w| - lam, 0); {worst_entry(out, expected)}.")


@single_threaded
def check_soft_threshold(soft_threshold, seed: int = 0) -> None:
    """sign(w) max(|w| - lam, 0) on 1-, 2- and 3-D tensors with exact zeros and |w| = lam:
    exact zeros, signs kept, dtype kept, not in place, lam = 0 allowed, ValueError."""
    rng = _generator(seed)
    for dims in (2, 2, 1, 3):
        shape = tuple(int(n) for n in _randint(3, 7, (dims,), generator=rng))
        lam = 0.25 * int(_randint(1, 4, (1,), generator=rng))  # exact in binary
        w = _randn(shape, generator=rng, dtype=_float64)
        w.view(-1)[0] = 0.0  # a pruned weight
        w.view(-1)[1] = -lam  # exactly on the threshold
        _check_threshold_case(soft_threshold, w, lam)
    _check_threshold_case(soft_threshold, _randn((4, 5), generator=rng), 0.3)  # float32
    for lam in (0.002, 20.0):
        _unlimited(_check_threshold_case, soft_threshold, _wide((5, 6), rng), lam,
                   name="the weights or lam")
    w = _randn((3, 4), generator=rng, dtype=_float64)
    w[0, 0] = 0.0  # lam = 0 leaves every weight, also a zero one, as it is
    _check_threshold_case(soft_threshold, w, 0.0)
    # the example printed in the test cell
    _check_threshold_case(soft_threshold, _as_tensor([-1.5, -0.2, 0.0, 0.3, 2.0]), 0.5)
    _expect_value_error(
        soft_threshold,
        (_as_tensor([[1.0, 1.0], [1.0, 1.0]]), -0.5),
        "soft_threshold(w, lam=-0.5)",
        "lam must be >= 0 (it is a step size times a penalty coefficient)",
    )
