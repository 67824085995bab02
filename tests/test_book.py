"""The book builds from a clean copy with warnings as errors, every executed cell succeeds,
and every chapter shows real figures."""

from __future__ import annotations

import re
from html import unescape

import pytest
from conftest import toc_pages

pytestmark = pytest.mark.slow


def test_cached_rebuild_takes_a_small_fraction_of_the_cold_build(book_build):
    """Rebuilding with no change reuses the execution cache and Sphinx's environment."""
    if book_build.cold_seconds is None:
        pytest.skip("COURSE_BOOK_HTML is set: this run used an existing build, timed nothing")
    cold, cached = book_build.cold_seconds, book_build.cached_seconds
    assert cached < 0.25 * cold, f"cached rebuild {cached:.0f} s vs cold build {cold:.0f} s"


def test_every_toc_page_is_built(html):
    for page in toc_pages():
        assert (html / f"{page}.html").is_file(), page


@pytest.mark.parametrize("chapter", [f for f in toc_pages() if re.match(r"book/\d\d_", f)])
def test_chapters_executed_without_errors_and_show_figures(html, chapter):
    page = (html / f"{chapter}.html").read_text()
    assert "Traceback" not in page and "output traceback" not in page
    files = re.findall(r'<img[^>]+src="([^"]+\.png)"', page)
    files += re.findall(r'<source[^>]+srcset="([^"]+\.png)"', page)  # phone versions
    assert len(files) >= 2, f"{chapter} should show computed figures"
    for src in files:
        assert (html / chapter).parent.joinpath(src).resolve().is_file(), src
    # inline PNGs (figure_with_alt, explorers) are served as files (book/_ext/book_fixes.py):
    # a phone downloads only the pictures it shows
    assert "data:image/png" not in page


def test_intro_states_a_baseline_accuracy_well_above_chance(html):
    page = (html / "book" / "00_introduction.html").read_text()
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", page)))
    match = re.search(r"chooses correctly on\s+(\d+)%", text)
    assert match, "the introduction must state the baseline accuracy"
    assert int(match.group(1)) >= 70
    # the task as the laboratory runs it: the fixation cue's offset is the go cue
    assert "offset is the go cue" in text and "neurogym#279" in text
    ceiling = re.search(r"and (\d+)% for an observer that adds up the whole stimulus", text)
    assert ceiling and 70 < int(ceiling.group(1)) < 100, "the ceiling of the task is stated"
    # computed alt texts: the trial's go cues and answers, the learning curve's loss
    alts = [unescape(a) for a in re.findall(r'<img src="[^"]+" alt="([^"]+)"',
                                            page)]
    trial = [a for a in alts if "where it drops to 0 (the go cue)" in a]
    assert trial and re.search(r"'choose [12]' at \d+ ms", trial[0]), alts
    assert any(re.search(r"smoothed loss is \d\.\d\d at the start and \d\.\d\d at the end", a)
               for a in alts)


def test_sparse_chapter_reports_accuracy_for_four_densities(html):
    page = (html / "book" / "01_sparse_connectivity.html").read_text()
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", page)))
    runs = re.findall(r"density ([\d.]+) \( *(\d+) synapses\): decision accuracy "
                      r"(\d+)% ± (\d+)% \(mean ± SD over (\d+) seeds\)", text)
    densities = [float(d) for d, *_ in runs]
    assert len(runs) >= 5 and 0.0 in densities and 1.0 in densities, runs
    assert all(int(n) >= 3 for *_, n in runs), "every density from at least 3 seeds"
    assert dict((float(d), int(s)) for d, s, *_ in runs)[0.0] == 0, "the control has no synapse"
    assert all(50 < int(mean) <= 100 for _, _, mean, _, _ in runs)
    assert "leaked synapses when zeroed once" in text


def test_sparse_chapter_states_only_the_differences_its_seeds_support(html):
    """The comparison with density 0 is one of the sentences chosen from the numbers, and
    the density figure's alt text quotes the same mean ± SD as the printed results."""
    page = (html / "book" / "01_sparse_connectivity.html").read_text()
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", page)))
    verdicts = ["does clearly better than the network without recurrence",
                "does about as well as the recurrent ones",
                "Against the network without recurrence, density"]
    assert sum(v in text for v in verdicts) == 1, "exactly one verdict on the control"
    assert ("no density clearly differs from another" in text) != (
        "Among the recurrent networks, the intervals do not overlap for" in text)
    alts = [unescape(a) for a in re.findall(r'<img src="[^"]+" alt="([^"]+)"',
                                            page)]
    density_alt = [a for a in alts if "density 0 (no recurrence):" in a]
    assert density_alt, alts
    for density, _, mean, sd, _ in re.findall(
            r"density ([\d.]+) \( *(\d+) synapses\): decision accuracy (\d+)% ± (\d+)% "
            r"\(mean ± SD over (\d+) seeds\)", text):
        shown = rf"density {float(density):g}( \(no recurrence\))?: {mean}% ± {sd}%"
        assert re.search(shown, density_alt[0]), (shown, density_alt[0])
    # the explorer's static view: its synapse count is computed, 10% of 100 x 99 allowed
    assert any("990 synapses in all" in a for a in alts)


def test_dale_chapter_compares_seeds_with_the_same_radius_control_and_measures_structure(html):
    page = (html / "book" / "02_dales_law.html").read_text()
    text = unescape(re.sub(r"<[^>]+>", "", page))
    text = re.sub(r"\s+", " ", text)
    # held-out accuracy of both conditions, mean ± SD over at least 3 seeds
    runs = re.findall(r"held-out accuracy (\d+)% ± (\d+)% \(mean ± SD over (\d+) seeds\)", text)
    assert len(runs) == 2, runs
    assert all(int(n) >= 3 for _, _, n in runs)
    assert all(50 < int(mean) <= 100 for mean, _, _ in runs), "both should learn the task"
    assert "unconstrained, same radius" in text
    # the sentence about the final accuracies agrees with the numbers it follows
    claim = re.search(r"answers correctly on (\d+)% ± (\d+)% of held-out trials, the control "
                      r"on (\d+)% ± (\d+)% \(mean ± SD over \d+ seeds\)\. (The two intervals "
                      r"overlap|The E/I network's held-out accuracy is clearly)", text)
    assert claim, "the final accuracies must be followed by the comparison sentence"
    ei_mean, ei_sd, control_mean, control_sd = (int(g) for g in claim.groups()[:4])
    apart = abs(ei_mean - control_mean) > ei_sd + control_sd + 1  # +1: rounding to whole %
    together = abs(ei_mean - control_mean) < ei_sd + control_sd - 1
    assert not (apart and claim.group(5).startswith("The two intervals overlap"))
    assert not (together and claim.group(5).endswith("clearly"))
    # the structure of the trained network is measured and stated, with its numbers
    verdict = re.search(r"The trained network (has|does not have) the structure of the "
                        r"hand-built circuit: its excitation", text)
    assert verdict, "the chapter must say whether the trained network has the structure"
    assert len(re.findall(r"\d\.\d{3} ± \d\.\d{3} between units with the same preference",
                          text)) >= 4
    assert "wrong sign, all" in text
    assert "hand-built spiking model" in text  # Wang 2002 was not a trained network
    # alt texts are computed: the accuracy figure's alt quotes the same mean ± SD
    alts = re.findall(r'<img src="[^"]+" alt="([^"]+)"', page)
    assert any(f"{runs[1][0]}% ± {runs[1][1]}%" in unescape(alt) for alt in alts), alts


def test_cell_types_chapter_tests_in_closed_loop_over_seeds_with_lesions(html):
    page = (html / "book" / "03_cell_types.html").read_text()
    text = unescape(re.sub(r"<[^>]+>", "", page))
    text = re.sub(r"\s+", " ", text)
    pct = r"(\d+)% ± (\d+)%"
    switch = re.search(rf"right on only {pct} of trials \(mean ± SD over (\d+) seeds\)", text)
    assert switch, "the switch-trial accuracy over seeds must be stated"
    assert int(switch.group(3)) >= 3 and int(switch.group(1)) < 40
    recovery = re.search(rf"in closed loop, accuracy is {pct} on the next trial", text)
    assert recovery and int(recovery.group(1)) >= 60, "closed-loop recovery after a switch"
    assert re.search(r"the outcome of the network['’]s own choice", text)  # the feedback
    # every lesion with its numbers, and an answer to Liu & Wang's question
    lesion = rf"{pct} before any switch, {pct} on trials 1-3 after a switch"
    for what in ("The intact networks score", "Silencing the PV cells gives",
                 "silencing the SST cells", "silencing the VIP cells",
                 "Cutting it altogether gives", r"times the intact network['’]s\), it gives"):
        assert re.search(rf"{what} {lesion}", text), what
    assert re.search(r"claim\? (In this sense, yes|Partly|Not specifically|No):", text)
    alts = re.findall(r'<img src="[^"]+" alt="([^"]+)"', page)
    assert any("dendritic inhibition −20%" in unescape(alt) for alt in alts)


def test_exercise_pages_are_the_unexecuted_student_version(html):
    for page in [f for f in toc_pages() if f.startswith("exercises/")]:
        page_html = (html / f"{page}.html").read_text()
        # Code is syntax-highlighted token by token: compare the text a reader sees.
        text = unescape(re.sub(r"<[^>]+>", "", page_html))
        assert "raise NotImplementedError" in text
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
        assert "check_" in text  # the test cells that call the checkers are shown ...
        assert 'class="cell_output' not in page_html  # ... but nothing was executed


def _plain_text_of(html, page: str) -> str:
    """The text a reader sees on a chapter page (tags removed, entities decoded; Sphinx may
    turn straight quotes into curly ones, so the regexes accept both)."""
    return unescape(re.sub(r"<[^>]+>", "", (html / "book" / f"{page}.html").read_text()))


def _phrase_fits_numbers(mean: int, sd: int, control_mean: int, control_sd: int,
                         phrase: str) -> bool:
    """A glued comparison phrase matches the mean ± SD printed next to it (each of the four
    numbers is rounded, hence a slack of 2)."""
    if "within" in phrase:
        return abs(mean - control_mean) <= sd + control_sd + 2
    if "below" in phrase or "lower" in phrase or "shorter" in phrase:
        return mean + sd <= control_mean - control_sd + 2
    return mean - sd >= control_mean + control_sd - 2


def test_costs_chapter_compares_each_penalty_with_the_beta_zero_control_over_seeds(html):
    text = _plain_text_of(html, "04_brain_like_costs")
    control = re.search(r"decides correctly on\s+(\d+)% ± (\d+)% of held-out trials \(mean ± SD"
                        r"\s+over\s+(\d+)\s+seeds\),\s+and\s+(\d+)% ± \d+% of its recurrent", text)
    assert control, "ch04 must state the control's (beta = 0) accuracy over seeds"
    acc0, sd0, seeds, sparse0 = (int(g) for g in control.groups())
    assert seeds >= 3 and acc0 >= 70 and sparse0 < 20
    l1 = re.search(r"(\d+)% ± \d+% of them are, and the accuracy is\s+(\d+)% ± (\d+)%,\s+"
                   r"(within the seed-to-seed spread of the control|clearly \w+ the control)", text)
    assert l1, "ch04 must compare the L1 network's accuracy with the control's"
    assert int(l1.group(1)) >= 70, "beta_1 = 1e-3 should make most recurrent weights absent"
    assert _phrase_fits_numbers(int(l1.group(2)), int(l1.group(3)), acc0, sd0, l1.group(4))
    for phrase in re.findall(r"gives\s+(\d+)% ± (\d+)%,\s+((?:within|clearly)[\w\s-]+?the control)",
                             text):
        assert _phrase_fits_numbers(int(phrase[0]), int(phrase[1]), acc0, sd0, phrase[2]), phrase
    pruning = re.search(r"pruning removes\s+(\d+)% ± (\d+)% of the synapses.+?and\s+(\d+)% ± (\d+)%"
                        r" of those of the L1-trained ones", text, re.S)
    assert pruning, "ch04 must report how far each network can be pruned, over seeds"
    assert int(pruning.group(3)) > int(pruning.group(1))
    page = (html / "book" / "04_brain_like_costs.html").read_text()
    alts = re.findall(r'<img src="[^"]+" alt="([^"]+)"', page)
    assert sum("±" in unescape(alt) and "seed" in unescape(alt) for alt in alts) >= 2


def test_spatial_chapter_matches_the_l1_control_to_the_spatial_sparsity(html):
    text = _plain_text_of(html, "05_spatial_embedding")
    match = re.search(r"have\s+(\d+)% ± \d+% \(distance\) and\s+(\d+)% ± \d+% \(seRNN\) of their"
                      r"\s+synapses\s+absent, the L1 control\s+(\d+)% ± \d+% and the unpenalised"
                      r" network\s+(\d+)% ± \d+%", text)
    assert match, "ch05 must show the achieved sparsities side by side"
    dist, se, l1, none = (int(g) for g in match.groups())
    assert abs(l1 - (dist + se) / 2) <= 10, "the L1 control must be as sparse as the spatial nets"
    assert none < l1
    seeds = re.search(r"with\s+(\d+)\s+seeds per\s+network", text)
    assert seeds and int(seeds.group(1)) >= 3
    local = re.search(r"receive\s+(\d+)% ± (\d+)% of the\s+total synaptic weight under the distance"
                      r" cost and\s+(\d+)% ± (\d+)% under seRNN,\s+against\s+(\d+)% ± (\d+)% for"
                      r" the L1 control: the distance networks['’] share is\s+([\w\s-]+?)\s+the"
                      r" control['’]s, and the seRNN networks['’]\s+([\w\s-]+?)\s+it\.", text)
    assert local, "ch05 must compare the local share of the weight with the L1 control's"
    d_m, d_s, s_m, s_s, c_m, c_s, d_phrase, s_phrase = local.groups()
    assert _phrase_fits_numbers(int(d_m), int(d_s), int(c_m), int(c_s), d_phrase)
    assert _phrase_fits_numbers(int(s_m), int(s_s), int(c_m), int(c_s), s_phrase)
    page = (html / "book" / "05_spatial_embedding.html").read_text()
    alts = [unescape(a) for a in
            re.findall(r'<img src="[^"]+" alt="([^"]+)"', page)]
    assert any("Wiring length" in alt and "±" in alt for alt in alts)
    assert any("absent" in alt and "±" in alt for alt in alts)


def _visible_text(html, page: str) -> str:
    """A chapter's text as a reader sees it: no tags, entities decoded, spaces collapsed,
    Sphinx's curly quotes made straight again."""
    text = unescape(re.sub(r"<[^>]+>", "", (html / "book" / f"{page}.html").read_text()))
    text = text.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", text)


def _image_alts(html, page: str) -> list[str]:
    """The alt texts of a chapter's images (figures and explorer pictures), decoded."""
    text = (html / "book" / f"{page}.html").read_text()
    return [unescape(alt) for alt in re.findall(r'<img src="[^"]+" alt="([^"]+)"', text)]


def _seed_relation(a, sd_a, b, sd_b, slack):
    """course_lib.seeds.clearly_differ's rule on printed (rounded) mean ± SD: "within",
    "above" or "below"; None when too close to the edge to judge from rounded numbers."""
    gap, spread = abs(a - b), sd_a + sd_b
    if abs(gap - spread) <= slack:
        return None
    if gap <= spread:
        return "within"
    return "above" if a > b else "below"


def _phrase_matches_intervals(phrase, a, sd_a, b, sd_b, *, slack=0.0):
    """The comparison a page states ("a is clearly above b", ...) agrees with the
    mean ± SD it prints, within rounding."""
    relation = _seed_relation(a, sd_a, b, sd_b, slack)
    words = {"within": "not clearly different from", "above": "clearly above",
             "below": "clearly below"}
    return relation is None or phrase == words[relation]


def test_feedback_alignment_chapter_compares_rules_and_controls_over_seeds(html):
    text = _visible_text(html, "06_feedback_alignment")
    pct = r"([\d.]+)% ± ([\d.]+)%"
    cmp = r"(clearly above|clearly below|not clearly different from)"
    rules = re.search(rf"over 5 seeds, backprop classifies {pct} of the held-out digits "
                      rf"correctly, FA {pct} and DFA {pct}", text)
    assert rules, "the chapter must state BP, FA and DFA as mean ± SD over 5 seeds"
    bp, fa, dfa = (tuple(map(float, rules.groups()[i:i + 2])) for i in (0, 2, 4))
    said = re.search(rf"FA is {cmp} backprop, and DFA is {cmp} it", text)
    assert said
    assert _phrase_matches_intervals(said.group(1), *fa, *bp, slack=0.2)
    assert _phrase_matches_intervals(said.group(2), *dfa, *bp, slack=0.2)
    frozen = re.search(rf"the readout alone reaches {pct}: FA is {cmp} that", text)
    assert frozen, "the frozen-hidden-layer control must be reported"
    readout = tuple(map(float, frozen.groups()[:2]))
    assert _phrase_matches_intervals(frozen.group(3), *fa, *readout, slack=0.2)
    shuffled = re.search(rf"the network reaches {pct}, {cmp} the frozen network and {cmp} FA",
                         text)
    assert shuffled, "the shuffled-feedback control must be reported"
    shuffle = tuple(map(float, shuffled.groups()[:2]))
    assert _phrase_matches_intervals(shuffled.group(3), *shuffle, *readout, slack=0.2)
    assert _phrase_matches_intervals(shuffled.group(4), *shuffle, *fa, slack=0.2)
    # the figures' alt texts quote computed numbers (mean ± SD), not typed ones
    alts = re.findall(r'<img src="[^"]+" alt="([^"]+)"',
                      (html / "book" / "06_feedback_alignment.html").read_text())
    assert sum("±" in unescape(alt) for alt in alts) >= 2


def test_dendritic_chapter_compares_the_microcircuit_with_a_frozen_hidden_layer(html):
    text = _visible_text(html, "07_dendritic_error")
    num = r"([\d.]+) ± ([\d.]+)"
    cmp = r"(clearly above|clearly below|not clearly different from)"
    trained = re.search(rf"Over 5 seeds the test error falls from {num} to {num} in 1500 steps",
                        text)
    assert trained, "the microcircuit's test error must be stated as mean ± SD over 5 seeds"
    start, full = (tuple(map(float, trained.groups()[i:i + 2])) for i in (0, 2))
    assert full[0] < start[0]
    control = re.search(rf"With the hidden layer frozen it reaches {num}: the full "
                        rf"microcircuit's error is {cmp} the control's", text)
    assert control, "the frozen-hidden-layer control must be reported"
    frozen = tuple(map(float, control.groups()[:2]))
    assert _phrase_matches_intervals(control.group(3), *full, *frozen, slack=0.002)
    # issue 14 §4: a mean angle of tens of degrees is not "nearly exact", and
    # g_som = 0.8 against g_D = 1 is not weak nudging
    angle = re.search(r"The update of the output layer is (\d+)° ± (\d+)° from backprop's", text)
    assert angle and "it is not backprop's update" in text
    assert "nearly exact" not in text
    assert "almost as strongly as by its own dendrite" in text
    assert not re.search(r"weak(ly)? nudg", text)
    alts = re.findall(r'<img src="[^"]+" alt="([^"]+)"',
                      (html / "book" / "07_dendritic_error.html").read_text())
    assert any("hidden layer frozen" in unescape(alt) and "±" in unescape(alt) for alt in alts)
    assert len(alts) >= 4  # every figure that quotes numbers has a computed alt text


def _stated_relation(text, name_a, name_b):
    """How the page states a against b: 'below', 'above' or 'within' (their spreads)."""
    match = re.search(rf"{re.escape(name_a)} ends clearly (below|above|higher than|lower than) "
                      rf"(?:the )?{re.escape(name_b)}", text)
    if match:
        return {"higher than": "above", "lower than": "below"}.get(match.group(1), match.group(1))
    if re.search(rf"{re.escape(name_a)} and (?:the )?{re.escape(name_b)} end within each "
                 r"other's spread", text):
        return "within"
    return None


def _relation_of(a, sd_a, b, sd_b):
    """course_lib.seeds.clearly_differ's rule on printed numbers (None: too close to call)."""
    gap, spread = abs(a - b), sd_a + sd_b
    if abs(gap - spread) <= 0.002 * max(1.0, abs(a) + abs(b)):
        return None
    if gap <= spread:
        return "within"
    return "below" if a < b else "above"


def test_rflo_chapter_compares_rflo_bptt_and_readout_only_over_seeds(html):
    text = _visible_text(html, "08_rflo")
    num = r"([\d.]+) ± ([\d.]+)"
    printed = {}
    for rule in ("RFLO", "BPTT", "readout only"):
        match = re.search(rf"{rule}: test loss {num} of the do-nothing loss "
                          r"\(mean ± SD over (\d+) seeds\)", text)
        assert match, f"the test loss of {rule} must be printed as mean ± SD over seeds"
        assert int(match.group(3)) >= 3
        printed[rule] = (float(match.group(1)), float(match.group(2)))
    # the sweep: every rule at three delays, the same budget
    rows = re.findall(rf"delay\s+(\d+) steps \(\s*[\d.]+ tau\): RFLO {num}, BPTT {num}, "
                      rf"readout only {num}", text)
    assert [int(r[0]) for r in rows] == [5, 20, 50]
    # the prose states a difference only where the printed spreads do not overlap
    start = text.index("training trials the test loss is")
    main = text[start:text.index("Inside the eligibility", start)]
    for name_b, key in (("BPTT", "BPTT"), ("readout-only control", "readout only")):
        stated = _stated_relation(main, "RFLO", name_b)
        expected = _relation_of(*printed["RFLO"], *printed[key])
        assert stated is not None, f"the page must compare RFLO with {name_b}"
        assert expected is None or stated == expected, (name_b, stated, printed)
    alts = re.findall(r'<img src="[^"]+" alt="([^"]+)"',
                      (html / "book" / "08_rflo.html").read_text())
    assert sum("±" in unescape(alt) for alt in alts) >= 2
    # the two trace figures, and the explorer's pictures of the untrained network's traces
    assert sum("of their peak" in unescape(alt) for alt in alts) >= 2


def test_gated_chapter_compares_cells_at_the_same_number_of_parameters(html):
    text = _visible_text(html, "09_gated_circuits")
    rows = {kind: int(count) for kind, _, count in re.findall(
        r"(lstm|sublstm|light_gru|ei_light_gru|enu_light_gru)\s+(\d+)\s+(\d+) \([+-][\d.]+%\)",
        text)}
    assert set(rows) == {"lstm", "sublstm", "light_gru", "ei_light_gru", "enu_light_gru"}
    assert all(abs(count / rows["lstm"] - 1) < 0.03 for count in rows.values()), rows
    accuracy = {}
    for name in ("LSTM", "subLSTM", "light-GRU"):
        match = re.search(rf"{name} \((\d+) units\): held-out decision accuracy (\d+)% ± (\d+)% "
                          r"\(mean ± SD over (\d+) seeds\)", text)
        assert match, f"the {name}'s held-out accuracy must be printed over seeds"
        assert int(match.group(4)) >= 3
        accuracy[name] = (float(match.group(2)), float(match.group(3)))
    results = text[text.index("free parameters (the light-GRU with"):text.index("What does this")]
    stated = _stated_relation(results, "subLSTM", "LSTM")
    expected = _relation_of(*accuracy["subLSTM"], *accuracy["LSTM"])
    assert stated is not None and (expected is None or stated == expected), (stated, accuracy)
    # issue 14 §4 stays true: the L2 penalty is a mean, and the ENU differs from eq. 16
    assert r"\frac{\beta}{TB}" in (html / "book" / "09_gated_circuits.html").read_text()
    assert "its eq. 16" in text
    alts = re.findall(r'<img src="[^"]+" alt="([^"]+)"',
                      (html / "book" / "09_gated_circuits.html").read_text())
    assert sum("±" in unescape(alt) for alt in alts) >= 1
    assert len(alts) >= 4  # every figure that quotes a number computes its alt text


def test_analysing_networks_reports_seeds_study_variant_and_lesions(html):
    page = (html / "book" / "10_analysing_networks.html").read_text()
    text = unescape(re.sub(r"<[^>]+>", "", page))
    # task 1: five conditions (study and course variants), task 2: three networks, each
    # with the fraction of its five seeds that learn and mean ± SD of held-out accuracy
    learned = re.findall(r"(\d) of (\d) seeds learn, (\d+)% ± (\d+)%", text)
    assert len(learned) >= 8, learned
    assert all(int(k) <= int(n) and int(n) >= 5 for k, n, _, _ in learned)
    for label in ("light-GRU, no L2", "light-GRU, L2", "ENU-light-GRU, no L2", "EI-light-GRU, L2"):
        assert f"{label}: " in text, label
    # every comparison is stated from the seeds' spread, never as a bare claim
    assert re.search(r"with L2 (is clearly (higher|lower) than|and without L2 do not clearly "
                     r"differ)", text)
    # the lesion experiment, with its random control, per network
    lesions = re.findall(r"accuracy after the selective lesion (?:is clearly (?:higher|lower) "
                         r"than|and after a random one do not clearly differ) ", text)
    assert len(lesions) >= 9, lesions  # three networks, three lesion sizes
    assert re.search(r"after a random one: \d+% ± \d+%", text)
    # the context-dependent task has its context input, and figures have computed alt texts
    assert "use_expl_context=True" in text
    inline = re.findall(r'<img src="[^"]+" alt="([^"]+)"', page)
    assert len(inline) >= 8
    assert any("seeds learn" in alt for alt in inline)
