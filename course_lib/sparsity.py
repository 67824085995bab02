"""Why an L1 penalty makes weights exactly zero, and how much a trained network can lose.

Helpers for the chapter *Brain-like costs* (`book/04_brain_like_costs.md`):

- `soft_threshold`: the proximal step of the L1 penalty. Minimising
  ``½ (w - w0)² + lam |w|`` gives ``sign(w0) max(|w0| - lam, 0)``: every magnitude drops by
  the same amount and the small ones land on exactly zero. The L2 counterpart,
  ``½ (w - w0)² + lam w²``, gives ``w0 / (1 + 2 lam)``: everything shrinks, nothing vanishes.
- `weight_sparsity`, `prune`: measure and impose near-zero weights on a trained network.
- `draw_penalty_geometry`: the picture of the two penalties (diamond against disc).
- `pruning_explorer`: a slider that soft-thresholds trained recurrent weights.

and for the chapter *Sparse connectivity* (`book/01_sparse_connectivity.md`):

- `plot_density_study`: accuracy over seeds against recurrent density, density 0 apart.
"""

from __future__ import annotations

import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from course_lib._validate import check_non_negative
from course_lib.analysis import decision_accuracy
from course_lib.plotting import plot_weight_matrix


def soft_threshold(weight: torch.Tensor, lam: float) -> torch.Tensor:
    """``sign(w) max(|w| - lam, 0)``: the minimiser of ``½ (w - w0)² + lam |w|`` (ISTA step)."""
    check_non_negative("lam", lam)
    return torch.sign(weight) * (weight.abs() - lam).clamp_min(0)


def l2_shrink(weight: torch.Tensor, lam: float) -> torch.Tensor:
    """``w / (1 + 2 lam)``: the minimiser of ``½ (w - w0)² + lam w²``."""
    check_non_negative("lam", lam)
    return weight / (1 + 2 * lam)


def weight_sparsity(weight: torch.Tensor, tol: float = 1e-2) -> float:
    """Fraction of entries with ``|w| < tol``.

    Gradient methods such as Adam jitter around zero rather than landing on it, so a
    weight counts as absent when it is below ``tol`` (0.01 by default, about a tenth of
    the typical initial recurrent weight of a 32-unit network).
    """
    return float((weight.detach().abs() < tol).double().mean())


@torch.no_grad()
def prune(model: nn.Module, lam: float) -> nn.Module:
    """A copy of ``model`` whose recurrent weights went through `soft_threshold`."""
    pruned = copy.deepcopy(model)
    pruned.recurrent.weight.copy_(soft_threshold(pruned.recurrent.weight, lam))
    return pruned


@torch.no_grad()
def pruned_accuracy(model: nn.Module, lam: float, inputs, targets) -> tuple[float, float]:
    """(fraction of recurrent weights exactly zero, decision accuracy) after `prune`."""
    pruned = prune(model, lam)
    pruned.eval()
    outputs, _ = pruned(inputs)
    zero = float((pruned.recurrent.weight == 0).double().mean())
    return zero, decision_accuracy(outputs, targets)


def draw_penalty_geometry(axes=None, optimum=(1.1, 0.45), budget=0.8):
    """Left: the smallest task loss inside an L1 diamond and an L2 disc of the same size.
    Right: the proximal steps, soft threshold (L1) against proportional shrinkage (L2).

    The task loss is a quadratic bowl centred at ``optimum`` (elongated along w2).
    Returns the two constrained minimisers ``(w_l1, w_l2)``.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9.5, 4))
    ax = axes[0]
    centre = np.asarray(optimum, dtype=float)
    curvature = np.array([4.0, 1.0])

    def loss(points):
        return ((points - centre) ** 2 * curvature).sum(axis=-1)

    grid = np.linspace(-1.4, 1.6, 241)
    xx, yy = np.meshgrid(grid, grid)
    zz = loss(np.stack([xx, yy], axis=-1))
    ax.contour(xx, yy, zz, levels=np.linspace(0.05, 3, 10) ** 2, colors="0.6", linewidths=0.8)
    angles = np.linspace(0, 2 * np.pi, 4001)
    circle = budget * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    diamond = circle / np.abs(circle).sum(axis=-1, keepdims=True) * budget
    w_l1 = diamond[np.argmin(loss(diamond))]
    w_l2 = circle[np.argmin(loss(circle))]
    ax.fill(*diamond.T, color="tab:blue", alpha=0.2, label=r"L1 ball $|w_1|+|w_2|\leq c$")
    ax.fill(*circle.T, color="tab:orange", alpha=0.2, label=r"L2 ball $w_1^2+w_2^2\leq c^2$")
    ax.plot(*centre, "k*", ms=10, label="task optimum")
    ax.plot(*w_l1, "o", color="tab:blue", ms=8, label=f"L1 solution ({w_l1[0]:.2f}, {w_l1[1]:.2f})")
    ax.plot(
        *w_l2, "o", color="tab:orange", ms=8, label=f"L2 solution ({w_l2[0]:.2f}, {w_l2[1]:.2f})"
    )
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_aspect("equal")
    ax.set_xlim(-1.2, 1.6)
    ax.set_ylim(-1.2, 1.4)
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("loss contours meet the diamond at a corner")

    ax = axes[1]
    w0 = torch.linspace(-2, 2, 401)
    lam = 0.5
    ax.plot(w0, w0, color="0.7", ls=":", label="no penalty")
    ax.plot(
        w0, soft_threshold(w0, lam), color="tab:blue", label=rf"L1: soft threshold, $\lambda$={lam}"
    )
    ax.plot(
        w0,
        l2_shrink(w0, lam),
        color="tab:orange",
        label=rf"L2: $w_0/(1+2\lambda)$, $\lambda$={lam}",
    )
    ax.set_xlabel("weight before the penalty step, $w_0$")
    ax.set_ylabel("weight after")
    ax.legend(fontsize=8)
    ax.set_title("L1 zeroes small weights, L2 scales all")
    return w_l1, w_l2


def pruning_explorer(models: dict, inputs: torch.Tensor, targets: torch.Tensor):
    """Slider: soft-threshold a trained network's recurrent weights by ``lam``, show the
    weights and the accuracy that is left. ``models`` maps a label to a trained RateRNN."""
    import ipywidgets as widgets

    def show(network: str, lam: float = 0.02):
        zero, accuracy = pruned_accuracy(models[network], lam, inputs, targets)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        plot_weight_matrix(
            prune(models[network], lam).recurrent.weight.detach(),
            ax=ax,
            title=f"{zero:.0%} of synapses removed, accuracy {accuracy:.0%}",
        )
        fig.tight_layout()
        plt.show()

    return widgets.interactive(
        show,
        network=widgets.Dropdown(options=list(models), description="network"),
        lam=widgets.FloatLogSlider(value=0.02, base=10, min=-3, max=0, step=0.1, description="λ"),
    )


def plot_density_study(accuracy: dict, *, ax=None, chance: float | None = 0.5,
                       ceiling: float | None = None):
    """Accuracy over seeds against recurrent density (log axis), density 0 set apart.

    ``accuracy`` maps a density to its accuracies over seeds. Each seed is a grey dot, each
    density its mean ± SD (sample SD). Density 0 has no place on a log axis: it is drawn
    at the left, past a break, with its own marker. ``ceiling`` draws the accuracy of an
    ideal observer (`course_lib.analysis.summed_evidence_accuracy`) as a dashed line.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    positive = sorted(d for d in accuracy if d > 0)
    zero_at = positive[0] / 5 if 0 in accuracy else None
    rng = np.random.default_rng(0)  # jitter only, so the dots of one density do not overlap

    def draw(x, values, **style):
        values = np.asarray(values, dtype=float)
        jitter = x * np.exp(rng.uniform(-0.12, 0.12, len(values)))
        ax.scatter(jitter, values, s=12, color="0.6", zorder=2)
        ax.errorbar(x, values.mean(), yerr=values.std(ddof=1), capsize=4, zorder=3, **style)

    means = [np.mean(accuracy[d]) for d in positive]
    ax.plot(positive, means, color="C0", lw=1, zorder=1)
    for i, density in enumerate(positive):
        draw(density, accuracy[density], fmt="o", color="C0", markersize=6,
             label="recurrent network, mean ± SD" if i == 0 else None)
    ticks = list(positive)
    if zero_at is not None:
        draw(zero_at, accuracy[0], fmt="s", color="C3", markersize=7,
             label="no recurrence (density 0), mean ± SD")
        ax.axvline(np.sqrt(zero_at * positive[0]), color="0.8", lw=4, zorder=0)  # axis break
        ticks = [zero_at, *ticks]
    ax.set_xscale("log")
    ax.set_xticks(ticks, ["0" if t == zero_at else f"{t:g}" for t in ticks])
    ax.minorticks_off()
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", label="chance")
    if ceiling is not None:
        ax.axhline(ceiling, color="k", ls="--", lw=1, label="observer summing the whole stimulus")
    ax.set_xlabel("recurrent connection density")
    ax.set_ylabel("decision accuracy")
    ax.legend(fontsize="small", loc="lower right")
    return ax
