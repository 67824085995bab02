"""Sparse masks (Song, Yang & Wang 2016, eq. 5): invariants the whole course relies on."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from course_lib.connectivity import Mask, apply_mask, random_sparse_mask, spectral_radius


def test_mask_is_binary_with_exact_density():
    mask = random_sparse_mask(20, 30, 0.25, seed=1)
    assert mask.shape == (20, 30)
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert int(mask.sum()) == 150  # 0.25 * 600, counted by hand


def test_no_self_connections_excludes_the_diagonal_from_the_count():
    mask = random_sparse_mask(10, 10, 0.5, seed=2, self_connections=False)
    assert torch.diagonal(mask).sum() == 0
    assert int(mask.sum()) == 45  # half of the 90 off-diagonal entries
    full = random_sparse_mask(10, 10, 1.0, seed=2, self_connections=False)
    assert torch.equal(full, 1 - torch.eye(10))


def test_same_seed_same_mask_other_seed_other_mask():
    assert torch.equal(
        random_sparse_mask(16, 16, 0.3, seed=5), random_sparse_mask(16, 16, 0.3, seed=5)
    )
    assert not torch.equal(
        random_sparse_mask(16, 16, 0.3, seed=5), random_sparse_mask(16, 16, 0.3, seed=6)
    )


def test_mask_does_not_touch_the_global_random_state():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    random_sparse_mask(8, 8, 0.5, seed=3)
    assert torch.equal(torch.rand(3), expected)


def test_entries_are_chosen_uniformly():
    frequency = sum(random_sparse_mask(6, 6, 0.25, seed=s) for s in range(400)) / 400
    assert (frequency - 0.25).abs().max() < 0.1


@pytest.mark.parametrize("density", [0.0, -0.1, 1.01, float("nan"), "half"])
def test_bad_density_raises_value_error(density):
    with pytest.raises(ValueError, match=r"density must be a number in \(0, 1\]"):
        random_sparse_mask(4, 4, density)


def test_self_connections_need_a_square_mask():
    with pytest.raises(ValueError, match="square"):
        random_sparse_mask(4, 5, 0.5, self_connections=False)


def test_apply_mask_rejects_a_mismatched_shape():
    with pytest.raises(
        ValueError, match=r"mask must have the shape of weight, \(post, pre\) = \(3, 5\)"
    ):
        apply_mask(nn.Linear(5, 3), torch.ones(5, 3))


def _train(layer, steps, optimizer_cls, **kwargs):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, layer.in_features, generator=generator)
    y = torch.randn(64, layer.out_features, generator=generator)
    optimizer = optimizer_cls(layer.parameters(), **kwargs)
    losses = []
    for _ in range(steps):
        loss = ((layer(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize(
    ("optimizer_cls", "kwargs"),
    [
        (torch.optim.AdamW, {"lr": 0.05, "weight_decay": 0.1}),
        (torch.optim.Adam, {"lr": 0.05}),
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    ],
)
def test_masked_weights_stay_exactly_zero_through_training(optimizer_cls, kwargs):
    mask = random_sparse_mask(12, 20, 0.3, seed=4)
    layer = apply_mask(nn.Linear(20, 12), mask)
    losses = _train(layer, 200, optimizer_cls, **kwargs)
    assert losses[-1] < 0.9 * losses[0], "the unmasked weights must still learn"
    weight = layer.weight.detach()
    assert torch.all(weight[mask == 0] == 0)
    assert torch.all(weight[mask == 1] != 0)


def test_masked_entries_get_exactly_zero_gradient():
    mask = random_sparse_mask(6, 7, 0.5, seed=0)
    layer = apply_mask(nn.Linear(7, 6), mask)
    layer(torch.randn(5, 7)).pow(2).sum().backward()
    grad = layer.parametrizations.weight.original.grad
    assert torch.all(grad[mask == 0] == 0)
    assert torch.all(grad[mask == 1] != 0)


def test_a_mask_zeroed_only_once_does_not_survive_adamw():
    """The control: without the forward-pass mask, absent synapses come back."""
    mask = random_sparse_mask(12, 20, 0.3, seed=4)
    layer = nn.Linear(20, 12)
    with torch.no_grad():
        layer.weight.mul_(mask)
    _train(layer, 20, torch.optim.AdamW, lr=0.05, weight_decay=0.1)
    assert torch.any(layer.weight.detach()[mask == 0] != 0)


def test_mask_is_a_buffer_saved_and_moved_with_the_module():
    mask = random_sparse_mask(4, 5, 0.5, seed=0)
    layer = apply_mask(nn.Linear(5, 4), mask)
    state = layer.state_dict()
    assert torch.equal(state["parametrizations.weight.0.mask"], mask)
    assert all(
        p.shape != mask.shape or p is layer.parametrizations.weight.original
        for p in layer.parameters()
    )
    assert len(list(layer.parameters())) == 2  # original weight and bias, not the mask
    layer.to(torch.float64)
    assert layer.parametrizations.weight[0].mask.dtype == torch.float64
    assert layer.weight.dtype == torch.float64

    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    fresh = apply_mask(nn.Linear(5, 4).double(), torch.ones(4, 5))
    fresh.load_state_dict(torch.load(buffer))
    assert torch.equal(fresh.parametrizations.weight[0].mask, mask.double())


def test_mask_module_is_a_parametrization():
    layer = nn.Linear(3, 2)
    parametrize.register_parametrization(
        layer, "weight", Mask(torch.tensor([[1.0, 0, 1], [0, 1, 0]]))
    )
    original = layer.parametrizations.weight.original.detach()
    expected = original * torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    assert torch.equal(layer.weight.detach(), expected)


def test_spectral_radius_of_a_known_matrix():
    rotation_scaled = torch.tensor([[0.0, -2.0], [2.0, 0.0]])  # eigenvalues ±2i
    assert spectral_radius(rotation_scaled) == pytest.approx(2.0)
