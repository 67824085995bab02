"""Figures the chapters share. Each function draws on a given matplotlib Axes (or makes
one) and returns it, so chapters can compose panels."""

from __future__ import annotations

import contextlib
import warnings

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


# Every PNG figure of the book records, in a PNG text chunk under this key, the height of
# its smallest text in the PNG's own pixels: a browser test scales it by how wide the image
# is shown and checks that labels stay legible (issue 15 §4).
TEXT_SIZE_KEY = "smallest-text-px"


def smallest_font_size(fig) -> float:
    """The font size, in points, of the smallest visible non-empty text of ``fig``."""
    from matplotlib.text import Text

    for ax in fig.get_axes():  # tick labels get their text only when asked for
        ax.xaxis.get_ticklabels(which="both")
        ax.yaxis.get_ticklabels(which="both")
    sizes = [text.get_fontsize() for text in fig.findobj(Text)
             if text.get_visible() and text.get_text().strip()]
    return min(sizes, default=float("inf"))


def png_text_size(fig, dpi: float) -> dict[str, str]:
    """PNG metadata for ``fig`` saved at ``dpi``: its smallest text height in pixels."""
    return {TEXT_SIZE_KEY: f"{smallest_font_size(fig) * dpi / 72:.2f}"}


# Where the book shows a figure, in CSS pixels: the output area at the narrowest laptop
# layout (a 1280-px window, sidebars open) and on a 400-px phone. Below PHONE_WIDTH the page
# shows a figure's phone version.
CONTENT_PX, PHONE_CONTENT_PX, PHONE_WIDTH = 660, 352, 600
LEGIBLE_PX = 9  # the smallest text a figure may show, in CSS pixels
PHONE_FIGURE_INCHES = 4.5  # a phone version's width: one panel, shrunk to fit only a little


def legible(fig, shown_px: float) -> None:
    """Enlarge every text of ``fig`` that would look smaller than `LEGIBLE_PX` when the
    figure is shown at most ``shown_px`` CSS pixels wide (a wider image is shrunk to fit,
    and its text with it). Larger text is left as it is; the layout is redone."""
    pad = 2 * plt.rcParams["savefig.pad_inches"]  # what bbox_inches="tight" adds around
    shown = (fig.get_figwidth() + pad) * fig.dpi  # an inch is fig.dpi CSS pixels
    for _ in range(6):  # text outside the figure widens the picture: settle in a few rounds
        floor = LEGIBLE_PX / min(1.0, shown_px / shown) * 72 / fig.dpi  # in points
        if smallest_font_size(fig) >= floor - 0.01:
            return
        _raise_text_to(fig, floor * 1.03)  # a little over, for the next round's wider figure
        with _quiet_layout():
            fig.draw_without_rendering()  # lays the figure out, as saving it will
        shown = max(shown, (fig.get_tightbbox().width + pad) * fig.dpi)


@contextlib.contextmanager
def _quiet_layout():
    """A layout engine that cannot fit enlarged text keeps the previous layout and says so
    on stderr; in a chapter that warning would show under the figure."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*layout not applied", category=UserWarning)
        yield


def _raise_text_to(fig, size: float) -> None:
    """Every text of ``fig`` smaller than ``size`` points (tick labels included) to ``size``."""
    from matplotlib.text import Text

    for ax in fig.get_axes():
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = axis.get_ticklabels(which="both")
            if labels and min(label.get_fontsize() for label in labels) < size:
                ax.tick_params(axis=name, which="both", labelsize=size)
    for text in fig.findobj(Text):
        if text.get_fontsize() < size:
            text.set_fontsize(size)


def _cell(spec, grid):
    """The cell (its number) of ``grid`` that holds ``spec``, directly or through nested
    grids such as the one a colorbar makes; None if ``spec`` spans several cells."""
    while spec.get_gridspec() is not grid:
        spec = getattr(spec.get_gridspec(), "_subplot_spec", None)  # the nest's own cell
        if spec is None:
            return None
    return spec.num1 if spec.num1 == spec.num2 else None


def for_phone(fig):
    """A copy of ``fig`` for narrow screens: a grid of panels put in one column (reading
    order; a panel's colorbar moves with it), each panel `PHONE_FIGURE_INCHES` wide; any
    other figure (one panel, insets, spanning panels) just made narrower. None if the figure
    cannot be copied.

    Shrinking a row of panels to a phone's width shrinks its labels with it; one panel
    above the other keeps them legible.
    """
    import pickle

    try:
        copy = pickle.loads(pickle.dumps(fig))
    except Exception:  # an artist that cannot be copied: keep the one layout
        return None
    width, height = copy.get_size_inches()
    axes = copy.get_axes()
    grid = axes[0].get_subplotspec() if axes else None
    while grid is not None and not hasattr(grid, "ncols"):  # up to the outermost grid
        grid = getattr(grid.get_gridspec(), "_subplot_spec", None) or grid.get_gridspec()
    specs = [ax.get_subplotspec() for ax in axes]
    cells = [None if spec is None else _cell(spec, grid) for spec in specs]
    if grid is not None and grid.ncols > 1 and None not in cells:
        order = sorted(set(cells))
        column = copy.add_gridspec(len(order), 1)
        for ax, spec, cell in zip(axes, specs, cells, strict=True):
            if spec.get_gridspec() is grid:
                ax.set_subplotspec(column[order.index(cell)])
            else:  # in a nested grid: move the nest into the new cell
                spec.get_gridspec()._subplot_spec = column[order.index(cell)]
                ax.set_subplotspec(spec)
        panel_width, panel_height = width / grid.ncols, height / grid.nrows
        stretch = PHONE_FIGURE_INCHES / panel_width
        copy.set_size_inches(PHONE_FIGURE_INCHES, len(order) * panel_height * min(stretch, 1.2))
        copy.set_layout_engine("tight")
    elif width > PHONE_FIGURE_INCHES:  # as tall as before: labels need the room
        copy.set_size_inches(PHONE_FIGURE_INCHES, height)
    for text in _free_texts(copy):  # a long title breaks into lines instead of widening
        text.set_wrap(True)
    return copy


def _free_texts(fig) -> list:
    """Titles, axis labels and placed texts: what may wrap (not tick labels or legends)."""
    texts = [getattr(fig, name, None) for name in ("_suptitle", "_supxlabel", "_supylabel")]
    texts += fig.texts
    for ax in fig.get_axes():
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        texts += ax.texts
    return [text for text in texts if text is not None]


def _png(fig) -> tuple[str, int]:
    """``fig`` as base64 PNG at twice its displayed size, and that displayed width."""
    import base64
    import io

    buffer = io.BytesIO()
    dpi = 2 * fig.dpi
    with _quiet_layout():
        fig.savefig(buffer, format="png", bbox_inches="tight", dpi=dpi,
                    metadata=png_text_size(fig, dpi))
    plt.close(fig)
    data = buffer.getvalue()
    width = int.from_bytes(data[16:20], "big") // 2  # PNG header: pixel width
    return base64.b64encode(data).decode("ascii"), width


def phone_source(phone: tuple[str, int]) -> str:
    """Opens a ``<picture>`` whose ``phone`` version (base64 PNG, displayed width) replaces
    the ``<img>`` that follows on screens narrower than `PHONE_WIDTH`."""
    png, width = phone
    return (f'<picture><source media="(max-width: {PHONE_WIDTH - 1}px)" '
            f'srcset="data:image/png;base64,{png}" width="{width}">')


def figure_pngs(fig) -> tuple[tuple[str, int] | None, tuple[str, int]]:
    """``(phone, laptop)`` pictures of ``fig``, each a base64 PNG at twice its displayed
    size and that displayed width, with text legible where it is shown. ``phone`` is None
    when ``fig`` is narrow enough to be shown as it is on a phone too. Closes ``fig``."""
    phone = for_phone(fig) if fig.get_figwidth() > PHONE_FIGURE_INCHES else None
    if phone is not None:
        legible(phone, PHONE_CONTENT_PX)
        legible(fig, CONTENT_PX)
        return _png(phone), _png(fig)
    legible(fig, PHONE_CONTENT_PX)  # narrow: one picture for phones and laptops
    return None, _png(fig)


class FigureWithAlt:
    """A matplotlib figure shown as a PNG whose alt text is computed, not typed.

    The rendered book takes the HTML (an ``<img>`` with this ``alt``); a kernel without
    HTML shows the PNG. Alt texts built from the same values as the glued prose cannot
    disagree with the figure. The PNG has twice the pixels of its displayed width, so it
    stays sharp on high-density screens. On a screen narrower than `PHONE_WIDTH` a figure
    shows its phone version (`for_phone`); text stays at least `LEGIBLE_PX` tall
    (`legible`).
    """

    def __init__(self, fig, alt: str):
        self.phone, (self.png, self.width) = figure_pngs(fig)
        self.alt = alt

    def _repr_mimebundle_(self, include=None, exclude=None):
        import html

        img = (f'<img src="data:image/png;base64,{self.png}" alt="{html.escape(self.alt)}" '
               f'width="{self.width}">')
        if self.phone is not None:
            img = f"{phone_source(self.phone)}{img}</picture>"
        return {"text/html": img, "image/png": self.png}, {"image/png": {"width": self.width}}


def figure_with_alt(fig, alt: str) -> FigureWithAlt:
    """Show ``fig`` with the alt text ``alt`` (end a cell with it, or ``display`` it)."""
    return FigureWithAlt(fig, alt)


def use_retina_figures() -> None:
    """Show the notebook's inline figures at twice their displayed resolution (sharp on
    high-density screens and when zoomed). Each chapter calls it once, after its imports."""
    from IPython import get_ipython
    from IPython.core.pylabtools import retina_figure
    from matplotlib.figure import Figure
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("retina")
    shell = get_ipython()
    if shell is not None:  # the same PNG, with its smallest text size recorded
        shell.display_formatter.formatters["image/png"].for_type(
            Figure, lambda fig: retina_figure(fig, metadata=_legible_text_size(fig)))


def _legible_text_size(fig) -> dict[str, str]:
    legible(fig, CONTENT_PX)
    return png_text_size(fig, 2 * fig.dpi)
