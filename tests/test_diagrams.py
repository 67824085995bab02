"""The book's explanatory diagrams (book/figures/*.svg): one or more per chapter, vector
only, accessible, legible at the book's width and on its dark theme, and reproducible from
book/figures/make_diagrams.py."""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import toc_pages

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "book" / "figures"
SVG = "{http://www.w3.org/2000/svg}"
DISPLAY_WIDTH = 700  # px: the widest the book shows a figure (its content column)
MIN_PX = 12  # smallest text height, in px at DISPLAY_WIDTH
MIN_CONTRAST = 4.5  # WCAG AA for normal text
CHAPTERS = sorted(page[5:7] for page in toc_pages() if re.match(r"book/\d\d_", page))
DIAGRAMS = sorted(FIGURES.glob("*.svg"))


def _parse(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def _view_box(root: ET.Element) -> tuple[float, float, float, float]:
    return tuple(float(v) for v in root.attrib["viewBox"].split())


def _luminance(colour: str) -> float:
    """WCAG relative luminance of a #rrggbb colour."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_chapter_has_a_diagram():
    assert CHAPTERS[:11] == [f"{n:02d}" for n in range(11)], CHAPTERS
    have = {path.name[:2] for path in DIAGRAMS}
    missing = [chapter for chapter in CHAPTERS if chapter not in have]
    assert not missing, f"chapters without a diagram in book/figures: {missing}"


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_diagram_is_accessible_vector_graphics(path):
    root = _parse(path)
    assert root.tag == f"{SVG}svg"
    x, y, width, height = _view_box(root)
    assert (x, y) == (0, 0) and 0 < width <= 900 and height > 0
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and len(title.text.split()) >= 3, "needs a <title>"
    assert desc is not None and len(desc.text.split()) >= 30, "needs a real <desc> (alt text)"
    assert root.findall(f".//{SVG}image") == [], "no embedded raster images"
    assert root.findall(f".//{SVG}foreignObject") == []
    source = path.read_text(encoding="utf-8")
    assert "base64" not in source
    for element in root.iter():
        for name, value in element.attrib.items():
            if name.endswith("href"):
                raise AssertionError(f"external or linked reference {name}={value!r}")
    # the only URL is the SVG namespace itself
    assert re.findall(r"https?://[^\s\"']+", source) == ["http://www.w3.org/2000/svg"]
    assert "sans-serif" in root.attrib.get("font-family", "")


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_text_is_real_and_large_enough(path):
    root = _parse(path)
    width = _view_box(root)[2]
    texts = root.findall(f".//{SVG}text")
    assert len(texts) >= 5, "labels must be SVG text, not paths"
    for element in root.iter():
        if "font-size" in element.attrib:
            px = float(element.attrib["font-size"]) * DISPLAY_WIDTH / width
            shown = "".join(element.itertext())
            assert px >= MIN_PX, f"{shown!r} would be {px:.1f} px at {DISPLAY_WIDTH} px wide"
    for element in texts:
        assert element.get("font-size") is not None, "every text sets its own size"


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_opaque_light_background_and_readable_text(path):
    """Dark mode: the first thing drawn is an opaque light panel covering the picture, and
    every text colour stands out (WCAG AA) from it and from every pale fill drawn on it."""
    root = _parse(path)
    _, _, width, height = _view_box(root)
    background = next(e for e in root if e.tag == f"{SVG}rect")
    assert float(background.get("width")) >= width - 4
    assert float(background.get("height")) >= height - 4
    assert background.get("fill", "").startswith("#") and "opacity" not in background.attrib
    assert _luminance(background.get("fill")) > 0.9
    fills = {e.get("fill") for e in root.iter()
             if e.tag in (f"{SVG}rect", f"{SVG}circle", f"{SVG}polygon")
             and (e.get("fill") or "").startswith("#")}
    pale = {fill for fill in fills if _luminance(fill) >= 0.6}  # boxes text may sit on
    for element in root.findall(f".//{SVG}text"):
        for fill in pale:
            ratio = _contrast(element.get("fill"), fill)
            assert ratio >= MIN_CONTRAST, (
                f"text {''.join(element.itertext())!r} in {element.get('fill')} on {fill}: "
                f"contrast {ratio:.2f}")


def _generator():
    spec = importlib.util.spec_from_file_location("make_diagrams", FIGURES / "make_diagrams.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_the_committed_files():
    rendered = _generator().render_all()
    assert sorted(rendered) == [path.name for path in DIAGRAMS], "stale or missing SVG files"
    for name, document in rendered.items():
        committed = (FIGURES / name).read_text(encoding="utf-8")
        assert committed == document, f"{name} differs from make_diagrams.py's output: rerun it"


def test_cell_type_diagram_draws_the_course_wiring():
    """One arrow or bar per allowed (pre, post) type pair of course_lib.cell_types, plus the
    fixed dendrite-to-soma coupling, the external inputs and the readout."""
    from course_lib.cell_types import DEFAULT_CONNECTIONS, DEFAULT_INPUT_TARGETS, TYPE_SIGNS

    root = _parse(FIGURES / "03_cell_type_wiring.svg")
    inhibitory = sum(TYPE_SIGNS[pre] < 0 for pre, _ in DEFAULT_CONNECTIONS)
    excitatory = len(DEFAULT_CONNECTIONS) - inhibitory
    # bars (inhibitory synapse ends) are <line> elements 3.5 wide; the legend has one more
    bars = [e for e in root.iter(f"{SVG}line") if e.get("stroke-width") == "3.5"]
    assert len(bars) == inhibitory + 1
    red_heads = [e for e in root.iter(f"{SVG}polygon") if e.get("fill") == "#b2182b"]
    # plastic excitatory + fixed dendrite->soma, and two legend samples
    assert len(red_heads) == excitatory + 1 + 2
    grey_heads = [e for e in root.iter(f"{SVG}polygon") if e.get("fill") == "#5a5a5a"]
    assert len(grey_heads) == len(DEFAULT_INPUT_TARGETS) + 1  # inputs + legend sample


def test_mask_diagram_wires_what_its_matrix_says():
    """01, read back from the picture: the grid's 1s (row = post, column = pre) are exactly
    the drawn arrows (from pre to post), and the diagonal is 0."""
    root = _parse(FIGURES / "01_masked_weights.svg")
    cells = [e for e in root.iter(f"{SVG}rect") if e.get("width") == e.get("height") == "40"]
    left = min(float(e.get("x")) for e in cells)
    top = min(float(e.get("y")) for e in cells)
    size = len({e.get("x") for e in cells})
    assert len(cells) == size * size
    ones = set()
    for element in root.iter(f"{SVG}text"):
        x, y = float(element.get("x")), float(element.get("y"))
        column, row = int((x - left) // 40), int((y - top) // 40)
        if 0 <= row < size and 0 <= column < size and "".join(element.itertext()) == "1":
            ones.add((row, column))  # (post, pre)
    assert ones and all(post != pre for post, pre in ones)
    nodes = {}
    for circle in root.iter(f"{SVG}circle"):
        cx, cy = float(circle.get("cx")), float(circle.get("cy"))
        label = next("".join(t.itertext()) for t in root.iter(f"{SVG}text")
                     if abs(float(t.get("x")) - cx) < 1 and abs(float(t.get("y")) - cy) < 10)
        nodes[int(label)] = (cx, cy)

    def nearest(x, y):
        return min(nodes, key=lambda k: (nodes[k][0] - x) ** 2 + (nodes[k][1] - y) ** 2)

    arrows = set()
    for path in root.iter(f"{SVG}path"):
        x1, y1, x2, y2 = map(float, re.findall(r"-?[\d.]+", path.get("d")))
        arrows.add((nearest(x2, y2), nearest(x1, y1)))  # (post, pre)
    assert arrows == ones
