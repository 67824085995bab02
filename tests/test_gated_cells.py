"""Gated cells: torch's LSTM as ground truth, hand-computed steps, and constraint invariants
after optimiser steps."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_lib.gated_cells import (
    CELLS,
    EILightGRUCell,
    ENULightGRUCell,
    GatedRNN,
    LSTMCell,
    SubLSTMCell,
    block_diagonal_mask,
    ei_sign_mask,
    light_gru_step,
    lstm_step,
    make_gated_rnn,
    sublstm_step,
)
from course_lib.regularisers import l2_rates

LN3 = math.log(3.0)  # sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4, sigmoid(0) = 1/2


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: with two OpenMP threads on a busy 2-core machine the threads
    mostly wait for each other (30x slower). One thread here, restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def random_batch(steps=12, batch=5, n_input=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(steps, batch, n_input, generator=g)


def adamw_steps(model: nn.Module, n_steps: int, *, lr: float = 0.05, penalty=None):
    """A few AdamW steps (with weight decay) on random targets."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    g = torch.Generator().manual_seed(1)
    for _ in range(n_steps):
        inputs = torch.randn(10, 4, model.cell.n_input, generator=g)
        targets = torch.randint(0, 3, (10, 4), generator=g)
        outputs, hidden = model(inputs)
        loss = nn.functional.cross_entropy(outputs.flatten(0, 1), targets.flatten())
        if penalty is not None:
            loss = loss + penalty(hidden)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


# --- LSTM -------------------------------------------------------------------------------------


def test_lstm_equals_torch_lstm_cell():
    n_input, n_hidden = 3, 6
    reference = nn.LSTMCell(n_input, n_hidden)
    cell = LSTMCell(n_input, n_hidden, seed=4)
    with torch.no_grad():
        cell.input.weight.copy_(reference.weight_ih)
        cell.input.bias.copy_(reference.bias_ih + reference.bias_hh)
        cell.recurrent.weight.copy_(reference.weight_hh)
    model = GatedRNN(cell, n_output=2)
    inputs = random_batch(n_input=n_input)
    _, hidden = model(inputs)
    h = c = torch.zeros(inputs.shape[1], n_hidden)
    expected = []
    for x in inputs:
        h, c = reference(x, (h, c))
        expected.append(h)
    assert torch.allclose(hidden, torch.stack(expected), atol=1e-6)


def test_lstm_step_gate_order_is_i_f_g_o():
    # i = 3/4, f = 1/2, g = tanh(1), o = 1/4, c = 2
    drive = torch.tensor([[LN3, 0.0, 1.0, -LN3]])
    h, c = lstm_step(drive, torch.zeros(1, 1), torch.tensor([[2.0]]), torch.zeros(4, 1))
    c_hand = 0.5 * 2 + 0.75 * math.tanh(1)
    assert c.item() == pytest.approx(c_hand, abs=1e-6)
    assert h.item() == pytest.approx(0.25 * math.tanh(c_hand), abs=1e-6)


# --- subLSTM --------------------------------------------------------------------------------


def test_sublstm_step_hand_values():
    # gates (i, f, z, o) = (3/4, 1/2, 1/4, 3/4), c = 2:
    # c' = 1/2 * 2 + 1/4 - 3/4 = 1/2,   h' = sigmoid(1/2) - 3/4
    drive = torch.tensor([[LN3, 0.0, -LN3, LN3]])
    h, c = sublstm_step(drive, torch.zeros(1, 1), torch.tensor([[2.0]]), torch.zeros(4, 1))
    assert c.item() == pytest.approx(0.5, abs=1e-6)
    assert h.item() == pytest.approx(sigmoid(0.5) - 0.75, abs=1e-6)


def test_sublstm_recurrent_input_enters_every_gate():
    # weight_hh = 1 for every gate, h = ln 3, no feedforward drive: all gates 3/4
    h, c = sublstm_step(
        torch.zeros(1, 4), torch.tensor([[LN3]]), torch.tensor([[0.0]]), torch.ones(4, 1)
    )
    assert c.item() == pytest.approx(0.75 - 0.75, abs=1e-6)
    assert h.item() == pytest.approx(0.5 - 0.75, abs=1e-6)


def test_sublstm_gating_is_subtractive():
    # The candidate enters the cell with slope 1 whatever the input gate is (an LSTM
    # would scale it by i); the input gate takes away exactly its own value.
    for i_pre in (-2.0, 0.0, 3.0):
        z_pre = torch.tensor(0.3, requires_grad=True)
        drive = torch.stack([torch.tensor(i_pre), torch.tensor(0.0), z_pre, torch.tensor(0.0)])
        _, c = sublstm_step(drive[None], torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(4, 1))
        (dc_dz,) = torch.autograd.grad(c.sum(), z_pre)
        slope = sigmoid(0.3) * (1 - sigmoid(0.3))  # d sigmoid(z_pre) / d z_pre, times 1
        assert dc_dz.item() == pytest.approx(slope, abs=1e-6)
        assert c.item() == pytest.approx(sigmoid(0.3) - sigmoid(i_pre), abs=1e-6)
    # equal candidate and input gate cancel: only the forgotten memory is left
    _, c = sublstm_step(
        torch.tensor([[1.0, 0.0, 1.0, 0.0]]),
        torch.zeros(1, 1),
        torch.tensor([[3.0]]),
        torch.zeros(4, 1),
    )
    assert c.item() == pytest.approx(1.5, abs=1e-6)


def test_sublstm_hidden_stays_in_open_unit_interval():
    cell = SubLSTMCell(3, 16, seed=2)
    with torch.no_grad():
        for p in cell.parameters():
            p.mul_(5.0)  # strong weights: gates near 0 and 1
    model = GatedRNN(cell, n_output=2)
    _, hidden = model(random_batch(steps=60, batch=8, seed=3) * 3)
    assert hidden.min() > -1 and hidden.max() < 1
    assert hidden.min() < -0.5 and hidden.max() > 0.5  # the range is actually used


# --- light-GRU ------------------------------------------------------------------------------


def test_light_gru_step_hand_values():
    # z = sigmoid([ln 3, -ln 3]) = [3/4, 1/4];  h̃ = relu([1 + 1*4, -3]) = [5, 0]
    # h' = z h + (1 - z) h̃ = [3/4*2 + 1/4*5, 1/4*4 + 3/4*0] = [2.75, 1]
    h = torch.tensor([[2.0, 4.0]])
    new_h = light_gru_step(
        drive_z=torch.tensor([[LN3, -LN3]]),
        drive_h=torch.tensor([[1.0, -3.0]]),
        h=h,
        weight_z=torch.zeros(2, 2),
        weight_h=torch.tensor([[0.0, 1.0], [0.0, 0.0]]),
    )
    assert torch.allclose(new_h, torch.tensor([[2.75, 1.0]]))


def test_light_gru_update_gate_reads_recurrent_weights():
    # U_z h = [ln 3, 0] -> z = [3/4, 1/2]; h̃ = relu(0) = 0 -> h' = z * h = [3/4, 1/2]
    new_h = light_gru_step(
        torch.zeros(1, 2),
        torch.zeros(1, 2),
        torch.ones(1, 2),
        weight_z=torch.tensor([[LN3, 0.0], [0.0, 0.0]]),
        weight_h=torch.zeros(2, 2),
    )
    assert torch.allclose(new_h, torch.tensor([[0.75, 0.5]]))


def test_light_gru_network_matches_the_equations():
    model = make_gated_rnn("light_gru", 3, 5, 2, seed=0)
    inputs = random_batch(steps=7, batch=4)
    _, hidden = model(inputs)
    cell = model.cell
    w_z, w_h = cell.input.weight.detach().chunk(2)
    u_z, u_h = cell.recurrent_z.weight.detach(), cell.recurrent_h.weight.detach()

    def batch_norm(a):  # training mode: statistics over all T * B samples, eps 1e-5
        flat = a.reshape(-1, a.shape[-1])
        return (a - flat.mean(0)) / (flat.var(0, unbiased=False) + 1e-5).sqrt()

    a_z, a_h = batch_norm(inputs @ w_z.T), batch_norm(inputs @ w_h.T)
    h = torch.zeros(4, 5)
    for t in range(7):
        z = torch.sigmoid(a_z[t] + h @ u_z.T)
        h = z * h + (1 - z) * torch.relu(a_h[t] + h @ u_h.T)
        assert torch.allclose(hidden[t], h, atol=1e-5)


# --- EI-light-GRU ---------------------------------------------------------------------------


def test_ei_sign_mask_signs_columns():
    expected = torch.tensor(
        [
            [0.0, 1.0, 1.0, -1.0, -1.0],
            [1.0, 0.0, 1.0, -1.0, -1.0],
            [1.0, 1.0, 0.0, -1.0, -1.0],
            [1.0, 1.0, 1.0, 0.0, -1.0],
            [1.0, 1.0, 1.0, -1.0, 0.0],
        ]
    )
    assert torch.equal(ei_sign_mask(5, frac_excitatory=0.6), expected)


def _assert_dale(cell: EILightGRUCell) -> None:
    u = cell.recurrent_h.weight.detach()
    n_e = cell.n_excitatory
    assert torch.equal(torch.diagonal(u), torch.zeros(u.shape[0])), "diagonal must be 0"
    assert (u[:, :n_e] >= 0).all(), "excitatory columns must be >= 0"
    assert (u[:, n_e:] <= 0).all(), "inhibitory columns must be <= 0"


def test_ei_light_gru_keeps_dale_after_training():
    model = make_gated_rnn("ei_light_gru", 3, 10, 3, seed=0)
    assert model.cell.n_excitatory == 8
    _assert_dale(model.cell)
    adamw_steps(model, 25, penalty=lambda hidden: l2_rates(hidden, beta=1e-2))
    _assert_dale(model.cell)
    raw = model.cell.recurrent_h.parametrizations.weight.original.detach()
    # the test means something only if training pushed raw magnitudes below zero
    assert (raw < 0).any(), "training should have pushed some raw magnitudes negative"
    u = model.cell.recurrent_h.weight.detach()
    assert (u[:, :8] > 0).any() and (u[:, 8:] < 0).any()
    assert model.cell.sign_mask.shape == (10, 10)


def test_ei_light_gru_trains_with_the_course_loop():
    from course_lib.tasks import TaskDataset
    from course_lib.training import train

    data = TaskDataset("PerceptualDecisionMaking-v0", batch_size=8, seq_len=60, seed=0)
    model = make_gated_rnn("ei_light_gru", data.n_input, 12, data.n_output, seed=0)
    history = train(
        model,
        data,
        n_steps=3,
        eval_every=3,
        penalty=lambda model, rates: l2_rates(rates, beta=1e-3),
    )
    assert len(history.loss) == 3 and all(math.isfinite(x) for x in history.loss)
    _assert_dale(model.cell)


# --- ENU-light-GRU --------------------------------------------------------------------------


def test_block_diagonal_mask_hand_pattern():
    expected = torch.tensor(
        [
            [1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0, 1.0],
        ]
    )
    assert torch.equal(block_diagonal_mask(3, 2), expected)


def test_enu_block_zeros_never_train():
    model = make_gated_rnn("enu_light_gru", 3, 4, 3, seed=0, n_dendrites=2)
    cell = model.cell
    assert isinstance(cell, ENULightGRUCell)
    off_block = torch.cat([block_diagonal_mask(4, 2)] * 2) == 0  # (2H, H * n_dendrites)
    adamw_steps(model, 10)
    raw = cell.input.parametrizations.weight.original
    assert torch.equal(cell.input.weight.detach()[off_block], torch.zeros(int(off_block.sum())))
    assert torch.equal(raw.grad[off_block], torch.zeros(int(off_block.sum())))
    assert (raw.grad[~off_block] != 0).any()  # the blocks themselves do learn


def test_enu_unit_reads_only_its_own_dendrites():
    model = make_gated_rnn("enu_light_gru", 2, 3, 2, seed=1, n_dendrites=4)
    cell = model.cell
    dendrites = torch.rand(5, 1, 12) + 0.1  # activity of the 12 subunits, (T, B, H * 4)
    bumped = dendrites.clone()
    bumped[..., 4:8] += 1.0  # subunits of unit 1 only
    change = cell.input(bumped) - cell.input(dendrites)  # (T, B, 2H): [W_z ĥ; W_h ĥ]
    z_change, h_change = change.chunk(2, dim=-1)
    for block in (z_change, h_change):
        assert torch.equal(block[..., [0, 2]], torch.zeros(5, 1, 2))
        assert (block[..., 1] != 0).all()


# --- every cell through the shared wrapper --------------------------------------------------


@pytest.mark.parametrize("kind", CELLS)
def test_shapes_and_gradients(kind):
    model = make_gated_rnn(kind, 3, 8, 4, seed=0)
    outputs, hidden = model(random_batch(steps=9, batch=2))
    assert outputs.shape == (9, 2, 4) and hidden.shape == (9, 2, 8)
    outputs.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("kind", CELLS)
def test_same_seed_same_network(kind):
    a, b = make_gated_rnn(kind, 3, 8, 2, seed=5), make_gated_rnn(kind, 3, 8, 2, seed=5)
    c = make_gated_rnn(kind, 3, 8, 2, seed=6)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_wrong_input_size_is_explained():
    model = make_gated_rnn("sublstm", 3, 8, 2)
    with pytest.raises(ValueError, match=r"inputs must have shape \(any, any, 3\)"):
        model(torch.zeros(5, 2, 4))
    with pytest.raises(ValueError, match="inputs must have shape"):
        model(torch.zeros(5, 3))


def test_unknown_cell_kind_lists_the_choices():
    with pytest.raises(ValueError, match="kind must be one of"):
        make_gated_rnn("gru", 3, 8, 2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ei_sign_mask(10, frac_excitatory=1.5), "frac_excitatory"),
        (lambda: ei_sign_mask(1), "n_hidden must be >= 2"),
        (lambda: ei_sign_mask(10, frac_excitatory=0.01), "at least 1 excitatory unit"),
        (lambda: ENULightGRUCell(0, 4), "n_input must be >= 1"),
        (lambda: block_diagonal_mask(3, 0), "n_dendrites"),
        (lambda: LSTMCell(0, 4), "n_input and n_hidden"),
        (lambda: make_gated_rnn("lstm", 3, 4, 0), "n_output"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
