"""The assignment-09 checkers: the references and correct variants pass at several seeds;
each plausible mistake, written as a student would write it, is rejected with its own
message and mistake id."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from catalogue import not_implemented, rejects

from course_lib import gated_cells
from course_lib.checks.gated_circuits import (
    check_ei_sign_mask,
    check_light_gru_step,
    check_sublstm_step,
)

s = torch.sigmoid
SEEDS = (0, 1, 2017, 4242)


class Agreeable(torch.Tensor):
    """A tensor subclass that claims to equal everything."""

    def __eq__(self, other):
        return True

    __hash__ = torch.Tensor.__hash__


# ------------------------------------------------------------------ part 1: subLSTM step


def sub_parts(drive, h, w, order="ifzo"):
    blocks = dict(zip(order, (drive + h @ w.T).chunk(4, dim=-1), strict=True))
    return blocks["i"], blocks["f"], blocks["z"], blocks["o"]


def sub_with(cell, output, squash=s):
    """A subLSTM variant: ``cell(i, f, z, o, c, h) -> c'``, ``output(c', c, o) -> h'``."""

    def step(drive, h, c, w):
        i, f, z, o = (squash(x) for x in sub_parts(drive, h, w))
        c_new = cell(i, f, z, o, c, h)
        return output(c_new, c, o), c_new

    return step


SUB_CELL = lambda i, f, z, o, c, h: f * c + z - i  # noqa: E731
SUB_OUT = lambda cn, c, o: s(cn) - o  # noqa: E731


def sub_einsum(drive, h, c, w):
    gates = s(drive + torch.einsum("bj,ij->bi", h, w))
    i, f, z, o = gates.chunk(4, dim=1)
    c_new = f * c + z - i
    return s(c_new) - o, c_new


def sub_linear_per_gate(drive, h, c, w):
    n = h.shape[1]
    i, f, z, o = (s(drive[:, k * n:(k + 1) * n] + F.linear(h, w[k * n:(k + 1) * n]))
                  for k in range(4))
    c_new = c * f - i + z
    return -o + s(c_new), c_new


def sub_transposed_product(drive, h, c, w):
    i, f, z, o = torch.split(s(drive + (w @ h.T).T), h.shape[1], dim=-1)
    c_new = f * c + (z - i)
    return 0.5 * (1 + torch.tanh(c_new / 2)) - o, c_new


def sub_in_float64(drive, h, c, w):
    h_new, c_new = gated_cells.sublstm_step(drive.double(), h.double(), c.double(), w.double())
    return h_new.float(), c_new.float()


def sub_tanh_candidate(drive, h, c, w):
    i, f, z, o = sub_parts(drive, h, w)
    c_new = s(f) * c + torch.tanh(z) - s(i)
    return s(c_new) - s(o), c_new


def sub_gate_without_sigmoid(gate):
    def step(drive, h, c, w):
        gates = list(sub_parts(drive, h, w))
        for k in range(4):
            if k != gate:
                gates[k] = s(gates[k])
        i, f, z, o = gates
        c_new = f * c + z - i
        return s(c_new) - o, c_new

    return step


def sub_no_recurrence(drive, h, c, w):
    return gated_cells.sublstm_step(drive, torch.zeros_like(h), c, w)


def sub_gate_order(order):
    def step(drive, h, c, w):
        i, f, z, o = (s(x) for x in sub_parts(drive, h, w, order))
        c_new = f * c + z - i
        return s(c_new) - o, c_new

    return step


def sub_untransposed(drive, h, c, w):
    i, f, z, o = s(drive + h @ w).chunk(4, dim=-1)
    c_new = f * c + z - i
    return s(c_new) - o, c_new


def sub_in_place(drive, h, c, w):
    h_new, c_new = gated_cells.sublstm_step(drive, h, c, w)
    c.mul_(0).add_(c_new)
    return h_new, c


def sub_hand_sigmoid(drive, h, c, w):
    sigmoid = lambda x: 1 / (1 + torch.exp(-x))  # noqa: E731
    i, f, z, o = (sigmoid(x) for x in sub_parts(drive, h, w))
    c_new = f * c + z - i
    return sigmoid(c_new) - o, c_new


def sub_exp_ratio_sigmoid(drive, h, c, w):
    sigmoid = lambda x: torch.exp(x) / (1 + torch.exp(x))  # noqa: E731
    i, f, z, o = (sigmoid(x) for x in sub_parts(drive, h, w))
    c_new = f * c + z - i
    return sigmoid(c_new) - o, c_new


def sub_clamped_drive(drive, h, c, w):
    i, f, z, o = (s(x.clamp(-10, 10)) for x in sub_parts(drive, h, w))
    c_new = f * c + z - i
    return s(c_new) - o, c_new


def sub_detached(drive, h, c, w):
    h_new, c_new = gated_cells.sublstm_step(drive, h, c, w)
    return h_new.detach(), c_new.detach()


def sub_weight_data(drive, h, c, w):
    return gated_cells.sublstm_step(drive, h, c, w.data)


def sub_output_from_detached_cell(drive, h, c, w):
    i, f, z, o = (s(x) for x in sub_parts(drive, h, w))
    c_new = f * c + z - i
    return s(c_new.detach()) - o, c_new


def sub_in_place_on_intermediate(drive, h, c, w):
    gates = drive + h @ w.T
    gates.sigmoid_()  # in place, but on its own intermediate: correct
    i, f, z, o = gates.chunk(4, dim=-1)
    c_new = f * c + z - i
    return torch.sigmoid(c_new) - o, c_new


def sub_in_place_exp(drive, h, c, w):
    denominator = torch.exp(-(drive + h @ w.T))
    denominator += 1  # exp's backward pass needs the exp it computed
    i, f, z, o = (1 / denominator).chunk(4, dim=-1)
    c_new = f * c + z - i
    return torch.sigmoid(c_new) - o, c_new


def sub_dropout_on_cell(drive, h, c, w):
    h_new, c_new = gated_cells.sublstm_step(drive, h, c, w)
    keep = (torch.rand(c_new.shape) > 0.0).float()
    return h_new, c_new * keep


def sub_float64(drive, h, c, w):
    return gated_cells.sublstm_step(drive.double(), h.double(), c.double(), w.double())


def sub_agreeable(drive, h, c, w):
    return tuple(x.as_subclass(Agreeable) for x in gated_cells.sublstm_step(drive, h, c, w))


def sub_only_c_wrong(drive, h, c, w):
    h_new, c_new = gated_cells.sublstm_step(drive, h, c, w)
    return h_new, c_new + 0.1


def sub_only_h_wrong(drive, h, c, w):
    h_new, c_new = gated_cells.sublstm_step(drive, h, c, w)
    return h_new + 0.1, c_new


def sub_shifted(drive, h, c, w):
    h_new, c_new = gated_cells.sublstm_step(drive, h, c, w)
    return h_new + 0.1, c_new - 0.1


def sub_tanh_form_sigmoid(drive, h, c, w):
    """σ(x) = (1 + tanh(x / 2)) / 2: stable, with a finite gradient, for any drive."""
    sig = lambda x: 0.5 * (1 + torch.tanh(x / 2))  # noqa: E731
    i, f, z, o = sig(drive + h @ w.T).chunk(4, dim=-1)
    c_new = torch.addcmul(z - i, f, c)
    return sig(c_new) - o, c_new


def sub_batch_loop(drive, h, c, w):
    rows = []
    for b in range(h.shape[0]):
        i, f, z, o = s(drive[b] + w @ h[b]).chunk(4)
        c_b = f * c[b] + z - i
        rows.append((s(c_b) - o, c_b))
    return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])


CORRECT_SUBLSTMS = [gated_cells.sublstm_step, sub_einsum, sub_linear_per_gate,
                    sub_transposed_product, sub_in_float64, sub_in_place_on_intermediate,
                    sub_tanh_form_sigmoid, sub_batch_loop]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("step", CORRECT_SUBLSTMS, ids=lambda f: f.__name__)
def test_correct_sublstm_steps_pass(step, seed):
    check_sublstm_step(step, seed=seed)


def sub_recurrence_outside_sigmoid(drive, h, c, w):
    i, f, z, o = (s(x) + r for x, r in zip(drive.chunk(4, dim=-1), (h @ w.T).chunk(4, dim=-1),
                                            strict=True))
    c_new = f * c + z - i
    return s(c_new) - o, c_new


def sub_recurrence_from_cell(drive, h, c, w):
    i, f, z, o = s(drive + c @ w.T).chunk(4, dim=-1)
    c_new = f * c + z - i
    return s(c_new) - o, c_new


def sub_interleaved_blocks(drive, h, c, w):
    gates = s(drive + h @ w.T)
    i, f, z, o = gates.reshape(gates.shape[0], -1, 4).unbind(-1)
    c_new = f * c + z - i
    return s(c_new) - o, c_new


def ref_sub(d, h, c, w):
    return gated_cells.sublstm_step(d, h, c, w)


WRONG_SUBLSTMS = [
    (gated_cells.lstm_step, "this is the multiplicative LSTM", "sublstm_is_multiplicative_lstm"),
    (sub_tanh_candidate, "the candidate z must be a sigmoid", "sublstm_tanh_candidate"),
    (sub_with(lambda i, f, z, o, c, h: f * c + i - z, SUB_OUT), "not f⊙c \\+ i − z",
     "sublstm_input_gate_sign"),
    (sub_with(lambda i, f, z, o, c, h: f * c + z * i, SUB_OUT), "z⊙i is the multiplicative",
     "sublstm_input_gate_multiplies"),
    (sub_with(lambda i, f, z, o, c, h: c + z - i, SUB_OUT), "multiplied by the forget gate",
     "sublstm_forget_gate_missing"),
    (sub_with(lambda i, f, z, o, c, h: (1 - f) * c + z - i, SUB_OUT), "not \\(1 − f\\)⊙c",
     "sublstm_forget_gate_inverted"),
    (sub_with(lambda i, f, z, o, c, h: f * c + i * z, lambda cn, c, o: s(cn) * o),
     "both gates multiply", "sublstm_gates_multiply"),
    (sub_recurrence_outside_sigmoid, "not σ\\(drive\\) \\+ h @ weight_hh.T",
     "sublstm_recurrence_outside_sigmoid"),
    (sub_recurrence_from_cell, "from the hidden state h, not the cell state c",
     "sublstm_recurrence_from_cell"),
    (sub_interleaved_blocks, "which reads every fourth column", "sublstm_blocks_interleaved"),
    (sub_with(lambda i, f, z, o, c, h: f * h + z - i, SUB_OUT), "not the hidden state h",
     "sublstm_forget_gate_on_h"),
    (sub_with(SUB_CELL, lambda cn, c, o: o - s(cn)), "not o − σ\\(c'\\)",
     "sublstm_output_gate_sign"),
    (sub_with(SUB_CELL, lambda cn, c, o: s(cn) * o), "σ\\(c'\\)⊙o is multiplicative gating",
     "sublstm_output_gate_multiplies"),
    (sub_with(SUB_CELL, lambda cn, c, o: torch.tanh(cn) - o), "not tanh\\(c'\\) − o",
     "sublstm_tanh_output"),
    (sub_with(SUB_CELL, lambda cn, c, o: cn - o), "not c' − o", "sublstm_output_not_squashed"),
    (sub_with(SUB_CELL, lambda cn, c, o: s(c) - o), "must use the new cell state",
     "sublstm_output_uses_old_cell"),
    (lambda d, h, c, w: ref_sub(d, h, c, w)[::-1], "you returned \\(c_new, h_new\\)",
     "sublstm_outputs_swapped"),
    (sub_gate_without_sigmoid(0), "the i block needs its sigmoid", "sublstm_gate_without_sigmoid"),
    (sub_gate_without_sigmoid(2), "the z block needs its sigmoid", "sublstm_gate_without_sigmoid"),
    (sub_gate_without_sigmoid(3), "the o block needs its sigmoid", "sublstm_gate_without_sigmoid"),
    (sub_no_recurrence, "the recurrent input h @ weight_hh.T is missing",
     "sublstm_recurrence_missing"),
    (sub_gate_order("fizo"), "you read them as \\(f, i, z, o\\)", "sublstm_gate_order"),
    (sub_gate_order("izfo"), "you read them as \\(i, z, f, o\\)", "sublstm_gate_order"),
    (sub_gate_order("zifo"), "you read them as \\(z, i, f, o\\)", "sublstm_gate_order"),
    (sub_untransposed, "h @ weight_hh.T", "shape_mismatch"),
    (sub_only_c_wrong, "h_new is right but c_new is not", "sublstm_cell_wrong"),
    (sub_only_h_wrong, "c_new is right but h_new is not", "sublstm_hidden_wrong"),
    (sub_shifted, "differs from the subLSTM", "sublstm_wrong"),
    (sub_clamped_drive, "when the gates saturate", "sublstm_saturation_wrong"),
    (sub_output_from_detached_cell, "the values are right but the gradient",
     "sublstm_gradient_wrong"),
    (lambda d, h, c, w: ref_sub(d, h, c, w)[0], "must return the pair \\(h_new, c_new\\), got a "
     "Tensor of shape", "sublstm_not_a_pair"),
    (lambda d, h, c, w: [*ref_sub(d, h, c, w), c], "must return the pair", "sublstm_not_a_pair"),
]


@pytest.mark.parametrize(("wrong", "message", "mistake"), WRONG_SUBLSTMS)
def test_wrong_sublstm_steps_are_rejected_with_their_message(wrong, message, mistake):
    rejects(check_sublstm_step, wrong, f"gated_circuits.{mistake}", message)


COMMON_SUBLSTMS = [
    (sub_in_place, "changed its argument c in place", "in_place"),
    (sub_dropout_on_cell, "global random generator", "global_rng"),
    (sub_float64, "dtype torch.float64, but its inputs are float32", "wrong_dtype"),
    (lambda d, h, c, w: tuple(x.long() for x in ref_sub(d, h, c, w)), "dtype torch.int64",
     "wrong_dtype"),
    (lambda d, h, c, w: tuple(x.numpy() for x in ref_sub(d, h, c, w)), "got numpy.ndarray",
     "wrong_type"),
    (lambda d, h, c, w: (None, None), "got None", "wrong_type"),
    (sub_agreeable, "plain torch.Tensor, got a subclass", "tensor_subclass"),
    (lambda d, h, c, w: tuple(x.to_sparse() for x in ref_sub(d, h, c, w)), "sparse", "sparse"),
    (lambda d, h, c, w: tuple(x.to("meta") for x in ref_sub(d, h, c, w)), "on meta", "device"),
    (lambda d, h, c, w: ref_sub(d, h, c, w)[0].T, "must return the pair", None),
    (lambda d, h, c, w: (ref_sub(d, h, c, w)[0].T, ref_sub(d, h, c, w)[1]),
     "returned h_new of shape \\(4, 3\\)", "wrong_shape"),
    (sub_exp_ratio_sigmoid, "contains NaN or inf", "not_finite"),
    (sub_hand_sigmoid, "gradient with respect to drive contains NaN", "gradient_not_finite"),
    (sub_detached, "no gradient flows back", "no_gradient"),
    (sub_in_place_exp, "the backward pass through your step raised", "raised"),
    (sub_weight_data, "no gradient flows back to weight_hh", "no_gradient"),
    (not_implemented, "is not implemented yet", "not_implemented"),
]


@pytest.mark.parametrize(("wrong", "message", "mistake"), COMMON_SUBLSTMS)
def test_sublstm_results_of_the_wrong_kind_are_rejected(wrong, message, mistake):
    mistake = "gated_circuits.sublstm_not_a_pair" if mistake is None else f"common.{mistake}"
    rejects(check_sublstm_step, wrong, mistake, message)


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


def gru_einsum(dz, dh, h, wz, wh):
    z = torch.sigmoid(dz + torch.einsum("bj,ij->bi", h, wz))
    cand = torch.clamp(dh + torch.einsum("bj,ij->bi", h, wh), min=0)
    return cand + z * (h - cand)


def gru_loops(dz, dh, h, wz, wh):
    rows = []
    for b in range(h.shape[0]):
        row = []
        for i in range(h.shape[1]):
            z = torch.sigmoid(dz[b, i] + (wz[i] * h[b]).sum())
            cand = torch.relu(dh[b, i] + (wh[i] * h[b]).sum())
            row.append(z * h[b, i] + (1 - z) * cand)
        rows.append(torch.stack(row))
    return torch.stack(rows)


def gru_linear(dz, dh, h, wz, wh):
    z = torch.sigmoid(dz + F.linear(h, wz))
    return torch.lerp(F.relu(dh + F.linear(h, wh)), h, z)


def gru_hand_sigmoid(dz, dh, h, wz, wh):
    z = 1 / (1 + torch.exp(-(dz + h @ wz.T)))
    return z * h + (1 - z) * torch.relu(dh + h @ wh.T)


def gru_capped_rate(dz, dh, h, wz, wh):
    z = s(dz + h @ wz.T)
    return z * h + (1 - z) * torch.clamp(dh + h @ wh.T, min=0, max=20)


def gru_detached_state_in_gate(dz, dh, h, wz, wh):
    z = s(dz + h.detach() @ wz.T)
    return z * h + (1 - z) * torch.relu(dh + h @ wh.T)


def gru_numpy(dz, dh, h, wz, wh):
    return gated_cells.light_gru_step(dz, dh, h, wz, wh).numpy()


def gru_lerp(dz, dh, h, wz, wh):
    """h' = h̃ + z⊙(h − h̃), the same mix written as a linear interpolation."""
    pre = dh + h @ wh.T
    return torch.lerp(pre.clamp(min=0), h, torch.special.expit(dz + h @ wz.T))


CORRECT_GRUS = [gated_cells.light_gru_step, gru_einsum, gru_loops, gru_linear, gru_lerp]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("step", CORRECT_GRUS, ids=lambda f: f.__name__)
def test_correct_light_gru_steps_pass(step, seed):
    check_light_gru_step(step, seed=seed)


def ref_gru(dz, dh, h, wz, wh):
    return gated_cells.light_gru_step(dz, dh, h, wz, wh)


WRONG_GRUS = [
    (gru_with(GATE, CAND, lambda z, h, c: (1 - z) * h + z * c), "the mix is the wrong way round",
     "light_gru_mix_reversed"),
    (gru_with(GATE, lambda dz, dh, h, wz, wh: torch.tanh(dh + h @ wh.T), MIX),
     "candidate is ReLU\\(drive_h \\+ U_h h\\), not tanh", "light_gru_tanh_candidate"),
    (gru_with(GATE, lambda dz, dh, h, wz, wh: dh + h @ wh.T, MIX), "the candidate needs its ReLU",
     "light_gru_candidate_without_relu"),
    (gru_with(GATE, lambda dz, dh, h, wz, wh: s(dh + h @ wh.T), MIX), "not a sigmoid",
     "light_gru_sigmoid_candidate"),
    (gru_with(GATE, lambda dz, dh, h, wz, wh: (dh + h @ wh.T).abs(), MIX),
     "not its absolute value", "light_gru_candidate_not_relu"),
    (gru_with(GATE, lambda dz, dh, h, wz, wh: F.leaky_relu(dh + h @ wh.T), MIX),
     "not a leaky ReLU", "light_gru_candidate_not_relu"),
    (gru_with(GATE, lambda dz, dh, h, wz, wh: torch.relu(dh) + h @ wh.T, MIX),
     "not ReLU\\(drive_h\\) \\+ U_h h", "light_gru_relu_before_recurrence"),
    (gru_with(lambda dz, dh, h, wz, wh: s(dz) + h @ wz.T, CAND, MIX),
     "not σ\\(drive_z\\) \\+ U_z h", "light_gru_sigmoid_before_recurrence"),
    (gru_with(GATE, CAND, lambda z, h, c: z * h + c), "not z⊙h \\+ h̃",
     "light_gru_candidate_not_gated"),
    (gru_with(lambda dz, dh, h, wz, wh: s(dz + h @ wz), CAND, MIX),
     "the update gate's recurrent drive is h @ weight_z.T", "light_gru_weights_not_transposed"),
    (gru_with(GATE, lambda dz, dh, h, wz, wh: torch.relu(dh + h @ wh), MIX),
     "the candidate's recurrent drive is h @ weight_h.T", "light_gru_weights_not_transposed"),
    (gru_with(lambda dz, dh, h, wz, wh: torch.relu(dz + h @ wz.T), CAND, MIX),
     "the update gate is a sigmoid", "light_gru_gate_not_sigmoid"),
    (gru_with(lambda dz, dh, h, wz, wh: dz + h @ wz.T, CAND, MIX), "not the raw drive",
     "light_gru_gate_not_sigmoid"),
    (gru_with(lambda dz, dh, h, wz, wh: s(dz + h @ wh.T),
              lambda dz, dh, h, wz, wh: torch.relu(dh + h @ wz.T), MIX),
     "you swapped them", "light_gru_weights_swapped"),
    (gru_with(lambda dz, dh, h, wz, wh: s(dh + h @ wz.T),
              lambda dz, dh, h, wz, wh: torch.relu(dz + h @ wh.T), MIX),
     "drive_z goes into the update gate", "light_gru_drives_swapped"),
    (gru_with(lambda dz, dh, h, wz, wh: s(dz + h @ wz),
              lambda dz, dh, h, wz, wh: torch.relu(dh + h @ wh), MIX),
     "weights are \\(post, pre\\)", "light_gru_weights_not_transposed"),
    (gru_with(GATE, lambda dz, dh, h, wz, wh: torch.relu(dh), MIX), "candidate is missing its",
     "light_gru_candidate_recurrence_missing"),
    (gru_with(lambda dz, dh, h, wz, wh: s(dz), CAND, MIX),
     "update gate is missing its recurrent input", "light_gru_gate_recurrence_missing"),
    (gru_with(GATE, CAND, lambda z, h, c: c), "not the candidate", "light_gru_returns_candidate"),
    (gru_with(GATE, CAND, lambda z, h, c: h + (1 - z) * c), "the old state is gated too",
     "light_gru_old_state_not_gated"),
    (lambda *a: (ref_gru(*a),), "must return one tensor", "light_gru_not_one_tensor"),
    (lambda *a: ref_gru(*a).tolist(), "not a list", "light_gru_not_one_tensor"),
    (lambda *a: ref_gru(*a) + 0.01, "differs from h' = z⊙h", "light_gru_wrong"),
    (gru_capped_rate, "for large drives", "light_gru_saturation_wrong"),
    (gru_detached_state_in_gate, "gradient with respect to h is not",
     "light_gru_gradient_wrong"),
]


@pytest.mark.parametrize(("wrong", "message", "mistake"), WRONG_GRUS)
def test_wrong_light_gru_steps_are_rejected_with_their_message(wrong, message, mistake):
    rejects(check_light_gru_step, wrong, f"gated_circuits.{mistake}", message)


COMMON_GRUS = [
    (lambda dz, dh, h, wz, wh: h.mul_(0.5), "changed its argument h in place", "in_place"),
    (lambda *a: ref_gru(*a)[:1], "returned h' of shape \\(1, 4\\)", "wrong_shape"),
    (lambda *a: ref_gru(*[x.double() for x in a]), "dtype torch.float64", "wrong_dtype"),
    (gru_numpy, "got numpy.ndarray", "wrong_type"),
    (lambda *a: None, "got None", "wrong_type"),
    (lambda *a: ref_gru(*a).as_subclass(Agreeable), "got a subclass", "tensor_subclass"),
    (lambda *a: ref_gru(*a).to_sparse(), "sparse", "sparse"),
    (lambda *a: ref_gru(*a) + 0 * torch.randn(1), "global random generator", "global_rng"),
    (gru_hand_sigmoid, "contains NaN or inf", "gradient_not_finite"),
    (lambda *a: ref_gru(*a).detach(), "no gradient flows back", "no_gradient"),
    (not_implemented, "is not implemented yet", "not_implemented"),
]


@pytest.mark.parametrize(("wrong", "message", "mistake"), COMMON_GRUS)
def test_light_gru_results_of_the_wrong_kind_are_rejected(wrong, message, mistake):
    rejects(check_light_gru_step, wrong, f"common.{mistake}", message)


# ------------------------------------------------------------------ part 3: E/I mask


def ref_mask(n, frac=0.8):
    return gated_cells.ei_sign_mask(n, frac)


def mask_from_signs(signs):
    mask = signs.expand(len(signs), len(signs)).clone()
    mask.fill_diagonal_(0)
    return mask


def mask_where(n, frac=0.8):
    excitatory = torch.arange(n) < round(frac * n)
    columns = torch.where(excitatory, 1.0, -1.0).repeat(n, 1)
    return columns * (1 - torch.eye(n))


def mask_loops(n, frac=0.8):
    mask = torch.zeros(n, n)
    for i in range(n):
        for j in range(n):
            if i != j:
                mask[i, j] = 1.0 if j < round(frac * n) else -1.0
    return mask


def mask_outer(n, frac=0.8):
    n_e = round(frac * n)
    signs = torch.cat([torch.ones(n_e), -torch.ones(n - n_e)])
    return torch.outer(torch.ones(n), signs) - torch.diag(signs)


def signs_in_rows(n, frac=0.8):
    return ref_mask(n, frac).T.contiguous()


def keeps_diagonal(n, frac=0.8):
    return ref_mask(n, frac) + torch.diag(torch.cat([torch.ones(round(frac * n)),
                                                      -torch.ones(n - round(frac * n))]))


def inhibitory_first(n, frac=0.8):
    n_i = n - round(frac * n)
    return mask_from_signs(torch.cat([-torch.ones(n_i), torch.ones(n - n_i)]))


def floor_count(n, frac=0.8):
    n_e = int(frac * n)
    return mask_from_signs(torch.cat([torch.ones(n_e), -torch.ones(n - n_e)]))


def ceil_count(n, frac=0.8):
    n_e = math.ceil(frac * n)
    return mask_from_signs(torch.cat([torch.ones(n_e), -torch.ones(n - n_e)]))


def fraction_of_inhibitory(n, frac=0.8):
    return ref_mask(n, 1 - frac) if round((1 - frac) * n) >= 1 else ref_mask(n, frac)


def one_inhibitory_too_many(n, frac=0.8):
    n_e = round(frac * n) - 1
    return mask_from_signs(torch.cat([torch.ones(n_e), -torch.ones(n - n_e)]))


def random_assignment(n, frac=0.8):
    g = torch.Generator().manual_seed(n)
    n_e = round(frac * n)
    signs = -torch.ones(n)
    signs[torch.randperm(n, generator=g)[:n_e]] = 1
    if torch.equal(signs[:n_e], torch.ones(n_e)):
        signs = signs.flip(0)
    return mask_from_signs(signs)


def global_random_assignment(n, frac=0.8):
    signs = -torch.ones(n)
    signs[torch.randperm(n)[: round(frac * n)]] = 1
    return mask_from_signs(signs)


def mixed_column(n, frac=0.8):
    mask = ref_mask(n, frac)
    mask[0, 1] = -1
    return mask


def default_fraction_half(n, frac=0.5):
    return ref_mask(n, frac)


def mask_numpy_float32(n, frac=0.8):
    signs = np.where(np.arange(n) < round(frac * n), 1, -1).astype(np.float32)
    mask = np.tile(signs, (n, 1))
    np.fill_diagonal(mask, 0)
    return torch.from_numpy(mask)


def mask_negated_slice(n, frac=0.8):
    mask = torch.ones(n, n).fill_diagonal_(0)
    mask[:, round(frac * n):] *= -1
    return mask


CORRECT_MASKS = [gated_cells.ei_sign_mask, mask_where, mask_loops, mask_outer,
                 mask_numpy_float32, mask_negated_slice]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mask", CORRECT_MASKS, ids=lambda f: f.__name__)
def test_correct_ei_masks_pass(mask, seed):
    check_ei_sign_mask(mask, seed=seed)


WRONG_MASKS = [
    (signs_in_rows, "the signs are in the rows", "gated_circuits.mask_signs_in_rows"),
    (keeps_diagonal, "the diagonal must be 0", "gated_circuits.mask_autapses"),
    (inhibitory_first, "the first 8 units must be the excitatory ones",
     "gated_circuits.mask_excitatory_not_first"),
    (random_assignment, "must be the excitatory ones", "gated_circuits.mask_excitatory_not_first"),
    (floor_count, "Use round\\(\\), not int\\(\\)", "gated_circuits.mask_count_int_not_round"),
    (ceil_count, "ei_sign_mask\\(9, frac_excitatory=0.7\\).*not math.ceil\\(\\)",
     "gated_circuits.mask_count_ceil_not_round"),
    (lambda n, frac=0.8: torch.nn.Parameter(ref_mask(n, frac)), "the sign mask is fixed",
     "gated_circuits.mask_trainable"),
    (lambda n, frac=0.8: ref_mask(n, frac).requires_grad_(), "requires a gradient",
     "gated_circuits.mask_trainable"),
    (fraction_of_inhibitory, "the fraction of excitatory units, not inhibitory",
     "gated_circuits.mask_count_of_inhibitory"),
    (one_inhibitory_too_many, "has 7 excitatory \\(\\+1\\) columns but should have",
     "gated_circuits.mask_count_wrong"),
    (lambda n, frac=0.8: -ref_mask(n, frac), "the signs are reversed",
     "gated_circuits.mask_signs_reversed"),
    (lambda n, frac=0.8: ref_mask(n, frac).clamp(min=0), "inhibitory columns are -1, not 0",
     "gated_circuits.mask_inhibitory_zero"),
    (lambda n, frac=0.8: 0.5 * ref_mask(n, frac), "must be \\+1, -1 or 0, but entry",
     "gated_circuits.mask_values_not_signs"),
    (mixed_column, "column 1 mixes signs", "gated_circuits.mask_column_mixes_signs"),
    (default_fraction_half, "ei_sign_mask\\(9\\) has 4 excitatory",
     "gated_circuits.mask_count_wrong"),
    (lambda n, frac=0.8: ref_mask(n, frac).long(), "dtype torch.int64; it must be float32",
     "gated_circuits.mask_not_float32"),
    (lambda n, frac=0.8: ref_mask(n, frac) > 0, "dtype torch.bool; it must be float32",
     "gated_circuits.mask_not_float32"),
    (lambda n, frac=0.8: ref_mask(n, frac).double(), "dtype torch.float64; it must be float32",
     "gated_circuits.mask_not_float32"),
    (global_random_assignment, "global random generator", "common.global_rng"),
    (lambda n, frac=0.8: ref_mask(n, frac).numpy(), "got numpy.ndarray", "common.wrong_type"),
    (lambda n, frac=0.8: ref_mask(n, frac).tolist(), "got builtins.list", "common.wrong_type"),
    (lambda n, frac=0.8: ref_mask(n, frac).as_subclass(Agreeable), "subclass",
     "common.tensor_subclass"),
    (lambda n, frac=0.8: ref_mask(n, frac).to_sparse(), "sparse", "common.sparse"),
    (lambda n, frac=0.8: ref_mask(n, frac)[:, : n - 1], "has shape \\(10, 9\\)",
     "common.wrong_shape"),
    (not_implemented, "is not implemented yet", "common.not_implemented"),
]


@pytest.mark.parametrize(("wrong", "message", "mistake"), WRONG_MASKS)
def test_wrong_ei_masks_are_rejected_with_their_message(wrong, message, mistake):
    rejects(check_ei_sign_mask, wrong, mistake, message)


def reseeding(fn):
    """fn after torch.manual_seed(0), as a student might write "for reproducibility"."""

    def reseeded(*args):
        torch.manual_seed(0)
        return fn(*args)

    return reseeded


VISIBLE_CALLS = [  # (checker, reference, the call of the visible test before the checker)
    (check_sublstm_step, gated_cells.sublstm_step,
     (torch.zeros(1, 8), torch.zeros(1, 2), torch.ones(1, 2), torch.zeros(8, 2))),
    (check_light_gru_step, gated_cells.light_gru_step,
     (torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2), torch.zeros(2, 2),
      torch.zeros(2, 2))),
    (check_ei_sign_mask, gated_cells.ei_sign_mask, (5, 0.6)),
]


@pytest.mark.parametrize(("check", "reference", "visible_args"), VISIBLE_CALLS)
def test_reseeding_the_global_generator_is_caught_after_the_visible_call(
        check, reference, visible_args):
    """The visible test calls the function first, which leaves the global generator at
    seed 0's state; a second torch.manual_seed(0) alone would not change it."""
    student = reseeding(reference)
    student(*visible_args)
    rejects(check, student, "common.global_rng", "global random generator")


def test_checkers_write_nothing_to_stderr(capfd):
    check_sublstm_step(gated_cells.sublstm_step)
    check_light_gru_step(gated_cells.light_gru_step)
    check_ei_sign_mask(gated_cells.ei_sign_mask)
    assert capfd.readouterr().err == ""


def test_patching_torch_in_an_answer_cell_changes_nothing(monkeypatch):
    """The expected values come from private references: a student who makes
    torch.sigmoid the identity does not make the identity correct."""
    identity = lambda x: x  # noqa: E731
    monkeypatch.setattr(torch, "sigmoid", identity)
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch, "equal", lambda *a, **k: True)
    with pytest.raises(AssertionError, match="differs from the subLSTM"):
        check_sublstm_step(gated_cells.sublstm_step)
    with pytest.raises(AssertionError, match="sigmoid"):
        check_light_gru_step(gated_cells.light_gru_step)
