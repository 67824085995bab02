"""Figures a reader can read (issue 15 §4): text never shown below 9 CSS pixels, every PNG
records its smallest text, and phones get panels stacked (course_lib.plotting)."""

from __future__ import annotations

import base64
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from test_browser import png_text_chunks  # noqa: E402

from course_lib.plotting import (  # noqa: E402
    TEXT_SIZE_KEY,
    figure_with_alt,
    for_phone,
    legible,
    png_text_size,
    smallest_font_size,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_smallest_font_size_ignores_hidden_and_empty_text_and_sees_tick_labels():
    fig, ax = plt.subplots()
    ax.set_title("title", fontsize=14)
    ax.tick_params(labelsize=11)
    ax.text(0.5, 0.5, "note", fontsize=12)
    ax.text(0.1, 0.1, "hidden", fontsize=3).set_visible(False)
    ax.text(0.2, 0.2, "   ", fontsize=2)
    assert smallest_font_size(fig) == 11  # the tick labels, which exist once drawn
    assert png_text_size(fig, 144) == {TEXT_SIZE_KEY: "22.00"}  # 11 pt at 144 dpi: 22 px


def shown_text_px(fig, shown_px):
    """Independent of `legible`: the smallest text's CSS height when the tight figure is
    displayed at most shown_px wide (1 inch = fig.dpi CSS pixels at full size)."""
    fig.canvas.draw()
    width_px = fig.get_tightbbox(fig.canvas.get_renderer()).width * fig.dpi
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text)
             if t.get_visible() and t.get_text().strip()]
    return min(sizes) * fig.dpi / 72 * min(1.0, shown_px / width_px)


def test_legible_enlarges_only_what_would_be_too_small():
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for ax in axes:
        ax.set_title("a title", fontsize=16)
        ax.set_xlabel("time (ms)", fontsize=7)
        ax.plot([0, 1], label="line")
        ax.legend(fontsize=6)
    assert shown_text_px(fig, 660) < 6
    legible(fig, 660)
    assert shown_text_px(fig, 660) >= 9 - 0.05
    assert axes[0].title.get_fontsize() == 16  # large text untouched


def test_legible_leaves_a_readable_figure_alone():
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.set_xlabel("x", fontsize=10)
    ax.tick_params(labelsize=10)
    legible(fig, 660)
    assert ax.xaxis.label.get_fontsize() == 10 and smallest_font_size(fig) == 10


def _cells(fig):
    """Each panel's (row, column) in its grid, and the grid's shape."""
    specs = [ax.get_subplotspec() for ax in fig.get_axes()]
    grid = specs[0].get_gridspec()
    return [divmod(spec.num1, grid.ncols) for spec in specs], (grid.nrows, grid.ncols)


def test_a_row_of_panels_is_stacked_in_reading_order_on_a_copy():
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for k, ax in enumerate(axes):
        ax.set_title(f"panel {k}")
    phone = for_phone(fig)
    assert _cells(fig) == ([(0, 0), (0, 1), (0, 2)], (1, 3))  # the original is untouched
    assert tuple(fig.get_size_inches()) == (12, 3.5)
    cells, shape = _cells(phone)
    assert shape == (3, 1) and cells == [(0, 0), (1, 0), (2, 0)]
    assert [ax.get_title() for ax in phone.get_axes()] == ["panel 0", "panel 1", "panel 2"]
    width, height = phone.get_size_inches()  # each 4 x 3.5 panel widened to 4.5 inches
    assert width == pytest.approx(4.5) and height == pytest.approx(3 * 3.5 * 4.5 / 4)
    tops = [ax.get_position().y1 for ax in phone.get_axes()]
    assert tops == sorted(tops, reverse=True)  # first panel on top


def test_a_grid_is_stacked_row_by_row():
    fig, axes = plt.subplots(2, 2, figsize=(8, 6))
    for k, ax in enumerate(axes.flat):
        ax.set_title(str(k))
    phone = for_phone(fig)
    assert [ax.get_title() for ax in phone.get_axes()] == ["0", "1", "2", "3"]
    assert _cells(phone) == ([(0, 0), (1, 0), (2, 0), (3, 0)], (4, 1))


def test_a_panel_keeps_its_colorbar_beside_it_when_stacked():
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    colorbar = fig.colorbar(axes[0].imshow([[0, 1], [1, 0]]), ax=axes[0])
    axes[0].set_title("with colorbar")
    axes[1].set_title("plain")
    phone = for_phone(fig)
    phone.draw_without_rendering()
    panel, bar, plain = (phone.axes[k].get_position() for k in
                         (fig.axes.index(axes[0]), fig.axes.index(colorbar.ax),
                          fig.axes.index(axes[1])))
    assert bar.x0 > panel.x1 and bar.y0 > plain.y1 and panel.y0 > plain.y1  # one row each


def test_one_panel_or_a_spanning_layout_only_gets_narrower():
    fig, _ = plt.subplots(figsize=(6.4, 4.8))
    assert tuple(for_phone(fig).get_size_inches()) == pytest.approx((4.5, 4.8))
    fig = plt.figure(figsize=(4, 3))
    grid = fig.add_gridspec(2, 2)
    fig.add_subplot(grid[0, :])  # spans two columns
    fig.add_subplot(grid[1, 0])
    assert tuple(for_phone(fig).get_size_inches()) == (4, 3)


def _data_uris(html: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r"data:image/png;base64,([^\"]+)", html)]


def _png_width(png: bytes) -> int:
    return int.from_bytes(png[16:20], "big")


@pytest.mark.parametrize("columns", [1, 2])
def test_figure_with_alt_offers_phones_their_own_version(columns):
    fig, axes = plt.subplots(1, columns, figsize=(10, 3), squeeze=False)
    for ax in axes.flat:
        ax.set_xlabel("time", fontsize=8)
    bundle, _ = figure_with_alt(fig, "the panels")._repr_mimebundle_()
    html = bundle["text/html"]
    assert html.startswith('<picture><source media="(max-width: 599px)" srcset="data:')
    assert html.endswith("</picture>") and 'alt="the panels"' in html
    phone, laptop = _data_uris(html)
    assert re.search(rf'<source [^>]*width="{_png_width(phone) // 2}"', html)
    assert re.search(rf'<img [^>]*width="{_png_width(laptop) // 2}"', html)
    for png, content in ((phone, 352), (laptop, 660)):  # recorded size, as it will be shown
        text_px = float(png_text_chunks(png)[TEXT_SIZE_KEY]) / 2  # the PNG is 2x
        assert text_px * min(1.0, content / (_png_width(png) / 2)) >= 9 - 0.05
    assert _png_width(phone) < 0.6 * _png_width(laptop)


def test_inline_figures_are_legible_and_record_their_text_size_too():
    from IPython.core.interactiveshell import InteractiveShell

    from course_lib.plotting import use_retina_figures

    shell = InteractiveShell.instance()
    use_retina_figures()
    fig, ax = plt.subplots(figsize=(12, 3))
    ax.set_title("t", fontsize=7)
    data, metadata = shell.display_formatter.format(fig)
    png = data["image/png"]
    png = png if isinstance(png, bytes) else base64.b64decode(png)
    text_px = float(png_text_chunks(png)[TEXT_SIZE_KEY]) / 2
    shown = metadata["image/png"]["width"]
    assert shown == _png_width(png) // 2
    assert text_px * min(1.0, 660 / shown) >= 9 - 0.05


def test_a_long_title_wraps_on_a_phone_instead_of_widening_the_picture():
    fig, axes = plt.subplots(2, 1, figsize=(10, 4))
    axes[0].plot([0, 1], label="a line with a legend")
    axes[0].legend()
    fig.suptitle("a long title that names every condition of the experiment and its result, "
                 "much wider than a phone")
    phone = for_phone(fig)
    legible(phone, 352)
    phone.draw_without_rendering()
    assert phone.get_tightbbox().width <= phone.get_figwidth() + 0.01
    assert shown_text_px(phone, 352) >= 9 - 0.05


def test_a_legend_outside_the_axes_survives_the_phone_version():
    fig, axes = plt.subplots(2, 1, sharex=True, figsize=(8, 4))
    axes[0].plot([0, 1], label="a")
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # as chapter 00 places it
    bundle, _ = figure_with_alt(fig, "trial")._repr_mimebundle_()
    assert len(_data_uris(bundle["text/html"])) == 2


def test_a_narrow_figure_is_one_picture_legible_on_a_phone_too():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_xlabel("x", fontsize=6)
    bundle, _ = figure_with_alt(fig, "narrow")._repr_mimebundle_()
    (png,) = _data_uris(bundle["text/html"])
    assert "<picture>" not in bundle["text/html"]
    text_px = float(png_text_chunks(png)[TEXT_SIZE_KEY]) / 2
    assert text_px * min(1.0, 352 / (_png_width(png) / 2)) >= 9 - 0.05
