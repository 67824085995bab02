"""Networks in space: drawing them, wiring cost against distance, and their modules.

Helpers for the chapter *Spatial embedding* (`book/05_spatial_embedding.md`); the
penalties themselves are in `course_lib.regularisers`. Weights are ``(post, pre)``.

Modularity is Newman's ``Q`` (Newman 2006, PNAS, "Modularity and community structure in
networks") on the symmetrised weight magnitudes ``A = (|W| + |W|^T) / 2``::

    Q = (1 / 2m) Σ_ij (A_ij - k_i k_j / 2m) δ(c_i, c_j),   k_i = Σ_j A_ij,  2m = Σ_ij A_ij

and communities are found by Newman's leading-eigenvector method (repeated bisection of
the modularity matrix), which is deterministic and needs nothing beyond numpy.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.collections import LineCollection


def _magnitude(weight) -> np.ndarray:
    """``|W|`` as a float64 array, checked to be a square (post, pre) matrix."""
    w = np.abs(
        weight.detach().cpu().double().numpy()
        if isinstance(weight, torch.Tensor)
        else np.asarray(weight, dtype=float)
    )
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"weight must be a square (post, pre) matrix, got shape {w.shape}")
    return w


def _symmetric_magnitude(weight) -> np.ndarray:
    w = _magnitude(weight)
    a = (w + w.T) / 2
    np.fill_diagonal(a, 0.0)
    return a


def modularity(weight, communities) -> float:
    """Newman's ``Q`` of a partition (one label per unit) of the network ``|W|``."""
    a = _symmetric_magnitude(weight)
    labels = np.asarray(communities)
    if labels.shape != (a.shape[0],):
        raise ValueError(f"communities needs one label per unit ({a.shape[0]}), got {labels.shape}")
    total = a.sum()
    if total == 0:
        return 0.0
    k = a.sum(axis=1)
    same = labels[:, None] == labels[None, :]
    return float(((a - np.outer(k, k) / total) * same).sum() / total)


def communities(weight, max_splits: int = 16) -> np.ndarray:
    """Communities by Newman's leading-eigenvector method (Newman 2006, section 'Dividing
    networks into more than two communities'): split a group by the sign of the leading
    eigenvector of its generalised modularity matrix while the split raises ``Q``."""
    a = _symmetric_magnitude(weight)
    n = a.shape[0]
    total = a.sum()
    labels = np.zeros(n, dtype=int)
    if total == 0:
        return labels
    k = a.sum(axis=1)
    b = a - np.outer(k, k) / total
    queue, next_label, splits = [np.arange(n)], 1, 0
    while queue and splits < max_splits:
        group = queue.pop(0)
        if group.size < 2:
            continue
        bg = b[np.ix_(group, group)]
        bg = bg - np.diag(bg.sum(axis=1))
        values, vectors = np.linalg.eigh(bg)
        if values[-1] <= 1e-10:
            continue
        s = np.where(vectors[:, -1] >= 0, 1.0, -1.0)
        gain = s @ bg @ s / (2 * total)
        if gain <= 1e-10 or abs(s.sum()) == group.size:
            continue
        labels[group[s < 0]] = next_label
        next_label += 1
        splits += 1
        queue += [group[s > 0], group[s < 0]]
    _, labels = np.unique(labels, return_inverse=True)
    return labels


def max_modularity(weight, fraction: float | None = None) -> tuple[float, np.ndarray]:
    """``(Q, labels)`` for the partition found by `communities`.

    With ``fraction``, the graph is the binary one of the ``fraction`` strongest synapses
    (see `strongest`): networks of different overall sparsity are then compared at the
    same density, as Achterberg et al. 2023 do.
    """
    if fraction is not None:
        weight = strongest(weight, fraction).astype(float)
    labels = communities(weight)
    return modularity(weight, labels), labels


def weight_by_distance(weight, distances) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``|W_ij|`` for each distinct distance (the diagonal, distance 0, left out)."""
    w = np.abs(weight.detach().cpu().double().numpy())
    d = np.round(distances.detach().cpu().double().numpy(), 6)
    off = ~np.eye(w.shape[0], dtype=bool)
    levels = np.unique(d[off])
    return levels, np.array([w[off & (d == level)].mean() for level in levels])


def strongest(weight, fraction: float) -> np.ndarray:
    """Boolean ``(post, pre)`` matrix of the ``fraction`` strongest off-diagonal synapses."""
    w = np.abs(weight.detach().cpu().double().numpy())
    np.fill_diagonal(w, 0.0)
    n_keep = max(1, round(fraction * (w.size - w.shape[0])))
    cut = np.sort(w.ravel())[-n_keep]
    return (w >= cut) & (w > 0)


def draw_network_in_space(weight, positions, *, fraction=0.1, labels=None, ax=None, title=None):
    """Units at their 2-D ``positions``; the ``fraction`` strongest connections as lines
    (darker and wider when stronger), units coloured by community ``labels`` if given."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    pos = positions.detach().cpu().numpy()
    if pos.shape[1] != 2:
        raise ValueError(f"draw_network_in_space needs 2-D positions, got {pos.shape[1]}-D")
    w = np.abs(weight.detach().cpu().numpy())
    keep = strongest(weight, fraction)
    post, pre = np.nonzero(keep)
    strength = w[post, pre] / w[post, pre].max()
    order = np.argsort(strength)
    segments = np.stack([pos[pre], pos[post]], axis=1)[order]
    lines = LineCollection(
        segments,
        linewidths=0.4 + 2.0 * strength[order],
        colors=plt.cm.Greys(0.35 + 0.65 * strength[order]),
    )
    ax.add_collection(lines)
    colours = "tab:red" if labels is None else [plt.cm.tab10(int(c) % 10) for c in labels]
    ax.scatter(pos[:, 0], pos[:, 1], s=40, c=colours, zorder=3, edgecolors="k", linewidths=0.5)
    ax.set_aspect("equal")
    ax.margins(0.08)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def local_share(weight, distances, radius: float = 1.5) -> float:
    """Fraction of the total ``|W|`` on synapses shorter than ``radius`` (on a unit grid,
    1.5 keeps the 8 nearest neighbours), the diagonal left out."""
    w = np.abs(weight.detach().cpu().double().numpy())
    np.fill_diagonal(w, 0.0)
    d = distances.detach().cpu().double().numpy()
    return float(w[d < radius].sum() / w.sum()) if w.sum() > 0 else 0.0


def draw_spatial_panel(weight, positions, *, fraction=0.1, name="", ax=None):
    """`draw_network_in_space` with units coloured by the modules of the weighted graph
    ``|W|`` (`max_modularity`) and ``Q`` in the title. Returns ``Q``."""
    q, labels = max_modularity(weight)
    draw_network_in_space(
        weight,
        positions,
        fraction=fraction,
        labels=labels,
        ax=ax,
        title=f"{name}\nQ = {q:.2f}, {labels.max() + 1} modules",
    )
    return q


def spatial_explorer(models: dict, positions: torch.Tensor):
    """Sliders: which trained network, and which fraction of its strongest synapses to draw."""
    import ipywidgets as widgets

    def show(network: str, fraction: float = 0.1):
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        draw_spatial_panel(
            models[network].recurrent.weight.detach(),
            positions,
            fraction=fraction,
            name=network,
            ax=ax,
        )
        plt.show()

    return widgets.interactive(
        show,
        network=widgets.Dropdown(options=list(models), description="network"),
        fraction=widgets.FloatSlider(
            value=0.1, min=0.02, max=0.5, step=0.02, description="strongest"
        ),
    )


# --- Comparing a spatial cost with its sparsity-matched L1 control ----------------------


def _off_diagonal_magnitude(weight) -> np.ndarray:
    """``|W|`` of the synapses between different units (the diagonal dropped), flattened."""
    w = _magnitude(weight)
    return w[~np.eye(w.shape[0], dtype=bool)]


def absent_fraction(weight, threshold: float = 0.01) -> float:
    """Fraction of synapses between different units with ``|W_ij| < threshold``.

    Adam with an L1-like penalty leaves unneeded weights jittering near zero rather than
    at zero, so "absent" needs a threshold. Self-connections are left out: the chapter's
    networks have none (their mask removes them), and counting them would add the same
    ``1 / n`` to every network.
    """
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    return float((_off_diagonal_magnitude(weight) < threshold).mean())


def wiring_length(weight, distances) -> float:
    """Mean length of a synapse weighted by its strength, ``Σ |W_ij| d_ij / Σ |W_ij|``
    over pairs of different units: the average distance a unit of weight travels."""
    w = _off_diagonal_magnitude(weight)
    d = _off_diagonal_magnitude(distances)
    if w.shape != d.shape:
        raise ValueError("distances must have the shape of the weight matrix")
    return float((w * d).sum() / w.sum()) if w.sum() > 0 else 0.0


def beta_for_sparsity(betas, sparsities, target: float) -> float:
    """The coefficient expected to give the ``target`` sparsity, read off a short search.

    ``betas`` (> 0) were tried and gave ``sparsities``; sparsity grows with the penalty
    roughly linearly in ``log(beta)``, so we interpolate linearly in ``log(beta)`` between
    the two tried values that bracket the target (clamped to the tried range).
    """
    betas = np.asarray(betas, dtype=float)
    sparsities = np.asarray(sparsities, dtype=float)
    if betas.shape != sparsities.shape or betas.size < 2 or np.any(betas <= 0):
        raise ValueError("need at least two positive betas, each with its sparsity")
    order = np.argsort(sparsities)
    if np.any(np.diff(sparsities[order]) <= 0):
        raise ValueError(f"sparsities must all differ to be interpolated, got {sparsities}")
    return float(np.exp(np.interp(target, sparsities[order], np.log(betas[order]))))


def module_patches(labels, positions, radius: float = 1.5) -> list[int]:
    """For each module, how many separate patches of the sheet its units form.

    Two units of a module are in the same patch when a chain of the module's own units
    joins them, each step shorter than ``radius`` (1.5 on a unit grid: the 8 nearest
    neighbours). A module that is one patch gives 1; a module with units on opposite
    edges of the grid and none between gives 2 or more.
    """
    labels = np.asarray(labels)
    pos = np.asarray(
        positions.detach().cpu() if isinstance(positions, torch.Tensor) else positions, dtype=float
    )
    if labels.shape != (pos.shape[0],):
        raise ValueError(f"need one label per unit ({pos.shape[0]}), got {labels.shape}")
    near = np.linalg.norm(pos[:, None] - pos[None, :], axis=-1) < radius
    patches = []
    for module in np.unique(labels):
        unseen = set(np.flatnonzero(labels == module).tolist())
        count = 0
        while unseen:  # flood fill one patch at a time
            count += 1
            frontier = [unseen.pop()]
            while frontier:
                unit = frontier.pop()
                neighbours = {j for j in unseen if near[unit, j]}
                unseen -= neighbours
                frontier += neighbours
        patches.append(count)
    return patches
