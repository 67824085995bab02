"""Checkers for assignment 03_cell_types.

The references are in `course_lib.cell_types` (Liu & Wang 2024, Methods) and
`course_lib.ei_balance` (Vogels et al. 2011, rate form)::

    M[i, j] = 1  if (type(j), type(i)) is an allowed (pre, post) pair, i != j
    W_rec   = (M ⊙ |W_plastic| + W_fixed) D          D = diag(sign of the presynaptic type)
    w_I'    = max(0, w_I + eta x (y - r0))

The expected values are computed here, with private references to the torch functions
taken at import (an answer cell that patches ``torch.abs`` changes nothing here). Each
checker also runs the example its test cell prints, so that printed value is asserted.
A submission that runs the course's reference code fails with ``cell_types.uses_reference``.
"""

from __future__ import annotations

import torch

from course_lib import cell_types, ei_balance
from course_lib.cell_types import CELL_TYPES
from course_lib.checks._common import (
    call,
    close,
    fail,
    finite_gradient,
    own_work,
    single_threaded,
    tensor,
    worst_entry,
)
from course_lib.checks._common import (
    generator as _generator,
)

# Private references (see the module docstring).
_tensor = torch.tensor
_rand = torch.rand
_randn = torch.randn
_randint = torch.randint
_randperm = torch.randperm
_relu = torch.relu
_where = torch.where
_clamp_min = torch.clamp_min
_zeros = torch.zeros
_ones = torch.ones
_eye = torch.eye
_equal = torch.equal
_sign = torch.sign
_grad = torch.autograd.grad
_float32 = torch.float32
_float64 = torch.float64
_Tensor = torch.Tensor
_type = type


_REFERENCES = (cell_types.type_mask, cell_types.cell_type_weight, ei_balance.vogels_update)


_own_work = own_work("cell_types", _REFERENCES)


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


# ---------------------------------------------------------------- part 1: type-to-type mask


def _type_mask(types, connections) -> torch.Tensor:
    """M[i, j] = 1 if (types[j], types[i]) is an allowed (pre, post) pair and i != j."""
    allowed = set(connections)
    n = len(types)
    mask = _zeros(n, n, dtype=_float64)
    for post in range(n):
        for pre in range(n):
            if post != pre and (types[pre], types[post]) in allowed:
                mask[post, pre] = 1.0
    return mask


def _random_types(n, rng):
    """Types in random order, at least one E_soma and one PV unit at random places."""
    picks = _randint(len(CELL_TYPES), (n,), generator=rng).tolist()
    types = [CELL_TYPES[k] for k in picks]
    order = _randperm(n, generator=rng).tolist()
    types[order[0]], types[order[1]] = "E_soma", "PV"
    return types


def _random_connections(rng):
    pairs = [(pre, post) for pre in CELL_TYPES for post in CELL_TYPES]
    keep = _rand(len(pairs), generator=rng) < 0.4
    chosen = [pair for pair, k in zip(pairs, keep.tolist(), strict=True) if k]
    return chosen + [("E_soma", "PV"), ("PV", "E_soma"), ("E_soma", "E_soma")]


def _mask_mistakes(types, connections):
    allowed = set(connections)
    n = len(types)
    expected = _type_mask(types, connections)
    with_diagonal = _tensor([[float((pre, post) in allowed) for pre in types] for post in types],
                            dtype=_float64)
    symmetric = _type_mask(types, list(allowed | {(post, pre) for pre, post in allowed}))
    return [
        ("cell_types.mask_transposed",
         "the mask is transposed: weights are (post, pre), so M[i, j] = 1 when the type of "
         "the presynaptic unit j may synapse onto the type of the postsynaptic unit i, i.e. "
         "(types[j], types[i]) is in connections",
         expected.T),
        ("cell_types.mask_diagonal", "a unit must not synapse onto itself: set the diagonal to 0",
         with_diagonal),
        ("cell_types.mask_undirected",
         "connections are directed (pre, post) pairs: ('SST', 'E_dend') allows SST -> "
         "dendrite, not dendrite -> SST",
         symmetric),
        ("cell_types.mask_inverted", "the mask is inverted: 1 marks an allowed synapse",
         (1 - expected) * (1 - _eye(n, dtype=_float64))),
        ("cell_types.mask_inverted", "the mask is inverted: 1 marks an allowed synapse",
         1 - expected),
        ("cell_types.mask_ignores_table",
         "the mask ignores the connection table: only the listed (pre, post) type pairs "
         "are allowed",
         1 - _eye(n, dtype=_float64)),
    ]


def _mask_cases(rng):
    cases = [(["E_soma", "E_soma", "PV", "SST"],
              [("E_soma", "E_soma"), ("E_soma", "PV"), ("PV", "E_soma"), ("SST", "PV")],
              "type_mask on the example above (expected [[0, 1, 1, 0], [1, 0, 1, 0], "
              "[1, 1, 0, 1], [0, 0, 0, 0]])")]
    for n in (6, 9, int(_randint(8, 16, (1,), generator=rng))):
        types = _random_types(n, rng)
        cases.append((types, _random_connections(rng),
                      f"type_mask(types, connections) with types = {types}"))
    cases.append((["VIP"], [("VIP", "VIP")], "type_mask(['VIP'], [('VIP', 'VIP')]) (one unit)"))
    types = _random_types(5, rng)
    cases.append((types, [], f"type_mask({types}, []) (an empty connection table)"))
    return cases


def _check_one_type_mask(fn, types, connections, what) -> None:
    n = len(types)
    types_arg, connections_arg = list(types), list(connections)
    out = tensor(call(fn, types_arg, connections_arg, what=what), what)
    if types_arg != types or connections_arg != connections:
        fail("common.in_place", f"{what} changed the list types or connections it was given "
             "(e.g. with .sort() or .append()): the caller still needs them as they were.")
    if tuple(out.shape) != (n, n):
        fail("common.wrong_shape",
             f"{what} returned shape {tuple(out.shape)}; it should be ({n}, {n}): one row per "
             "postsynaptic unit, one column per presynaptic unit.")
    values = out.to(_float64)
    if bool(((values != 0) & (values != 1)).any()):
        fail("cell_types.mask_not_binary", f"{what}: a mask contains only 0s and 1s.")
    expected = _type_mask(types, connections)
    if not _equal(values, expected):
        for mistake, message, wrong in _mask_mistakes(types, connections):
            if _equal(values, wrong):
                fail(mistake, f"{what}: {message}.")
        post, pre = (int(i) for i in (values != expected).nonzero()[0])
        fail("cell_types.mask_wrong_entry",
             f"{what}: mask[{post}, {pre}] is {values[post, pre].item():g} but should be "
             f"{expected[post, pre].item():g}, since the pair (pre, post) = ({types[pre]!r}, "
             f"{types[post]!r}) is {'' if expected[post, pre] else 'not '}in connections. "
             "Look up each unit's own type: the units are not sorted by type.")
    # a mask only multiplies weights: float32, bool or integer keep float32 weights float32
    if out.dtype != _float32 and (out.dtype.is_floating_point or out.dtype.is_complex):
        fail("common.wrong_dtype",
             f"{what} has dtype {out.dtype} but should be torch.float32 (torch.zeros' default)"
             " or bool: the mask multiplies float32 weights, and a float64 mask would turn "
             "them into float64.")


@single_threaded
@_own_work
def check_type_mask(type_mask_fn, seed: int = 0) -> None:
    """``type_mask(types, connections)``: the float32 (post, pre) 0/1 mask of allowed
    synapses, for units in any order, one unit, and an empty table."""
    for types, connections, what in _mask_cases(_generator(seed)):
        _check_one_type_mask(type_mask_fn, types, connections, what)


# ---------------------------------------------------------------- part 2: the weight


def _cell_type_weight(w, m, f, s):
    return (m * w.abs() + f) * s


def _weight_mistakes(w, m, f, s):
    return [
        ("cell_types.relu_not_abs",
         "use the absolute value |W_plastic| (torch.abs), as Liu & Wang do, not relu",
         (m * _relu(w) + f) * s),
        ("cell_types.plastic_not_abs",
         "the plastic weights must be made non-negative with |W_plastic|", (m * w + f) * s),
        ("cell_types.fixed_missing",
         "W_fixed is missing or was masked away: the fixed synapses sit exactly where M is 0, "
         "so add W_fixed after masking, M ⊙ |W_plastic| + W_fixed",
         m * w.abs() * s),
        ("cell_types.fixed_missing",
         "W_fixed is missing or was masked away: the fixed synapses sit exactly where M is 0, "
         "so add W_fixed after masking, M ⊙ |W_plastic| + W_fixed",
         m * (w.abs() + f) * s),
        ("cell_types.fixed_not_signed",
         "W_fixed must also be signed by D: the whole sum (M ⊙ |W_plastic| + W_fixed) is "
         "multiplied by D",
         m * w.abs() * s + f),
        ("cell_types.rows_not_columns",
         "the signs were applied to the rows (postsynaptic units); the sign belongs to the "
         "presynaptic unit, so D multiplies columns: (...) @ D",
         s[:, None] * (m * w.abs() + f)),
        ("cell_types.mask_not_applied", "the mask M was not applied to |W_plastic|",
         (w.abs() + f) * s),
        ("cell_types.signs_missing", "the signs D were not applied", m * w.abs() + f),
        ("cell_types.abs_after_signs",
         "take |W_plastic| before the signs: the absolute value of the signed weight makes "
         "every inhibitory weight positive",
         (m * (w * s).abs() + f * s)),
    ]


def _weight_cases(rng):
    example = (_tensor([[0.0, -2.0, 1.0], [0.5, 0.0, 3.0], [1.0, 1.0, 0.0]]),
               _tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]),
               _tensor([[0.0, 0.0, 0.0], [0.7, 0.0, 0.0], [0.0, 0.0, 0.0]]),
               _tensor([1.0, 1.0, -1.0]))
    cases = [(*example, "cell_type_weight on the example above (expected [[0, 2, -1], "
                        "[0.7, 0, -3], [1, 1, 0]])")]
    n_random = int(_randint(7, 15, (1,), generator=rng))
    for n, dtype, only in ((6, _float64, None), (10, _float64, None), (n_random, _float64, None),
                           (8, _float32, None), (5, _float64, 1.0), (4, _float64, -1.0),
                           (1, _float64, -1.0)):
        w = _randn(n, n, generator=rng, dtype=_float64)
        m = (_rand(n, n, generator=rng) < 0.5).to(_float64)
        m.fill_diagonal_(0.0)
        f = (_rand(n, n, generator=rng, dtype=_float64)
             * (_rand(n, n, generator=rng) < 0.3).to(_float64) * (1 - m))
        f.fill_diagonal_(0.0)
        if only is None:
            s = _where(_rand(n, generator=rng) < 0.5, 1.0, -1.0).to(_float64)
            s[0], s[1] = 1.0, -1.0
            f[2, 1] = f[3, 0] = 0.7  # fixed synapses from an I and an E column
            m[2, 1] = m[3, 0] = 0.0
        else:
            s = _ones(n, dtype=_float64) * only
        kind = {None: "", 1.0: ", all excitatory", -1.0: ", all inhibitory"}[only]
        cases.append((w.to(dtype), m.to(dtype), f.to(dtype), s.to(dtype),
                      f"cell_type_weight(w_plastic, mask, w_fixed, signs) with n = {n}, "
                      f"{_dtype_name(dtype)}{kind}"))
    # the printed example after a random case: its only fixed synapse leaves an
    # excitatory unit, so it cannot tell a missing D from an unsigned W_fixed
    cases.insert(1, cases.pop(0))
    return cases


def _check_weight_value(fn, w, m, f, s, what) -> None:
    tol = 1e-6 if w.dtype == _float64 else 1e-5  # a float32 computation must pass too
    out = tensor(call(fn, w.clone(), m.clone(), f.clone(), s.clone(), what=what), what)
    if tuple(out.shape) != tuple(w.shape):
        fail("common.wrong_shape",
             f"{what} returned shape {tuple(out.shape)}; it should be {tuple(w.shape)}.")
    if out.dtype != w.dtype:
        fail("common.wrong_dtype", f"{what} returned dtype {out.dtype} for a {w.dtype} "
             "w_plastic: keep its dtype.")
    exact = [t.to(_float64) for t in (w, m, f, s)]
    expected = _cell_type_weight(*exact)
    if not close(out, expected, tol):
        for mistake, message, wrong in _weight_mistakes(*exact):
            if close(out, wrong, tol):
                fail(mistake, f"{what}: {message}.")
        fail("cell_types.weight_wrong",
             f"{what} should be (mask * |w_plastic| + w_fixed) @ diag(signs); "
             f"{worst_entry(out, expected)}.")


def _check_weight_gradient(fn, w, m, f, s, what) -> None:
    """Trained through: d W / d w_plastic = mask * sign(w_plastic) * sign of the column."""
    leaf = w.clone().requires_grad_(True)
    out = tensor(call(fn, leaf, m.clone(), f.clone(), s.clone(), what=what), what,
                 keep_graph=True)
    if not out.requires_grad:
        fail("common.no_gradient",
             f"no gradient flows through {what}: do not detach w_plastic or use .data, numpy "
             "or torch.no_grad; the plastic weights are trained through this function.")
    upstream = _randn(w.shape, generator=_generator(3), dtype=w.dtype)
    (gradient,) = _grad(out, leaf, upstream, allow_unused=True)
    gradient = finite_gradient(gradient, what)
    expected = upstream * m * _sign(w) * s
    if bool((gradient[m == 0] != 0).any()):
        fail("cell_types.gradient_through_mask",
             f"the gradient of {what} with respect to w_plastic must be exactly zero where "
             "mask is 0 (a forbidden synapse is never trained).")
    if not close(gradient, expected, 1e-6):
        fail("cell_types.wrong_gradient",
             f"{what} has the right value but the wrong gradient with respect to w_plastic "
             f"({worst_entry(gradient, expected)}): it should be mask * sign(w_plastic) * "
             "sign of the column.")


@single_threaded
@_own_work
def check_cell_type_weight(weight_fn, seed: int = 0) -> None:
    """``cell_type_weight(w_plastic, mask, w_fixed, signs)`` = (M ⊙ |W_plastic| + W_fixed) D,
    in w_plastic's dtype, differentiable, without in-place changes."""
    cases = _weight_cases(_generator(seed))
    for *args, what in cases:  # values first: they name the mistake best
        _check_weight_value(weight_fn, *args, what)
    for *args, what in cases:
        _check_weight_gradient(weight_fn, *args, what)


# ---------------------------------------------------------------- part 3: Vogels rule


def _vogels(w, x, y, r0, eta):
    return _clamp_min(w + eta * x * (y - r0), 0.0)


def _vogels_mistakes(w, x, y, r0, eta):
    return [
        ("cell_types.vogels_sign_inverted",
         "the sign is inverted: when the output is too high (y > r0) the active inhibitory "
         "synapses must get stronger, w + eta x (y - r0)",
         _clamp_min(w - eta * x * (y - r0), 0.0)),
        ("cell_types.vogels_not_clamped",
         "inhibitory weights are magnitudes and must stay >= 0: clamp the result at 0 "
         "(torch.clamp_min)",
         w + eta * x * (y - r0)),
        ("cell_types.vogels_abs_not_clamp",
         "a weight that would go negative must be set to 0 (clamp), not flipped with abs",
         (w + eta * x * (y - r0)).abs()),
        ("cell_types.vogels_target_missing",
         "the rule compares the output with its target: use (y - r0), not y alone",
         _clamp_min(w + eta * x * y, 0.0)),
        ("cell_types.vogels_presynaptic_missing",
         "the change of synapse k is proportional to its own presynaptic rate x[k]: the "
         "factor x is missing",
         _clamp_min(w + eta * (y - r0), 0.0)),
        ("cell_types.vogels_returns_change", "return the new weights w_inh + Δw, not the change Δw",
         eta * x * (y - r0)),
        ("cell_types.vogels_multiplicative",
         "the update is additive, w + eta x (y - r0): do not multiply it by the weight",
         _clamp_min(w + eta * w * x * (y - r0), 0.0)),
        ("cell_types.vogels_upper_clamp",
         "the rule has no upper limit: clamp only at 0 from below, max(0, w + Δw)",
         (w + eta * x * (y - r0)).clamp(0.0, 1.0)),
    ]


def _vogels_cases(rng):
    """(w, x, y, r0, eta, what): the two printed examples, random cases above and below
    the target, weights above 1, eta = 0, y = r0, silent inputs, one synapse, float64 and
    float32, y as a number and as a 0-d tensor."""
    w, x = _tensor([0.2, 0.5, 0.01]), _tensor([1.0, 0.0, 2.0])
    cases = [(w, x, 7.0, 5.0, 0.1, "vogels_update on the first example above (y = 7, "
                                   "expected [0.4, 0.5, 0.41])"),
             (w, x, 3.0, 5.0, 0.1, "vogels_update on the second example above (y = 3, "
                                   "expected [0, 0.5, 0])")]
    for k in range(6):
        n = int(_randint(1 if k == 5 else 4, 12, (1,), generator=rng))
        dtype = _float32 if k == 3 else _float64
        w = _rand(n, generator=rng, dtype=_float64) * (4.0 if k >= 2 else 0.5)
        w[0] = 0.01  # close to zero, so a big negative step must be clamped
        x = _rand(n, generator=rng, dtype=_float64) * 2
        r0 = round(float(_rand(1, generator=rng)) * 4 + 1, 2)
        y = r0 + (3.0 if k % 2 == 0 else -3.0) * (float(_rand(1, generator=rng)) + 0.2)
        eta = round(float(_rand(1, generator=rng)) * 0.2 + 0.05, 3)
        y_arg = _tensor(y, dtype=dtype) if k in (0, 3) else y
        cases.append((w.to(dtype), x.to(dtype), y_arg, r0, eta,
                      f"vogels_update(w_inh, x, y={y:.4g}, r0={r0}, eta={eta}) with {n} "
                      f"synapses, {_dtype_name(dtype)}"))
    w = _rand(5, generator=rng, dtype=_float64) + 0.5
    x = _rand(5, generator=rng, dtype=_float64)
    cases += [(w, x, 4.0, 2.0, 0.0, "vogels_update(w_inh, x, y=4, r0=2, eta=0)"),
              (w, x, 2.0, 2.0, 0.1, "vogels_update(w_inh, x, y=2, r0=2, eta=0.1) (y = r0)"),
              (w, x * 0, 9.0, 2.0, 0.1, "vogels_update with silent inputs, x = 0")]
    return cases


def _check_one_vogels(fn, w, x, y, r0, eta, what) -> None:
    tol = 1e-6 if w.dtype == _float64 else 1e-5  # a float32 computation must pass too
    y_arg = y.clone() if _type(y) is _Tensor else y
    out = tensor(call(fn, w.clone(), x.clone(), y_arg, r0, eta, what=what), what)
    if tuple(out.shape) != tuple(w.shape):
        fail("common.wrong_shape",
             f"{what} returned shape {tuple(out.shape)}; it should have the shape of w_inh, "
             f"{tuple(w.shape)}: one weight per inhibitory synapse.")
    if out.dtype != w.dtype:
        fail("common.wrong_dtype", f"{what} returned dtype {out.dtype} for a {w.dtype} "
             "w_inh: keep its dtype.")
    exact_w, exact_x = w.to(_float64), x.to(_float64)
    exact_y = float(y)
    expected = _vogels(exact_w, exact_x, exact_y, r0, eta)
    if not close(out, expected, tol):
        for mistake, message, wrong in _vogels_mistakes(exact_w, exact_x, exact_y, r0, eta):
            if close(out, wrong, tol):
                fail(mistake, f"{what}: {message}.")
        fail("cell_types.vogels_wrong_value",
             f"{what} should be max(0, w_inh + eta x (y - r0)); {worst_entry(out, expected)}.")


@single_threaded
@_own_work
def check_vogels_update(update_fn, seed: int = 0) -> None:
    """``vogels_update(w_inh, x, y, r0, eta)`` = max(0, w_inh + eta x (y - r0))."""
    for *args, what in _vogels_cases(_generator(seed)):
        _check_one_vogels(update_fn, *args, what)
