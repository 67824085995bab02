"""Chapter 13, spiking networks: the page's source (what it includes, glues and cites
exists) and, on the built book, the numbers it states (the LIF rate formula, BPTT against
e-prop, the spike penalty's trade-off, Dale's law and sparsity against their control)
agree with theory and with their own spreads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT
from test_book import _image_alts, _seed_relation, _visible_text
from test_reader_aids import cited_keys, code_cells, shown_objects

CHAPTER = ROOT / "book" / "13_spiking_networks.md"
SOURCE = CHAPTER.read_text(encoding="utf-8")
PAGE = "13_spiking_networks"
SOLUTION = ROOT / "solutions" / "13_spiking_networks" / "13_spiking_networks.ipynb"
#: What the assignment asks students to write (issue 18 §4): the LIF step, the surrogate
#: spike function, the eligibility trace and the e-prop update.
STUDENT_FUNCTIONS = {"lif_step", "SpikeFunction", "surrogate_derivative",
                     "presynaptic_trace_step", "eligibility_trace", "filtered_trace_step",
                     "learning_signal", "eprop_gradient"}


# --------------------------------------------------------------------- the source


def test_the_page_shows_cites_and_links_what_it_promises():
    """The library code, papers, explorer and exercise this chapter is about (the
    checks every chapter passes are in test_reader_aids)."""
    assert {"SpikingRNN.simulate", "eprop_trial"} <= shown_objects(SOURCE)
    assert {"zenke2018superspike", "bellec2020solution", "kaiser2020synaptic",
            "neftci2019surrogate"} <= cited_keys(SOURCE)
    assert "static_explorer(" in SOURCE and "widgets.interactive(" in SOURCE
    assert "{doc}`../exercises/13_spiking_networks/13_spiking_networks`" in SOURCE
    assert "## Recap" in SOURCE


def test_every_comparison_over_seeds_goes_through_clearly_differ():
    """A difference is stated only where the seeds' spreads do not overlap: every hidden
    cell that words a comparison asks `clearly_differ` first."""
    for cell in code_cells(SOURCE):
        if "ends clearly" in cell or "clearly {change}" in cell or "instead of" in cell:
            assert "clearly_differ(" in cell, cell[:200]


def test_at_least_three_seeds():
    match = re.search(r"^SEEDS = range\((\d+)\)", SOURCE, re.M)
    assert match and int(match.group(1)) >= 3


# --------------------------------------------------------------- the built page

PCT = r"(\d+)% ± (\d+)%"
COUNT = r"(\d+) ± (\d+)"


def _text(html: Path) -> str:
    return _visible_text(html, "13_spiking_networks")


def _stated(text, name_a, name_b, what):
    match = re.search(rf"{re.escape(name_a)} ends clearly (above|below) {re.escape(name_b)} "
                      rf"in {what}", text)
    if match:
        return match.group(1)
    if re.search(rf"{re.escape(name_a)} and {re.escape(name_b)} end within each other's "
                 rf"spread over seeds in {what}", text):
        return "within"
    return None


@pytest.mark.slow
def test_the_lif_unit_fires_at_the_formulas_rate(html):
    text = _text(html)
    match = re.search(r"largest difference from the formula: ([\d.]+) Hz \(the highest rate "
                      r"is (\d+) Hz; dt = ([\d.]+) ms\)", text)
    assert match
    worst, top, dt = map(float, match.groups())
    # tau_ref = 2 ms, tau_m = 20 ms, I up to 4: 1 / (2 + 20 ln(4/3)) ms = 129 Hz
    assert top == pytest.approx(129, abs=1)
    # each interval is rounded up to the grid: at most one step of dt per interval,
    # r - 1/(1/r + dt) <= r^2 dt
    assert 0 <= worst <= (top / 1000) ** 2 * dt * 1000 + 0.5


@pytest.mark.slow
def test_bptt_and_eprop_are_compared_with_their_spreads(html):
    text = _text(html)
    printed = {}
    for rule in ("BPTT", "e-prop"):
        match = re.search(rf"{re.escape(rule)}: held-out accuracy {PCT}, {COUNT} spikes per "
                          r"trial, (\d+) Hz per unit \(mean ± SD over (\d+) seeds\)", text)
        assert match, f"{rule}'s accuracy must be printed as mean ± SD over seeds"
        assert int(match.group(6)) >= 3
        printed[rule] = tuple(float(g) for g in match.groups()[:4])
        assert printed[rule][0] > 55, f"{rule} must learn the task (chance is 50%)"
    for what, index, slack in (("accuracy", 0, 1.0), ("spikes per trial", 2, 1.0)):
        stated = _stated(text, "e-prop", "BPTT", what)
        assert stated is not None, f"the page must compare e-prop with BPTT in {what}"
        expected = _seed_relation(*printed["e-prop"][index:index + 2],
                             *printed["BPTT"][index:index + 2], slack)
        assert expected is None or stated == expected, (what, stated, printed)
    # the identity: without the random feedback e-prop's gradient at the start is BPTT's
    # up to the recurrent path, so the cosine is close to 1, and the random B far below
    sym = re.search(r"with B = W_out\^T, recurrent weights: cosine to BPTT's gradient "
                    r"([\d.-]+) ± ([\d.]+)", text)
    rnd = re.search(r"with random B, recurrent weights: cosine to BPTT's gradient "
                    r"([\d.-]+) ± ([\d.]+)", text)
    assert sym and rnd
    assert float(sym.group(1)) > 0.9 and float(rnd.group(1)) < float(sym.group(1))


@pytest.mark.slow
def test_the_spike_penalty_trades_accuracy_for_energy(html):
    text = _text(html)
    rows = re.findall(rf"penalty ([\d.e-]+)\s*: accuracy {PCT}, {COUNT} spikes per trial",
                      text)
    assert len(rows) >= 4, "the penalty strengths are printed"
    strengths = [float(row[0]) for row in rows]
    spikes = [float(row[3]) for row in rows]
    assert strengths == sorted(strengths) and strengths[0] == 0
    assert spikes[-1] < 0.5 * spikes[0], "the strongest penalty must cut the spikes"
    alts = _image_alts(html, PAGE)
    assert any(alt.startswith("Held-out accuracy against spikes per trial") and
               len(re.findall(r"penalty \d", alt)) == len(rows) for alt in alts)


@pytest.mark.slow
def test_dale_and_sparsity_hold_and_are_compared_with_their_control(html):
    text = _text(html)
    match = re.search(rf"Dale \+ sparse: held-out accuracy {PCT}, {COUNT} spikes per trial; "
                      r"after training, (\d+) excitatory and (\d+) inhibitory weights have "
                      r"the wrong sign, (\d+) masked ones are not 0", text)
    assert match
    assert match.groups()[4:] == ("0", "0", "0")
    control = re.search(rf"BPTT: held-out accuracy {PCT}", text)
    stated = _stated(text, "the constrained network", "its control", "accuracy")
    assert stated is not None
    expected = _seed_relation(float(match.group(1)), float(match.group(2)),
                         float(control.group(1)), float(control.group(2)), 1.0)
    assert expected is None or stated == expected
    assert sum("±" in alt for alt in _image_alts(html, PAGE)) >= 3  # rules, trade-off, Dale
