"""Figures the chapters share. Each function draws on a given matplotlib Axes (or makes
one) and returns it, so chapters can compose panels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_lib.training import History


def _axes(ax):
    return plt.subplots()[1] if ax is None else ax


def plot_trial(inputs, targets, *, input_labels=None, action_labels=None, dt=1.0, axes=None):
    """One batch column of a task: inputs over time (top) and the target action (bottom)."""
    inputs = np.asarray(inputs)
    targets = np.asarray(targets)
    if axes is None:
        _, axes = plt.subplots(2, 1, sharex=True, figsize=(7, 4), height_ratios=[2, 1])
    time = np.arange(len(inputs)) * dt
    for i in range(inputs.shape[1]):
        label = input_labels[i] if input_labels else f"input {i}"
        axes[0].plot(time, inputs[:, i], label=label)
    axes[0].set_ylabel("input")
    axes[0].legend(loc="upper right", fontsize="small")
    axes[1].step(time, targets, where="post", color="k")
    if action_labels:
        axes[1].set_yticks(range(len(action_labels)), action_labels)
    axes[1].set_ylabel("target action")
    axes[1].set_xlabel("time (ms)" if dt != 1.0 else "time step")
    return axes


def plot_learning_curve(history: History, *, label=None, axes=None, smooth: int = 10):
    """Training loss (smoothed over ``smooth`` steps) and per-trial accuracy."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    loss = np.asarray(history.loss)
    kernel = np.ones(min(smooth, len(loss))) / min(smooth, len(loss))
    axes[0].plot(np.convolve(loss, kernel, mode="valid"), label=label)
    axes[0].set_xlabel("training step")
    axes[0].set_ylabel("loss")
    axes[1].plot(history.eval_steps, history.accuracy, marker="o", ms=3, label=label)
    axes[1].set_xlabel("training step")
    axes[1].set_ylabel("decision accuracy")
    axes[1].set_ylim(0, 1.02)
    return axes


def plot_weight_matrix(weight: torch.Tensor, *, ax=None, title=None):
    """A (post, pre) weight matrix, zero in white, excitation red, inhibition blue."""
    ax = _axes(ax)
    w = weight.detach().cpu().numpy()
    limit = float(np.abs(w).max()) or 1.0
    image = ax.imshow(w, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_xlabel("presynaptic unit (from)")
    ax.set_ylabel("postsynaptic unit (to)")
    if title:
        ax.set_title(title)
    plt.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def plot_eigenvalues(weight: torch.Tensor, *, ax=None, title=None, radius: float | None = None):
    """Eigenvalues of a square weight matrix in the complex plane (unit circle dashed)."""
    ax = _axes(ax)
    eig = torch.linalg.eigvals(weight.detach().double()).numpy()
    ax.scatter(eig.real, eig.imag, s=8)
    theta = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(theta), np.sin(theta), "k--", lw=0.8)
    if radius is not None:
        ax.plot(radius * np.cos(theta), radius * np.sin(theta), "r:", lw=0.8)
    ax.set_aspect("equal")
    ax.set_xlabel("real part")
    ax.set_ylabel("imaginary part")
    if title:
        ax.set_title(title)
    return ax


def draw_mask_and_spectrum(density: float, *, n: int = 100, gain: float = 0.9, seed: int = 0):
    """A random sparse recurrent matrix at ``density``: its mask and its eigenvalues.

    Weights are drawn with standard deviation ``gain / sqrt(n * density)`` so that, whatever
    the density, the eigenvalues fill a disc of radius about ``gain`` (the circular law).
    """
    from course_lib.connectivity import random_sparse_mask  # local: plotting stays light

    mask = random_sparse_mask(n, n, density, seed=seed, self_connections=False)
    generator = torch.Generator().manual_seed(seed + 1)
    weight = torch.randn(n, n, generator=generator) * gain / np.sqrt(n * density) * mask
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.8))
    axes[0].imshow(mask.numpy(), cmap="Greys", interpolation="nearest")
    axes[0].set_title(f"mask, density {density:.2f} ({int(mask.sum())} synapses)")
    axes[0].set_xlabel("presynaptic unit")
    axes[0].set_ylabel("postsynaptic unit")
    plot_eigenvalues(weight, ax=axes[1], radius=gain, title="eigenvalues of W ⊙ M")
    fig.tight_layout()
    return fig


def plot_seeds(groups: dict, *, ax=None, ylabel: str = "", chance: float | None = None,
               title: str | None = None):
    """One column per condition: every seed as a dot, the mean ± SD as a bar with caps.

    ``groups`` maps a condition's label to its values over seeds (at least 2 each).
    """
    ax = _axes(ax)
    rng = np.random.default_rng(0)  # horizontal jitter only, so dots do not hide each other
    for i, values in enumerate(groups.values()):
        values = np.asarray(values, dtype=float)
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=14, color="0.55",
                   zorder=2, label="one seed" if i == 0 else None)
        ax.errorbar(i, values.mean(), yerr=values.std(ddof=1), fmt="o", color="C0",
                    capsize=5, markersize=7, zorder=3, label="mean ± SD" if i == 0 else None)
    ax.set_xticks(range(len(groups)), list(groups), rotation=20, ha="right")
    ax.set_xlim(-0.6, len(groups) - 0.4)
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", label="chance")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return ax


class FigureWithAlt:
    """A matplotlib figure shown as a PNG whose alt text is computed, not typed.

    The rendered book takes the HTML (an ``<img>`` with this ``alt``); a kernel without
    HTML shows the PNG. Alt texts built from the same values as the glued prose cannot
    disagree with the figure. The PNG has twice the pixels of its displayed width, so it
    stays sharp on high-density screens.
    """

    def __init__(self, fig, alt: str):
        import base64
        import io

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight", dpi=2 * fig.dpi)
        plt.close(fig)
        data = buffer.getvalue()
        self.width = int.from_bytes(data[16:20], "big") // 2  # PNG header: pixel width
        self.png = base64.b64encode(data).decode("ascii")
        self.alt = alt

    def _repr_mimebundle_(self, include=None, exclude=None):
        import html

        img = (f'<img src="data:image/png;base64,{self.png}" alt="{html.escape(self.alt)}" '
               f'width="{self.width}">')
        return {"text/html": img, "image/png": self.png}, {"image/png": {"width": self.width}}


def figure_with_alt(fig, alt: str) -> FigureWithAlt:
    """Show ``fig`` with the alt text ``alt`` (end a cell with it, or ``display`` it)."""
    return FigureWithAlt(fig, alt)


def use_retina_figures() -> None:
    """Show the notebook's inline figures at twice their displayed resolution (sharp on
    high-density screens and when zoomed). Each chapter calls it once, after its imports."""
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("retina")
