"""course_lib.spatial (modularity, communities, drawing) and course_lib.sparsity helpers
against hand-built graphs and hand-computed values."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib import sparsity, spatial  # noqa: E402
from course_lib.models import RateRNN  # noqa: E402
from course_lib.regularisers import distance_matrix, grid_positions  # noqa: E402


def two_cliques(bridge: float = 0.0) -> torch.Tensor:
    """Two 4-unit cliques (weights 1), joined by one synapse of strength ``bridge``."""
    w = torch.zeros(8, 8)
    w[:4, :4] = 1.0
    w[4:, 4:] = 1.0
    w.fill_diagonal_(0.0)
    w[4, 3] = bridge
    return w


def test_modularity_of_two_disconnected_cliques_is_one_half():
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    assert spatial.modularity(two_cliques(), labels) == pytest.approx(0.5)
    assert spatial.modularity(two_cliques(), [0] * 8) == pytest.approx(0.0)


def test_modularity_ignores_sign_and_direction():
    w = two_cliques(bridge=0.3)
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    assert spatial.modularity(-w, labels) == pytest.approx(spatial.modularity(w.T, labels))


def test_modularity_rejects_bad_input():
    with pytest.raises(ValueError, match="one label per unit"):
        spatial.modularity(two_cliques(), [0, 1])
    with pytest.raises(ValueError, match="square"):
        spatial.modularity(torch.ones(2, 3), [0, 1])


def test_communities_finds_the_two_cliques():
    labels = spatial.communities(two_cliques(bridge=0.2))
    assert len(set(labels[:4])) == 1 and len(set(labels[4:])) == 1
    assert labels[0] != labels[4]
    q, best = spatial.max_modularity(two_cliques(bridge=0.2))
    assert q == pytest.approx(spatial.modularity(two_cliques(bridge=0.2), best))
    assert q > 0.4


def test_communities_of_a_complete_graph_is_one_module():
    w = torch.ones(6, 6) - torch.eye(6)
    assert set(spatial.communities(w)) == {0}
    assert spatial.max_modularity(w)[0] == pytest.approx(0.0, abs=1e-12)


def test_strongest_keeps_the_requested_fraction_off_the_diagonal():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(10, 10, generator=g)
    keep = spatial.strongest(w, 0.1)
    assert keep.sum() == 9 and not np.diagonal(keep).any()
    off = np.abs(w.numpy())[~np.eye(10, dtype=bool)]
    assert np.abs(w.numpy())[keep].min() == pytest.approx(np.sort(off)[-9])


def test_weight_by_distance_on_a_line():
    d = distance_matrix(grid_positions((3,)))
    w = torch.tensor([[0.0, 1.0, 4.0], [3.0, 0.0, 1.0], [-2.0, 1.0, 0.0]])
    levels, mean = spatial.weight_by_distance(w, d)
    assert levels.tolist() == [1.0, 2.0]
    assert mean.tolist() == pytest.approx([1.5, 3.0])


def test_drawing_needs_two_dimensions_and_returns_q():
    positions = grid_positions((2, 4))
    fig, ax = plt.subplots()
    q = spatial.draw_spatial_panel(two_cliques(0.2), positions, fraction=0.3, name="x", ax=ax)
    assert 0 < q <= 0.5
    assert len(ax.collections) == 2  # the lines and the units
    plt.close(fig)
    with pytest.raises(ValueError, match="2-D positions"):
        spatial.draw_network_in_space(two_cliques(), grid_positions((2, 2, 2)))


# --- course_lib.sparsity ---------------------------------------------------------------


def test_soft_threshold_and_l2_shrink_by_hand():
    w = torch.tensor([-1.5, -0.2, 0.0, 0.3, 2.0])
    assert sparsity.soft_threshold(w, 0.5).tolist() == [-1.0, 0.0, 0.0, 0.0, 1.5]
    assert sparsity.l2_shrink(w, 0.5).tolist() == pytest.approx((w / 2).tolist())
    with pytest.raises(ValueError, match="lam"):
        sparsity.soft_threshold(w, -1.0)


def test_soft_threshold_minimises_the_penalised_quadratic():
    w0, lam = torch.tensor(0.8), 0.3
    grid = torch.linspace(-2, 2, 40001)
    objective = 0.5 * (grid - w0) ** 2 + lam * grid.abs()
    assert sparsity.soft_threshold(w0, lam).item() == pytest.approx(
        grid[objective.argmin()].item(), abs=1e-3
    )


def test_weight_sparsity_and_prune_leave_the_model_intact():
    model = RateRNN(3, 8, 3, dt=100, tau=200, seed=0)
    before = model.recurrent.weight.detach().clone()
    pruned = sparsity.prune(model, 0.2)
    assert torch.equal(model.recurrent.weight.detach(), before)
    zero = (pruned.recurrent.weight == 0).double().mean().item()
    assert zero == pytest.approx(float((before.abs() <= 0.2).double().mean()))
    assert sparsity.weight_sparsity(pruned.recurrent.weight) >= zero
    assert sparsity.weight_sparsity(torch.tensor([0.001, -0.5])) == 0.5


def test_penalty_geometry_l1_lands_on_an_axis_l2_does_not():
    fig, axes = plt.subplots(1, 2)
    w_l1, w_l2 = sparsity.draw_penalty_geometry(axes)
    plt.close(fig)
    assert min(abs(w_l1)) < 1e-9
    assert min(abs(w_l2)) > 0.05


def test_local_share_counts_the_weight_on_short_synapses():
    d = distance_matrix(grid_positions((3,)))
    w = torch.tensor([[5.0, 1.0, 2.0], [1.0, 0.0, 0.0], [-2.0, 0.0, 0.0]])
    assert spatial.local_share(w, d) == pytest.approx(2.0 / 6.0)
    assert spatial.local_share(torch.zeros(3, 3), d) == 0.0
