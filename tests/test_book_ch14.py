"""Chapter 14, brain versus machine: the page's source (what it includes, glues, pastes from
other chapters and cites exists) and, on the built book, the differences it states agree
with the numbers it prints, and the summary table carries the other chapters' own words."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from conftest import ROOT
from test_book import _visible_text
from test_reader_aids import cited_keys, code_cells, glued_names, shown_objects

CHAPTER = ROOT / "book" / "14_brain_vs_machine.md"
SOURCE = CHAPTER.read_text(encoding="utf-8")
SHORT = ("delay", "stimulus", "coherence", "noise", "silenced")
NETWORKS = ("unconstrained", "sparse", "Dale (E/I)", "L1 on weights", "L2 on rates",
            "spatial (seRNN)", "subLSTM")


# --------------------------------------------------------------------- the source


def test_the_page_shows_cites_and_links_what_it_promises():
    """The library code, papers, explorer and exercise this chapter is about (the
    checks every chapter passes are in test_reader_aids)."""
    assert {"silence"} <= shown_objects(SOURCE)
    assert {"mnih2015human", "lake2017building", "geirhos2018generalisation",
            "zador2019critique"} <= cited_keys(SOURCE)
    assert "static_explorer(" in SOURCE and "widgets.interactive(" in SOURCE
    assert "## Recap" in SOURCE


def _pasted_from_other_pages(source: str) -> list[tuple[str, str, str]]:
    """(document, key, format) of every ``{glue:text}`doc.md::key:fmt``` in ``source``."""
    return re.findall(r"\{glue:text\}`([\w.]+\.md)::(\w+)(?::(\w*))?`", source)


def test_every_pasted_result_is_glued_by_the_chapter_it_names():
    """The summary table pastes other chapters' results (MyST-NB's ``doc::key``): each
    named page exists and glues that key itself, so the table cannot drift from it."""
    pasted = _pasted_from_other_pages(SOURCE)
    assert len(pasted) >= 10
    chapters = {doc for doc, _, _ in pasted}
    assert len(chapters) >= 8, "most chapters of the book are summarised"
    for doc, key, _ in pasted:
        page = CHAPTER.parent / doc
        assert page.is_file(), doc
        literal, patterns = glued_names(page.read_text(encoding="utf-8"))
        assert key in literal or any(p.match(key) for p in patterns), \
            f"{doc} does not glue {key!r}"


def test_every_paste_from_another_page_names_its_format():
    """MyST-NB 1.4's glue:text splits a trailing ``:format`` off first: without one,
    ``doc.md::key`` would be read as key ``doc.md:`` with format ``key`` and fail."""
    references = re.findall(r"\{glue:text\}`([^`]*::[^`]*)`", SOURCE)
    assert references
    for reference in references:
        assert re.fullmatch(r"[\w.]+\.md::\w+:s", reference), reference


def test_every_doc_link_names_a_chapter_that_exists():
    for doc in set(re.findall(r"\{doc\}`([\w/.]+)`", SOURCE)):
        assert (CHAPTER.parent / f"{doc}.md").is_file(), doc


def test_the_table_of_differences_names_the_rows_no_chapter_addresses():
    table = re.search(r"\| \| deep network.*?\n\n", SOURCE, re.S).group(0)
    rows = [row for row in table.splitlines()[2:] if row.startswith("|")]
    assert len(rows) >= 12
    unaddressed = [row for row in rows if row.rstrip(" |").endswith("none")]
    assert len(unaddressed) >= 3


def test_every_comparison_over_seeds_goes_through_the_spread_rule():
    """Differences are worded only from `compared_with_control` (clearly_differ)."""
    for cell in code_cells(SOURCE):
        if re.search(r"clearly \{side\}|clearly smaller|clearly larger", cell):
            assert "compared_with_control(" in cell or "verdicts[" in cell, cell[:200]


# --------------------------------------------------------------- the built page

PAGE = "14_brain_vs_machine"
PCT = r"(-?\d+)% ± (\d+)%"
POINTS = r"(-?\d+) ± (\d+) points"


def _text(html: Path) -> str:
    return _visible_text(html, PAGE)


def _printed_drops(text: str) -> dict[str, dict[str, tuple[float, float]]]:
    """network -> short shift name -> (mean, SD) of the drop, from the printed table."""
    drops = {}
    for network in NETWORKS:
        pattern = rf"{re.escape(network)}, in distribution: {PCT} drop: " + r" \| ".join(
            rf"{name} {PCT}" for name in SHORT)
        match = re.search(pattern, text)
        if match:
            values = [float(v) for v in match.groups()[2:]]
            drops[network] = {name: (values[2 * i], values[2 * i + 1])
                              for i, name in enumerate(SHORT)}
    return drops


@pytest.mark.slow
def test_the_printed_table_has_every_network_and_shift(html):
    drops = _printed_drops(_text(html))
    assert set(drops) == set(NETWORKS)


@pytest.mark.slow
def test_stated_differences_agree_with_the_printed_intervals(html):
    """Every network a shift's sentence names as clearly smaller or larger has printed
    intervals that do not overlap the control's, and every unnamed one overlaps (within
    rounding: the printed numbers are rounded to whole points)."""
    text = _text(html)
    drops = _printed_drops(text)
    sentences = {
        "delay": "Longer delay", "stimulus": "Longer stimulus", "coherence": "Lower coherence",
        "noise": "Input noise", "silenced": "Silenced units"}
    for short, start in sentences.items():
        sentence = re.search(rf"{start}: the unconstrained network loses .*?"
                             r"(?:spread of the control|spread of the control's)\.", text)
        assert sentence, start
        sentence = sentence.group(0)
        control = drops["unconstrained"][short]
        for network, by_shift in drops.items():
            if network == "unconstrained":
                continue
            values = by_shift[short]
            gap, spread = abs(values[0] - control[0]), values[1] + control[1]
            named = re.search(rf"clearly (smaller|larger) drops[^;]*{re.escape(network)} \(",
                              sentence)
            if abs(gap - spread) <= 2:  # too close to call from whole points
                continue
            if gap > spread:
                assert named, (short, network, values, control)
                side = "smaller" if values[0] < control[0] else "larger"
                assert named.group(1) == side, (short, network)
            else:
                assert not named, (short, network, values, control)


@pytest.mark.slow
def test_the_tally_counts_thirty_comparisons(html):
    text = _text(html)
    tally = re.search(r"Of the (\d+) comparisons .*? clearly smaller than the control's in "
                      r"(\d+), clearly larger in (\d+), and within the spread in (\d+)", text)
    assert tally
    total, smaller, larger, within = map(int, tally.groups())
    assert total == 30 == smaller + larger + within


@pytest.mark.slow
def test_the_summary_table_carries_the_other_chapters_own_words(html):
    """Each text pasted into the summary table appears on the page it was pasted from."""
    page = (html / "book" / f"{PAGE}.html").read_text(encoding="utf-8")
    section = page[page.index('id="what-the-constraints-bought-across-the-book"'):]
    table = section[:section.index("</table>")]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]
    assert len(rows) >= 10
    for row in rows:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        link = re.search(r'href="([\w]+)\.html', cells[0])
        assert link, cells[0]
        pasted = [re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", span))).strip()
                  for span in re.findall(r'<span class="pasted-text">(.*?)</span>', cells[2],
                                         re.S)]
        assert pasted and all(pasted), f"nothing pasted from {link.group(1)}"
        source_text = _visible_text(html, link.group(1))
        for words in pasted:
            assert words.replace("\u2019", "'") in source_text, (link.group(1), words)


@pytest.mark.slow
def test_figures_have_alt_text_with_the_numbers(html):
    page = (html / "book" / f"{PAGE}.html").read_text(encoding="utf-8")
    alts = [unescape(alt) for alt in re.findall(r'<img src="[^"]+" alt="([^"]+)"', page)]
    assert any("Five panels, one per shift" in alt and "±" in alt for alt in alts)
    assert any("in distribution for the seven networks" in alt for alt in alts)


def test_the_diagrams_alt_text_states_the_experiments_own_settings():
    from course_lib.brain_vs_machine import SHIFTS, TRAIN_TIMING

    alt = re.search(r"```\{figure\} figures/14_\S+\n.*?^:alt: (.+?)$", SOURCE,
                    re.S | re.M).group(1)
    for period, ms in TRAIN_TIMING.items():
        assert f"{period} {ms} ms" in alt, period
    assert f"({SHIFTS['longer delay'].timing['delay']} ms)" in alt
    assert f"({SHIFTS['longer stimulus'].timing['stimulus']} ms)" in alt
    assert f"SD {SHIFTS['input noise'].input_noise:g}" in alt
    assert f"{SHIFTS['silenced units'].silenced:.0%}".replace("%", " percent") in alt
