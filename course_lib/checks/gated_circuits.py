"""Checkers for assignment 09_gated_circuits.

The references are in `course_lib.gated_cells`:

- `sublstm_step` (Costa et al. 2017): gate blocks ``(i, f, z, o)``, all sigmoid,
  ``c' = f ⊙ c + z − i``, ``h' = σ(c') − o``; returns ``(h', c')``;
- `light_gru_step` (Ravanelli et al. 2018): ``z = σ(drive_z + U_z h)``,
  ``h̃ = ReLU(drive_h + U_h h)``, ``h' = z ⊙ h + (1 − z) ⊙ h̃``;
- `ei_sign_mask`: the fixed Dale sign mask of the EI-light-GRU, signs in columns
  (presynaptic), the first ``round(frac_excitatory * n)`` units excitatory, zero diagonal.

Weights are ``(post, pre)``, so a batch of row vectors ``h`` drives ``h @ W.T``.
"""

from __future__ import annotations

import itertools

import torch

from course_lib._validate import make_generator
from course_lib.checks._common import as_tensor, close, fail, single_threaded, worst_entry
from course_lib.gated_cells import ei_sign_mask as reference_ei_sign_mask
from course_lib.gated_cells import light_gru_step as reference_light_gru_step
from course_lib.gated_cells import lstm_step as reference_lstm_step
from course_lib.gated_cells import sublstm_step as reference_sublstm_step

GATES = ("i", "f", "z", "o")


def _call(fn, *args, what: str, weight_name: str):
    """Call the student's step; turn an exception into feedback (with a hint for the
    commonest one: a weight used without transposing it)."""
    try:
        return fn(*args)
    except NotImplementedError:
        fail(f"{what} is not implemented yet (it raised NotImplementedError).")
    except Exception as error:  # noqa: BLE001 - any error becomes feedback
        hint = ""
        if "shape" in str(error) or "size" in str(error):
            hint = (
                f" Weights are (post, pre): with a batch of row vectors h, the recurrent "
                f"drive is h @ {weight_name}.T."
            )
        fail(f"{what} raised {type(error).__name__}: {error}.{hint}")


def _unchanged(before: list[torch.Tensor], after: list[torch.Tensor], names: list[str], what):
    for name, b, a in zip(names, before, after, strict=True):
        if not torch.equal(b, a):
            fail(f"{what} changed its argument {name} in place: compute new tensors instead.")


# ---------------------------------------------------------------- part 1: subLSTM step


def _sublstm_parts(drive, h, c, w, order=GATES):
    pre = drive + h @ w.T
    blocks = dict(zip(order, pre.chunk(4, dim=-1), strict=True))
    return blocks["i"], blocks["f"], blocks["z"], blocks["o"]


def _sublstm_mistakes(drive, h, c, w):
    s = torch.sigmoid
    i, f, z, o = (s(x) for x in _sublstm_parts(drive, h, c, w))
    c_new = f * c + z - i
    c_tanh = f * c + torch.tanh(_sublstm_parts(drive, h, c, w)[2]) - i
    mistakes = [
        (
            "this is the multiplicative LSTM (c' = f⊙c + i⊙tanh(z), h' = o⊙tanh(c')); the "
            "subLSTM subtracts its gates: c' = f⊙c + z − i and h' = σ(c') − o",
            reference_lstm_step(drive, h, c, w),
        ),
        (
            "the candidate z must be a sigmoid, σ(...), like every subLSTM gate, not tanh",
            (s(c_tanh) - o, c_tanh),
        ),
        (
            "the input gate is subtracted from the candidate: c' = f⊙c + z − i, not f⊙c + i − z",
            (s(f * c + i - z) - o, f * c + i - z),
        ),
        (
            "the input gate must subtract, c' = f⊙c + z − i; z⊙i is the multiplicative LSTM's",
            (s(f * c + z * i) - o, f * c + z * i),
        ),
        (
            "the old cell state must be multiplied by the forget gate: c' = f⊙c + z − i",
            (s(c + z - i) - o, c + z - i),
        ),
        (
            "the output gate is subtracted: h' = σ(c') − o, not o − σ(c')",
            (o - s(c_new), c_new),
        ),
        (
            "the output gate must subtract, h' = σ(c') − o; σ(c')⊙o is multiplicative gating",
            (s(c_new) * o, c_new),
        ),
        (
            "the output squashes the cell state with a sigmoid: h' = σ(c') − o, not tanh(c') − o",
            (torch.tanh(c_new) - o, c_new),
        ),
        (
            "h' must use the new cell state c' (computed first), not the old c",
            (s(c) - o, c_new),
        ),
        (
            "return (h_new, c_new) in that order: you returned (c_new, h_new)",
            (c_new, s(c_new) - o),
        ),
    ]
    i0, f0, z0, o0 = (s(x) for x in _sublstm_parts(drive, 0 * h, c, w))
    c0 = f0 * c + z0 - i0
    mistakes.append(
        (
            "the recurrent input h @ weight_hh.T is missing: it enters every gate, "
            "[i, f, z, o] = σ(drive + h @ weight_hh.T)",
            (s(c0) - o0, c0),
        )
    )
    for order in itertools.permutations(GATES):
        if order == GATES:
            continue
        ip, fp, zp, op = (s(x) for x in _sublstm_parts(drive, h, c, w, order))
        cp = fp * c + zp - ip
        mistakes.append(
            (
                "the gate blocks are in the wrong order: drive and weight_hh stack them as "
                f"(i, f, z, o), you read them as ({', '.join(order)})",
                (s(cp) - op, cp),
            )
        )
    return mistakes


@single_threaded
def check_sublstm_step(sublstm_step, seed: int = 0) -> None:
    """Compare one subLSTM step with the reference on seeded cases; name the likely mistake."""
    rng = make_generator(seed)
    what = "sublstm_step(drive, h, c, weight_hh)"
    for batch, n_hidden in ((3, 4), (2, 5), (4, 3)):
        drive = 1.5 * torch.randn(batch, 4 * n_hidden, generator=rng, dtype=torch.float64)
        h = 2 * torch.rand(batch, n_hidden, generator=rng, dtype=torch.float64) - 1
        c = torch.randn(batch, n_hidden, generator=rng, dtype=torch.float64)
        w = torch.randn(4 * n_hidden, n_hidden, generator=rng, dtype=torch.float64)
        args = [drive, h, c, w]
        copies = [a.clone() for a in args]
        result = _call(sublstm_step, *copies, what=what, weight_name="weight_hh")
        _unchanged(args, copies, ["drive", "h", "c", "weight_hh"], what)
        if not (isinstance(result, tuple | list) and len(result) == 2):
            shape = f" of shape {tuple(result.shape)}" if hasattr(result, "shape") else ""
            fail(
                f"{what} must return the pair (h_new, c_new), got a {type(result).__name__}{shape}."
            )
        h_new = as_tensor(result[0], f"{what}[0]")
        c_new = as_tensor(result[1], f"{what}[1]")
        for name, value in (("h_new", h_new), ("c_new", c_new)):
            if tuple(value.shape) != (batch, n_hidden):
                fail(
                    f"{what} returned {name} of shape {tuple(value.shape)}; it should be "
                    f"(batch, n_hidden) = ({batch}, {n_hidden}) with drive "
                    f"{tuple(drive.shape)} and weight_hh {tuple(w.shape)}."
                )
        expected_h, expected_c = reference_sublstm_step(drive, h, c, w)
        if close(h_new, expected_h) and close(c_new, expected_c):
            continue
        for message, (wrong_h, wrong_c) in _sublstm_mistakes(drive, h, c, w):
            if close(h_new, wrong_h) and close(c_new, wrong_c):
                fail(f"{what}: {message}.")
        if close(h_new, expected_h):
            fail(
                f"{what}: h_new is right but c_new is not (c' = f⊙c + z − i); "
                f"{worst_entry(c_new, expected_c)}."
            )
        if close(c_new, expected_c):
            fail(
                f"{what}: c_new is right but h_new is not (h' = σ(c') − o); "
                f"{worst_entry(h_new, expected_h)}."
            )
        fail(
            f"{what} differs from the subLSTM (c' = f⊙c + z − i, h' = σ(c') − o): in c_new, "
            f"{worst_entry(c_new, expected_c)}."
        )


# ---------------------------------------------------------------- part 2: light-GRU step


def _light_gru_mistakes(dz, dh, h, wz, wh):
    s = torch.sigmoid
    z = s(dz + h @ wz.T)
    cand = torch.relu(dh + h @ wh.T)
    return [
        (
            "the mix is the wrong way round: h' = z⊙h + (1 − z)⊙h̃, so z is the share of the "
            "old state that is kept",
            (1 - z) * h + z * cand,
        ),
        (
            "the light-GRU candidate is ReLU(drive_h + U_h h), not tanh",
            z * h + (1 - z) * torch.tanh(dh + h @ wh.T),
        ),
        (
            "the candidate needs its ReLU: h̃ = ReLU(drive_h + U_h h)",
            z * h + (1 - z) * (dh + h @ wh.T),
        ),
        (
            "the update gate is a sigmoid: z = σ(drive_z + U_z h)",
            torch.relu(dz + h @ wz.T) * h + (1 - torch.relu(dz + h @ wz.T)) * cand,
        ),
        (
            "weight_z (U_z) drives the update gate and weight_h (U_h) the candidate: you "
            "swapped them",
            s(dz + h @ wh.T) * h + (1 - s(dz + h @ wh.T)) * torch.relu(dh + h @ wz.T),
        ),
        (
            "drive_z goes into the update gate and drive_h into the candidate: you swapped them",
            s(dh + h @ wz.T) * h + (1 - s(dh + h @ wz.T)) * torch.relu(dz + h @ wh.T),
        ),
        (
            "weights are (post, pre): the recurrent drive of a batch of row vectors is "
            "h @ W.T, not h @ W",
            s(dz + h @ wz) * h + (1 - s(dz + h @ wz)) * torch.relu(dh + h @ wh),
        ),
        (
            "the candidate is missing its recurrent input: h̃ = ReLU(drive_h + U_h h)",
            z * h + (1 - z) * torch.relu(dh),
        ),
        (
            "the update gate is missing its recurrent input: z = σ(drive_z + U_z h)",
            s(dz) * h + (1 - s(dz)) * cand,
        ),
        (
            "return the new state h' = z⊙h + (1 − z)⊙h̃, not the candidate h̃",
            cand,
        ),
    ]


@single_threaded
def check_light_gru_step(light_gru_step, seed: int = 0) -> None:
    """Compare one light-GRU step with the reference on seeded cases."""
    rng = make_generator(seed)
    what = "light_gru_step(drive_z, drive_h, h, weight_z, weight_h)"
    for batch, n_hidden in ((3, 4), (2, 6), (5, 3)):
        dz = torch.randn(batch, n_hidden, generator=rng, dtype=torch.float64)
        dh = torch.randn(batch, n_hidden, generator=rng, dtype=torch.float64)
        h = torch.rand(batch, n_hidden, generator=rng, dtype=torch.float64) * 2
        wz = torch.randn(n_hidden, n_hidden, generator=rng, dtype=torch.float64)
        wh = torch.randn(n_hidden, n_hidden, generator=rng, dtype=torch.float64)
        args = [dz, dh, h, wz, wh]
        copies = [a.clone() for a in args]
        out = _call(light_gru_step, *copies, what=what, weight_name="weight_z")
        _unchanged(args, copies, ["drive_z", "drive_h", "h", "weight_z", "weight_h"], what)
        if isinstance(out, tuple | list):
            fail(f"{what} must return one tensor, the new state h', not a {type(out).__name__}.")
        out = as_tensor(out, what)
        if tuple(out.shape) != (batch, n_hidden):
            fail(
                f"{what} returned shape {tuple(out.shape)}; it should be (batch, n_hidden) = "
                f"({batch}, {n_hidden})."
            )
        expected = reference_light_gru_step(dz, dh, h, wz, wh)
        if close(out, expected):
            continue
        for message, wrong in _light_gru_mistakes(dz, dh, h, wz, wh):
            if close(out, wrong):
                fail(f"{what}: {message}.")
        fail(
            f"{what} differs from h' = z⊙h + (1 − z)⊙ReLU(drive_h + U_h h) with "
            f"z = σ(drive_z + U_z h): {worst_entry(out, expected)}."
        )


# ---------------------------------------------------------------- part 3: E/I sign mask


def _describe_columns(mask: torch.Tensor) -> str:
    signs = []
    for j in range(mask.shape[1]):
        off = torch.cat([mask[:j, j], mask[j + 1 :, j]])
        signs.append("+" if (off > 0).all() else "-" if (off < 0).all() else "?")
    return "".join(signs)


@single_threaded
def check_ei_sign_mask(ei_sign_mask, seed: int = 0) -> None:
    """Check shape, values, column signs, the excitatory count, order and the diagonal."""
    rng = make_generator(seed)
    cases = [(10, 0.8), (7, 0.8), (6, 0.5)]
    while len(cases) < 7:
        n = int(torch.randint(4, 21, (1,), generator=rng))
        frac = [0.5, 0.6, 0.7, 0.75, 0.8, 0.9][int(torch.randint(0, 6, (1,), generator=rng))]
        if abs(frac * n - int(frac * n) - 0.5) > 0.05 and 1 <= round(frac * n) < n:
            cases.append((n, frac))
    for n, frac in cases:
        what = f"ei_sign_mask({n}, frac_excitatory={frac})"
        try:
            mask = ei_sign_mask(n, frac)
        except NotImplementedError:
            fail(f"{what} is not implemented yet (it raised NotImplementedError).")
        except Exception as error:  # noqa: BLE001
            fail(f"{what} raised {type(error).__name__}: {error}")
        mask = as_tensor(mask, what)
        if tuple(mask.shape) != (n, n):
            fail(f"{what} has shape {tuple(mask.shape)}; it should be (n_hidden, n_hidden).")
        values = mask.detach().double()
        bad = (values != 0) & (values != 1) & (values != -1)
        if bad.any():
            index = tuple(int(i) for i in bad.nonzero()[0])
            fail(
                f"{what}: every entry must be +1, -1 or 0, but entry {index} is "
                f"{values[index].item():.3g}."
            )
        diagonal = torch.diagonal(values)
        if diagonal.any():
            unit = int(diagonal.nonzero()[0])
            fail(
                f"{what}: the diagonal must be 0 (no autapses: a unit does not synapse onto "
                f"itself), but mask[{unit}, {unit}] = {diagonal[unit].item():g}."
            )
        expected = reference_ei_sign_mask(n, frac).double()
        if torch.equal(values, expected):
            continue
        n_e = round(frac * n)
        if torch.equal(values, expected.T):
            fail(
                f"{what}: the signs are in the rows. A sign belongs to the presynaptic unit, so "
                f"it fills a column: mask[i, j] is the sign of unit j (weights are (post, pre))."
            )
        if (values == 0).sum() > n:
            zero_col = int(((values == 0).sum(dim=0) > 1).nonzero()[0])
            fail(
                f"{what}: only the diagonal may be 0, but column {zero_col} has zeros off the "
                "diagonal: inhibitory columns are -1, not 0."
            )
        columns = _describe_columns(values)
        if "?" in columns:
            j = columns.index("?")
            fail(
                f"{what}: column {j} mixes signs. Every off-diagonal entry of column j is the "
                "sign of presynaptic unit j: all +1 (excitatory) or all -1 (inhibitory)."
            )
        got_e = columns.count("+")
        if torch.equal(values, -expected):
            fail(
                f"{what}: the signs are reversed: excitatory columns are +1 and inhibitory "
                "columns -1."
            )
        if got_e != n_e:
            hint = ""
            if got_e == int(frac * n):
                hint = " Use round(), not int(): int() always rounds down."
            elif got_e == round((1 - frac) * n):
                hint = " frac_excitatory is the fraction of excitatory units, not inhibitory."
            fail(
                f"{what} has {got_e} excitatory (+1) columns but should have "
                f"round({frac} * {n}) = {n_e}.{hint}"
            )
        fail(
            f"{what}: the first {n_e} units must be the excitatory ones (+1 columns) and the "
            f"last {n - n_e} the inhibitory ones; your column signs read {columns} "
            f"instead of {'+' * n_e}{'-' * (n - n_e)}."
        )
