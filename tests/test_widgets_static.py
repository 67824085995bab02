"""The explorer of the static page (`course_lib.widgets.static_explorer`): one picture per
point of the sliders' grid, each with its alt text, at retina resolution, in HTML that needs
no network; and, in headless Chromium, sliders that swap the pictures of their own
explorer only, by mouse-like input and by keyboard."""

from __future__ import annotations

import base64
import io
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from course_lib.widgets import static_explorer  # noqa: E402

IMG = re.compile(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]*)" width="(\d+)" '
                 r'style="([^"]*)"')


def draw_line(slope):
    """A small figure that differs with ``slope``, titled with it."""
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, slope])
    ax.set_title(f"slope {slope}")
    return fig


def images(page: str) -> list[tuple[bytes, str, int, str]]:
    """(PNG bytes, alt text, displayed width, style) of every picture in ``page``."""
    return [(base64.b64decode(png), alt, int(width), style)
            for png, alt, width, style in IMG.findall(page)]


def test_one_picture_per_grid_value_each_with_its_alt_text():
    page = static_explorer(draw_line, {"slope": [0.5, 1.0, 2.0]}).html()
    pictures = images(page)
    assert len(pictures) == 3
    assert [alt for _, alt, _, _ in pictures] == ["slope = 0.5", "slope = 1", "slope = 2"]
    assert len({png for png, _, _, _ in pictures}) == 3, "each value must draw its own figure"


def test_two_sliders_draw_every_pair_in_product_order():
    drawn = []

    def draw(slope, name):
        drawn.append((slope, name))
        return draw_line(slope)

    explorer = static_explorer(draw, {"slope": [1.0, 2.0], "name": ["a", "b", "c"]},
                               start=(2.0, "b"))
    page = explorer.html()
    assert drawn == [(1.0, "a"), (1.0, "b"), (1.0, "c"), (2.0, "a"), (2.0, "b"), (2.0, "c")]
    alts = [alt for _, alt, _, _ in images(page)]
    assert alts[4] == "slope = 2, name = b"
    assert page.count('type="range"') == 2
    # the sliders start at the start values: slope at position 1 of 2, name at 1 of 3
    assert re.findall(r'max="(\d)" step="1" value="(\d)"', page) == [("1", "1"), ("2", "1")]


def test_describe_gets_what_draw_returned_and_the_values_and_is_escaped():
    def draw(slope):
        return draw_line(slope), slope * 10

    def describe(drawn, slope):
        fig, tenfold = drawn
        return f'A line of slope {slope} ("{tenfold:g}" < {len(fig.axes) + 1})'

    page = static_explorer(draw, {"slope": [1.0, 3.0]}, describe=describe).html()
    assert [alt for _, alt, _, _ in images(page)] == [
        "A line of slope 1.0 (&quot;10&quot; &lt; 2)",
        "A line of slope 3.0 (&quot;30&quot; &lt; 2)",
    ]


def test_only_the_start_picture_is_shown_and_the_sliders_wait_for_javascript():
    page = static_explorer(draw_line, {"slope": [1.0, 2.0, 3.0]}, start=[2.0]).html()
    hidden = ["display:none" in style for _, _, _, style in images(page)]
    assert hidden == [True, False, True]
    # without JavaScript the sliders would do nothing, so they start hidden
    assert re.search(r'class="static-explorer-controls" style="display:none"', page)


def test_a_notebook_gets_the_html_and_the_start_picture_for_outputs_without_html():
    explorer = static_explorer(draw_line, {"slope": [1.0, 2.0, 3.0]}, start=[3.0])
    bundle = explorer._repr_mimebundle_()
    assert bundle["text/html"] == explorer.html()
    shown = [png for png, _, _, style in images(bundle["text/html"]) if "display:none" not in style]
    assert [base64.b64decode(bundle["image/png"])] == shown


def test_figures_are_closed_whatever_draw_returns():
    def draw_on_current_figure(slope):
        plt.figure(figsize=(2, 2))
        plt.plot([0, slope])

    def draw_returning_axes(slope):
        return plt.subplots(figsize=(2, 2))[1]

    def draw_two_figures(slope):
        plt.subplots(figsize=(2, 2))  # a figure the explorer does not show
        return draw_line(slope)

    plt.close("all")
    for draw in (draw_line, draw_on_current_figure, draw_returning_axes, draw_two_figures):
        page = static_explorer(draw, {"slope": [1.0, 2.0]}).html()
        assert len(images(page)) == 2
        assert plt.get_fignums() == [], f"{draw.__name__} left figures open"


def test_pictures_have_at_least_twice_their_displayed_width():
    page = static_explorer(draw_line, {"slope": [1.0, 2.0]}).html()
    for png, _, width, style in images(page):
        natural_width = Image.open(io.BytesIO(png)).width
        assert natural_width >= 2 * width
        assert width >= 200, "a 3-inch figure should be shown a few hundred pixels wide"
        assert "max-width:100%" in style, "pictures must shrink to a narrow screen"


def test_two_explorers_have_no_id_in_common():
    pages = [static_explorer(draw_line, {"slope": [1.0, 2.0]}).html() for _ in range(2)]
    ids = [re.findall(r'\bid="([^"]+)"', page) for page in pages]
    assert all(ids), "each explorer needs ids for its labels and its script"
    assert not set(ids[0]) & set(ids[1])
    assert len(ids[0]) == len(set(ids[0]))
    # each label names its own slider
    for page in pages:
        assert set(re.findall(r'<label for="([^"]+)"', page)) == set(
            re.findall(r'<input type="range" id="([^"]+)"', page))


def test_the_html_loads_nothing_from_the_network():
    page = static_explorer(draw_line, {"slope": [1.0, 2.0]}).html()
    assert not re.search(r"https?://|//cdn|<link|<script\s+src", page, re.IGNORECASE)


def test_a_value_cannot_close_the_script():
    page = static_explorer(draw_line, {"slope": [1.0]}, describe=lambda *_: "x").html()
    odd = static_explorer(lambda v: draw_line(1.0), {"v": ["</script><b>"]}).html()
    assert page.count("</script>") == 1
    assert odd.count("</script>") == 1


def test_bad_grids_are_refused():
    drawn = []
    with pytest.raises(ValueError, match="start"):
        static_explorer(lambda slope: drawn.append(slope), {"slope": [1.0, 2.0]}, start=[1.5])
    assert drawn == [], "a start off the grid must be refused before minutes of drawing"
    with pytest.raises(ValueError, match="at least one"):
        static_explorer(draw_line, {"slope": []})
    with pytest.raises(ValueError, match="at most"):
        static_explorer(draw_line, {"a": range(5), "b": range(4)})


# --- in a browser ------------------------------------------------------------------------

# What the reader of explorer `index` sees: the values next to its sliders and its shown
# pictures (display not none), with their natural and displayed widths.
SEEN_JS = """
const root = document.querySelectorAll(".static-explorer")[arguments[0]];
const shown = Array.from(root.querySelectorAll("img"))
  .filter((img) => getComputedStyle(img).display !== "none");
return {
  controlsShown: getComputedStyle(root.querySelector(".static-explorer-controls")).display
    !== "none",
  values: Array.from(root.querySelectorAll("output")).map((o) => o.textContent),
  valueTexts: Array.from(root.querySelectorAll("input")).map(
    (i) => i.getAttribute("aria-valuetext")),
  shown: shown.map((img) => ({alt: img.alt, src: img.src.slice(-60),
                              natural: img.naturalWidth, displayed: img.clientWidth})),
};
"""

MOVE_JS = """
const slider = document.querySelectorAll(".static-explorer")[arguments[0]]
  .querySelector("input[type=range]");
slider.value = arguments[1];
slider.dispatchEvent(new Event("input", {bubbles: true}));
"""


# Moves every slider of every explorer on the page to another position and back, and
# reports what a reader would see go wrong.
CHECK_ALL_JS = """
const explorers = Array.from(document.querySelectorAll(".static-explorer"));
const seen = (root) => ({
  shown: Array.from(root.querySelectorAll("img"))
    .filter((img) => getComputedStyle(img).display !== "none")
    .map((img) => ({src: img.src, natural: img.naturalWidth, displayed: img.clientWidth})),
  values: Array.from(root.querySelectorAll("output")).map((o) => o.textContent).join("|"),
});
const move = (slider, value) => {
  slider.value = value;
  slider.dispatchEvent(new Event("input", {bubbles: true}));
};
const problems = [];
explorers.forEach((root, e) => {
  const start = seen(root);
  if (getComputedStyle(root.querySelector(".static-explorer-controls")).display === "none")
    problems.push(`explorer ${e}: its sliders are hidden`);
  if (start.shown.length !== 1)
    problems.push(`explorer ${e}: ${start.shown.length} pictures shown`);
  start.shown.filter((p) => p.natural < 2 * p.displayed).forEach((p) =>
    problems.push(`explorer ${e}: ${p.natural} px picture shown ${p.displayed} px wide`));
  root.querySelectorAll("input[type=range]").forEach((slider, k) => {
    if (slider.max === slider.min) return;  // a slider with one value cannot move
    const others = explorers.filter((r) => r !== root).map((r) => JSON.stringify(seen(r)));
    const from = slider.value;
    move(slider, from === slider.max ? slider.min : slider.max);
    const moved = seen(root);
    const sources = (view) => view.shown.map((p) => p.src).join(" ");
    if (moved.shown.length !== 1 || sources(moved) === sources(start))
      problems.push(`explorer ${e}, slider ${k}: the picture did not change`);
    if (moved.values === start.values)
      problems.push(`explorer ${e}, slider ${k}: the value shown did not change`);
    if (explorers.filter((r) => r !== root).some((r, i) => JSON.stringify(seen(r)) !== others[i]))
      problems.push(`explorer ${e}, slider ${k}: another explorer changed`);
    move(slider, from);
  });
});
return {count: explorers.length, problems: problems};
"""


def explorer_problems(driver) -> tuple[int, list[str]]:
    """(number of static explorers on the loaded page, what goes wrong when each of their
    sliders moves). For the book's browser test too: every chapter page should give
    ``(n >= 1, [])``."""
    report = driver.execute_script(CHECK_ALL_JS)
    return report["count"], report["problems"]


@pytest.mark.slow
def test_sliders_swap_the_pictures_of_their_own_explorer(tmp_path):
    from headless_chromium import chromium, severe_console_entries
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    first = static_explorer(draw_line, {"slope": [0.5, 1.0, 2.0, 4.0]}, start=[1.0])
    second = static_explorer(lambda name, slope: draw_line(len(name) * slope),
                             {"name": ["a", "bb", "ccc"], "slope": [1.0, -1.0]})
    page = tmp_path / "explorers.html"
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>explorers</title>"
                    f"</head><body>{first.html()}<p>text</p>{second.html()}"
                    f"</body></html>", encoding="utf-8")

    with chromium(tmp_path / "profile") as browser:
        browser.get(page.as_uri())
        seen = [browser.execute_script(SEEN_JS, i) for i in (0, 1)]
        assert seen[0]["controlsShown"] and seen[1]["controlsShown"]
        assert seen[0]["values"] == ["1"] and seen[1]["values"] == ["a", "1"]
        assert [s["alt"] for s in seen[0]["shown"]] == ["slope = 1"]
        assert [s["alt"] for s in seen[1]["shown"]] == ["name = a, slope = 1"]
        for picture in seen[0]["shown"] + seen[1]["shown"]:
            assert picture["natural"] >= 2 * picture["displayed"] > 0, picture

        browser.execute_script(MOVE_JS, 0, 3)
        moved = browser.execute_script(SEEN_JS, 0)
        assert moved["values"] == ["4"] and moved["valueTexts"] == ["4"]
        assert [s["alt"] for s in moved["shown"]] == ["slope = 4"]
        assert moved["shown"][0]["src"] != seen[0]["shown"][0]["src"]
        assert browser.execute_script(SEEN_JS, 1) == seen[1], "the other explorer moved"

        # the keyboard: focus the slider and press the right arrow key
        browser.execute_script(MOVE_JS, 0, 0)
        browser.find_elements(By.CSS_SELECTOR, "input[type=range]")[0].send_keys(
            Keys.ARROW_RIGHT)
        stepped = browser.execute_script(SEEN_JS, 0)
        assert stepped["values"] == ["1"]
        assert [s["alt"] for s in stepped["shown"]] == ["slope = 1"]
        assert browser.execute_script(SEEN_JS, 1) == seen[1], "the other explorer moved"

        # the second explorer's two sliders choose its picture together
        sliders = browser.find_elements(By.CSS_SELECTOR, "input[type=range]")
        sliders[1].send_keys(Keys.END)
        sliders[2].send_keys(Keys.ARROW_RIGHT)
        last = browser.execute_script(SEEN_JS, 1)
        assert last["values"] == ["ccc", "-1"]
        assert [s["alt"] for s in last["shown"]] == ["name = ccc, slope = -1"]
        sliders[1].send_keys(Keys.HOME)
        assert [s["alt"] for s in browser.execute_script(SEEN_JS, 1)["shown"]] == [
            "name = a, slope = -1"]
        assert browser.execute_script(SEEN_JS, 0)["values"] == ["1"]

        assert explorer_problems(browser) == (2, [])
        assert severe_console_entries(browser) == []


def test_every_picture_has_a_phone_version_with_its_panels_stacked():
    def two_panels(slope):
        fig, axes = plt.subplots(1, 2, figsize=(8, 3))
        for ax in axes:
            ax.plot([0, 1], [0, slope])
        return fig

    page = static_explorer(two_panels, {"slope": [1.0, 2.0]}).html()
    sources = re.findall(r'<picture><source media="\(max-width: 599px\)" '
                         r'srcset="data:image/png;base64,([^"]+)" width="(\d+)"><img ', page)
    assert len(sources) == len(images(page)) == 2 and page.count("</picture>") == 2
    for (phone, width), (laptop, _, _, _) in zip(sources, images(page), strict=True):
        phone = Image.open(io.BytesIO(base64.b64decode(phone)))
        laptop = Image.open(io.BytesIO(laptop))
        assert phone.width == 2 * int(width) or phone.width == 2 * int(width) + 1
        assert phone.height > laptop.height and phone.width < laptop.width  # stacked
