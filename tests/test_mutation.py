"""Mutation testing of the checkers (issue 13 §4, course_lib/grading/mutation.py).

Every mutant of a reference solution must be killed by the notebook's test cells, or be
listed as equivalent, with its reason, in tests/mutation/<slug>.txt. The course-wide run
takes about a minute on 2 cores; the tool itself is tested here on a tiny notebook (the
tests that run mutmut are marked slow too: each takes a few seconds).
"""

from __future__ import annotations

import time

import nbformat
import pytest
from conftest import REPORT
from nbformat.v4 import new_code_cell, new_notebook

from course_lib.grading import mutation

SLUGS = mutation.all_slugs()


def test_every_assignment_has_an_equivalents_file():
    assert SLUGS, f"no source notebooks in {mutation.SOLUTIONS}"
    files = {path.stem for path in mutation.EQUIVALENTS.glob("*.txt")}
    assert files == set(SLUGS), "one tests/mutation/<slug>.txt per assignment, no other"
    for slug in SLUGS:
        mutation.read_equivalents(mutation.EQUIVALENTS / f"{slug}.txt")  # each has a reason


@pytest.fixture(scope="module")
def analyses(request):
    """The selected assignments, analysed once, in parallel; kill rates go to the report."""
    selected = {item.nodeid for item in request.session.items}
    slugs = [s for s in SLUGS if any(f"[{s}]" in nodeid for nodeid in selected)]
    start = time.perf_counter()
    results = {a.slug: a for a in mutation.analyse_many(slugs)}
    seconds = time.perf_counter() - start
    for slug in slugs:
        REPORT.append(results[slug].summary())
    REPORT.append(f"mutation: {len(slugs)} assignments in {seconds:.0f} s (wall clock)")
    return results


@pytest.mark.slow
@pytest.mark.parametrize("slug", SLUGS)
def test_every_non_equivalent_mutant_is_killed(slug, analyses):
    analysis = analyses[slug]
    assert not analysis.error, analysis.error
    assert analysis.status, f"{slug}: mutmut made no mutants"
    assert analysis.ok, f"{analysis.summary()}\n{analysis.problems()}"


# ---------------------------------------------------------------- the tool itself

STUB = '''\
def clip_negative(x, verbose=False):
    """x, or 0 where x is negative."""
    ### BEGIN SOLUTION
    if x < 0:
        return 0
    return x
    ### END SOLUTION
'''

# Only one negative and one positive number are tried: `x < 1` (a wrong answer, 0.5 -> 0)
# survives, `x <= 0` (the same function) survives, `return 1` is killed.
WEAK_TEST = """\
assert clip_negative(-2) == 0
### BEGIN HIDDEN TESTS
assert clip_negative(3) == 3
### END HIDDEN TESTS
"""


def tiny_notebook(path, solution=STUB, test=WEAK_TEST):
    def cell(source, grade_id, **nbgrader):
        meta = {"grade_id": grade_id, "schema_version": 3, "locked": True}
        meta.update(grade=False, solution=False, task=False)
        meta.update(nbgrader)
        return new_code_cell(source, metadata={"nbgrader": meta})

    nb = new_notebook(
        cells=[
            cell("import math", "imports"),
            cell(solution, "clip_negative", solution=True, locked=False),
            cell(test, "test_clip_negative", grade=True, points=1),
        ]
    )
    nbformat.write(nb, path)
    return path


def diff_of(analysis, changed_line):
    """The survivors whose diff adds ``changed_line``."""
    return [n for n, d in analysis.diffs.items() if f"+    {changed_line}\n" in d + "\n"]


@pytest.mark.slow
def test_the_tool_kills_wrong_mutants_and_reports_unlisted_survivors(tmp_path):
    notebook = tiny_notebook(tmp_path / "tiny.ipynb")
    equivalents = tmp_path / "tiny.txt"
    equivalents.write_text("# header\n\nanswers.x_clip_negative__mutmut_99  # no such mutant\n")

    analysis = mutation.analyse_notebook(notebook, equivalents)

    assert analysis.killed, "returning 1 instead of 0 must fail the test cell"
    wrong = diff_of(analysis, "if x < 1:")
    same = diff_of(analysis, "if x <= 0:")
    assert len(wrong) == 1 and len(same) == 1, analysis.diffs
    assert set(analysis.unlisted) == {wrong[0], same[0]}
    assert analysis.stale == ["answers.x_clip_negative__mutmut_99"]
    assert not analysis.ok
    # the stub the student got (the def line, its default) is never mutated
    assert not any("verbose=True" in d for d in analysis.diffs.values()), analysis.diffs

    # listing the equivalent one leaves exactly the wrong answer to report
    equivalents.write_text(f"{same[0]}  # x = 0 gives 0 either way\n")
    analysis = mutation.analyse_notebook(notebook, equivalents)
    assert analysis.unlisted == wrong and not analysis.stale
    summary = analysis.summary()
    assert summary.startswith(f"mutation tiny: killed {len(analysis.killed)} of ")
    assert "(1 equivalent, kill rate of non-equivalent" in summary


@pytest.mark.slow
def test_a_test_cell_that_writes_to_stderr_fails_as_in_nbgrader(tmp_path):
    noisy = "import sys\nsys.stderr.write('careful')\n" + WEAK_TEST
    notebook = tiny_notebook(tmp_path / "noisy.ipynb", test=noisy)
    fails = "(?s)solution itself fails.*stderr: careful"
    with pytest.raises(mutation.MutationRunError, match=fails):
        mutation.analyse_notebook(notebook, tmp_path / "none.txt")


@pytest.mark.slow
def test_an_endless_mutant_counts_as_killed(tmp_path):
    countdown = '''\
def clip_negative(x, verbose=False):
    """x, or 0 where x is negative (counting down to it)."""
    ### BEGIN SOLUTION
    while x < 0:
        x += 1
    return x
    ### END SOLUTION
'''
    notebook = tiny_notebook(tmp_path / "loop.ipynb", solution=countdown)
    analysis = mutation.analyse_notebook(notebook, tmp_path / "none.txt")
    endless = [n for n, s in analysis.status.items() if s in ("timeout", "segfault")]
    assert endless, analysis.status  # `x = 1` for `x += 1` never ends
    assert set(endless) <= set(analysis.killed)


def test_only_lines_outside_the_solution_get_the_pragma():
    protected = mutation.protect_stub(
        'def f(a,\n      b=2):\n    """doc\n    more"""\n'
        "    ### BEGIN SOLUTION\n    return a + b  # sum\n    ### END SOLUTION\n"
    ).splitlines()
    pragma = mutation.NO_MUTATE
    assert protected[0].endswith(pragma) and protected[1].endswith(pragma)
    assert protected[2] == '    """doc', "never inside a multi-line string"
    assert protected[3].endswith(pragma)
    assert protected[5] == "    return a + b  # sum"
    assert pragma not in protected[4] + protected[6], "comment lines stay as they are"


def test_an_equivalent_without_a_reason_is_refused(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("answers.x_f__mutmut_1\n")
    with pytest.raises(ValueError, match="reason"):
        mutation.read_equivalents(path)


def test_a_test_cell_runs_after_the_earlier_cells_whose_names_it_uses(tmp_path):
    def graded(source, grade_id):
        return new_code_cell(source, metadata={"nbgrader": {"grade": True, "grade_id": grade_id}})

    nb = new_notebook(
        cells=[
            graded("signs = make_signs(3)", "first"),
            graded("### BEGIN HIDDEN TESTS\nunrelated = 1\n### END HIDDEN TESTS", "second"),
            graded("matrix = diag(signs)", "third"),
            graded("assert matrix.sum() == 3\nassert make_signs(1)", "fourth"),
        ]
    )
    cells = mutation.graded_cells(nb, module_names={"make_signs", "diag"})
    assert {k: v["needs"] for k, v in cells.items()} == {
        "first": [],
        "second": [],
        "third": ["first"],
        "fourth": ["first", "third"],
    }
    assert cells["second"]["source"] == "unrelated = 1", "hidden-test markers are removed"


def test_a_solution_outside_any_function_is_refused():
    mutation.check_mutable(STUB)
    with pytest.raises(ValueError, match="outside a function"):
        mutation.check_mutable("### BEGIN SOLUTION\nLIMIT = 3\n### END SOLUTION\n")
    decorated = "@functools.cache\n" + STUB
    with pytest.raises(ValueError, match="decorated"):
        mutation.check_mutable(decorated)


@pytest.mark.slow
def test_the_command_prints_every_mutant_and_fails_on_a_survivor(tmp_path, monkeypatch, capsys):
    (tmp_path / "solutions" / "tiny").mkdir(parents=True)
    tiny_notebook(tmp_path / "solutions" / "tiny" / "tiny.ipynb")
    monkeypatch.setattr(mutation, "SOLUTIONS", tmp_path / "solutions")
    monkeypatch.setattr(mutation, "EQUIVALENTS", tmp_path)

    assert mutation.main(["tiny"]) == 1
    printed = capsys.readouterr().out
    assert "answers.x_clip_negative__mutmut_1: " in printed, "every mutant with its status"
    assert ": killed" in printed and ": survived" in printed
    assert "+    if x < 1:" in printed, "the diff of each survivor"
    assert "not listed as equivalent" in printed
    assert "mutation tiny: killed " in printed
