"""Draw the book's explanatory diagrams as hand-made SVG: one or two per chapter.

Run ``python book/figures/make_diagrams.py`` from the repository root; it rewrites every
``book/figures/NN_name.svg``. The output is deterministic (no dates, no random ids), and
``tests/test_diagrams.py`` checks that running it reproduces the committed files.

Conventions shared by every diagram (the same as the chapters' plots):

- weights are ``(post, pre)``: ``W_ij`` is the synapse from unit ``j`` onto unit ``i``;
- excitatory is red, inhibitory is blue (the ends of ``RdBu_r``, the colour map of
  ``course_lib.plotting.plot_weight_matrix``); an excitatory synapse ends in an
  arrowhead, an inhibitory one in a bar;
- error and feedback (teaching) signals are green and dashed; fixed, untrained weights are
  drawn dashed and labelled "fixed";
- every diagram sits on an opaque, light, rounded background, so it stays legible when the
  book's dark theme puts it on a dark page.

The cell-typed wiring of chapter 3 is read from `course_lib.cell_types`, so the diagram
cannot drift from the network the course trains.
"""

from __future__ import annotations

import math
import re
from html import escape
from pathlib import Path

from course_lib.cell_types import DEFAULT_CONNECTIONS, DEFAULT_INPUT_TARGETS, TYPE_SIGNS

HERE = Path(__file__).parent
WIDTH = 720  # every diagram is 720 user units wide and is shown at most ~700 px wide
FONT = "Helvetica, Arial, 'DejaVu Sans', sans-serif"
MIN_FONT = 13  # >= 12.6 px at 700 px display width

INK = "#222222"  # text and forward connections
GREY = "#5a5a5a"  # secondary text, external inputs
LIGHT = "#f2f2f2"  # neutral fill
EXC = "#b2182b"  # excitatory (RdBu dark red)
EXC_FILL = "#fddbc7"
INH = "#2166ac"  # inhibitory (RdBu dark blue)
INH_FILL = "#d1e5f0"
ERR = "#009e73"  # error / feedback / teaching signals (Okabe-Ito bluish green)
ERR_FILL = "#d9f0e8"
ACCENT = "#e69f00"  # one highlighted element (Okabe-Ito orange)
ACCENT_FILL = "#fbe8c2"
# Green and orange lines are too light for text (WCAG contrast < 4.5 on the light
# background): their labels use darker shades of the same hues.
TEXT_SHADE = {ERR: "#006b52", ACCENT: "#7f5300"}


# --------------------------------------------------------------------------- primitives


def _num(value: float) -> str:
    """Coordinates with one decimal at most: stable, short output."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _rich(label: str, size: float) -> str:
    """Text with ``_{sub}`` and ``^{sup}`` marks, as tspans shifted off the baseline."""
    small = max(MIN_FONT, round(size * 0.8))  # never below the minimum font size
    offset = {"_": 0.3 * size, "^": -0.4 * size}
    parts, current = [], 0.0  # current: how far the pen sits below the baseline
    for token in re.split(r"([_^]\{[^}]*\})", label):
        if not token:
            continue
        if re.fullmatch(r"[_^]\{[^}]*\}", token):
            target = offset[token[0]]
            parts.append(f'<tspan dy="{_num(target - current)}" font-size="{small}">'
                         f"{escape(token[2:-1])}</tspan>")
            current = target
        elif current:
            parts.append(f'<tspan dy="{_num(-current)}">{escape(token)}</tspan>')
            current = 0.0
        else:
            parts.append(escape(token))
    return "".join(parts)


def text(x, y, label, *, size=15, anchor="middle", colour=INK, weight="normal", italic=False):
    """One line of text; ``label`` may hold ``_{sub}`` and ``^{sup}``."""
    assert size >= MIN_FONT, f"font size {size} below {MIN_FONT}"
    style = ' font-style="italic"' if italic else ""
    bold = f' font-weight="{weight}"' if weight != "normal" else ""
    colour = TEXT_SHADE.get(colour, colour)
    return (f'<text x="{_num(x)}" y="{_num(y)}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{colour}"{bold}{style}>{_rich(label, size)}</text>')


def lines(x, y, labels, *, size=15, gap=None, **kwargs):
    """Several lines of text, one below the other."""
    gap = gap or round(size * 1.3)
    return "".join(text(x, y + k * gap, label, size=size, **kwargs)
                   for k, label in enumerate(labels))


def rect(x, y, w, h, *, fill=LIGHT, stroke=INK, width=1.5, rx=8, dash=False):
    dashing = ' stroke-dasharray="6 4"' if dash else ""
    return (f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}" '
            f'rx="{rx}" fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dashing}/>')


def circle(cx, cy, r, *, fill=LIGHT, stroke=INK, width=1.5):
    return (f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(r)}" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{width}"/>')


def polygon(points, *, fill=LIGHT, stroke=INK, width=1.5):
    coords = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
    return f'<polygon points="{coords}" fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>'


def _head(x, y, angle, colour, kind):
    """An arrowhead (excitatory / plain) or a bar (inhibitory) at (x, y), pointing along angle."""
    ux, uy = math.cos(angle), math.sin(angle)
    if kind == "bar":
        px, py = -uy * 8, ux * 8
        return (f'<line x1="{_num(x + px)}" y1="{_num(y + py)}" x2="{_num(x - px)}" '
                f'y2="{_num(y - py)}" stroke="{colour}" stroke-width="3.5"/>')
    back, side = 12, 5.5
    points = [(x, y), (x - back * ux - side * uy, y - back * uy + side * ux),
              (x - back * ux + side * uy, y - back * uy - side * ux)]
    return polygon(points, fill=colour, stroke=colour, width=1)


def arrow(x1, y1, x2, y2, *, colour=INK, dash=False, width=2, head="arrow", bend=0.0,
          halo=False):
    """A straight (``bend=0``) or curved arrow from (x1, y1) to (x2, y2).

    ``bend`` moves the curve's control point sideways by that many units; ``head`` is
    ``"arrow"``, ``"bar"`` (inhibitory synapse) or ``"none"``; ``halo`` draws a white
    band under the line, so that it visibly passes over a line it crosses.
    """
    dashing = ' stroke-dasharray="7 5"' if dash else ""
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    cx, cy = mx - bend * (y2 - y1) / length, my + bend * (x2 - x1) / length
    angle = math.atan2(y2 - cy, x2 - cx)
    # stop the line where the head begins, so a thick line does not poke through its tip
    trim = 10 if head == "arrow" else 0
    ex, ey = x2 - trim * math.cos(angle), y2 - trim * math.sin(angle)
    if bend:
        path = f"M{_num(x1)},{_num(y1)} Q{_num(cx)},{_num(cy)} {_num(ex)},{_num(ey)}"
    else:
        path = f"M{_num(x1)},{_num(y1)} L{_num(ex)},{_num(ey)}"
    body = (f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="{width}"'
            f'{dashing}/>')
    if halo:
        body = f'<path d="{path}" fill="none" stroke="#fcfcfa" stroke-width="9"/>' + body
    return body + ("" if head == "none" else _head(x2, y2, angle, colour, head))


def loop(x, y, *, colour=INK, head="arrow", side="left", radius=22):
    """A self-connection: a loop leaving and re-entering a node's left or right side at (x, y)."""
    sign = -1 if side == "left" else 1
    start, end = (x, y - 10), (x, y + 10)
    reach = x + sign * 2.4 * radius
    c1, c2 = (reach, y - 2 * radius), (reach, y + 2 * radius)
    path = (f'M{_num(start[0])},{_num(start[1])} C{_num(c1[0])},{_num(c1[1])} '
            f'{_num(c2[0])},{_num(c2[1])} {_num(end[0])},{_num(end[1])}')
    angle = math.atan2(end[1] - c2[1], end[0] - c2[0])
    return (f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            + _head(end[0], end[1], angle, colour, head))


def svg(name: str, height: int, title: str, desc: str, body: list[str]) -> tuple[str, str]:
    """A whole SVG document on a light rounded background (readable on a dark page)."""
    document = "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-labelledby="title desc" '
        f'font-family="{FONT}">',
        f'<title id="title">{escape(title)}</title>',
        f'<desc id="desc">{escape(desc)}</desc>',
        f'<rect x="1" y="1" width="{WIDTH - 2}" height="{height - 2}" rx="14" '
        f'fill="#fcfcfa" stroke="#c8c8c8" stroke-width="1.5"/>',
        *body,
        "</svg>",
        "",
    ])
    return name, document


def legend_item(x, y, label, *, colour=INK, dash=False, head="arrow", size=MIN_FONT):
    """A short sample line with its meaning."""
    return arrow(x, y, x + 38, y, colour=colour, dash=dash, head=head) + text(
        x + 48, y + 5, label, size=size, anchor="start")


# --------------------------------------------------------------------------- diagrams


def levers():
    """00: the three levers a designer controls."""
    body = [text(360, 34, "What a designer controls when training a network", size=18,
                 weight="bold")]
    columns = [
        ("Architecture", "chapters 1–3", "which connections exist,", "and with which sign",
         ["1  sparse mask  W ⊙ M", "2  Dale's law  [W]_{+} D", "3  cell types, dendrites"]),
        ("Cost function", "chapters 4–5", "what training keeps small,", "besides the task error",
         ["4  L1 on weights, L2 on rates", "5  wiring length,", "    communicability"]),
        ("Learning rule", "chapters 6–8", "how the error becomes", "weight changes",
         ["6  feedback alignment", "7  errors in dendrites", "8  RFLO: traces in time"]),
    ]
    for k, (name, chapters, line1, line2, items) in enumerate(columns):
        x = 20 + k * 230
        body.append(rect(x, 56, 220, 196, fill="#ffffff"))
        body.append(text(x + 110, 82, name, size=17, weight="bold"))
        body.append(text(x + 110, 101, chapters, size=MIN_FONT, colour=GREY))
        body.append(lines(x + 110, 124, [line1, line2], size=14))
        body.append(lines(x + 14, 176, items, size=14, anchor="start", gap=22))
        body.append(arrow(x + 110, 252, x + 110 if k == 1 else 360 + (k - 1) * 70, 292))
    body.append(rect(150, 294, 420, 54, fill=LIGHT))
    body.append(lines(360, 316, ["training on the task's trials", "(neurogym: the experiments)"],
                      size=14))
    body.append(arrow(360, 348, 360, 374))
    body.append(rect(150, 376, 420, 54, fill=LIGHT, dash=True))
    body.append(lines(360, 398, ["a trained network: its weights are found,",
                                 "not chosen (chapter 10 looks inside)"], size=14))
    desc = ("Three boxes side by side. Architecture, chapters 1 to 3: which connections exist "
            "and with which sign (1 sparse mask W times M, 2 Dale's law, 3 cell types and "
            "dendrites). Cost function, chapters 4 and 5: what training keeps small besides "
            "the task error (4 L1 on weights and L2 on rates, 5 wiring length and "
            "communicability). Learning rule, chapters 6 to 8: how the error becomes weight "
            "changes (6 feedback alignment, 7 errors in dendrites, 8 RFLO). Arrows from all "
            "three lead to 'training on the task's trials', which leads to a dashed box: a "
            "trained network whose weights are found, not chosen; chapter 10 looks inside.")
    return svg("00_three_levers.svg", 446, "The three levers: architecture, cost function, "
               "learning rule", desc, body)


MASK_EDGES = [(1, 0), (2, 0), (3, 2), (4, 1), (0, 3), (2, 4), (4, 3)]  # (post, pre)
HIGHLIGHT = (2, 0)


def masked_matrix():
    """01: a binary mask M (post, pre) and the network it wires."""
    n, cell, x0, y0 = 5, 40, 90, 84
    body = [text(360, 32, "A mask M (post, pre) and the network it wires", size=18,
                 weight="bold")]
    body.append(text(x0 + n * cell / 2, y0 - 30, "presynaptic unit j (from)", size=14))
    body.append(f'<text x="{x0 - 44}" y="{y0 + n * cell / 2}" font-size="14" '
                f'text-anchor="middle" fill="{INK}" transform="rotate(-90 {x0 - 44} '
                f'{y0 + n * cell / 2})">postsynaptic unit i (to)</text>')
    for j in range(n):
        body.append(text(x0 + j * cell + cell / 2, y0 - 8, str(j), size=14, colour=GREY))
    for i in range(n):
        body.append(text(x0 - 14, y0 + i * cell + cell / 2 + 5, str(i), size=14, colour=GREY))
        for j in range(n):
            on = (i, j) in MASK_EDGES
            fill = ACCENT_FILL if (i, j) == HIGHLIGHT else ("#9a9a9a" if on else "#ffffff")
            stroke = ACCENT if (i, j) == HIGHLIGHT else "#bdbdbd"
            body.append(rect(x0 + j * cell, y0 + i * cell, cell, cell, fill=fill,
                             stroke=stroke, width=2.5 if (i, j) == HIGHLIGHT else 1, rx=0))
            body.append(text(x0 + j * cell + cell / 2, y0 + i * cell + cell / 2 + 5,
                             "1" if on else "0", size=14,
                             colour=INK if on else GREY))
    body.append(text(x0 + n * cell / 2, y0 + n * cell + 28, "M_{2,0} = 1: unit 0 → unit 2",
                     size=14, colour=INK))
    # the network: five units on a circle, an arrow j -> i for every M_ij = 1
    cx, cy, radius = 520, 190, 105
    position = {k: (cx + radius * math.sin(2 * math.pi * k / n),
                    cy - radius * math.cos(2 * math.pi * k / n)) for k in range(n)}
    for post, pre in MASK_EDGES:
        (x1, y1), (x2, y2) = position[pre], position[post]
        d = math.hypot(x2 - x1, y2 - y1)
        ux, uy = (x2 - x1) / d, (y2 - y1) / d
        colour = ACCENT if (post, pre) == HIGHLIGHT else INK
        body.append(arrow(x1 + 22 * ux, y1 + 22 * uy, x2 - 22 * ux, y2 - 22 * uy,
                          colour=colour, width=3 if (post, pre) == HIGHLIGHT else 2))
    for k, (x, y) in position.items():
        body.append(circle(x, y, 20, fill="#ffffff"))
        body.append(text(x, y + 6, str(k), size=16, weight="bold"))
    body.append(lines(360, 366, [
        "W^{sparse} = W ⊙ M, recomputed in every forward pass:",
        "∂L/∂W_{ij} = M_{ij} ∂L/∂W^{sparse}_{ij} = 0 wherever M_{ij} = 0 (a 0 cell: no arrow)",
    ], size=15, gap=26))
    desc = ("Left: a 5 by 5 grid, rows = postsynaptic unit i (to), columns = presynaptic unit "
            "j (from), holding 0 or 1; the diagonal is 0 (no self-connections). The ones are "
            "at (1,0), (2,0), (3,2), (4,1), (0,3), (2,4) and (4,3); entry (2,0) is highlighted. "
            "Right: five numbered units on a circle with one arrow per 1 in the grid, from "
            "column unit to row unit; the highlighted arrow goes from unit 0 to unit 2. "
            "Below: W sparse equals W times M elementwise, so the gradient of every masked "
            "weight is exactly zero.")
    return svg("01_masked_weights.svg", 420, "A masked weight matrix and the network it wires",
               desc, body)


W_RAW = [[0.5, -0.3, 1.2, 0.7], [-0.8, 0.9, 0.4, -0.6], [1.1, 0.2, -1.5, 0.3],
         [0.6, -0.4, 0.8, 1.0]]
SIGNS = [1, 1, 1, -1]  # three excitatory units, then one inhibitory (as in chapter 2)


def _value_matrix(x0, y0, values, cell, title, *, outline_column=None, fmt=".1f"):
    """A small matrix of numbers, red cells positive, blue negative, white zero."""
    parts = [text(x0 + cell * len(values[0]) / 2, y0 - 34, title, size=15, weight="bold")]
    for j, sign in enumerate(SIGNS):
        parts.append(text(x0 + j * cell + cell / 2, y0 - 10, "E" if sign > 0 else "I",
                          size=14, colour=EXC if sign > 0 else INH, weight="bold"))
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            fill = EXC_FILL if value > 0 else INH_FILL if value < 0 else "#ffffff"
            parts.append(rect(x0 + j * cell, y0 + i * cell, cell, cell, fill=fill,
                              stroke="#bdbdbd", width=1, rx=0))
            label = "0" if value == 0 else f"{value:{fmt}}".replace("-", "−")
            parts.append(text(x0 + j * cell + cell / 2, y0 + i * cell + cell / 2 + 5, label,
                              size=13))
    if outline_column is not None:
        parts.append(rect(x0 + outline_column * cell, y0, cell, cell * len(values),
                          fill="none", stroke=INH, width=3, rx=2))
    return "".join(parts)


def dale_columns():
    """02: W_rec = [W_raw]_+ D, the sign acting on columns."""
    cell, y0 = 34, 98
    rectified = [[max(v, 0.0) for v in row] for row in W_RAW]
    dale = [[max(v, 0.0) * SIGNS[j] for j, v in enumerate(row)] for row in W_RAW]
    diag = [[float(SIGNS[i]) if i == j else 0.0 for j in range(4)] for i in range(4)]
    body = [text(360, 30, "Dale's law: the sign of the presynaptic unit acts on a column",
                 size=18, weight="bold")]
    xs = [16, 201, 386, 570]
    body.append(_value_matrix(xs[0], y0, W_RAW, cell, "W^{raw} (trained)"))
    body.append(_value_matrix(xs[1], y0, rectified, cell, "[W^{raw}]_{+}"))
    body.append(_value_matrix(xs[2], y0, diag, cell, "D = diag(s)", fmt="+.0f"))
    body.append(_value_matrix(xs[3], y0, dale, cell, "W^{rec}", outline_column=3))
    body.append(arrow(xs[0] + 4 * cell + 6, y0 + 2 * cell, xs[1] - 6, y0 + 2 * cell))
    body.append(text((xs[0] + 4 * cell + xs[1]) / 2, y0 + 2 * cell - 10, "relu", size=14))
    body.append(text((xs[1] + 4 * cell + xs[2]) / 2, y0 + 2 * cell + 8, "·", size=30))
    body.append(text((xs[2] + 4 * cell + xs[3]) / 2, y0 + 2 * cell + 8, "=", size=24))
    body.append(lines(360, 266, [
        "Rows: postsynaptic unit i (to).  Columns: presynaptic unit j (from).",
        "Column j holds all of unit j's outgoing synapses, so D multiplies from the right:",
        "the last unit (I) is inhibitory, so its whole column (outlined) is ≤ 0.",
        "A raw weight below zero becomes a silent synapse (0), not a sign flip; its gradient is 0.",
    ], size=15, gap=24))
    desc = ("Four 4 by 4 matrices in a row with column labels E, E, E, I. W raw has positive "
            "(red) and negative (blue) entries. After relu, the negative entries are 0 "
            "(white). D is the diagonal matrix diag(1, 1, 1, -1). Their product W rec has "
            "non-negative first three columns and a last column, outlined, of 0 or negative "
            "entries: the inhibitory unit's outgoing synapses. Text: rows are postsynaptic, "
            "columns presynaptic; D multiplies from the right and acts on columns; a raw "
            "weight below zero gives a silent synapse with zero gradient.")
    return svg("02_dale_columns.svg", 364, "E/I columns and the sign matrix D", desc, body)


CELL_NODES = {  # centre, width, height, label lines
    "E_dend": (150, 116, 170, 56, ["E dendrites", "(2 per soma)"]),
    "E_soma": (150, 330, 170, 56, ["E soma", "(pyramidal cell)"]),
    "SST": (420, 116, 120, 56, ["SST", "(inhibit dendrites)"]),
    "PV": (420, 330, 120, 56, ["PV", "(inhibit somata)"]),
    "VIP": (620, 222, 120, 56, ["VIP", "(inhibit SST)"]),
}


def _edge_ends(pre, post, offset=0.0):
    """Points on the borders of two node boxes, along the line joining their centres."""
    (x1, y1, w1, h1, _), (x2, y2, w2, h2, _) = CELL_NODES[pre], CELL_NODES[post]
    dx, dy = x2 - x1, y2 - y1
    length = math.hypot(dx, dy)
    nx, ny = -dy / length * offset, dx / length * offset

    def border(w, h):
        scale = min((w / 2 + 4) / abs(dx) if dx else math.inf,
                    (h / 2 + 4) / abs(dy) if dy else math.inf)
        return dx * scale, dy * scale

    bx1, by1 = border(w1, h1)
    bx2, by2 = border(w2, h2)
    return x1 + bx1 + nx, y1 + by1 + ny, x2 - bx2 + nx, y2 - by2 + ny


def cell_type_wiring():
    """03: the type-to-type wiring of `course_lib.cell_types` (Liu & Wang 2024)."""
    body = [text(360, 30, "Cell-typed wiring of CellTypeRNN (after Liu & Wang 2024)", size=18,
                 weight="bold")]
    pairs = set(DEFAULT_CONNECTIONS)
    for pre, post in sorted(pairs):
        colour = EXC if TYPE_SIGNS[pre] > 0 else INH
        head = "arrow" if TYPE_SIGNS[pre] > 0 else "bar"
        x, y, w, h, _ = CELL_NODES[pre]
        if pre == post:
            side = "left" if pre == "E_soma" else "right"
            body.append(loop(x - w / 2 if side == "left" else x + w / 2, y, colour=colour,
                             head=head, side=side))
        elif pre == "E_soma" and post == "VIP":  # the one crossing: drawn over SST -> PV
            body.append(arrow(236, 312, 558, 226, colour=colour, head=head, halo=True))
        else:
            offset = 9 if (post, pre) in pairs or post == "E_soma" else 0
            body.append(arrow(*_edge_ends(pre, post, offset), colour=colour, head=head))
    # the fixed coupling of each dendrite to its own soma (W_fixed, not trained)
    assert TYPE_SIGNS["E_dend"] > 0
    body.append(arrow(*_edge_ends("E_dend", "E_soma", -9), colour=EXC, head="arrow", dash=True))
    body.append(text(170, 214, "fixed,", size=14, colour=EXC, anchor="start"))
    body.append(text(170, 232, "own soma", size=13, colour=EXC, anchor="start"))
    for name, (x, y, w, h, label) in CELL_NODES.items():
        excitatory = TYPE_SIGNS[name] > 0
        body.append(rect(x - w / 2, y - h / 2, w, h, fill=EXC_FILL if excitatory else INH_FILL,
                         stroke=EXC if excitatory else INH, width=2))
        body.append(text(x, y - 4, label[0], size=16, weight="bold"))
        body.append(text(x, y + 16, label[1], size=13))
    # external inputs reach the dendrites and the interneurons; the readout sees somata
    entry = {"E_dend": (150, 58, 150, 86), "SST": (420, 58, 420, 86),
             "VIP": (650, 150, 640, 192), "PV": (510, 392, 478, 358)}
    for name in DEFAULT_INPUT_TARGETS:
        x1, y1, x2, y2 = entry[name]
        body.append(arrow(x1, y1, x2, y2, colour=GREY, width=2))
        body.append(text(x1 + (14 if name == "PV" else 0),
                         y1 + 18 if name == "PV" else y1 - 6, "input", size=13, colour=GREY))
    body.append(arrow(150, 358, 150, 398, colour=INK))
    body.append(text(150, 416, "readout (E somata only)", size=14))
    body.append(legend_item(20, 452, "excitatory, plastic", colour=EXC))
    body.append(legend_item(20, 478, "inhibitory, plastic", colour=INH, head="bar"))
    body.append(legend_item(245, 452, "fixed dendrite → own soma", colour=EXC, dash=True))
    body.append(legend_item(245, 478, "external input (≥ 0)", colour=GREY))
    body.append(text(700, 457, "W^{rec} = (M ⊙ |W^{plastic}| + W^{fixed}) D", size=15,
                     anchor="end"))
    body.append(text(700, 483, "M from this table; D signs columns", size=13, anchor="end",
                     colour=GREY))
    targets = {pre: [post for p, post in DEFAULT_CONNECTIONS if p == pre] for pre in TYPE_SIGNS}
    desc = ("Five boxes: E dendrites (two per soma) and E soma in red on the left; SST, PV "
            "and VIP in blue. Plastic synapses by type: "
            + "; ".join(f"{pre} to {', '.join(posts)}" for pre, posts in targets.items()
                        if posts)
            + ". Excitatory synapses end in arrowheads, inhibitory ones in bars. A dashed red "
            "arrow is the fixed coupling of each dendrite to its own soma. Grey input arrows "
            f"reach {', '.join(DEFAULT_INPUT_TARGETS)}; the readout reads E somata only. "
            "W rec = (M times |W plastic| + W fixed) D.")
    return svg("03_cell_type_wiring.svg", 500, "PV, SST, VIP and dendrite wiring of the "
               "cell-typed network", desc, body)


def penalties():
    """04: where each penalty enters the loss: L1 on weights, L2 on rates."""
    body = [text(360, 30, "Where each penalty enters the loss", size=18, weight="bold")]
    # L1 on the weights, above the network: it reads the three weight matrices
    body.append(rect(110, 48, 500, 84, fill=ACCENT_FILL, stroke=ACCENT, width=2))
    body.append(lines(360, 72, ["L1 on the weights (the parameters)",
                                "β_{1} Σ_{ij} |w_{ij}|  summed over W^{in}, W^{rec} and W^{out}",
                                "the same whatever trials the network runs"], size=14, gap=23))
    # the network over time: u_t -> W_in -> r_t (W_rec) -> W_out -> z_t -> J_task
    y = 244
    body.append(rect(20, y - 25, 90, 50))
    body.append(lines(65, y - 4, ["input", "u_{t}"], size=14))
    body.append(rect(250, y - 37, 130, 74, fill="#ffffff"))
    body.append(lines(315, y - 6, ["rates r_{t}", "(T × B × N)"], size=14))
    body.append(rect(520, y - 25, 80, 50))
    body.append(lines(560, y - 4, ["output", "z_{t}"], size=14))
    body.append(rect(634, y - 25, 72, 50))
    body.append(lines(670, y - 4, ["J_{task}", "(CE)"], size=14))
    body.append(arrow(110, y, 250, y))
    body.append(arrow(380, y, 520, y))
    body.append(arrow(600, y, 634, y))
    body.append(arrow(290, y - 37, 340, y - 37, bend=-34))  # the recurrent loop
    for x, label in ((180, "W^{in}"), (400, "W^{rec}"), (450, "W^{out}")):
        ly = y - 12 if label != "W^{rec}" else y - 66
        lx = x if label != "W^{rec}" else 352
        body.append(text(lx, ly, label, size=16, colour=ACCENT, weight="bold",
                         anchor="middle" if label != "W^{rec}" else "start"))
        body.append(arrow(lx + (16 if label == "W^{rec}" else 0), ly - 18, lx + (16 if label ==
                          "W^{rec}" else 0), 134, colour=ACCENT, dash=True, width=1.8))
    # L2 on the rates, below the network: it reads the activity
    body.append(rect(150, 302, 330, 84, fill=ERR_FILL, stroke=ERR, width=2))
    body.append(lines(315, 326, ["L2 on the rates (the activity)",
                                 "β_{2} (1/TB) Σ_{t,b} Σ_{i} r_{i,t,b}²",
                                 "depends on the trials the network runs"], size=14, gap=23))
    body.append(arrow(315, y + 37, 315, 300, colour=ERR, dash=True, width=1.8))
    body.append(rect(130, 406, 460, 44, fill="#ffffff"))
    body.append(text(360, 434, "J = J_{task} + β_{1} Σ|w| + β_{2} (1/TB) Σ r²", size=16))
    body.append(lines(360, 478, [
        "L1's gradient reaches each weight directly (β_{1} sign w): small weights go to 0.",
        "L2's gradient reaches the weights only through the rates, i.e. through the dynamics.",
        "Sparsity is then measured on W^{rec}, as the share of weights with |w| < 0.01.",
    ], size=14, gap=22))
    desc = ("Middle: input u_t feeds through W in to the rates r_t (with a recurrent loop W rec), "
            "which feed through W out to the output z_t and the task loss, a cross-entropy. "
            "Above, dashed orange lines lead up from the three weight matrices to a box: L1 on "
            "the weights, beta1 times the sum of |w| over W in, W rec and W out, the same "
            "whatever trials the network runs. Below, a dashed green line leads down from the "
            "rates to a box: L2 on the rates, beta2 times the sum over units of r squared, "
            "averaged over time steps and trials. Bottom: J = J task + the two terms; L1's "
            "gradient reaches each weight directly, L2's only through the rates; sparsity is "
            "measured on W rec as the share of |w| < 0.01.")
    return svg("04_penalty_terms.svg", 540, "Where the L1 weight penalty and the L2 rate "
               "penalty enter the loss", desc, body)


def spatial_wiring():
    """05: units on a grid, each synapse costing |W_ij| d_ij, and communicability."""
    body = [text(360, 30, "Units on a sheet: long connections cost more", size=18,
                 weight="bold")]
    side, spacing, x0, y0 = 4, 62, 80, 84

    def at(k):
        row, col = divmod(k, side)  # row-major, as grid_positions
        return x0 + col * spacing, y0 + row * spacing

    pre = 5
    for post, colour, w in ((6, INK, 3.5), (4, INK, 3.5), (14, ACCENT, 2)):
        (x1, y1), (x2, y2) = at(pre), at(post)
        d = math.hypot(x2 - x1, y2 - y1)
        ux, uy = (x2 - x1) / d, (y2 - y1) / d
        body.append(arrow(x1 + 17 * ux, y1 + 17 * uy, x2 - 17 * ux, y2 - 17 * uy,
                          colour=colour, width=w))
    for k in range(side * side):
        x, y = at(k)
        body.append(circle(x, y, 15, fill=ACCENT_FILL if k == pre else "#ffffff"))
        body.append(text(x, y + 5, str(k), size=13))
    body.append(text(x0 + 1.5 * spacing, y0 + 3 * spacing + 40,
                     "unit k at its row-major grid place", size=13, colour=GREY))
    body.append(lines(24, 350, ["d_{6,5} = d_{4,5} = 1: cheap",
                                "d_{14,5} = √5 ≈ 2.24: each unit of",
                                "weight costs 2.24 times as much"], size=14, anchor="start",
                      gap=22))
    body.append(text(190, 440, "J = J_{task} + β Σ_{ij} |W_{ij}| d_{ij}", size=16))
    # communicability: a direct link that other paths already provide costs more
    bx = 384
    body.append(rect(bx, 52, 322, 404, fill="#ffffff"))
    body.append(text(bx + 161, 78, "seRNN: communicability", size=16, weight="bold"))
    j, k, i = (bx + 66, 220), (bx + 161, 120), (bx + 256, 220)
    body.append(arrow(j[0] + 20, j[1], i[0] - 20, i[1], colour=ACCENT, width=3))
    body.append(arrow(j[0] + 14, j[1] - 14, k[0] - 14, k[1] + 14, width=2))
    body.append(arrow(k[0] + 14, k[1] + 14, i[0] - 14, i[1] - 14, width=2))
    for (x, y), name in ((j, "j"), (k, "k"), (i, "i")):
        body.append(circle(x, y, 19, fill="#ffffff"))
        body.append(text(x, y + 6, name, size=16, italic=True))
    body.append(text(bx + 161, 244, "W_{ij}", size=15, colour=ACCENT, weight="bold"))
    body.append(lines(bx + 161, 284, [
        "C = exp(S^{−½} |W| S^{−½}),  s_{j} = Σ_{i} |W_{ij}|",
        "C_{ij} adds up the walks j → i of every",
        "length n, weighted 1/n!: here j → i",
        "and j → k → i.  The cost",
        "β Σ_{ij} |W_{ij}| C_{ij} d_{ij}",
        "makes a long link that other paths",
        "already provide cost even more.",
    ], size=14, gap=22))
    desc = ("Left: 16 units, numbered 0 to 15 in row-major order, on a 4 by 4 grid with unit "
            "spacing. Unit 5 sends short arrows to its neighbours 4 and 6 (distance 1, cheap) "
            "and a long orange arrow to unit 14 (distance root 5, about 2.24, so each unit of "
            "weight costs 2.24 times as much). The cost is J = J task + beta times the sum of "
            "|W_ij| d_ij. Right: units j, k and i; a direct orange arrow j to i and a two-step "
            "path j to k to i. The communicability C = exp(S^-1/2 |W| S^-1/2) adds up walks of "
            "every length n weighted 1/n!, so the seRNN cost beta times the sum of "
            "|W_ij| C_ij d_ij makes a long link that other paths already provide cost more.")
    return svg("05_spatial_cost.svg", 474, "Units on a sheet with distance-weighted wiring "
               "costs", desc, body)


def feedback_paths():
    """06: backprop's W^T, feedback alignment's B and DFA's direct paths."""
    body = [text(360, 30, "Where the error travels: backprop, FA and DFA", size=18,
                 weight="bold")]
    layers = ["x  (64)", "h_{1}  (100)", "h_{2}  (100)", "y  (10)"]
    ys = [392, 292, 192, 92]
    panels = [
        ("Backprop", ["W_{3}^{T}", "W_{2}^{T}"], "the forward weights, read backwards"),
        ("Feedback alignment", ["B_{3}", "B_{2}"], "fixed random B, shape of W^{T}"),
        ("Direct FA", ["B_{2}", "B_{1}"], "fixed random B_{l}, e sent direct"),
    ]
    for p, (name, feedback, note) in enumerate(panels):
        x0 = 12 + p * 236
        body.append(rect(x0, 46, 224, 420, fill="#ffffff"))
        body.append(text(x0 + 112, 68, name, size=16, weight="bold"))
        nx = x0 + 80
        for k, (label, y) in enumerate(zip(layers, ys, strict=True)):
            body.append(rect(nx - 50, y - 18, 100, 36, fill=LIGHT))
            body.append(text(nx, y + 5, label, size=14))
            if k:
                body.append(arrow(nx, ys[k - 1] - 18, nx, y + 18))
                body.append(text(nx - 10, (ys[k - 1] + y) / 2 + 5, f"W_{{{k}}}", size=14,
                                 anchor="end"))
        ex = x0 + 192
        body.append(circle(ex, ys[3], 17, fill=ERR_FILL, stroke=ERR))
        body.append(text(ex, ys[3] + 6, "e", size=16, italic=True))
        body.append(arrow(nx + 50, ys[3], ex - 17, ys[3], colour=ERR, dash=True))
        body.append(arrow(ex - 6, ys[3] + 16, nx + 50, ys[2] - 8, colour=ERR, dash=True))
        if p < 2:  # right of the line; in DFA the second path runs there, so left of it
            body.append(text(ex - 8, (ys[3] + ys[2]) / 2 + 22, feedback[0], size=14,
                             colour=ERR, anchor="start"))
        else:
            body.append(text(ex - 48, (ys[3] + ys[2]) / 2 - 4, feedback[0], size=14,
                             colour=ERR, anchor="end"))
        if p < 2:  # layer by layer: e -> h2 -> h1
            body.append(arrow(nx + 50, ys[2] + 8, nx + 50, ys[1] - 8, colour=ERR, dash=True,
                              bend=-40))
            body.append(text(nx + 92, (ys[2] + ys[1]) / 2 + 5, feedback[1], size=14,
                             colour=ERR, anchor="start"))
        else:  # direct: e -> h1 as well
            body.append(arrow(ex + 4, ys[3] + 17, nx + 50, ys[1], colour=ERR, dash=True,
                              bend=-50))
            body.append(text(ex + 10, ys[1] - 28, feedback[1], size=14, colour=ERR,
                             anchor="middle"))
        body.append(text(x0 + 112, 440, note, size=13, colour=GREY))
    body.append(lines(360, 494, [
        "Hidden error δ_{l} = (feedback · δ_{l+1}) ⊙ φ′(a_{l}), with δ_{3} = e;"
        "  DFA: δ_{l} = (B_{l} e) ⊙ φ′(a_{l})",
        "every rule then updates locally: ΔW_{l} = −η δ_{l} h_{l−1}^{T}  (h_{0} = x)",
    ], size=14, gap=24))
    desc = ("Three panels, each the same network from the input x (64 pixels) through hidden "
            "layers h1 and h2 (100 tanh units each) to the output y (10 units), with forward "
            "weights W1, W2, W3 drawn as upward black arrows and the output error e in a green "
            "circle. Backprop: dashed green arrows carry e down to h2 through W3 transposed and "
            "on to h1 through W2 transposed, the forward weights read backwards. Feedback "
            "alignment: the same path through fixed random matrices B3 and B2 of the shape of "
            "W transposed. Direct feedback alignment: e goes straight to h2 through B2 and "
            "straight to h1 through B1. Below: the hidden error is the feedback times the error "
            "above, times phi prime; in every rule the update is minus eta delta_l times "
            "h_(l-1) transposed.")
    return svg("06_feedback_paths.svg", 530, "Forward weights W and feedback B against W "
               "transposed, with DFA's direct paths", desc, body)


def dendritic_neuron():
    """07: the three-compartment pyramidal neuron and its interneuron (Sacramento 2018)."""
    body = [text(360, 30, "A hidden layer k of the dendritic error microcircuit", size=18,
                 weight="bold")]
    px = 300  # the pyramidal neuron's axis
    body.append(rect(190, 52, 220, 46, fill=EXC_FILL, stroke=EXC))
    body.append(text(px, 80, "pyramids of layer k+1: u_{k+1}, r_{k+1}", size=14))
    body.append(rect(190, 444, 220, 44, fill=LIGHT))
    body.append(text(px, 471, "rates of layer k−1: r_{k−1}", size=14))
    # the pyramidal neuron of layer k: apical dendrite, soma (triangle), basal dendrite
    body.append(f'<line x1="{px}" y1="198" x2="{px}" y2="300" stroke="{EXC}" '
                'stroke-width="5"/>')
    body.append(f'<line x1="{px}" y1="352" x2="{px}" y2="380" stroke="{EXC}" '
                'stroke-width="5"/>')
    body.append(rect(px - 70, 154, 140, 44, fill=EXC_FILL, stroke=EXC, width=2, rx=20))
    body.append(text(px, 173, "apical dendrite", size=14, weight="bold"))
    body.append(text(px, 191, "v_{A,k}", size=14))
    body.append(polygon([(px, 290), (px - 40, 354), (px + 40, 354)], fill=EXC_FILL,
                        stroke=EXC, width=2))
    body.append(text(px, 342, "u_{k}", size=15, weight="bold"))
    body.append(text(px - 44, 312, "soma", size=14, anchor="end", weight="bold"))
    body.append(rect(px - 70, 380, 140, 42, fill=EXC_FILL, stroke=EXC, width=2, rx=20))
    body.append(text(px, 398, "basal dendrite", size=14, weight="bold"))
    body.append(text(px, 415, "v_{B,k}", size=13))
    body.append(text(px + 8, 250, "g_{A}", size=14, anchor="start", colour=EXC))
    body.append(text(px + 8, 372, "g_{B}", size=14, anchor="start", colour=EXC))
    # forward: r_{k-1} -> basal (W_k, plastic); the soma's rate r_k -> layer k+1 (W_{k+1})
    body.append(arrow(px, 444, px, 424))
    body.append(text(px + 8, 440, "W_{k}", size=14, anchor="start"))
    body.append(f'<path d="M{px + 40},340 C430,330 420,160 392,110" fill="none" '
                f'stroke="{INK}" stroke-width="2"/>')
    body.append(_head(390, 100, math.atan2(100 - 160, 390 - 420), INK, "arrow"))
    body.append(lines(432, 236, ["r_{k} = φ(u_{k})", "up through W_{k+1}"], size=14,
                      anchor="start", gap=20))
    # top-down: r_{k+1} -> apical through fixed random B_k
    body.append(arrow(px, 98, px, 152, colour=ERR, dash=True))
    body.append(text(px + 8, 130, "B_{k} (fixed)", size=14, anchor="start", colour=ERR))
    # the interneuron of layer k (SST-like), on the left
    ix, iy = 110, 262
    body.append(circle(ix, iy, 44, fill=INH_FILL, stroke=INH, width=2))
    body.append(text(ix, iy - 2, "interneuron", size=13, weight="bold"))
    body.append(text(ix, iy + 17, "r^{I}_{k}", size=14))
    body.append(text(ix, iy + 62, "(SST-like)", size=13, colour=INH))
    body.append(arrow(px - 40, 342, ix + 42, iy + 16, colour=EXC))
    body.append(text(206, 336, "W^{IP}_{k}", size=14, colour=EXC, anchor="end"))
    body.append(arrow(ix + 32, iy - 30, px - 72, 184, colour=INH, head="bar"))
    body.append(text(170, 208, "W^{PI}_{k}", size=14, colour=INH, anchor="end"))
    body.append(arrow(190, 70, ix, iy - 46, colour=ERR, dash=True, bend=40))
    body.append(lines(20, 118, ["nudged by the", "somas of k+1", "(g_{som})"], size=13,
                      colour=ERR, anchor="start", gap=18))
    body.append(lines(440, 170, ["v_{A,k} = B_{k} r_{k+1} + W^{PI}_{k} r^{I}_{k}"], size=14,
                      anchor="start"))
    body.append(text(440, 320, "du_{k}/dt = −g_{lk} u_{k} + g_{B} (v_{B,k} − u_{k})", size=14,
                     anchor="start"))
    body.append(text(500, 344, "+ g_{A} (v_{A,k} − u_{k})", size=14, anchor="start"))
    body.append(lines(440, 404, ["v_{B,k} = W_{k} r_{k−1}"], size=14, anchor="start"))
    body.append(lines(360, 518, [
        "Self-predicting state: the interneurons copy layer k+1 and W^{PI} = −B, so v_{A} = 0.",
        "A target nudges the output layer; the interneurons cannot predict the nudge, so v_{A,k}",
        "holds the output error sent down through B_{k}, while the soma keeps firing.",
        "Forward weights learn from soma against dendrite: ΔW_{k} ∝ (φ(u_{k}) − φ(v̂_{B,k})) "
        "r_{k−1}^{T}.",
    ], size=14, gap=22))
    desc = ("A pyramidal neuron of hidden layer k drawn as three compartments: an apical "
            "dendrite at the top, the soma u_k (a triangle) and a basal dendrite at the "
            "bottom, coupled to the soma with conductances g_A and g_B. The basal dendrite "
            "sums the rates of layer k-1 through the plastic weights W_k. The apical dendrite "
            "receives the pyramids of layer k+1 through fixed random weights B_k (dashed "
            "green) and inhibition from an interneuron through W^PI_k (blue, bar end). The "
            "interneuron (SST-like), on the left, receives the pyramids of its own layer "
            "through W^IP_k and is nudged by the somas of layer k+1 (dashed green). The "
            "soma's rate r_k goes up to layer k+1 through W_(k+1). Text: in the "
            "self-predicting state the apical voltage is 0; a target makes it hold the output "
            "error sent down through B_k; the forward weights learn from the soma minus the "
            "basal prediction.")
    return svg("07_dendritic_microcircuit.svg", 606, "The three-compartment pyramidal neuron "
               "with its interneuron", desc, body)


def rflo_vs_bptt():
    """08: BPTT's unrolled graph against RFLO's traces and broadcast feedback."""
    body = [text(360, 30, "Credit in time: BPTT against RFLO", size=18, weight="bold")]
    xs = [150, 300, 450, 600]
    steps = ["t−2", "t−1", "t", "t+1"]
    for row, y0, height in (("BPTT", 50, 246), ("RFLO", 306, 270)):
        body.append(rect(12, y0, 696, height, fill="#ffffff"))
        body.append(text(24, y0 + 26, row, size=17, weight="bold", anchor="start"))
        hy = y0 + 110
        for k, (x, t) in enumerate(zip(xs, steps, strict=True)):
            body.append(circle(x, hy, 22, fill=LIGHT))
            body.append(text(x, hy + 5, f"h_{{{t}}}", size=14))
            body.append(arrow(x, hy + 52, x, hy + 23, colour=GREY))
            body.append(text(x, hy + 68, f"x_{{{t}}}", size=14, colour=GREY))
            body.append(arrow(x, hy - 23, x, hy - 58))
            body.append(circle(x, hy - 72, 14, fill=ERR_FILL, stroke=ERR))
            body.append(text(x + 18, hy - 66, f"ε_{{{t}}}", size=14, colour=ERR,
                             anchor="start"))
            body.append(arrow(x + 12, hy - 62, x + 12, hy - 24, colour=ERR, dash=True,
                              bend=-14))
            if k:
                body.append(arrow(xs[k - 1] + 23, hy, x - 23, hy))
                body.append(text((xs[k - 1] + x) / 2, hy - 8, "W_{rec}", size=13))
        if row == "BPTT":
            for k in range(len(xs) - 1, 0, -1):  # the error travels back in time
                body.append(arrow(xs[k] - 16, hy + 18, xs[k - 1] + 18, hy + 18, colour=ERR,
                                  dash=True, bend=-24))
            body.append(text(360, y0 + 206, "error in through W_{out}^{T}, then back in time "
                             "through W_{rec}^{T}", size=14, colour=ERR))
            body.append(text(360, y0 + 230, "needs every h stored, and replayed backwards "
                             "after the trial", size=14, colour=GREY))
        else:
            for k, x in enumerate(xs):
                body.append(arrow(x + 15, hy + 16, x + 34, hy + 80, colour=ACCENT, width=1.5,
                                  head="none"))
                body.append(rect(x + 10, hy + 80, 60, 26, fill=ACCENT_FILL, stroke=ACCENT,
                                 rx=6))
                body.append(text(x + 40, hy + 98, f"p({steps[k]})", size=13))
                if k:
                    body.append(arrow(xs[k - 1] + 70, hy + 93, x + 10, hy + 93,
                                      colour=ACCENT, width=2))
            body.append(text(360, y0 + 234, "error in at once, through fixed random B: "
                             "[B ε_{t}]_{a}", size=14, colour=ERR))
            body.append(text(360, y0 + 258, "trace of synapse b → a, forward in time: "
                             "p ← (1 − 1/τ) p + (1/τ) φ′(u_{a}(t)) h_{b}(t−1)", size=14,
                             colour=INK))
    body.append(lines(360, 602, [
        "RFLO: ΔW_{ab} = η [B ε_{t}]_{a} p_{ab}(t), online; the trace forgets on the time "
        "scale τ.",
        "It drops the influence through W_{rec} and replaces W_{out}^{T} by B: with W_{rec} = 0 "
        "and B = W_{out}^{T} it is the gradient.",
    ], size=14, gap=22))
    desc = ("Two rows, each an unrolled recurrent network over four time steps t-2 to t+1: "
            "inputs x below, hidden states h joined left to right by W_rec, errors epsilon "
            "above. BPTT: dashed green arrows carry each error down into h through W_out "
            "transposed and then backwards in time through W_rec transposed; every h must be "
            "stored and replayed after the trial. RFLO: each error reaches the neurons at "
            "the same time step through a fixed random matrix B, and an orange eligibility "
            "trace per synapse runs forward in time below the network, p <- (1 - 1/tau) p + "
            "(1/tau) phi'(u_a(t)) h_b(t-1). Below: the RFLO update is eta [B epsilon_t]_a "
            "p_ab(t); it drops the influence through W_rec and replaces W_out transposed by "
            "B, and equals the gradient when W_rec = 0 and B = W_out transposed.")
    return svg("08_rflo_vs_bptt.svg", 652, "RFLO's trace and feedback paths against BPTT's "
               "unrolled graph", desc, body)


def _op(x, y, symbol, *, colour=INK, fill="#ffffff"):
    return circle(x, y, 14, fill=fill, stroke=colour, width=2) + text(
        x, y + 6, symbol, size=18, colour=colour, weight="bold")


def _gate(x, y, label, *, colour=INK, fill=LIGHT, width=48):
    return rect(x - width / 2, y - 15, width, 30, fill=fill, stroke=colour, rx=6) + text(
        x, y + 5, label, size=15, colour=colour, weight="bold")


def gated_cells():
    """09: one LSTM cell and one subLSTM cell, side by side."""
    body = [text(360, 30, "Multiplicative against subtractive gates", size=18,
                 weight="bold")]
    cy, oy, gy = 112, 206, 262  # cell-state line, output operation, gate row
    for p, sub in enumerate((False, True)):
        x0 = 12 + p * 354
        blue, blue_fill = (INH, INH_FILL) if sub else (INK, LIGHT)
        body.append(rect(x0, 46, 342, 346, fill="#ffffff"))
        body.append(text(x0 + 171, 70, "subLSTM" if sub else "LSTM", size=17, weight="bold"))
        # the cell state: c_{t-1} -> (x f) -> (+ ...) [-> (- i)] -> c_t
        fx, addx, subx, ox = x0 + 86, x0 + 156, x0 + 222, x0 + 296
        body.append(text(x0 + 16, cy + 5, "c_{t−1}", size=14, anchor="start"))
        body.append(arrow(x0 + 60, cy, fx - 14, cy))
        body.append(_op(fx, cy, "×"))
        body.append(arrow(fx + 14, cy, addx - 14, cy))
        body.append(_op(addx, cy, "+"))
        if sub:
            body.append(arrow(addx + 14, cy, subx - 14, cy))
            body.append(_op(subx, cy, "−", colour=INH))
            body.append(arrow(subx + 14, cy, ox - 20, cy))
        else:
            body.append(arrow(addx + 14, cy, ox - 20, cy))
        body.append(text(ox, cy + 5, "c_{t}", size=14))
        # the output: c_t -> tanh / sigma -> (x o) / (- o) -> h_t
        body.append(arrow(ox, cy + 10, ox, 144))
        body.append(_gate(ox, 158, "σ" if sub else "tanh", width=52))
        body.append(arrow(ox, 173, ox, oy - 14))
        body.append(_op(ox, oy, "−" if sub else "×", colour=blue))
        body.append(arrow(ox - 14, oy, ox - 52, oy))
        body.append(text(ox - 58, oy + 5, "h_{t}", size=15, anchor="end", weight="bold"))
        # the gates, all computed from x_t and h_{t-1}
        if sub:
            gates = [("f", fx, INK, LIGHT), ("z", addx, INK, LIGHT), ("i", subx, INH, INH_FILL),
                     ("o", ox, INH, INH_FILL)]
        else:
            gates = [("f", fx, INK, LIGHT), ("i", addx - 30, INK, LIGHT),
                     ("g", addx + 30, INK, LIGHT), ("o", ox, INK, LIGHT)]
        for label, gx, colour, fill in gates:
            body.append(_gate(gx, gy, label, colour=colour, fill=fill, width=34))
            body.append(arrow(gx, 314, gx, gy + 16, colour=GREY, width=1.5))
        body.append(arrow(fx, gy - 15, fx, cy + 14))  # f multiplies the old cell state
        body.append(arrow(ox, gy - 15, ox, oy + 14, colour=blue))  # o gates the output
        if sub:
            body.append(arrow(addx, gy - 15, addx, cy + 14))
            body.append(arrow(subx, gy - 15, subx, cy + 14, colour=INH))
        else:
            body.append(_op(addx, 190, "×"))
            body.append(arrow(addx - 30, gy - 15, addx - 10, 200))
            body.append(arrow(addx + 30, gy - 15, addx + 10, 200))
            body.append(arrow(addx, 176, addx, cy + 14))
        body.append(rect(x0 + 20, 314, 302, 56, fill=LIGHT, stroke=GREY))
        body.append(text(x0 + 171, 336, "W x_{t} + R h_{t−1} + b", size=14))
        body.append(text(x0 + 171, 358, "i, f, o, z: σ(·)" if sub else "i, f, o: σ(·);  g: tanh(·)",
                         size=14))
        formula = ("c_{t} = f ⊙ c_{t−1} + z − i,   h_{t} = σ(c_{t}) − o" if sub else
                   "c_{t} = f ⊙ c_{t−1} + i ⊙ g,   h_{t} = o ⊙ tanh(c_{t})")
        body.append(text(x0 + 171, 414, formula, size=14))
    body.append(lines(360, 446, [
        "LSTM: a closed gate (≈ 0) scales its signal to zero.  subLSTM (Costa et al. 2017):",
        "gates subtract, like inhibition (blue); every signal is a sigmoid; f multiplies in both.",
    ], size=14, gap=22))
    desc = ("Two cells side by side, each with a cell-state line from c_(t-1) to c_t along the "
            "top and gate boxes computed from W x_t + R h_(t-1) + b along the bottom. "
            "LSTM: the forget gate f multiplies c_(t-1); the input gate i multiplies the tanh "
            "candidate g and the product is added; the output gate o multiplies tanh(c_t) to "
            "give h_t. subLSTM: f still multiplies c_(t-1), the sigmoid candidate z is added "
            "and the input gate i is subtracted (blue, inhibition-like); h_t = sigma(c_t) "
            "minus o, the output gate subtracted too. Text: a closed LSTM gate scales its "
            "signal to zero; subLSTM gates subtract, like inhibition, and every signal is a "
            "sigmoid.")
    return svg("09_lstm_sublstm.svg", 484, "LSTM cell against subLSTM cell", desc, body)


def enu_unit():
    """09: one ENU-light-GRU unit: ReLU dendritic subunits feeding its gate and candidate."""
    body = [text(360, 30, "One unit k of the ENU-light-GRU", size=18, weight="bold")]
    body.append(rect(20, 150, 96, 60))
    body.append(lines(68, 174, ["input", "x_{t}"], size=15))
    ys = [90, 150, 210, 270]
    for n, y in enumerate(ys):
        body.append(arrow(116, 180, 214, y, colour=GREY, width=1.5))
        body.append(circle(234, y, 20, fill=ACCENT_FILL, stroke=ACCENT))
        body.append(text(234, y + 5, f"ĥ_{{{n + 1}}}", size=14))
        for gy in (120, 240):
            body.append(arrow(254, y, 344, gy, colour=INK, width=1.5))
    body.append(lines(234, 312, ["4 ReLU subunits", "ĥ = ReLU(W x + b)"], size=14))
    body.append(rect(346, 96, 132, 48, fill=LIGHT))
    body.append(lines(412, 115, ["BN(W_{z} ĥ)", "own subunits only"], size=13, gap=18))
    body.append(rect(346, 216, 132, 48, fill=LIGHT))
    body.append(lines(412, 235, ["BN(W_{h} ĥ)", "own subunits only"], size=13, gap=18))
    body.append(arrow(478, 120, 520, 120))
    body.append(arrow(478, 240, 520, 240))
    body.append(rect(520, 96, 120, 48, fill="#ffffff"))
    body.append(lines(580, 115, ["z = σ(· + U_{z} h)", "update gate"], size=13, gap=18))
    body.append(rect(520, 216, 120, 48, fill="#ffffff"))
    body.append(lines(580, 235, ["h̃ = ReLU(· + U_{h} h)", "candidate"], size=13, gap=18))
    body.append(arrow(640, 120, 666, 170))
    body.append(arrow(640, 240, 666, 192))
    body.append(circle(680, 180, 22, fill=ACCENT_FILL, stroke=ACCENT, width=2))
    body.append(text(680, 186, "h_{k}", size=15, weight="bold"))
    body.append(lines(360, 378, [
        "h_{t} = z ⊙ h_{t−1} + (1 − z) ⊙ h̃: a rate (≥ 0), as in every light-GRU.",
        "A block-diagonal mask lets unit k read only its own 4 subunits (zeros never train);",
        "U_{z}, U_{h}: recurrent input from all units.  After Poirazi et al. (2003): a pyramidal",
        "neuron's rate is well predicted by a two-layer network of dendritic subunits.",
    ], size=14, gap=22))
    desc = ("The input x_t feeds four orange ReLU subunits h-hat 1 to 4 of unit k, h-hat = "
            "ReLU(W x + b). All four feed two boxes, the batch-normalised drives BN(W_z h-hat) "
            "and BN(W_h h-hat), which read unit k's own subunits only (a block-diagonal mask). "
            "These drive the update gate z = sigma(. + U_z h) and the ReLU candidate h-tilde, "
            "which combine into the unit's rate h_k = z h + (1 - z) h-tilde. Text: the mask's "
            "zeros never train; U_z and U_h bring recurrent input from all units; after "
            "Poirazi et al. 2003, a pyramidal neuron is a two-layer network of dendritic "
            "subunits.")
    return svg("09_enu_unit.svg", 462, "The ENU-light-GRU unit: dendritic subunits feeding "
               "one light-GRU unit", desc, body)


def analysis_pipeline():
    """10: train -> held-out activity -> selectivity / PCA / ablation."""
    body = [text(360, 30, "From trained networks to claims about them", size=18,
                 weight="bold")]
    steps = [
        (20, ["train 5 seeds", "same batches, same optimiser", "(SeedStack)"]),
        (262, ["run held-out trials", "record hidden activity h", "(time × trials × units)"]),
        (504, ["accuracy per trial", "at the decision: which", "seeds learn (≥ 70%)"]),
    ]
    for x, text_lines in steps:
        body.append(rect(x, 56, 196, 92, fill="#ffffff"))
        body.append(text(x + 98, 82, text_lines[0], size=15, weight="bold"))
        body.append(lines(x + 98, 104, text_lines[1:], size=13, gap=20))
    body.append(arrow(216, 102, 262, 102))
    body.append(arrow(458, 102, 504, 102))
    analyses = [
        (20, 190, "active units", ["largest activation", "per unit: silent ones at 0"]),
        (222, 220, "selectivity", ["s = 2(μ_{a} − μ_{b}) / √(σ_{a}² + σ_{b}²)",
                                   "per unit, two conditions"]),
        (454, 190, "population (PCA)", ["fit PCs once on a long run,",
                                         "project single trials"]),
    ]
    for x, w, head, text_lines in analyses:
        body.append(rect(x, 196, w, 90, fill=LIGHT))
        body.append(text(x + w / 2, 220, head, size=15, weight="bold"))
        body.append(lines(x + w / 2, 244, text_lines, size=13, gap=20))
        body.append(arrow(360, 148, x + w / 2, 194, colour=INK, width=1.8))
    body.append(rect(20, 330, 680, 118, fill=ERR_FILL, stroke=ERR, width=2))
    body.append(text(360, 354, "ablation: the causal test", size=15, weight="bold"))
    body.append(lines(360, 378, [
        "rank units by selectivity on Monte Carlo batches (not the held-out one);",
        "silence the k most selective (rate clamped to 0 at every step), and as the",
        "control k random active units (10 draws per seed); compare held-out accuracy",
    ], size=14, gap=22))
    body.append(arrow(332, 286, 332, 328, colour=ERR, dash=True))
    body.append(text(340, 312, "ranking", size=13, colour=ERR, anchor="start"))
    body.append(arrow(672, 148, 672, 328, colour=ERR, dash=True))
    body.append(lines(664, 304, ["accuracy", "again"], size=13, colour=ERR, anchor="end",
                      gap=17))
    body.append(lines(360, 478, [
        "Selectivity and PCA describe what is there (association);",
        "only the lesion, against its random control, says what the network uses.",
    ], size=14, gap=22))
    desc = ("A pipeline. Top row: train 5 seeds on the same batches with the same optimiser "
            "(SeedStack), then run held-out trials and record the hidden activity (time by "
            "trials by units), then score accuracy per trial at the decision: which seeds "
            "learn (at least 70%). From the recorded activity three analyses branch: active "
            "units (largest activation per unit), selectivity (s = 2 (mu_a - mu_b) / "
            "sqrt(sigma_a^2 + sigma_b^2), per unit, between two conditions) and population "
            "PCA (components fitted once on a long run, single trials projected). Selectivity "
            "ranks the units for an ablation box: silence the k most selective units against k "
            "random active units and compare held-out accuracy. Footer: selectivity and PCA "
            "show association; only the lesion shows use.")
    return svg("10_analysis_pipeline.svg", 518, "The analysis pipeline: train, held-out "
               "activity, selectivity, PCA and ablation", desc, body)


def songbird_loop():
    """11: the songbird's motor pathway learning by node perturbation (Fiete et al. 2007)."""
    body = [text(360, 32, "Song learning as node perturbation", size=18, weight="bold")]
    # the anterior forebrain pathway (top row): Area X -> DLM -> LMAN
    body.append(rect(24, 58, 150, 58, fill=LIGHT))
    body.append(lines(99, 82, ["Area X", "(basal ganglia)"], size=14, gap=20))
    body.append(rect(210, 58, 100, 58, fill=LIGHT))
    body.append(lines(260, 82, ["DLM", "(thalamus)"], size=14, gap=20))
    body.append(rect(346, 58, 160, 58, fill=ACCENT_FILL, stroke=ACCENT))
    body.append(lines(426, 82, ["LMAN", "varies the song"], size=14, gap=20))
    body.append(arrow(174, 87, 210, 87))
    body.append(arrow(310, 87, 346, 87))
    # the motor pathway (middle row): HVC -> RA -> syrinx
    body.append(rect(24, 206, 150, 58, fill="#ffffff"))
    body.append(lines(99, 230, ["HVC", "timing: pre x_{j}"], size=14, gap=20))
    body.append(rect(346, 206, 160, 58, fill="#ffffff"))
    body.append(lines(426, 230, ["RA (motor)", "post: input + ξ_{i}"], size=14, gap=20))
    body.append(rect(560, 206, 136, 58, fill=LIGHT))
    body.append(lines(628, 230, ["syrinx", "→ song"], size=14, gap=20))
    body.append(arrow(174, 235, 346, 235, width=3))
    body.append(text(260, 226, "W_{ij} (learns)", size=14))
    body.append(arrow(506, 235, 560, 235))
    body.append(arrow(99, 206, 99, 116))  # HVC -> Area X: a copy of the timing signal
    body.append(arrow(426, 116, 426, 206, colour=ACCENT, width=3))
    body.append(text(436, 168, "perturbation ξ_{i}", size=14, colour=ACCENT, anchor="start"))
    # evaluation and the reward signal (bottom row)
    body.append(rect(560, 300, 136, 58, fill=LIGHT))
    body.append(lines(628, 324, ["hear the song,", "match to tutor"], size=14, gap=20))
    body.append(arrow(628, 264, 628, 300))
    body.append(rect(346, 300, 160, 58, fill=ERR_FILL, stroke=ERR))
    body.append(lines(426, 324, ["VTA dopamine", "R − R̄"], size=14, gap=20, colour=ERR))
    body.append(arrow(560, 329, 506, 329, colour=ERR))
    # dopamine to the HVC -> RA synapses (Fiete et al.'s model) and to Area X (the bird)
    body.append(arrow(372, 300, 292, 241, colour=ERR, dash=True))
    body.append(lines(276, 292, ["to W_{ij}", "(model)"], size=13, gap=18, colour=ERR))
    to_area_x = "M346,345 L194,345 L194,150 L150,150 L150,128"
    body.append(f'<path d="{to_area_x}" fill="none" stroke="#fcfcfa" stroke-width="9"/>')
    body.append(f'<path d="{to_area_x}" fill="none" stroke="{ERR}" stroke-width="2" '
                'stroke-dasharray="7 5"/>')
    body.append(_head(150, 117, -math.pi / 2, ERR, "arrow"))
    body.append(lines(202, 166, ["to Area X", "(songbird)"], size=13, gap=18, colour=ERR,
                      anchor="start"))
    # the three factors at one HVC -> RA synapse
    body.append(rect(12, 378, 696, 132, fill="#ffffff"))
    body.append(text(24, 402, "Three factors at one HVC → RA synapse W_{ij}:", size=15,
                     weight="bold", anchor="start"))
    body.append(lines(36, 428, [
        "pre: HVC neuron j fires, x_{j}",
        "post: RA neuron i is pushed off its usual drive by LMAN, ξ_{i}",
        "third: dopamine says whether the song came out better than usual, R − R̄",
    ], size=14, gap=22, anchor="start"))
    body.append(text(360, 498, "ΔW_{ij} = η (R − R̄) ξ_{i} x_{j} / σ^{2}: "
                     "keep the variation that was followed by reward", size=14))
    desc = ("The song system of a bird drawn as three rows. Top, the anterior forebrain "
            "pathway: Area X (basal ganglia) projects to DLM (thalamus), which projects to "
            "LMAN, drawn in orange because it varies the song. Middle, the motor pathway: "
            "HVC, the timing signal and presynaptic activity x_j, drives RA (motor), the "
            "postsynaptic neurons, through the learning synapses W_ij; RA drives the syrinx "
            "and so the song. HVC also sends a copy to Area X. An orange arrow from LMAN into "
            "RA is the perturbation xi_i added to RA's input. Bottom: the bird hears its song "
            "and matches it to the tutor's; this evaluation drives VTA dopamine, the reward "
            "prediction error R minus R bar, drawn in green. Dashed green arrows carry "
            "dopamine to Area X (in the songbird) and to the HVC to RA synapses (in the "
            "model of Fiete, Fee and Seung 2007). A box below names the three factors at one "
            "HVC to RA synapse: pre, HVC neuron j fires; post, RA neuron i pushed off its "
            "usual drive by LMAN; third, dopamine says whether the song came out better than "
            "usual. The update is Delta W_ij = eta (R - R bar) xi_i x_j / sigma squared: keep "
            "the variation that was followed by reward.")
    return svg("11_songbird_node_perturbation.svg", 526, "The songbird's learning loop as "
               "node perturbation: HVC, RA, LMAN and dopamine", desc, body)


def lif_and_eprop():
    """13: the LIF unit with its surrogate spike, and e-prop's trace and learning signal."""
    body = [text(360, 30, "A spiking unit, and how e-prop credits its synapses", size=18,
                 weight="bold")]
    # --- top: one LIF unit j
    body.append(rect(12, 46, 696, 250, fill="#ffffff"))
    body.append(text(24, 72, "LIF unit j, one step of dt", size=16, weight="bold",
                     anchor="start"))
    body.append(lines(70, 112, ["inputs x_{t}", "W_{in}"], size=14, gap=20, colour=GREY))
    body.append(arrow(110, 118, 196, 140, colour=GREY))
    body.append(lines(70, 190, ["spikes z_{t−1}", "W_{rec}"], size=14, gap=20))
    body.append(arrow(110, 190, 196, 160))
    body.append(rect(196, 118, 236, 64, fill=LIGHT))
    body.append(lines(314, 144, ["membrane: v_{t} = λ v_{t−1}", "+ (1 − λ) I_{t} − θ z_{t−1}"],
                      size=14, gap=22))
    body.append(arrow(432, 150, 478, 150))
    body.append(rect(478, 118, 110, 64, fill=ACCENT_FILL, stroke=ACCENT))
    body.append(lines(533, 144, ["spike z_{t} =", "H(v_{t} − θ)"], size=14, gap=22))
    body.append(arrow(588, 150, 628, 150))
    for k in range(4):  # a short spike train leaving the unit
        x = 640 + 14 * k
        body.append(f'<line x1="{x}" y1="{136 if k % 2 == 0 else 142}" x2="{x}" y2="160" '
                    f'stroke="{INK}" stroke-width="2"/>')
    body.append(arrow(533, 182, 314, 182, colour=GREY, dash=True, bend=-26, head="arrow"))
    body.append(text(430, 224, "reset: subtract θ after a spike", size=14, colour=GREY))
    body.append(text(360, 256, "forward: the step H, exactly 0 or 1;  backward: "
                     "ψ(v − θ) = 1 / (1 + β |v − θ|)^{2}", size=14, colour=TEXT_SHADE[ACCENT]))
    body.append(text(360, 280, "readout y_{t} = κ y_{t−1} + W_{out} z_{t};   "
                     "λ = exp(−dt/τ_{m}),  κ = exp(−dt/τ_{out})", size=14))
    # --- bottom: e-prop at one synapse i -> j
    body.append(rect(12, 308, 696, 262, fill="#ffffff"))
    body.append(text(24, 334, "e-prop at the synapse i → j: local trace × broadcast signal",
                     size=16, weight="bold", anchor="start"))
    body.append(rect(28, 352, 200, 64, fill=LIGHT))
    body.append(lines(128, 378, ["pre: trace ε_{i}", "low-pass of z_{i} or x_{i}"], size=14,
                      gap=22))
    body.append(rect(28, 430, 200, 52, fill=ACCENT_FILL, stroke=ACCENT))
    body.append(lines(128, 452, ["post: ψ_{j} at v_{j}"], size=14))
    body.append(arrow(228, 384, 282, 410))
    body.append(arrow(228, 456, 282, 430))
    body.append(rect(282, 390, 170, 60, fill=LIGHT))
    body.append(lines(367, 414, ["eligibility", "e_{ji} = ψ_{j} ε_{i}, filtered"], size=14,
                      gap=22))
    body.append(arrow(452, 420, 500, 420))
    body.append(rect(500, 390, 196, 60, fill=LIGHT))
    body.append(lines(598, 414, ["ΔW_{ji} = −η Σ_{t} L_{j} ē_{ji}", "at the end of the trial"],
                      size=14, gap=22))
    body.append(rect(500, 470, 196, 52, fill=ERR_FILL, stroke=ERR))
    body.append(lines(598, 492, ["L_{j} = Σ_{k} B_{jk} (y_{k} − y*_{k})"], size=14,
                      colour=ERR))
    body.append(arrow(598, 470, 598, 450, colour=ERR, dash=True))
    body.append(text(598, 542, "error sent through fixed random B", size=13, colour=ERR))
    body.append(text(250, 512, "dropped: z_{j} → W_{rec} → later v_{k}", size=14,
                     colour=GREY))
    body.append(text(250, 536, "(BPTT's recurrent path, non-local)", size=14, colour=GREY))
    desc = ("Two panels. Top: one leaky integrate-and-fire unit j in one time step. Inputs x_t "
            "through W_in and the previous step's spikes z_t-1 through W_rec give a current "
            "I_t into the membrane box, v_t = lambda v_t-1 + (1 - lambda) I_t - theta z_t-1. "
            "The membrane feeds an orange spike box, z_t = H(v_t - theta), which sends out a "
            "spike train; a dashed grey arrow back to the membrane is the reset, subtract "
            "theta after a spike. The forward pass uses the step H, exactly 0 or 1; the "
            "backward pass uses the surrogate psi(v - theta) = 1 / (1 + beta |v - theta|) "
            "squared. The readout is y_t = kappa y_t-1 + W_out z_t, with lambda = exp(-dt / "
            "tau_m) and kappa = exp(-dt / tau_out). Bottom: e-prop at the synapse from i to "
            "j. A presynaptic trace epsilon_i, a low-pass filter of z_i or x_i, and the "
            "postsynaptic pseudo-derivative psi_j combine into the eligibility trace e_ji = "
            "psi_j epsilon_i, filtered; the weight change is minus eta times the sum over "
            "time of L_j times the filtered trace, at the end of the trial. The learning "
            "signal L_j = sum over k of B_jk (y_k - y*_k), drawn green and dashed, is the "
            "output error sent through a fixed random matrix B. Grey text notes what is "
            "dropped: the path from z_j through W_rec to later voltages of other units, "
            "BPTT's non-local recurrent path.")
    return svg("13_lif_and_eprop.svg", 584, "A leaky integrate-and-fire unit and e-prop's "
               "eligibility trace and learning signal", desc, body)


def value_and_error_nodes():
    """12: predictive coding's value and error nodes, and EqProp's free and nudged phases."""
    body = [text(360, 30, "Errors as activity: two ways to hold them", size=18, weight="bold")]
    # --- left: a predictive coding network, value nodes (white) and error nodes (green)
    body.append(rect(12, 46, 392, 392, fill="#ffffff"))
    body.append(text(24, 70, "Predictive coding (Whittington & Bogacz)", size=15,
                     weight="bold", anchor="start"))
    value_x, error_x, radius = 96, 262, 26
    rows = {0: 372, 1: 262, 2: 142}  # layer -> height: input at the bottom, output on top
    body.append(rect(value_x - 40, rows[0] - 24, 80, 48, fill=LIGHT))
    body.append(lines(value_x, rows[0] - 4, ["x_{0} = image", "(clamped)"], size=13, gap=17))
    for layer in (1, 2):
        y = rows[layer]
        body.append(circle(value_x, y, radius, fill="#ffffff"))
        body.append(text(value_x, y + 5, f"x_{{{layer}}}", size=16))
        body.append(circle(error_x, y, radius, fill=ERR_FILL, stroke=ERR))
        body.append(text(error_x, y + 5, f"ε_{{{layer}}}", size=16, colour=ERR))
        # the value excites its own error node, one to one
        body.append(arrow(value_x + radius, y - 8, error_x - radius, y - 8, colour=EXC))
        # the error pulls its value toward the prediction (-eps_l in dx_l/dt)
        body.append(arrow(error_x - radius, y + 10, value_x + radius, y + 10, colour=INH,
                          head="bar"))
        # the prediction from the layer below inhibits the error node: eps = x - W f(x_below)
        below = (value_x + 30, rows[layer - 1] - 22)
        body.append(arrow(*below, error_x - 14, y + radius - 4, colour=INH, head="bar",
                          bend=-18))
        # the error above drives the value below through W^T (the top-down term)
        if layer == 2:
            body.append(arrow(error_x - 6, y + radius, value_x + 18, rows[1] - radius + 2,
                              colour=ERR, dash=True, bend=30))
    body.append(text(24, 98, "output x_{2}: clamped to the label y", size=13,
                     anchor="start"))
    body.append(lines(error_x + 36, 196, ["top-down:", "f′(x_{1}) ⊙ W_{1}^{T} ε_{2}"],
                      size=13, gap=18, colour=ERR, anchor="start"))
    body.append(lines(error_x + 36, 316, ["prediction:", "− W_{0} f(x_{0})"], size=13,
                      gap=18, colour=INH, anchor="start"))
    body.append(text(24, 424, "ε_{l} = x_{l} − W_{l−1} f(x_{l−1}),   "
                     "ΔW_{l} ∝ ε_{l+1} f(x_{l})^{T}", size=13, anchor="start"))
    # --- right: equilibrium propagation, the same network relaxed twice
    body.append(rect(412, 46, 296, 392, fill="#ffffff"))
    body.append(text(424, 70, "Equilibrium propagation", size=15, weight="bold",
                     anchor="start"))
    columns = {"free phase": 488, "nudged phase": 632}
    boxes = {0: 372, 1: 262, 2: 152}
    for title, x in columns.items():
        body.append(text(x, 96, title, size=14, weight="bold"))
        for layer, y in boxes.items():
            fill = LIGHT if layer == 0 else ("#ffffff" if title == "free phase" else ACCENT_FILL)
            body.append(rect(x - 50, y - 20, 100, 40, fill=fill,
                             stroke=INK if layer == 0 or title == "free phase" else ACCENT))
            label = "s_{0} = x" if layer == 0 else (f"s_{{{layer}}}^{{0}}" if title == "free phase"
                                                   else f"s_{{{layer}}}^{{β}}")
            body.append(text(x, y + 5, label, size=15))
        for lower, upper in ((0, 1), (1, 2)):  # one set of synapses, used both ways
            body.append(arrow(x - 14, boxes[lower] - 20, x - 14, boxes[upper] + 20))
            body.append(arrow(x + 14, boxes[upper] + 20, x + 14, boxes[lower] - 20))
        body.append(text(x + 22, (boxes[0] + boxes[1]) / 2 + 5, "W_{0}", size=13,
                         anchor="start"))
        body.append(text(x + 22, (boxes[1] + boxes[2]) / 2 + 5, "W_{1}", size=13,
                         anchor="start"))
    body.append(arrow(632, 108, 632, boxes[2] - 20, colour=ERR, width=3))
    body.append(text(578, 124, "β (y − s_{2})", size=13, colour=ERR, anchor="end"))
    body.append(arrow(538, boxes[1], 582, boxes[1], colour=GREY, dash=True))
    body.append(lines(560, 318, ["then"], size=13, colour=GREY))
    body.append(text(424, 424, "ΔW ∝ (ρ(s^{β}) ρ(s^{β})^{T} − ρ(s^{0}) ρ(s^{0})^{T}) / β",
                     size=13, anchor="start"))
    desc = ("Two panels. Left, a predictive coding network drawn from the input at the "
            "bottom to the output at the top. The input x0, the image, is clamped. Layers 1 "
            "and 2 each have a value node x_l (white circle) and an error node epsilon_l "
            "(green circle). Each value node excites its own error node, one to one, and its "
            "error node inhibits it back, pulling the value toward its prediction. The "
            "prediction W_(l-1) f(x_(l-1)) from the layer below inhibits the error node, so "
            "epsilon_l = x_l - W_(l-1) f(x_(l-1)). A dashed green arrow carries the error "
            "epsilon_2 down to the value x_1 through W_1 transposed, scaled by f prime: the "
            "top-down term of inference. The output value is clamped to the label y. The "
            "weight update is Delta W_l proportional to epsilon_(l+1) f(x_l) transposed, "
            "post-synaptic error times pre-synaptic rate. Right, equilibrium propagation: "
            "the same three-layer network relaxed twice. In the free phase only the input "
            "is clamped and the states settle to s^0; each pair of layers is joined by one "
            "set of synapses W used in both directions. In the nudged phase, started from "
            "the free one, a green arrow pushes the output toward the target with strength "
            "beta, beta (y - s_2), and the states settle to s^beta. The update is the "
            "difference of the two phases' Hebbian terms, rho(s^beta) rho(s^beta) "
            "transposed minus rho(s^0) rho(s^0) transposed, divided by beta.")
    return svg("12_value_error_nodes.svg", 452, "Predictive coding's value and error nodes, "
               "and equilibrium propagation's free and nudged phases", desc, body)


def distribution_shifts():
    """14: the training trial and the five shifts of the out-of-distribution test, read
    from `course_lib.brain_vs_machine` so the diagram cannot drift from the experiment."""
    from course_lib.brain_vs_machine import DT, SHIFTS, TRAIN_COHERENCES, TRAIN_TIMING

    step, x0, top, row = 25, 190, 92, 62  # px per time step, trials' left edge, row pitch
    periods = ("fixation", "stimulus", "delay", "decision")
    body = [text(360, 30, "Train on one distribution, test on five shifts", size=18,
                 weight="bold"),
            text(360, 54, f"one box per period of a trial, as long as the period ({DT} ms "
                 "per step)", size=13, colour=GREY)]
    trained = ", ".join(f"{c:g}" for c in TRAIN_COHERENCES)
    trained_range = f"{min(TRAIN_COHERENCES):g}–{max(TRAIN_COHERENCES):g}"
    notes = {
        "in distribution": ["training trials", f"coherence {trained_range}%"],
        "longer delay": ["longer delay", f"{SHIFTS['longer delay'].timing['delay']} ms"],
        "longer stimulus": ["longer stimulus",
                            f"{SHIFTS['longer stimulus'].timing['stimulus']} ms"],
        "lower coherence": ["lower coherence", ", ".join(
            f"{c:g}" for c in SHIFTS["lower coherence"].coherences) + "%"],
        "input noise": ["input noise", f"SD {SHIFTS['input noise'].input_noise:g} added"],
        "silenced units": ["silenced units",
                           f"{SHIFTS['silenced units'].silenced:.0%} lesioned"],
    }
    for k, (name, shift) in enumerate(SHIFTS.items()):
        y = top + k * row
        timing = {**TRAIN_TIMING, **shift.timing}
        changed = set(shift.timing)
        if shift.coherences != SHIFTS["in distribution"].coherences or shift.input_noise:
            changed.add("stimulus")  # the stimulus itself differs
        body.append(lines(20, y + 14, notes[name], size=13, anchor="start",
                          colour=INK if k else GREY))
        x = x0
        for period in periods:
            width = timing[period] / DT * step
            hot = period in changed
            body.append(rect(x, y, width, 30, rx=4, fill=ACCENT_FILL if hot else "#ffffff",
                             stroke=ACCENT if hot else INK, width=2.5 if hot else 1.5))
            if k == 0:
                body.append(text(x + width / 2, y - 8, period, size=13, colour=GREY))
            x += width
        if shift.silenced:
            for j in range(10):  # ten units, the silenced fraction crossed out
                cx, cy = x + 40 + j * 17, y + 15
                body.append(circle(cx, cy, 6, fill=LIGHT if j >= shift.silenced * 10
                                   else "#ffffff", stroke=INK if j >= shift.silenced * 10
                                   else ACCENT))
                if j < shift.silenced * 10:
                    body.append(arrow(cx - 6, cy - 6, cx + 6, cy + 6, colour=ACCENT,
                                      head="none", width=2))
    bottom = top + len(SHIFTS) * row
    body.append(lines(360, bottom + 4, [
        "Every network: the same training batches and budget; every test: the same",
        "held-out trials. Orange: what differs from training.",
    ], size=14, gap=22))
    desc = (f"Six rows of trial timelines drawn to scale, one step of {DT} ms per box "
            f"unit. Training trials: fixation {TRAIN_TIMING['fixation']} ms, stimulus "
            f"{TRAIN_TIMING['stimulus']} ms, delay {TRAIN_TIMING['delay']} ms, decision "
            f"{TRAIN_TIMING['decision']} ms, coherences {trained}%. Below, the five shifts, "
            "with what differs in orange: a longer delay, a longer stimulus, lower "
            "coherences, noise added to the stimulus inputs, and a trial like the training "
            "ones with a fraction of the network's units lesioned (crossed-out circles). "
            "Footer: every network gets the same training batches and budget, every test "
            "the same held-out trials.")
    return svg("14_distribution_shifts.svg", bottom + 60, "The out-of-distribution test: "
               "training trials and five shifts", desc, body)


DIAGRAMS = (levers, masked_matrix, dale_columns, cell_type_wiring, penalties, spatial_wiring,
            feedback_paths, dendritic_neuron, rflo_vs_bptt, gated_cells, enu_unit,
            analysis_pipeline, songbird_loop, lif_and_eprop,
            value_and_error_nodes, distribution_shifts)


def render_all() -> dict[str, str]:
    """Every diagram's file name and SVG text."""
    return dict(draw() for draw in DIAGRAMS)


def main() -> None:
    for name, document in render_all().items():
        (HERE / name).write_text(document, encoding="utf-8")
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
