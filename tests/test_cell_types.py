"""Cell types (Liu & Wang 2024): hand-written masks and coupling, invariants after training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.cell_types import (
    DEFAULT_CONNECTIONS,
    CellTypeRNN,
    CellTypeWeight,
    cell_type_layout,
    cell_type_weight,
    dendrite_to_soma,
    type_mask,
    type_signs,
)

SMALL = {"E_soma": 2, "PV": 1, "SST": 1, "VIP": 1}  # with one dendrite per soma: 7 units


def test_layout_orders_units_by_type():
    layout = cell_type_layout({"E_soma": 3, "PV": 1, "SST": 2, "VIP": 1}, dendrites_per_soma=2)
    assert layout.types == ["E_soma"] * 3 + ["E_dend"] * 6 + ["PV"] + ["SST"] * 2 + ["VIP"]
    assert layout.n_units == 13
    assert layout.indices("SST").tolist() == [10, 11]


def test_type_mask_by_hand():
    layout = cell_type_layout(SMALL, dendrites_per_soma=1)
    assert layout.types == ["E_soma", "E_soma", "E_dend", "E_dend", "PV", "SST", "VIP"]
    # rows = post, columns = pre:  Es0 Es1 Ed0 Ed1 PV SST VIP
    expected = np.array(
        [
            [0, 1, 0, 0, 1, 0, 0],  # E soma 0: other soma, PV (no SST: SST targets dendrites)
            [1, 0, 0, 0, 1, 0, 0],  # E soma 1
            [1, 1, 0, 0, 0, 1, 0],  # E dendrite 0: somata, SST
            [1, 1, 0, 0, 0, 1, 0],  # E dendrite 1
            [1, 1, 0, 0, 0, 1, 0],  # PV: somata, SST (PV -> PV would be its own diagonal)
            [1, 1, 0, 0, 0, 0, 1],  # SST: somata, VIP (disinhibition)
            [1, 1, 0, 0, 0, 1, 0],  # VIP: somata, SST
        ],
        dtype=float,
    )
    np.testing.assert_array_equal(type_mask(layout.types, DEFAULT_CONNECTIONS).numpy(), expected)


def test_type_signs_by_hand():
    signs = type_signs(["E_soma", "E_dend", "PV", "SST", "VIP"])
    assert signs.tolist() == [1.0, 1.0, -1.0, -1.0, -1.0]


def test_dendrite_to_soma_by_hand():
    layout = cell_type_layout({"E_soma": 2, "PV": 1}, dendrites_per_soma=2)
    # units: Es0 Es1 | Ed(0,0) Ed(0,1) Ed(1,0) Ed(1,1) | PV
    expected = np.zeros((7, 7))
    expected[0, [2, 3]] = 0.25
    expected[1, [4, 5]] = 0.25
    np.testing.assert_array_equal(dendrite_to_soma(layout, 0.25).numpy(), expected)


def test_cell_type_weight_by_hand():
    w_plastic = torch.tensor([[0.0, -2.0, 1.0], [3.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    mask = torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    fixed = torch.tensor([[0.0, 0.0, 0.0], [0.7, 0.0, 0.0], [0.0, 0.0, 0.0]])
    signs = torch.tensor([1.0, 1.0, -1.0])
    # (M ⊙ |W| + F) D
    expected = np.array([[0.0, 2.0, -1.0], [0.7, 0.0, -1.0], [0.5, 0.5, 0.0]])
    np.testing.assert_allclose(cell_type_weight(w_plastic, mask, fixed, signs).numpy(), expected)


def test_initial_rows_without_fixed_input_are_balanced():
    model = CellTypeRNN(5, 3, seed=0)
    w = model.recurrent.weight.detach().double().numpy()
    for cell_type in ("E_dend", "PV", "SST", "VIP"):
        rows = w[model.layout.indices(cell_type).numpy()]
        np.testing.assert_allclose(rows.sum(axis=1), 0.0, atol=1e-5)


# --- invariants after training ----------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    counts = {"E_soma": 6, "PV": 2, "SST": 2, "VIP": 2}
    model = CellTypeRNN(4, 3, counts=counts, dendrites_per_soma=2, dendrite_weight=0.6, seed=0)
    before = model.recurrent.weight.detach().clone()
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(20, 16, 4, generator=generator)
    targets = torch.randn(20, 16, 3, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        outputs, _ = model(inputs)
        loss = ((outputs - targets) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, before


def test_mask_zeros_hold_after_training(trained):
    model, before = trained
    w = model.recurrent.weight.detach()
    allowed = (model.recurrent_mask != 0) | (model.fixed_weight != 0)
    assert (w[~allowed] == 0).all()
    assert not torch.allclose(w[allowed], before[allowed])  # training did change weights


def test_fixed_dendrite_to_soma_weights_unchanged_after_training(trained):
    model, _ = trained
    w = model.recurrent.weight.detach()
    layout = model.layout
    for soma in range(layout.counts["E_soma"]):
        own = layout.indices("E_dend")[2 * soma : 2 * soma + 2]
        assert torch.all(w[soma, own] == 0.6)
        others = [d for d in layout.indices("E_dend").tolist() if d not in own.tolist()]
        assert torch.all(w[soma, others] == 0)


def test_signs_by_type_after_training(trained):
    model, _ = trained
    w = model.recurrent.weight.detach()
    for cell_type in ("E_soma", "E_dend"):
        assert (w[:, model.layout.indices(cell_type)] >= 0).all()
    for cell_type in ("PV", "SST", "VIP"):
        columns = w[:, model.layout.indices(cell_type)]
        assert (columns <= 0).all() and (columns < 0).any()
    # the sign constraint was exercised: some raw plastic weights went negative
    assert (model.recurrent.parametrizations.weight.original < 0).any()


def test_inputs_and_readout_respect_types_after_training(trained):
    model, _ = trained
    w_in = model.input.weight.detach()
    assert (w_in >= 0).all()
    assert (w_in[model.layout.indices("E_soma")] == 0).all()  # inputs reach dendrites only
    w_out = model.readout.weight.detach()
    not_soma = ~model.layout.is_type("E_soma")
    assert (w_out[:, not_soma] == 0).all()


# --- bad input --------------------------------------------------------------------------


def test_unknown_cell_types_raise():
    with pytest.raises(ValueError, match="unknown cell type 'Martinotti'"):
        cell_type_layout({"E_soma": 4, "Martinotti": 2})
    with pytest.raises(ValueError, match="unknown cell type"):
        CellTypeRNN(3, 2, connections=[("E_soma", "chandelier")])
    with pytest.raises(ValueError, match="unknown cell type"):
        CellTypeRNN(3, 2, input_targets=["thalamus"])
    with pytest.raises(ValueError, match="unknown cell type"):
        type_signs(["E_soma", "pv"])


def test_bad_counts_raise():
    with pytest.raises(ValueError, match="non-negative integer"):
        cell_type_layout({"E_soma": 4, "PV": -1})
    with pytest.raises(ValueError, match="at least one 'E_soma'"):
        cell_type_layout({"PV": 3})
    with pytest.raises(ValueError, match="dendrites_per_soma"):
        cell_type_layout({"E_soma": 2, "E_dend": 4})


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="w_plastic must have shape"):
        cell_type_weight(torch.ones(3, 2), torch.ones(3, 3), torch.zeros(3, 3), torch.ones(3))
    with pytest.raises(ValueError, match="both plastic"):
        CellTypeWeight(torch.ones(2, 2), torch.ones(2, 2), torch.ones(2))
    with pytest.raises(ValueError, match="connections must be"):
        type_mask(["E_soma"], [("E_soma",)])
