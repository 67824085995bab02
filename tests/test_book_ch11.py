"""Chapter 11, learning from reward: the page's source (what it includes, glues and cites
exists) and, on the built book, the numbers it states (variance laws, the toy bird, Miconi's
rule against RFLO, BPTT and the readout-only control) agree with theory and with their own
spreads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT
from test_book import _image_alts, _seed_relation, _visible_text
from test_reader_aids import cited_keys, code_cells, shown_objects

CHAPTER = ROOT / "book" / "11_learning_from_reward.md"
SOURCE = CHAPTER.read_text(encoding="utf-8")
PAGE = "11_learning_from_reward"


# --------------------------------------------------------------------- the source


def test_the_page_shows_cites_and_links_what_it_promises():
    """The library code, papers, explorer and exercise this chapter is about (the
    checks every chapter passes are in test_reader_aids)."""
    assert {"node_perturbation_samples", "three_factor_update", "miconi_trial",
            "miconi_update"} <= shown_objects(SOURCE)
    assert {"miconi2017biologically", "williams1992simple", "werfel2005learning",
            "fiete2006gradient", "fiete2007model", "fee2011hypothesis",
            "fremaux2016neuromodulated"} <= cited_keys(SOURCE)
    assert "static_explorer(" in SOURCE and "widgets.interactive(" in SOURCE
    assert "{doc}`../exercises/11_learning_from_reward/11_learning_from_reward`" in SOURCE
    assert "## Recap" in SOURCE


def test_every_comparison_over_seeds_goes_through_clearly_differ():
    """A difference is stated only where the seeds' spreads do not overlap: every hidden
    cell that words a comparison asks `clearly_differ` first."""
    for cell in code_cells(SOURCE):
        if "ends clearly" in cell:
            assert "clearly_differ(" in cell, cell[:200]


# --------------------------------------------------------------- the built page

PCT = r"(\d+)% ± (\d+)%"
NUM = r"([\d.]+) ± ([\d.]+)"


def _text(html: Path) -> str:
    return _visible_text(html, "11_learning_from_reward")


def _stated(text, name_a, name_b):
    match = re.search(rf"{re.escape(name_a)} ends clearly (above|below|lower than|higher "
                      rf"than) {re.escape(name_b)}", text)
    if match:
        return {"lower than": "below", "higher than": "above"}.get(match.group(1),
                                                                    match.group(1))
    if re.search(rf"{re.escape(name_a)} and {re.escape(name_b)} end within each other's "
                 r"spread", text):
        return "within"
    return None


@pytest.mark.slow
def test_variance_grows_as_the_number_of_perturbed_weights_or_units(html):
    """Theory (Gaussian perturbation, first order): one estimate's variance is P + 1 times
    |gradient|^2 for weight perturbation (P = N^2 weights) and N + 1 for node perturbation
    (N units, one input pattern)."""
    text = _text(html)
    rows = re.findall(rf"N = (\d+): weight perturbation {NUM} \(theory (\d+)\), node "
                      rf"perturbation {NUM} \(theory (\d+)\)", text)
    assert len(rows) == 2, "the smallest and the largest layer are printed"
    for n, wp, _, wp_theory, node, _, node_theory in rows:
        n = int(n)
        assert int(wp_theory) == n * n + 1 and int(node_theory) == n + 1
        # 5 seeds x 300 estimates: the mean is within ~10% of the theory; 30% allows for
        # the heavy tail of a squared Gaussian product, and still rejects a wrong power
        assert abs(float(wp) - (n * n + 1)) <= 0.3 * (n * n + 1), (n, wp)
        assert abs(float(node) - (n + 1)) <= 0.3 * (n + 1), (n, node)
    slopes = re.search(r"weight perturbation's variance rises with slope ([\d.]+) .*? node "
                       r"perturbation's with slope ([\d.]+)", text)
    assert slopes, "the measured log-log slopes are stated"
    assert abs(float(slopes.group(1)) - 2) < 0.2 and abs(float(slopes.group(2)) - 1) < 0.2
    assert any("theory 4097" in alt and "±" in alt for alt in _image_alts(html, PAGE))


@pytest.mark.slow
def test_the_toy_bird_needs_the_reward_prediction_error(html):
    text = _text(html)
    before = re.search(rf"error before learning: {NUM}", text)
    rpe = re.search(rf"third factor reward prediction error R - R̄: error {NUM}", text)
    raw = re.search(rf"third factor raw reward R: error {NUM}", text)
    assert before and rpe and raw
    rpe, raw = (tuple(map(float, m.groups())) for m in (rpe, raw))
    relation = _seed_relation(*rpe, *raw, slack=0.02)
    if relation == "within":
        assert "the two third factors end within each other's spread" in text
    elif relation is not None:
        side = "lower" if relation == "below" else "higher"
        assert f"the song's error ends clearly {side} than with the raw reward" in text


@pytest.mark.slow
def test_miconi_is_compared_with_rflo_bptt_and_the_readout_only_control(html):
    text = _text(html)
    printed = {}
    for rule in ("Miconi", "Miconi readout only", "RFLO", "BPTT"):
        match = re.search(rf"{rule}: held-out accuracy {PCT} after (\d+) trials "
                          r"\(mean ± SD over (\d+) seeds\)", text)
        assert match, f"{rule}'s accuracy must be printed as mean ± SD over seeds"
        assert int(match.group(4)) >= 3
        printed[rule] = (float(match.group(1)), float(match.group(2)))
    start = text.index("After ", text.index("Miconi readout only: held-out accuracy"))
    prose = text[start:text.index("Think!", start)]
    for name, rule in (("the readout-only control", "Miconi readout only"), ("RFLO", "RFLO"),
                       ("BPTT", "BPTT")):
        stated = _stated(prose, "Miconi's rule", name)
        assert stated is not None, f"the page must compare Miconi's rule with {name}"
        expected = _seed_relation(*printed["Miconi"], *printed[rule], slack=1.0)
        assert expected is None or stated == expected, (name, stated, printed)
    # the cost in trials: every rule's count of seeds that reached the criterion
    assert len(re.findall(r"\d of \d seeds reached and kept 70%", text)) == 4
    alts = _image_alts(html, PAGE)
    assert sum("±" in alt for alt in alts) >= 3  # variance, song, rules
    assert sum("Cosine to the gradient" in alt for alt in alts) == 4  # the explorer
