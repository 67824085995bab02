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
    # figures whose alt text is computed (course_lib.plotting.figure_with_alt) are inline
    inline = re.findall(r'<img src="data:image/png;base64,[^"]+" alt="[^"]+"', page)
    assert len(files) + len(inline) >= 2, f"{chapter} should show computed figures"
    for src in files:
        assert (html / chapter).parent.joinpath(src).resolve().is_file(), src


def test_intro_states_a_baseline_accuracy_well_above_chance(html):
    text = re.sub(r"<[^>]+>", "", (html / "book" / "00_introduction.html").read_text())
    match = re.search(r"chooses correctly on\s+(\d+)%", text)
    assert match, "the introduction must state the baseline accuracy"
    assert int(match.group(1)) >= 70


def test_sparse_chapter_reports_accuracy_for_four_densities(html):
    text = (html / "book" / "01_sparse_connectivity.html").read_text()
    assert len(re.findall(r"density\s+[\d.]+ \(\s*\d+ synapses\): decision accuracy", text)) >= 4
    assert "leaked synapses when zeroed once" in text


def test_exercise_pages_are_the_unexecuted_student_version(html):
    for page in [f for f in toc_pages() if f.startswith("exercises/")]:
        page_html = (html / f"{page}.html").read_text()
        # Code is syntax-highlighted token by token: compare the text a reader sees.
        text = unescape(re.sub(r"<[^>]+>", "", page_html))
        assert "raise NotImplementedError" in text
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
        assert "check_" in text  # the test cells that call the checkers are shown ...
        assert 'class="cell_output' not in page_html  # ... but nothing was executed
