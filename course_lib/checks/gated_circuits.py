"""Checkers for assignment 09_gated_circuits.

The references are in `course_lib.gated_cells`:

- `sublstm_step` (Costa et al. 2017): gate blocks ``(i, f, z, o)``, all sigmoid,
  ``c' = f ⊙ c + z − i``, ``h' = σ(c') − o``; returns ``(h', c')``;
- `light_gru_step` (Ravanelli et al. 2018): ``z = σ(drive_z + U_z h)``,
  ``h̃ = ReLU(drive_h + U_h h)``, ``h' = z ⊙ h + (1 − z) ⊙ h̃``;
- `ei_sign_mask`: the fixed Dale sign mask of the EI-light-GRU, signs in columns
  (presynaptic), the first ``round(frac_excitatory * n)`` units excitatory, zero diagonal.

Weights are ``(post, pre)``, so a batch of row vectors ``h`` drives ``h @ W.T``.

The step functions are checked the way a network uses them: float32 inputs (the result
keeps that dtype, or the next step would mix dtypes), several batch sizes and widths, a
zero initial state, saturating drives, and a backward pass (a recurrent network is trained
through every step, so the gradient must exist, be finite and be right). The expected
values are computed here in float64 from private references to torch's functions, so an
answer cell that patches ``torch.sigmoid`` changes nothing.
"""

from __future__ import annotations

import itertools
import math

import torch

from course_lib.checks._common import call, close, fail, single_threaded, tensor, worst_entry
from course_lib.checks._common import generator as _generator

# Private references (see `_common`): an answer cell cannot patch what the checker uses.
_sigmoid, _tanh, _relu = torch.sigmoid, torch.tanh, torch.relu
_leaky_relu = torch.nn.functional.leaky_relu
_randn, _rand, _randint, _zeros = torch.randn, torch.rand, torch.randint, torch.zeros
_cat, _diagonal, _equal, _isfinite = torch.cat, torch.diagonal, torch.equal, torch.isfinite
_grad = torch.autograd.grad
_float32, _float64 = torch.float32, torch.float64
_permutations = itertools.permutations
_ceil = math.ceil

GATES = ("i", "f", "z", "o")
TOL = 1e-5  # float32 work compared with a float64 expectation: about 100 float32 ulps


def _call_step(fn, *args, what: str, weight_name: str):
    """Call the student's step through `call`; a shape error gets the commonest cause
    (a weight used without its transpose) as a hint."""
    try:
        return call(fn, *args, what=what)
    except AssertionError as failure:
        message = getattr(failure, "message", str(failure))
        if getattr(failure, "mistake", "") == "common.raised" and (
            "shape" in message or "size" in message
        ):
            fail(
                "gated_circuits.shape_mismatch",
                f"{message}. Weights are (post, pre): with a batch of row vectors h, the "
                f"recurrent drive is h @ {weight_name}.T.",
            )
        raise


def _state(value, what: str, name: str, shape: tuple[int, int]) -> torch.Tensor:
    """One returned state: a float32 tensor of ``shape`` (graph kept for the backward pass)."""
    value = tensor(value, f"{what}: {name}", finite=False, keep_graph=True)
    if tuple(value.shape) != shape:
        fail(
            "common.wrong_shape",
            f"{what} returned {name} of shape {tuple(value.shape)}; it should be "
            f"(batch, n_hidden) = {shape}, like h.",
        )
    if value.dtype != _float32:
        fail(
            "common.wrong_dtype",
            f"{what} returned {name} of dtype {value.dtype}, but its inputs are float32: keep "
            "their dtype (no .double(), no integer conversion), because the next step "
            "multiplies the new state with the float32 weights.",
        )
    tensor(value, f"{what}: {name}")  # finite
    return value


def _check_gradients(student, expected, inputs, names, what: str, mistake: str,
                     compare: bool) -> None:
    """Back-propagate the same random weighting of the outputs through the student's and
    the expected computation; the gradients with respect to every input must exist, be
    finite and (if ``compare``; float32 gradients of saturated sigmoids are too coarse to
    compare) agree."""
    weighting = [_randn(e.shape, generator=_generator(7 + k), dtype=_float64)
                 for k, e in enumerate(expected)]
    if not all(s.requires_grad for s in student):
        fail("common.no_gradient", f"{what}: the result does not depend differentiably on the "
             "inputs (no gradient flows back); do not detach, use .data, torch.no_grad() or "
             "numpy inside the step: the network is trained through it.")
    loss = sum((s.double() * g).sum() for s, g in zip(student, weighting, strict=True))
    try:
        got = _grad(loss, inputs[0], allow_unused=True)
    except RuntimeError as error:  # e.g. a tensor of the graph changed in place
        fail("common.raised", f"{what}: the backward pass through your step raised "
             f"RuntimeError: {error}")
    loss = sum((e * g).sum() for e, g in zip(expected, weighting, strict=True))
    want = _grad(loss, inputs[1], allow_unused=True)
    for name, g, w in zip(names, got, want, strict=True):
        if g is None:
            fail("common.no_gradient", f"{what}: no gradient flows back to {name}; do not "
                 "detach it, use .data or convert it to numpy inside the step.")
        if not bool(_isfinite(g).all()):
            fail("common.gradient_not_finite", f"{what}: the gradient with respect to {name} "
                 "contains NaN or inf, although the values are finite; a hand-written sigmoid "
                 "1 / (1 + exp(-x)) overflows for large drives: use torch.sigmoid.")
        if compare and not close(g, w, TOL):
            fail(mistake, f"{what}: the values are right but the gradient with respect to "
                 f"{name} is not ({worst_entry(g, w)}): part of the computation is cut out of "
                 "the graph or replaced by a constant.")


def _leaves(args, dtype=_float64):
    return [a.detach().to(dtype).requires_grad_(True) for a in args]


# ---------------------------------------------------------------- part 1: subLSTM step


def _blocks(drive, h, w, order=GATES):
    pre = drive + h @ w.T
    blocks = dict(zip(order, pre.chunk(4, dim=-1), strict=True))
    return [blocks[g] for g in GATES]


def _sublstm(drive, h, c, w):
    """The subLSTM step (Costa et al. 2017), computed here."""
    i, f, z, o = (_sigmoid(x) for x in _blocks(drive, h, w))
    c_new = f * c + z - i
    return _sigmoid(c_new) - o, c_new


def _sublstm_mistakes(drive, h, c, w):
    """(mistake id, message, (h', c')) of plausible wrong subLSTMs, most specific first."""
    s = _sigmoid
    raw = _blocks(drive, h, w)
    i, f, z, o = (s(x) for x in raw)
    c_new = f * c + z - i

    def cell(c_next):
        return s(c_next) - o, c_next

    ri, rf, rz, ro = raw
    lstm_c = s(rf) * c + s(ri) * _tanh(rz)
    mistakes = [
        ("gated_circuits.sublstm_is_multiplicative_lstm",
         "this is the multiplicative LSTM (c' = f⊙c + i⊙tanh(z), h' = o⊙tanh(c')); the "
         "subLSTM subtracts its gates: c' = f⊙c + z − i and h' = σ(c') − o",
         (s(ro) * _tanh(lstm_c), lstm_c)),
        ("gated_circuits.sublstm_tanh_candidate",
         "the candidate z must be a sigmoid, σ(...), like every subLSTM gate, not tanh",
         cell(f * c + _tanh(rz) - i)),
        ("gated_circuits.sublstm_input_gate_sign",
         "the input gate is subtracted from the candidate: c' = f⊙c + z − i, not f⊙c + i − z",
         cell(f * c + i - z)),
        ("gated_circuits.sublstm_input_gate_multiplies",
         "the input gate must subtract, c' = f⊙c + z − i; z⊙i is the multiplicative LSTM's",
         cell(f * c + z * i)),
        ("gated_circuits.sublstm_forget_gate_missing",
         "the old cell state must be multiplied by the forget gate: c' = f⊙c + z − i",
         cell(c + z - i)),
        ("gated_circuits.sublstm_forget_gate_inverted",
         "the forget gate is the share of the old cell state that is kept: c' = f⊙c + z − i, "
         "not (1 − f)⊙c + z − i",
         cell((1 - f) * c + z - i)),
        ("gated_circuits.sublstm_forget_gate_on_h",
         "the forget gate multiplies the old cell state c, not the hidden state h: "
         "c' = f⊙c + z − i",
         cell(f * h + z - i)),
        ("gated_circuits.sublstm_gates_multiply",
         "both gates multiply (c' = f⊙c + i⊙z, h' = σ(c')⊙o): that is multiplicative "
         "gating; the subLSTM subtracts them: c' = f⊙c + z − i and h' = σ(c') − o",
         (s(f * c + i * z) * o, f * c + i * z)),
        ("gated_circuits.sublstm_output_gate_sign",
         "the output gate is subtracted: h' = σ(c') − o, not o − σ(c')",
         (o - s(c_new), c_new)),
        ("gated_circuits.sublstm_output_gate_multiplies",
         "the output gate must subtract, h' = σ(c') − o; σ(c')⊙o is multiplicative gating",
         (s(c_new) * o, c_new)),
        ("gated_circuits.sublstm_tanh_output",
         "the output squashes the cell state with a sigmoid: h' = σ(c') − o, not tanh(c') − o",
         (_tanh(c_new) - o, c_new)),
        ("gated_circuits.sublstm_output_not_squashed",
         "the output squashes the new cell state: h' = σ(c') − o, not c' − o",
         (c_new - o, c_new)),
        ("gated_circuits.sublstm_output_uses_old_cell",
         "h' must use the new cell state c' (computed first), not the old c",
         (s(c) - o, c_new)),
        ("gated_circuits.sublstm_outputs_swapped",
         "return (h_new, c_new) in that order: you returned (c_new, h_new)",
         (c_new, s(c_new) - o)),
    ]
    squashed = (i, f, z, o)
    for k, gate in enumerate(GATES):  # one gate left without its sigmoid
        gates = list(squashed)
        gates[k] = raw[k]
        gi, gf, gz, go = gates
        c_k = gf * c + gz - gi
        mistakes.append(
            ("gated_circuits.sublstm_gate_without_sigmoid",
             f"the {gate} block needs its sigmoid: every subLSTM gate, including the "
             "candidate z, is σ(drive + h @ weight_hh.T)",
             (s(c_k) - go, c_k)))
    outside = [s(x) + r for x, r in zip(_blocks(drive, 0 * h, w), _blocks(0 * drive, h, w),
                                        strict=True)]
    c_out = outside[1] * c + outside[2] - outside[0]
    mistakes.append(
        ("gated_circuits.sublstm_recurrence_outside_sigmoid",
         "the recurrent input belongs inside the sigmoid, with the feedforward drive: "
         "[i, f, z, o] = σ(drive + h @ weight_hh.T), not σ(drive) + h @ weight_hh.T",
         (s(c_out) - outside[3], c_out)))
    ic, fc, zc, oc = (s(x) for x in _blocks(drive, c, w))
    c_c = fc * c + zc - ic
    mistakes.append(
        ("gated_circuits.sublstm_recurrence_from_cell",
         "the recurrent input comes from the hidden state h, not the cell state c: "
         "σ(drive + h @ weight_hh.T)",
         (s(c_c) - oc, c_c)))
    pre = drive + h @ w.T
    ii, fi, zi, oi = s(pre.reshape(pre.shape[0], -1, 4)).unbind(-1)
    c_i = fi * c + zi - ii
    mistakes.append(
        ("gated_circuits.sublstm_blocks_interleaved",
         "the four gates are contiguous blocks of n_hidden columns (i first, then f, z, o): "
         "split the last dimension with chunk(4, dim=-1), not reshape(batch, n_hidden, 4), "
         "which reads every fourth column",
         (s(c_i) - oi, c_i)))
    i0, f0, z0, o0 = (s(x) for x in _blocks(drive, 0 * h, w))
    c0 = f0 * c + z0 - i0
    mistakes.append(
        ("gated_circuits.sublstm_recurrence_missing",
         "the recurrent input h @ weight_hh.T is missing: it enters every gate, "
         "[i, f, z, o] = σ(drive + h @ weight_hh.T)",
         (s(c0) - o0, c0)))
    for order in _permutations(GATES):
        if order == GATES:
            continue
        ip, fp, zp, op = (s(x) for x in _blocks(drive, h, w, order))
        cp = fp * c + zp - ip
        mistakes.append(
            ("gated_circuits.sublstm_gate_order",
             "the gate blocks are in the wrong order: drive and weight_hh stack them as "
             f"(i, f, z, o), you read them as ({', '.join(order)})",
             (s(cp) - op, cp)))
    return mistakes


def _sublstm_case(rng, batch, n_hidden, scale=1.5, zero_state=False):
    drive = scale * _randn(batch, 4 * n_hidden, generator=rng)
    h = 2 * _rand(batch, n_hidden, generator=rng) - 1
    c = _randn(batch, n_hidden, generator=rng)
    w = _randn(4 * n_hidden, n_hidden, generator=rng)
    if zero_state:
        h, c = 0 * h, 0 * c
    return [drive, h, c, w]


def _sublstm_result(sublstm_step, args, what):
    batch, n_hidden = args[1].shape
    result = _call_step(sublstm_step, *args, what=what, weight_name="weight_hh")
    if not (type(result) in (tuple, list) and len(result) == 2):
        shape = f" of shape {tuple(result.shape)}" if isinstance(result, torch.Tensor) else ""
        fail("gated_circuits.sublstm_not_a_pair",
             f"{what} must return the pair (h_new, c_new), got a {type(result).__name__}"
             f"{shape}.")
    return (_state(result[0], what, "h_new", (batch, n_hidden)),
            _state(result[1], what, "c_new", (batch, n_hidden)))


@single_threaded
def check_sublstm_step(sublstm_step, seed: int = 0) -> None:
    """Compare one subLSTM step with the subLSTM equations on seeded float32 cases (values
    and gradients); name the likely mistake."""
    rng = _generator(seed)
    what = "sublstm_step(drive, h, c, weight_hh)"
    cases = [dict(batch=3, n_hidden=4), dict(batch=2, n_hidden=5), dict(batch=1, n_hidden=1),
             dict(batch=5, n_hidden=2), dict(batch=4, n_hidden=3, zero_state=True)]
    for case in cases:
        args = _sublstm_case(rng, **case)
        h_new, c_new = (v.detach().double() for v in _sublstm_result(sublstm_step, args, what))
        wide = [a.double() for a in args]
        expected_h, expected_c = _sublstm(*wide)
        if close(h_new, expected_h, TOL) and close(c_new, expected_c, TOL):
            continue
        for mistake, message, (wrong_h, wrong_c) in _sublstm_mistakes(*wide):
            if close(h_new, wrong_h, TOL) and close(c_new, wrong_c, TOL):
                fail(mistake, f"{what}: {message}.")
        if close(h_new, expected_h, TOL):
            fail("gated_circuits.sublstm_cell_wrong",
                 f"{what}: h_new is right but c_new is not (c' = f⊙c + z − i); "
                 f"{worst_entry(c_new, expected_c)}.")
        if close(c_new, expected_c, TOL):
            fail("gated_circuits.sublstm_hidden_wrong",
                 f"{what}: c_new is right but h_new is not (h' = σ(c') − o); "
                 f"{worst_entry(h_new, expected_h)}.")
        fail("gated_circuits.sublstm_wrong",
             f"{what} differs from the subLSTM (c' = f⊙c + z − i, h' = σ(c') − o): in c_new, "
             f"{worst_entry(c_new, expected_c)}.")
    # Training goes through the step: gradients with ordinary and with saturating drives.
    for scale in (1.5, 100.0):
        args = _sublstm_case(rng, 3, 4, scale=scale)
        leaves, wide = _leaves(args, _float32), _leaves(args)
        label = f"{what} with drives of size ~{scale:g}"
        student = _sublstm_result(sublstm_step, leaves, label)
        expected = _sublstm(*wide)
        pairs = zip(student, expected, strict=True)
        if not all(close(s.detach(), e.detach(), TOL) for s, e in pairs):
            fail("gated_circuits.sublstm_saturation_wrong",
                 f"{label}: the values differ from c' = f⊙c + z − i, h' = σ(c') − o when the "
                 "gates saturate: compute every gate with torch.sigmoid "
                 f"({worst_entry(student[1].detach(), expected[1].detach())} in c_new).")
        _check_gradients(student, expected, (leaves, wide), ("drive", "h", "c", "weight_hh"),
                         label, "gated_circuits.sublstm_gradient_wrong", compare=scale < 10)


# ---------------------------------------------------------------- part 2: light-GRU step


def _light_gru(dz, dh, h, wz, wh):
    """The light-GRU step (Ravanelli et al. 2018), computed here."""
    z = _sigmoid(dz + h @ wz.T)
    return z * h + (1 - z) * _relu(dh + h @ wh.T)


def _light_gru_mistakes(dz, dh, h, wz, wh):
    s, relu = _sigmoid, _relu
    z = s(dz + h @ wz.T)
    cand = relu(dh + h @ wh.T)
    return [
        ("gated_circuits.light_gru_mix_reversed",
         "the mix is the wrong way round: h' = z⊙h + (1 − z)⊙h̃, so z is the share of the "
         "old state that is kept",
         (1 - z) * h + z * cand),
        ("gated_circuits.light_gru_tanh_candidate",
         "the light-GRU candidate is ReLU(drive_h + U_h h), not tanh",
         z * h + (1 - z) * _tanh(dh + h @ wh.T)),
        ("gated_circuits.light_gru_sigmoid_candidate",
         "the light-GRU candidate is ReLU(drive_h + U_h h), not a sigmoid",
         z * h + (1 - z) * s(dh + h @ wh.T)),
        ("gated_circuits.light_gru_candidate_not_relu",
         "the candidate is ReLU(drive_h + U_h h), which is 0 for a negative drive: not its "
         "absolute value",
         z * h + (1 - z) * (dh + h @ wh.T).abs()),
        ("gated_circuits.light_gru_candidate_not_relu",
         "the candidate is ReLU(drive_h + U_h h), which is 0 for a negative drive: not a "
         "leaky ReLU",
         z * h + (1 - z) * _leaky_relu(dh + h @ wh.T)),
        ("gated_circuits.light_gru_relu_before_recurrence",
         "the ReLU acts on the whole candidate drive: h̃ = ReLU(drive_h + U_h h), not "
         "ReLU(drive_h) + U_h h",
         z * h + (1 - z) * (relu(dh) + h @ wh.T)),
        ("gated_circuits.light_gru_sigmoid_before_recurrence",
         "the sigmoid acts on the whole gate drive: z = σ(drive_z + U_z h), not "
         "σ(drive_z) + U_z h",
         (s(dz) + h @ wz.T) * h + (1 - (s(dz) + h @ wz.T)) * cand),
        ("gated_circuits.light_gru_candidate_not_gated",
         "the candidate is weighted by (1 − z): h' = z⊙h + (1 − z)⊙h̃, not z⊙h + h̃",
         z * h + cand),
        ("gated_circuits.light_gru_candidate_without_relu",
         "the candidate needs its ReLU: h̃ = ReLU(drive_h + U_h h)",
         z * h + (1 - z) * (dh + h @ wh.T)),
        ("gated_circuits.light_gru_gate_not_sigmoid",
         "the update gate is a sigmoid: z = σ(drive_z + U_z h)",
         relu(dz + h @ wz.T) * h + (1 - relu(dz + h @ wz.T)) * cand),
        ("gated_circuits.light_gru_gate_not_sigmoid",
         "the update gate is a sigmoid: z = σ(drive_z + U_z h), not the raw drive",
         (dz + h @ wz.T) * h + (1 - (dz + h @ wz.T)) * cand),
        ("gated_circuits.light_gru_weights_swapped",
         "weight_z (U_z) drives the update gate and weight_h (U_h) the candidate: you "
         "swapped them",
         s(dz + h @ wh.T) * h + (1 - s(dz + h @ wh.T)) * relu(dh + h @ wz.T)),
        ("gated_circuits.light_gru_drives_swapped",
         "drive_z goes into the update gate and drive_h into the candidate: you swapped them",
         s(dh + h @ wz.T) * h + (1 - s(dh + h @ wz.T)) * relu(dz + h @ wh.T)),
        ("gated_circuits.light_gru_weights_not_transposed",
         "weights are (post, pre): the recurrent drive of a batch of row vectors is "
         "h @ W.T, not h @ W",
         s(dz + h @ wz) * h + (1 - s(dz + h @ wz)) * relu(dh + h @ wh)),
        ("gated_circuits.light_gru_weights_not_transposed",
         "weights are (post, pre): the update gate's recurrent drive is h @ weight_z.T, "
         "not h @ weight_z",
         s(dz + h @ wz) * h + (1 - s(dz + h @ wz)) * cand),
        ("gated_circuits.light_gru_weights_not_transposed",
         "weights are (post, pre): the candidate's recurrent drive is h @ weight_h.T, "
         "not h @ weight_h",
         z * h + (1 - z) * relu(dh + h @ wh)),
        ("gated_circuits.light_gru_candidate_recurrence_missing",
         "the candidate is missing its recurrent input: h̃ = ReLU(drive_h + U_h h)",
         z * h + (1 - z) * relu(dh)),
        ("gated_circuits.light_gru_gate_recurrence_missing",
         "the update gate is missing its recurrent input: z = σ(drive_z + U_z h)",
         s(dz) * h + (1 - s(dz)) * cand),
        ("gated_circuits.light_gru_returns_candidate",
         "return the new state h' = z⊙h + (1 − z)⊙h̃, not the candidate h̃",
         cand),
        ("gated_circuits.light_gru_old_state_not_gated",
         "the old state is gated too: h' = z⊙h + (1 − z)⊙h̃, not h + (1 − z)⊙h̃",
         h + (1 - z) * cand),
    ]


def _light_gru_case(rng, batch, n_hidden, scale=1.0, zero_state=False):
    dz = scale * _randn(batch, n_hidden, generator=rng)
    dh = scale * _randn(batch, n_hidden, generator=rng)
    h = 3 * _rand(batch, n_hidden, generator=rng) - 1  # the instructions allow any sign
    wz = _randn(n_hidden, n_hidden, generator=rng)
    wh = _randn(n_hidden, n_hidden, generator=rng)
    if zero_state:
        h = 0 * h
    return [dz, dh, h, wz, wh]


def _light_gru_result(light_gru_step, args, what):
    out = _call_step(light_gru_step, *args, what=what, weight_name="weight_z")
    if type(out) in (tuple, list):
        fail("gated_circuits.light_gru_not_one_tensor",
             f"{what} must return one tensor, the new state h', not a {type(out).__name__}.")
    return _state(out, what, "h'", tuple(args[2].shape))


@single_threaded
def check_light_gru_step(light_gru_step, seed: int = 0) -> None:
    """Compare one light-GRU step with its equations on seeded float32 cases (values and
    gradients); name the likely mistake."""
    rng = _generator(seed)
    what = "light_gru_step(drive_z, drive_h, h, weight_z, weight_h)"
    cases = [dict(batch=3, n_hidden=4), dict(batch=2, n_hidden=6), dict(batch=1, n_hidden=1),
             dict(batch=5, n_hidden=3), dict(batch=4, n_hidden=2, zero_state=True)]
    for case in cases:
        args = _light_gru_case(rng, **case)
        out = _light_gru_result(light_gru_step, args, what).detach().double()
        wide = [a.double() for a in args]
        expected = _light_gru(*wide)
        if close(out, expected, TOL):
            continue
        for mistake, message, wrong in _light_gru_mistakes(*wide):
            if close(out, wrong, TOL):
                fail(mistake, f"{what}: {message}.")
        fail("gated_circuits.light_gru_wrong",
             f"{what} differs from h' = z⊙h + (1 − z)⊙ReLU(drive_h + U_h h) with "
             f"z = σ(drive_z + U_z h): {worst_entry(out, expected)}.")
    for scale in (1.0, 100.0):
        args = _light_gru_case(rng, 3, 4, scale=scale)
        leaves, wide = _leaves(args, _float32), _leaves(args)
        label = f"{what} with drives of size ~{scale:g}"
        student = _light_gru_result(light_gru_step, leaves, label)
        expected = _light_gru(*wide)
        # the candidate grows with the drive, and so does float32's rounding error
        if not close(student.detach(), expected.detach(), TOL * scale):
            fail("gated_circuits.light_gru_saturation_wrong",
                 f"{label}: the values differ from h' = z⊙h + (1 − z)⊙ReLU(drive_h + U_h h) "
                 "for large drives: do not cap the candidate, and compute z with torch.sigmoid "
                 f"({worst_entry(student.detach(), expected.detach())}).")
        _check_gradients([student], [expected], (leaves, wide),
                         ("drive_z", "drive_h", "h", "weight_z", "weight_h"), label,
                         "gated_circuits.light_gru_gradient_wrong", compare=scale < 10)


# ---------------------------------------------------------------- part 3: E/I sign mask


def _sign_mask(n: int, frac: float) -> torch.Tensor:
    """The expected mask, computed here (float64)."""
    n_e = round(frac * n)
    mask = _zeros(n, n, dtype=_float64)
    mask[:, :n_e] = 1.0
    mask[:, n_e:] = -1.0
    mask.fill_diagonal_(0.0)
    return mask


def _column_signs(mask: torch.Tensor) -> str:
    """'+' / '-' / '?' per column, from its off-diagonal entries."""
    signs = []
    for j in range(mask.shape[1]):
        off = _cat([mask[:j, j], mask[j + 1 :, j]])
        signs.append("+" if (off > 0).all() else "-" if (off < 0).all() else "?")
    return "".join(signs)


def _count_mistake(got_e: int, n: int, frac: float) -> tuple[str, str]:
    """(mistake id, hint) for a wrong number of excitatory units; a cause is named only
    when it alone explains the count."""
    causes = [(cause, hint) for cause, hint, count in (
        ("gated_circuits.mask_count_int_not_round",
         " Use round(), not int(): int() always rounds down.", int(frac * n)),
        ("gated_circuits.mask_count_ceil_not_round",
         " Use round(), not math.ceil(): ceil() always rounds up.", _ceil(frac * n)),
        ("gated_circuits.mask_count_of_inhibitory",
         " frac_excitatory is the fraction of excitatory units, not inhibitory.",
         round((1 - frac) * n)),
    ) if count == got_e]
    if len(causes) == 1:
        return causes[0]
    return "gated_circuits.mask_count_wrong", "".join(hint for _, hint in causes)


def _mask_cases(rng) -> list[tuple[int, float | None]]:
    """Fixed cases (the smallest network, the default fraction, int() != round(),
    ceil() != round()) and seeded ones; no fraction whose product with n is close to a
    tie x.5, where round() and rounding half up would disagree."""
    cases = [(10, 0.8), (7, 0.8), (6, 0.5), (2, 0.5), (9, 0.7), (3, 0.4), (9, None)]
    fracs = (0.5, 0.6, 0.7, 0.75, 0.8, 0.9)
    while len(cases) < 10:
        n = int(_randint(4, 21, (1,), generator=rng))
        frac = fracs[int(_randint(0, len(fracs), (1,), generator=rng))]
        if abs(frac * n - int(frac * n) - 0.5) > 0.05 and 1 <= round(frac * n) < n:
            cases.append((n, frac))
    return cases


@single_threaded
def check_ei_sign_mask(ei_sign_mask, seed: int = 0) -> None:
    """Check dtype, shape, values, the diagonal, column signs, the excitatory count and
    their order on fixed and seeded sizes."""
    rng = _generator(seed)
    for n, frac in _mask_cases(rng):
        if frac is None:  # the default fraction, 0.8
            what = f"ei_sign_mask({n})"
            mask = call(ei_sign_mask, n, what=what)
            frac = 0.8
        else:
            what = f"ei_sign_mask({n}, frac_excitatory={frac})"
            mask = call(ei_sign_mask, n, frac, what=what)
        mask = tensor(mask, what, finite=False, keep_graph=True)
        if mask.requires_grad:
            fail("gated_circuits.mask_trainable",
                 f"{what} requires a gradient (an nn.Parameter, or requires_grad=True): the "
                 "sign mask is fixed, so return a plain tensor. A mask that is a parameter "
                 "is trained with the weights, and its signs drift away from Dale's law.")
        mask = mask.detach().clone()
        if tuple(mask.shape) != (n, n):
            fail("common.wrong_shape",
                 f"{what} has shape {tuple(mask.shape)}; it should be (n_hidden, n_hidden) = "
                 f"({n}, {n}).")
        if mask.dtype != _float32:
            hint = ("an integer or boolean mask cannot multiply the float weights in every "
                    "operation" if not mask.dtype.is_floating_point else
                    "a float64 mask turns the float32 weights it multiplies into float64")
            fail("gated_circuits.mask_not_float32",
                 f"{what} has dtype {mask.dtype}; it must be float32, torch's default ({hint}).")
        values = mask.double()
        bad = (values != 0) & (values != 1) & (values != -1)
        if bad.any():
            index = tuple(int(i) for i in bad.nonzero()[0])
            fail("gated_circuits.mask_values_not_signs",
                 f"{what}: every entry must be +1, -1 or 0, but entry {index} is "
                 f"{values[index].item():.3g}.")
        diagonal = _diagonal(values)
        if diagonal.any():
            unit = int(diagonal.nonzero()[0])
            fail("gated_circuits.mask_autapses",
                 f"{what}: the diagonal must be 0 (no autapses: a unit does not synapse onto "
                 f"itself), but mask[{unit}, {unit}] = {diagonal[unit].item():g}.")
        expected = _sign_mask(n, frac)
        if _equal(values, expected):
            continue
        n_e = round(frac * n)
        if _equal(values, expected.T):
            fail("gated_circuits.mask_signs_in_rows",
                 f"{what}: the signs are in the rows. A sign belongs to the presynaptic unit, "
                 "so it fills a column: mask[i, j] is the sign of unit j (weights are "
                 "(post, pre)).")
        if (values == 0).sum() > n:
            zero_col = int(((values == 0).sum(dim=0) > 1).nonzero()[0])
            fail("gated_circuits.mask_inhibitory_zero",
                 f"{what}: only the diagonal may be 0, but column {zero_col} has zeros off the "
                 "diagonal: inhibitory columns are -1, not 0.")
        columns = _column_signs(values)
        if "?" in columns:
            j = columns.index("?")
            fail("gated_circuits.mask_column_mixes_signs",
                 f"{what}: column {j} mixes signs. Every off-diagonal entry of column j is the "
                 "sign of presynaptic unit j: all +1 (excitatory) or all -1 (inhibitory).")
        if _equal(values, -expected):
            fail("gated_circuits.mask_signs_reversed",
                 f"{what}: the signs are reversed: excitatory columns are +1 and inhibitory "
                 "columns -1.")
        got_e = columns.count("+")
        if got_e != n_e:
            mistake, hint = _count_mistake(got_e, n, frac)
            fail(mistake, f"{what} has {got_e} excitatory (+1) columns but should have "
                 f"round({frac} * {n}) = {n_e}.{hint}")
        fail("gated_circuits.mask_excitatory_not_first",
             f"{what}: the first {n_e} units must be the excitatory ones (+1 columns) and the "
             f"last {n - n_e} the inhibitory ones; your column signs read {columns} "
             f"instead of {'+' * n_e}{'-' * (n - n_e)}.")
