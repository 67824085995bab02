"""Checkers for assignment 03_cell_types.

The references are in `course_lib.cell_types` (Liu & Wang 2024, Methods) and
`course_lib.ei_balance` (Vogels et al. 2011, rate form)::

    M[i, j] = 1  if (type(j), type(i)) is an allowed (pre, post) pair, i != j
    W_rec   = (M ⊙ |W_plastic| + W_fixed) D          D = diag(sign of the presynaptic type)
    w_I'    = max(0, w_I + eta x (y - r0))
"""

from __future__ import annotations

import torch

from course_lib._validate import make_generator
from course_lib.cell_types import CELL_TYPES, cell_type_weight, type_mask
from course_lib.checks._common import (
    as_tensor,
    call,
    close,
    fail,
    single_threaded,
    worst_entry,
)
from course_lib.ei_balance import vogels_update

# ---------------------------------------------------------------- part 1: type-to-type mask


def _random_types(n, rng):
    picks = torch.randint(len(CELL_TYPES), (n,), generator=rng).tolist()
    types = [CELL_TYPES[k] for k in picks]
    types[:2] = ["E_soma", "PV"]  # at least one E and one I unit
    return types


def _random_connections(rng):
    pairs = [(pre, post) for pre in CELL_TYPES for post in CELL_TYPES]
    keep = torch.rand(len(pairs), generator=rng) < 0.4
    chosen = [pair for pair, k in zip(pairs, keep.tolist(), strict=True) if k]
    return chosen + [("E_soma", "PV"), ("PV", "E_soma"), ("E_soma", "E_soma")]


def _mask_mistakes(types, connections):
    allowed = set(connections)
    n = len(types)
    transposed = type_mask(types, [(post, pre) for pre, post in connections])
    with_diagonal = torch.tensor(
        [[float((pre, post) in allowed) for pre in types] for post in types]
    )
    symmetric = type_mask(types, list(allowed | {(post, pre) for pre, post in allowed}))
    return [
        (
            "the mask is transposed: weights are (post, pre), so M[i, j] = 1 when the type "
            "of the presynaptic unit j may synapse onto the type of the postsynaptic unit i, "
            "i.e. (types[j], types[i]) is in connections",
            transposed,
        ),
        (
            "a unit must not synapse onto itself: set the diagonal to 0",
            with_diagonal,
        ),
        (
            "connections are directed (pre, post) pairs: ('SST', 'E_dend') allows SST -> "
            "dendrite, not dendrite -> SST",
            symmetric,
        ),
        ("the mask is inverted: 1 marks an allowed synapse", 1 - type_mask(types, connections)),
        (
            "the mask ignores the connection table: only the listed (pre, post) type pairs "
            "are allowed",
            1 - torch.eye(n),
        ),
    ]


@single_threaded
def check_type_mask(type_mask_fn, seed: int = 0) -> None:
    """``type_mask(types, connections)``: the (post, pre) 0/1 mask of allowed synapses."""
    rng = make_generator(seed)
    for n in (6, 9, int(torch.randint(8, 16, (1,), generator=rng))):
        types = _random_types(n, rng)
        connections = _random_connections(rng)
        what = f"type_mask(types, connections) with types = {types}"
        out = as_tensor(
            call(
                type_mask_fn, list(types), list(connections), what="type_mask(types, connections)"
            ),
            what,
        )
        if tuple(out.shape) != (n, n):
            fail(
                f"{what} returned shape {tuple(out.shape)}; it should be ({n}, {n}): "
                "one row per postsynaptic unit, one column per presynaptic unit."
            )
        values = out.detach().double()
        if bool(((values != 0) & (values != 1)).any()):
            fail(f"{what}: a mask contains only 0s and 1s.")
        expected = type_mask(types, connections).double()
        if torch.equal(values, expected):
            continue
        for message, wrong in _mask_mistakes(types, connections):
            if torch.equal(values, wrong.double()):
                fail(f"type_mask: {message}.")
        index = tuple(int(i) for i in (values != expected).nonzero()[0])
        post, pre = index
        fail(
            f"{what}: mask[{post}, {pre}] is {values[index].item():g} but should be "
            f"{expected[index].item():g}, since the pair (pre, post) = ({types[pre]!r}, "
            f"{types[post]!r}) is {'' if expected[index] else 'not '}in connections. "
            "Look up each unit's own type: the units are not sorted by type."
        )


# ---------------------------------------------------------------- part 2: the weight


def _weight_mistakes(w, m, f, s):
    return [
        (
            "use the absolute value |W_plastic| (torch.abs), as Liu & Wang do, not relu",
            (m * torch.relu(w) + f) * s,
        ),
        ("the plastic weights must be made non-negative with |W_plastic|", (m * w + f) * s),
        (
            "W_fixed is missing or was masked away: the fixed synapses sit exactly where "
            "M is 0, so add W_fixed after masking, M ⊙ |W_plastic| + W_fixed",
            m * w.abs() * s,
        ),
        (
            "W_fixed must also be signed by D: the whole sum (M ⊙ |W_plastic| + W_fixed) is "
            "multiplied by D",
            m * w.abs() * s + f,
        ),
        (
            "the signs were applied to the rows (postsynaptic units); the sign belongs to "
            "the presynaptic unit, so D multiplies columns: (...) @ D",
            s[:, None] * (m * w.abs() + f),
        ),
        ("the mask M was not applied to |W_plastic|", (w.abs() + f) * s),
        ("the signs D were not applied", m * w.abs() + f),
    ]


@single_threaded
def check_cell_type_weight(weight_fn, seed: int = 0) -> None:
    """``cell_type_weight(w_plastic, mask, w_fixed, signs)`` = (M ⊙ |W_plastic| + W_fixed) D."""
    rng = make_generator(seed)
    for n in (6, 10, int(torch.randint(7, 15, (1,), generator=rng))):
        w = torch.randn(n, n, generator=rng, dtype=torch.float64)
        m = (torch.rand(n, n, generator=rng) < 0.5).double()
        m.fill_diagonal_(0.0)
        f = (
            torch.rand(n, n, generator=rng, dtype=torch.float64)
            * (torch.rand(n, n, generator=rng) < 0.3).double()
            * (1 - m)
        )
        f.fill_diagonal_(0.0)
        s = torch.where(torch.rand(n, generator=rng) < 0.5, 1.0, -1.0).double()
        s[0], s[1] = 1.0, -1.0
        f[2, 1] = f[3, 0] = 0.7  # fixed synapses from an I and an E column
        m[2, 1] = m[3, 0] = 0.0
        what = f"cell_type_weight(w_plastic, mask, w_fixed, signs) with n = {n}"
        args = (w.clone().requires_grad_(True), m.clone(), f.clone(), s.clone())
        out = as_tensor(call(weight_fn, *args, what=what), what)
        if not torch.equal(args[0].detach(), w):
            fail(f"{what} changed w_plastic in place: compute a new tensor.")
        if tuple(out.shape) != (n, n):
            fail(f"{what} returned shape {tuple(out.shape)}; it should be ({n}, {n}).")
        expected = cell_type_weight(w, m, f, s)
        if not close(out.detach(), expected):
            for message, wrong in _weight_mistakes(w, m, f, s):
                if close(out.detach(), wrong):
                    fail(f"{what}: {message}.")
            fail(
                f"{what} should be (mask * |w_plastic| + w_fixed) @ diag(signs); "
                f"{worst_entry(out.detach(), expected)}."
            )
        if not out.requires_grad:
            fail(f"no gradient flows through {what}: do not detach w_plastic or use no_grad.")
        out.sum().backward()
        if args[0].grad is None or bool((args[0].grad[m == 0] != 0).any()):
            fail(
                "the gradient of the weight with respect to w_plastic must be exactly zero "
                "where mask is 0 (a forbidden synapse is never trained)."
            )


# ---------------------------------------------------------------- part 3: Vogels rule


def _vogels_mistakes(w, x, y, r0, eta):
    return [
        (
            "the sign is inverted: when the output is too high (y > r0) the active inhibitory "
            "synapses must get stronger, w + eta x (y - r0)",
            torch.clamp_min(w - eta * x * (y - r0), 0.0),
        ),
        (
            "inhibitory weights are magnitudes and must stay >= 0: clamp the result at 0 "
            "(torch.clamp_min)",
            w + eta * x * (y - r0),
        ),
        (
            "a weight that would go negative must be set to 0 (clamp), not flipped with abs",
            (w + eta * x * (y - r0)).abs(),
        ),
        (
            "the rule compares the output with its target: use (y - r0), not y alone",
            torch.clamp_min(w + eta * x * y, 0.0),
        ),
        (
            "the change of synapse k is proportional to its own presynaptic rate x[k]: "
            "the factor x is missing",
            torch.clamp_min(w + eta * (y - r0), 0.0),
        ),
        ("return the new weights w_inh + Δw, not the change Δw", eta * x * (y - r0)),
        (
            "the update is additive, w + eta x (y - r0): do not multiply it by the weight",
            torch.clamp_min(w + eta * w * x * (y - r0), 0.0),
        ),
    ]


@single_threaded
def check_vogels_update(update_fn, seed: int = 0) -> None:
    """``vogels_update(w_inh, x, y, r0, eta)`` = max(0, w_inh + eta x (y - r0))."""
    rng = make_generator(seed)
    cases = []
    for k in range(4):
        n = int(torch.randint(4, 12, (1,), generator=rng))
        w = torch.rand(n, generator=rng, dtype=torch.float64) * 0.5
        w[0] = 0.01  # close to zero, so a big negative step must be clamped
        x = torch.rand(n, generator=rng, dtype=torch.float64) * 2
        r0 = round(float(torch.rand(1, generator=rng)) * 4 + 1, 2)
        y = r0 + (3.0 if k % 2 == 0 else -3.0) * float(torch.rand(1, generator=rng) + 0.2)
        cases.append((w, x, torch.tensor(y, dtype=torch.float64), r0, 0.05))
    for w, x, y, r0, eta in cases:
        what = f"vogels_update(w_inh, x, y={float(y):.3g}, r0={r0}, eta={eta})"
        before = w.clone()
        out = as_tensor(call(update_fn, w, x.clone(), y.clone(), r0, eta, what=what), what)
        if not torch.equal(w, before):
            fail(f"{what} changed w_inh in place: return a new tensor.")
        if tuple(out.shape) != tuple(w.shape):
            fail(
                f"{what} returned shape {tuple(out.shape)}; it should have the shape of "
                f"w_inh, {tuple(w.shape)}: one weight per inhibitory synapse."
            )
        out = out.detach().double()
        expected = vogels_update(before, x, y, r0, eta)
        if close(out, expected):
            continue
        for message, wrong in _vogels_mistakes(before, x, y, r0, eta):
            if close(out, wrong):
                fail(f"{what}: {message}.")
        fail(f"{what} should be max(0, w_inh + eta x (y - r0)); {worst_entry(out, expected)}.")
