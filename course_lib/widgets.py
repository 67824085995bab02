"""Explorers: sliders that redraw a chapter's figure.

Two kinds, drawn by the same function:

- `density_explorer` and the other ipywidgets explorers redraw the figure live, for
  readers who run the page in a kernel;
- `static_explorer` draws the figure once for every value on a small grid when the book
  is built, and shows the pictures under a plain HTML slider that swaps them: it works on
  the rendered page with no kernel, no network and no external script. A chapter shows it
  in a ``remove-input`` cell and keeps the live explorer in a ``remove-output`` cell.
"""

from __future__ import annotations

import html
import itertools
import json
import uuid
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from course_lib.plotting import draw_mask_and_spectrum, figure_pngs, phone_source

MAX_FIGURES = 16  # every picture is inlined in the page (100-300 kB each): keep pages light


def density_explorer(n: int = 100, gain: float = 0.9) -> widgets.interactive:
    """A density slider showing the random mask and the eigenvalues of the masked matrix."""

    def show(density: float = 0.2, seed: int = 0):
        draw_mask_and_spectrum(density, n=n, gain=gain, seed=seed)
        plt.show()

    return widgets.interactive(
        show,
        density=widgets.FloatSlider(value=0.2, min=0.02, max=1.0, step=0.02, description="density"),
        seed=widgets.IntSlider(value=0, min=0, max=20, description="seed"),
    )


# --- the explorer of the static page ---------------------------------------------------------


def static_explorer(
    draw: Callable,
    sliders: dict[str, Sequence],
    *,
    describe: Callable | None = None,
    start: Sequence | None = None,
) -> StaticExplorer:
    """Draw ``draw(*values)`` for every combination of the ``sliders``' values and show the
    pictures under HTML sliders that swap them (end a cell with the result).

    ``sliders`` maps each slider's visible label (plain text) to its values, in order; with
    two sliders every pair is drawn, so keep grids small (each picture is in the page).
    ``draw`` makes a matplotlib figure and returns it (or a tuple that starts with it, or
    an Axes of it, or nothing: then the current figure is taken); the figures are closed.
    ``describe(drawn, *values)`` gets what ``draw`` returned and writes the picture's alt
    text; by default the alt text names the values ("density = 0.1"). ``start`` holds the
    values shown first (default: the first of each grid).
    """
    grids = {label: list(values) for label, values in sliders.items()}
    if not grids or any(len(values) == 0 for values in grids.values()):
        raise ValueError("give at least one slider, each with at least one value")
    combinations = list(itertools.product(*grids.values()))
    if len(combinations) > MAX_FIGURES:
        raise ValueError(f"{len(combinations)} figures: at most {MAX_FIGURES} fit in a page")
    start = combinations[0] if start is None else tuple(start)
    if start not in combinations:
        raise ValueError(f"start {start} is not on the sliders' grids")
    pictures, phones = [], []
    for values in combinations:
        open_before = set(plt.get_fignums())
        drawn = draw(*values)
        fig = _figure_of(drawn)
        if describe is None:
            alt = ", ".join(f"{label} = {_text(v)}"
                            for label, v in zip(grids, values, strict=True))
        else:
            alt = describe(drawn, *values)
        phone, laptop = figure_pngs(fig)  # phones get the panels stacked, text legible
        phones.append(phone)
        pictures.append(laptop + (alt,))
        for number in set(plt.get_fignums()) - open_before:  # or they show under the cell
            plt.close(number)
    phones = phones if None not in phones else None
    return StaticExplorer(grids, pictures, shown=combinations.index(start), phones=phones)


def _figure_of(drawn) -> Figure:
    """The figure ``draw`` made: returned, first of a returned tuple, an Axes' figure, or
    the current figure."""
    if isinstance(drawn, tuple) and drawn:
        drawn = drawn[0]
    if isinstance(drawn, Axes):
        return drawn.figure
    return drawn if isinstance(drawn, Figure) else plt.gcf()


def _text(value) -> str:
    """A slider value as the reader sees it: numbers to 3 significant digits."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class StaticExplorer:
    """Pictures and the sliders that choose among them, shown as self-contained HTML.

    Picture ``i`` belongs to the combination of slider positions whose mixed-radix number
    is ``i`` (the last slider changes fastest, as in `itertools.product`). Without
    JavaScript the reader sees the starting picture and no slider.
    """

    def __init__(self, grids: dict[str, list], pictures: list[tuple[str, int, str]],
                 shown: int = 0, phones: list[tuple[str, int]] | None = None):
        self.grids = grids
        self.pictures = pictures  # (base64 PNG, displayed width, alt text) per combination
        self.phones = phones  # (base64 PNG, displayed width) per combination, for phones
        self.shown = shown  # the picture shown first
        self.id = f"explorer-{uuid.uuid4().hex[:12]}"  # unique even across notebooks

    def _positions(self) -> list[int]:
        """Each slider's starting position: the digits of ``shown`` in mixed radix."""
        positions, rest = [], self.shown
        for grid in reversed(self.grids.values()):
            rest, position = divmod(rest, len(grid))
            positions.insert(0, position)
        return positions

    def _repr_mimebundle_(self, include=None, exclude=None):
        # HTML for the book and JupyterLab; the starting picture for outputs without HTML
        return {"text/html": self.html(), "image/png": self.pictures[self.shown][0]}

    def html(self) -> str:
        """The pictures, the sliders and the script that swaps the pictures."""
        positions = zip(self.grids.items(), self._positions(), strict=True)
        controls = "".join(self._slider(label, grid, k, position)
                           for k, ((label, grid), position) in enumerate(positions))
        images = "".join(
            (phone_source(self.phones[i]) if self.phones else "") +  # the script toggles <img>
            f'<img src="data:image/png;base64,{png}" alt="{html.escape(alt)}" width="{width}" '
            f'style="max-width:100%;height:auto;{"" if i == self.shown else "display:none"}">'
            + ("</picture>" if self.phones else "")
            for i, (png, width, alt) in enumerate(self.pictures))
        values = json.dumps([[_text(v) for v in grid] for grid in self.grids.values()])
        values = values.replace("</", "<\\/")  # a value must not close the script
        script = _SCRIPT.replace("ROOT_ID", self.id).replace("VALUES", values)
        return (f'<div class="static-explorer" id="{self.id}">'
                f'<div class="static-explorer-controls" style="display:none">{controls}</div>'
                f"{images}<script>{script}</script></div>")

    def _slider(self, label: str, grid: list, k: int, position: int) -> str:
        slider_id = f"{self.id}-slider-{k}"
        value = _text(grid[position])
        return (f'<div><label for="{slider_id}">{html.escape(label)}</label> '
                f'<input type="range" id="{slider_id}" min="0" max="{len(grid) - 1}" step="1" '
                f'value="{position}" aria-valuetext="{html.escape(value)}"> '
                f'<output for="{slider_id}">{html.escape(value)}</output></div>')


# Runs once in the page: shows the sliders, and on every move shows the picture of the
# sliders' positions and writes their values next to them.
_SCRIPT = """
(function () {
  const root = document.getElementById("ROOT_ID");
  const values = VALUES;
  const sliders = Array.from(root.querySelectorAll("input[type=range]"));
  const images = Array.from(root.querySelectorAll("img"));
  function show() {
    let index = 0;
    sliders.forEach(function (slider, k) {
      const value = values[k][Number(slider.value)];
      index = index * values[k].length + Number(slider.value);
      slider.setAttribute("aria-valuetext", value);
      slider.nextElementSibling.textContent = value;
    });
    images.forEach(function (image, i) { image.style.display = i === index ? "" : "none"; });
  }
  sliders.forEach(function (slider) { slider.addEventListener("input", show); });
  root.querySelector(".static-explorer-controls").style.display = "";
  show();
})();
"""
