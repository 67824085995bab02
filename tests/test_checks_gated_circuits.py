"""The assignment-09 checkers: the references pass; each plausible mistake is rejected
with its own message, in the student's terms."""

from __future__ import annotations

import pytest
import torch

from course_lib import gated_cells
from course_lib.checks.gated_circuits import (
    check_ei_sign_mask,
    check_light_gru_step,
    check_sublstm_step,
)

s = torch.sigmoid

# ------------------------------------------------------------------ part 1: subLSTM step


def sub_parts(drive, h, w, order="ifzo"):
    blocks = dict(zip(order, (drive + h @ w.T).chunk(4, dim=-1), strict=True))
    return blocks["i"], blocks["f"], blocks["z"], blocks["o"]


def sub_with(cell, output):
    """A subLSTM variant: ``cell(i, f, z, o, c) -> c'``, ``output(c', c, o) -> h'``."""

    def step(drive, h, c, w):
        i, f, z, o = (s(x) for x in sub_parts(drive, h, w))
        c_new = cell(i, f, z, o, c)
        return output(c_new, c, o), c_new

    return step


def sub_tanh_candidate(drive, h, c, w):
    i, f, z, o = sub_parts(drive, h, w)
    c_new = s(f) * c + torch.tanh(z) - s(i)
    return s(c_new) - s(o), c_new


def sub_no_recurrence(drive, h, c, w):
    return gated_cells.sublstm_step(drive, torch.zeros_like(h), c, w)


def sub_gate_order_fizo(drive, h, c, w):
    f, i, z, o = (s(x) for x in (drive + h @ w.T).chunk(4, dim=-1))
    c_new = f * c + z - i
    return s(c_new) - o, c_new


def sub_gate_order_izfo(drive, h, c, w):
    i, z, f, o = (s(x) for x in (drive + h @ w.T).chunk(4, dim=-1))
    c_new = f * c + z - i
    return s(c_new) - o, c_new


def sub_untransposed(drive, h, c, w):
    i, f, z, o = s(drive + h @ w).chunk(4, dim=-1)
    c_new = f * c + z - i
    return s(c_new) - o, c_new


def sub_in_place(drive, h, c, w):
    h_new, c_new = gated_cells.sublstm_step(drive, h, c, w)
    c.mul_(0).add_(c_new)
    return h_new, c


def sub_returns_h_only(drive, h, c, w):
    return gated_cells.sublstm_step(drive, h, c, w)[0]


def sub_numpy(drive, h, c, w):
    h_new, c_new = gated_cells.sublstm_step(drive, h, c, w)
    return h_new.numpy(), c_new.numpy()


def sub_only_c_wrong(drive, h, c, w):
    h_new, c_new = gated_cells.sublstm_step(drive, h, c, w)
    return h_new, c_new + 0.1


def sub_only_h_wrong(drive, h, c, w):
    h_new, c_new = gated_cells.sublstm_step(drive, h, c, w)
    return h_new + 0.1, c_new


def sub_shifted(drive, h, c, w):
    h_new, c_new = gated_cells.sublstm_step(drive, h, c, w)
    return h_new + 0.1, c_new - 0.1


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


def test_reference_sublstm_passes():
    check_sublstm_step(gated_cells.sublstm_step)
    check_sublstm_step(gated_cells.sublstm_step, seed=97)


def test_a_float32_sublstm_passes():
    def float32(drive, h, c, w):
        h_new, c_new = gated_cells.sublstm_step(drive.float(), h.float(), c.float(), w.float())
        return h_new, c_new

    check_sublstm_step(float32)


WRONG_SUBLSTMS = [
    (gated_cells.lstm_step, "this is the multiplicative LSTM"),
    (sub_tanh_candidate, "the candidate z must be a sigmoid"),
    (
        sub_with(lambda i, f, z, o, c: f * c + i - z, lambda cn, c, o: s(cn) - o),
        "not f⊙c \\+ i − z",
    ),
    (
        sub_with(lambda i, f, z, o, c: f * c + z * i, lambda cn, c, o: s(cn) - o),
        "z⊙i is the multiplicative LSTM's",
    ),
    (
        sub_with(lambda i, f, z, o, c: c + z - i, lambda cn, c, o: s(cn) - o),
        "multiplied by the forget gate",
    ),
    (
        sub_with(lambda i, f, z, o, c: f * c + z - i, lambda cn, c, o: o - s(cn)),
        "not o − σ\\(c'\\)",
    ),
    (
        sub_with(lambda i, f, z, o, c: f * c + z - i, lambda cn, c, o: s(cn) * o),
        "σ\\(c'\\)⊙o is multiplicative gating",
    ),
    (
        sub_with(lambda i, f, z, o, c: f * c + z - i, lambda cn, c, o: torch.tanh(cn) - o),
        "not tanh\\(c'\\) − o",
    ),
    (
        sub_with(lambda i, f, z, o, c: f * c + z - i, lambda cn, c, o: s(c) - o),
        "must use the new cell state",
    ),
    (
        lambda d, h, c, w: gated_cells.sublstm_step(d, h, c, w)[::-1],
        "you returned \\(c_new, h_new\\)",
    ),
    (sub_no_recurrence, "the recurrent input h @ weight_hh.T is missing"),
    (sub_gate_order_fizo, "you read them as \\(f, i, z, o\\)"),
    (sub_gate_order_izfo, "you read them as \\(i, z, f, o\\)"),
    (sub_untransposed, "raised RuntimeError.*h @ weight_hh.T"),
    (sub_in_place, "changed its argument c in place"),
    (sub_returns_h_only, "must return the pair \\(h_new, c_new\\), got a Tensor of shape"),
    (sub_numpy, "must return a torch.Tensor, got numpy.ndarray"),
    (sub_only_c_wrong, "h_new is right but c_new is not"),
    (sub_only_h_wrong, "c_new is right but h_new is not"),
    (sub_shifted, "differs from the subLSTM"),
    (not_implemented, "is not implemented yet"),
]


@pytest.mark.parametrize(("wrong", "message"), WRONG_SUBLSTMS)
def test_wrong_sublstm_steps_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_sublstm_step(wrong)


# ------------------------------------------------------------------ part 2: light-GRU step


def gru_with(gate, candidate, mix):
    def step(dz, dh, h, wz, wh):
        z = gate(dz, dh, h, wz, wh)
        cand = candidate(dz, dh, h, wz, wh)
        return mix(z, h, cand)

    return step


GATE = lambda dz, dh, h, wz, wh: s(dz + h @ wz.T)  # noqa: E731
CAND = lambda dz, dh, h, wz, wh: torch.relu(dh + h @ wh.T)  # noqa: E731
MIX = lambda z, h, cand: z * h + (1 - z) * cand  # noqa: E731

WRONG_GRUS = [
    (gru_with(GATE, CAND, lambda z, h, c: (1 - z) * h + z * c), "the mix is the wrong way round"),
    (
        gru_with(GATE, lambda dz, dh, h, wz, wh: torch.tanh(dh + h @ wh.T), MIX),
        "candidate is ReLU\\(drive_h \\+ U_h h\\), not tanh",
    ),
    (gru_with(GATE, lambda dz, dh, h, wz, wh: dh + h @ wh.T, MIX), "the candidate needs its ReLU"),
    (
        gru_with(lambda dz, dh, h, wz, wh: torch.relu(dz + h @ wz.T), CAND, MIX),
        "the update gate is a sigmoid",
    ),
    (
        gru_with(
            lambda dz, dh, h, wz, wh: s(dz + h @ wh.T),
            lambda dz, dh, h, wz, wh: torch.relu(dh + h @ wz.T),
            MIX,
        ),
        "you swapped them",
    ),
    (
        gru_with(
            lambda dz, dh, h, wz, wh: s(dh + h @ wz.T),
            lambda dz, dh, h, wz, wh: torch.relu(dz + h @ wh.T),
            MIX,
        ),
        "drive_z goes into the update gate",
    ),
    (
        gru_with(
            lambda dz, dh, h, wz, wh: s(dz + h @ wz),
            lambda dz, dh, h, wz, wh: torch.relu(dh + h @ wh),
            MIX,
        ),
        "weights are \\(post, pre\\)",
    ),
    (gru_with(GATE, lambda dz, dh, h, wz, wh: torch.relu(dh), MIX), "candidate is missing its"),
    (
        gru_with(lambda dz, dh, h, wz, wh: s(dz), CAND, MIX),
        "update gate is missing its recurrent input",
    ),
    (gru_with(GATE, CAND, lambda z, h, c: c), "not the candidate"),
    (
        lambda dz, dh, h, wz, wh: (gated_cells.light_gru_step(dz, dh, h, wz, wh),),
        "must return one tensor",
    ),
    (
        lambda dz, dh, h, wz, wh: gated_cells.light_gru_step(dz, dh, h, wz, wh)[:1],
        "returned shape \\(1, ",
    ),
    (
        lambda dz, dh, h, wz, wh: h.mul_(0.5),
        "changed its argument h in place",
    ),
    (
        lambda dz, dh, h, wz, wh: gated_cells.light_gru_step(dz, dh, h, wz, wh) + 0.01,
        "differs from h' = z⊙h",
    ),
    (not_implemented, "is not implemented yet"),
]


def test_reference_light_gru_passes():
    check_light_gru_step(gated_cells.light_gru_step)
    check_light_gru_step(gated_cells.light_gru_step, seed=404)


@pytest.mark.parametrize(("wrong", "message"), WRONG_GRUS)
def test_wrong_light_gru_steps_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_light_gru_step(wrong)


# ------------------------------------------------------------------ part 3: E/I mask


def ref_mask(n, frac=0.8):
    return gated_cells.ei_sign_mask(n, frac)


def signs_in_rows(n, frac=0.8):
    return ref_mask(n, frac).T.contiguous()


def keeps_diagonal(n, frac=0.8):
    n_e = round(frac * n)
    signs = torch.ones(n)
    signs[n_e:] = -1
    return signs.expand(n, n).clone()


def inhibitory_first(n, frac=0.8):
    n_i = n - round(frac * n)
    signs = -torch.ones(n)
    signs[n_i:] = 1
    mask = signs.expand(n, n).clone()
    mask.fill_diagonal_(0)
    return mask


def floor_count(n, frac=0.8):
    n_e = int(frac * n)
    signs = torch.ones(n)
    signs[n_e:] = -1
    mask = signs.expand(n, n).clone()
    mask.fill_diagonal_(0)
    return mask


def fraction_of_inhibitory(n, frac=0.8):
    return ref_mask(n, 1 - frac) if round((1 - frac) * n) >= 1 else ref_mask(n, frac)


def reversed_signs(n, frac=0.8):
    return -ref_mask(n, frac)


def zero_for_inhibitory(n, frac=0.8):
    return ref_mask(n, frac).clamp(min=0)


def boolean_excitatory(n, frac=0.8):
    return ref_mask(n, frac) > 0


def scaled(n, frac=0.8):
    return 0.5 * ref_mask(n, frac)


def random_assignment(n, frac=0.8):
    g = torch.Generator().manual_seed(n)
    n_e = round(frac * n)
    signs = -torch.ones(n)
    signs[torch.randperm(n, generator=g)[:n_e]] = 1
    if torch.equal(signs[:n_e], torch.ones(n_e)):
        signs = signs.flip(0)
    mask = signs.expand(n, n).clone()
    mask.fill_diagonal_(0)
    return mask


def mixed_column(n, frac=0.8):
    mask = ref_mask(n, frac)
    mask[0, 1] = -1
    return mask


def as_numpy_mask(n, frac=0.8):
    return ref_mask(n, frac).numpy()


def wrong_shape(n, frac=0.8):
    return ref_mask(n, frac)[:, : n - 1]


def test_reference_ei_mask_passes():
    check_ei_sign_mask(gated_cells.ei_sign_mask)
    check_ei_sign_mask(gated_cells.ei_sign_mask, seed=1234)


def test_an_integer_mask_passes():
    check_ei_sign_mask(lambda n, frac=0.8: gated_cells.ei_sign_mask(n, frac).long())


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (signs_in_rows, "the signs are in the rows"),
        (keeps_diagonal, "the diagonal must be 0"),
        (inhibitory_first, "the first 8 units must be the excitatory ones"),
        (floor_count, "Use round\\(\\), not int\\(\\)"),
        (fraction_of_inhibitory, "the fraction of excitatory units, not inhibitory"),
        (reversed_signs, "the signs are reversed"),
        (zero_for_inhibitory, "inhibitory columns are -1, not 0"),
        (boolean_excitatory, "inhibitory columns are -1, not 0"),
        (scaled, "must be \\+1, -1 or 0, but entry"),
        (random_assignment, "must be the excitatory ones"),
        (mixed_column, "column 1 mixes signs"),
        (as_numpy_mask, "must return a torch.Tensor, got numpy.ndarray"),
        (wrong_shape, "has shape \\(10, 9\\)"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_ei_masks_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_ei_sign_mask(wrong)


def test_checkers_write_nothing_to_stderr(capfd):
    check_sublstm_step(gated_cells.sublstm_step)
    check_light_gru_step(gated_cells.light_gru_step)
    check_ei_sign_mask(gated_cells.ei_sign_mask)
    assert capfd.readouterr().err == ""
