"""`course report`: the class report (issue 20, part 1).

The fast tests build a class whose outcomes are known by construction: each student's
autograded notebook is the committed release with the outputs that grading would leave in
its test cells (a checker's failure ending in ``[mistake: <id>]``, an exception of the
student's code, a line on stderr, or nothing when the test passed). The grades are
recorded by the grader's own recording step (nbgrader's SaveAutoGrades, through
`record.record_graded`), so the gradebook is the one autograding writes. The expected
counts, difficulties and discriminations below are worked out by hand from the table of
scores in `SCORES`, not by the report's code.

The slow test grades real submissions of the grading corpus with `course autograde` and
checks the mistake ids the report reads back from the graded notebooks.
"""

from __future__ import annotations

import csv
import logging
import math
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, copy_course

from course_lib.grading import cli
from course_lib.grading.course import Course, venv_scripts_first
from course_lib.grading.report import (
    correlation,
    failure_of_error,
    first_failure,
    report,
)

ASSIGNMENT = "01_sparse_connectivity"
NOTEBOOK = ASSIGNMENT
RELEASE = ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
A, B, C, D = ("test_random_sparse_mask", "test_mask_module", "test_sparse_linear",
              "test_rate_rnn_step")
W = "written_answer"  # the manually graded written answer, 2 points
BIN = Path(sys.executable).parent
# nbgrader 0.9.6's own SQLAlchemy warnings when a submission is first recorded (the
# command line hides exactly these too)
pytestmark = pytest.mark.filterwarnings("ignore:.*not in session, add operation along")

# What each graded student's test cells show: a checker failure (mistake id, message),
# an exception of the student's code ("NameError", message), stderr output ("stderr",
# text), or nothing (the test passed).
NOT_IMPLEMENTED = ("common.not_implemented", "random_sparse_mask(6, 8, 0.5) is not "
                   "implemented yet (it raised NotImplementedError): replace the `raise "
                   "NotImplementedError()` with your code.")
MASK_NOT_APPLIED = ("sparse_connectivity.step_mask_not_applied",
                    "rate_rnn_step(...): the mask is not applied to w_rec.")
FORWARD_IDENTITY = ("sparse_connectivity.forward_identity",
                    "Mask(mask)(weight) returned the weight unchanged: multiply it "
                    "elementwise by the mask.")
SEED_IGNORED = ("sparse_connectivity.seed_ignored",
                "seeds 3 and 4 gave the same mask: the seed must decide which entries are "
                "connected.")
OUTPUTS = {
    "ann": {},
    "bob": {D: MASK_NOT_APPLIED},
    "cat": {A: SEED_IGNORED, B: FORWARD_IDENTITY, D: MASK_NOT_APPLIED},
    "dan": {B: FORWARD_IDENTITY, C: ("NameError", "name 'sparse_linear' is not defined"),
            D: ("stderr", "UserWarning: something went to stderr\n")},
    "eve": {A: NOT_IMPLEMENTED, B: NOT_IMPLEMENTED, C: NOT_IMPLEMENTED, D: NOT_IMPLEMENTED},
    # passes A to C, but the scan zeroed B (awaits review, flagged); D ran into the
    # per-cell timeout (nbgrader interrupts the kernel)
    "hal": {D: ("KeyboardInterrupt", "")},
}
# The written answer: a manual score, "pending" (answered, not graded yet) or "blank"
# (left as released: nbgrader scores it 0 by itself).
WRITTEN = {"ann": 2.0, "bob": "pending", "cat": "blank", "dan": 1.0, "eve": "blank",
           "hal": "blank"}

# The scores that follow, by hand (None: awaits a manual grade, left out):
#          A    B     C    D    W     total of the known scores
SCORES = {
    "ann": (2, 2, 2, 2, 2),  # 10
    "bob": (2, 2, 2, 0, None),  # 6
    "cat": (0, 0, 2, 0, 0),  # 2
    "dan": (2, 0, 0, 0, 1),  # 3
    "eve": (0, 0, 0, 0, 0),  # 0
    "hal": (2, None, 2, 0, 0),  # 4
}
SCAN_REASON = ("Scored zero by the grader's scan: mask_module uses course_lib (see the "
               "module course_lib.grading.scan). An instructor may give a manual score.")
FAILED_REASON = "the kernel died (a crash, os._exit, or killed by the memory limit)"


def _error_output(kind: str, text: str):
    if kind == "stderr":
        return nbformat.v4.new_output("stream", name="stderr", text=text)
    if "." in kind:  # a checker's failure: CheckFailure, with the id at the end
        return nbformat.v4.new_output("error", ename="CheckFailure",
                                      evalue=f"{text} [mistake: {kind}]",
                                      traceback=["\x1b[0;31mCheckFailure\x1b[0m: ..."])
    return nbformat.v4.new_output("error", ename=kind, evalue=text, traceback=[])


def _autograded(student: str):
    """The release as grading leaves it for ``student``: outputs in the test cells, the
    written answer answered or not."""
    nb = nbformat.read(RELEASE, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in OUTPUTS[student]:
            cell.outputs = [_error_output(*OUTPUTS[student][grade_id])]
        if grade_id == W and WRITTEN[student] != "blank":
            cell.source = "Masking in the forward pass keeps the masked gradients at zero."
    return nb


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """A course whose gradebook holds the class above, plus a submission that could not
    be graded (fay) and one not graded yet (gus)."""
    from course_lib.grading.record import (
        ensure_recorded,
        gradebook,
        record_failed,
        record_graded,
        split_preprocessors,
        zero_flagged,
    )

    venv_scripts_first()  # nbgrader runs alembic, as the command line arranges
    root = tmp_path_factory.mktemp("report") / "course"
    root.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, root / "solutions" / ASSIGNMENT)
    course = Course.load(root)
    log = logging.getLogger("test.report")
    ensure_recorded(course, ASSIGNMENT, log)
    _, recorders = split_preprocessors(course.config)
    for student in OUTPUTS:
        folder = course.folder("autograded", student, ASSIGNMENT)
        folder.mkdir(parents=True)
        nbformat.write(_autograded(student), folder / f"{NOTEBOOK}.ipynb")
        record_graded(course, ASSIGNMENT, student, recorders, log)
    with gradebook(course) as gb:
        for student, score in WRITTEN.items():
            if isinstance(score, float):  # what the formgrader records
                grade = gb.find_grade(W, NOTEBOOK, ASSIGNMENT, student)
                grade.manual_score = score
                grade.needs_manual_grade = False
        gb.db.commit()
    zero_flagged(course, ASSIGNMENT, "hal", NOTEBOOK, {B: "uses course_lib"},
                 {"mask_module": SCAN_REASON})
    record_failed(course, ASSIGNMENT, "fay")
    log_file = course.folder("autograded", "fay", ASSIGNMENT).with_name(f"{ASSIGNMENT}.log")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(f"not graded: {FAILED_REASON}\n[worker] the grading log...\n")
    waiting = course.folder("submitted", "gus", ASSIGNMENT)
    waiting.mkdir(parents=True)
    shutil.copy(RELEASE, waiting)
    page, csvs, results, stats = report(course, ASSIGNMENT)
    return {"course": course, "page": page, "csvs": {p.name: p for p in csvs},
            "stats": {s.question.name: s for s in stats}, "results": results}


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------ reading the outputs


def test_a_checker_failure_gives_its_mistake_id_and_message():
    failure = failure_of_error("CheckFailure", "mask rows summed [mistake: dales_law.rows]")
    assert (failure.mistake, failure.message) == ("dales_law.rows", "mask rows summed")


def test_an_error_without_an_id_gets_a_generic_one():
    assert failure_of_error("NameError", "name 'f' is not defined").mistake == "error.NameError"
    # a plain assert of a visible test, and the per-cell timeout's interrupt
    assert failure_of_error("AssertionError", "").mistake == "error.AssertionError"
    assert failure_of_error("KeyboardInterrupt", "").mistake == "error.KeyboardInterrupt"
    # an id must END the text: one quoted in the middle is not the checker's
    assert failure_of_error("ValueError", "bad [mistake: x.y] here").mistake == "error.ValueError"


def test_the_error_output_wins_over_stderr_and_stderr_alone_fails_a_cell():
    warning = nbformat.v4.new_output("stream", name="stderr", text="a warning\n")
    error = nbformat.v4.new_output("error", ename="CheckFailure",
                                   evalue="\x1b[1mwrong\x1b[0m [mistake: a.b]", traceback=[])
    printed = nbformat.v4.new_output("stream", name="stdout", text="fine\n")
    assert first_failure({"outputs": [warning, error]}).mistake == "a.b"
    assert first_failure({"outputs": [warning, error]}).message == "wrong"  # no ANSI codes
    assert first_failure({"outputs": [printed, warning]}).mistake == "error.stderr"
    assert first_failure({"outputs": [printed]}) is None


def test_correlation_is_undefined_for_a_constant_and_matches_the_textbook():
    assert math.isnan(correlation([2.0, 2.0, 2.0], [1.0, 5.0, 3.0]))
    assert math.isnan(correlation([0.0, 2.0, 2.0], [4.0, 4.0, 4.0]))
    assert math.isnan(correlation([2.0], [3.0]))
    assert correlation([0.0, 1.0, 2.0], [0.0, 2.0, 4.0]) == pytest.approx(1.0)
    assert correlation([0.0, 1.0, 2.0], [1.0, 0.0, 1.0]) == pytest.approx(0.0)


# ------------------------------------------------------------------ the class


def test_the_misconception_table_counts_each_mistake_per_question(graded_class):
    rows = _rows(graded_class["csvs"]["misconceptions.csv"])
    counts = {(r["question"], r["mistake"]): int(r["students"]) for r in rows}
    assert counts == {
        (A, "sparse_connectivity.seed_ignored"): 1,
        (A, "common.not_implemented"): 1,
        (B, "sparse_connectivity.forward_identity"): 2,
        (B, "common.not_implemented"): 1,
        (C, "error.NameError"): 1,
        (C, "common.not_implemented"): 1,
        (D, "sparse_connectivity.step_mask_not_applied"): 2,
        (D, "error.stderr"): 1,
        (D, "error.KeyboardInterrupt"): 1,
        (D, "common.not_implemented"): 1,
    }
    by_key = {(r["question"], r["mistake"]): r for r in rows}
    assert by_key[(B, "sparse_connectivity.forward_identity")]["example_message"] == \
        FORWARD_IDENTITY[1]
    # the share is of the 6 graded students (fay could not be graded, gus is not graded)
    assert float(by_key[(D, "sparse_connectivity.step_mask_not_applied")]["share_of_class"]) \
        == pytest.approx(2 / 6, abs=1e-4)
    # most frequent first within a question
    assert [r["mistake"] for r in rows if r["question"] == D][0] == \
        "sparse_connectivity.step_mask_not_applied"


def test_each_students_mistakes_are_listed(graded_class):
    rows = _rows(graded_class["csvs"]["mistakes_per_student.csv"])
    listed = {(r["student"], r["question"]): r["mistake"] for r in rows}
    expected = {(student, question): (kind if "." in kind else f"error.{kind}")
                for student, cells in OUTPUTS.items() for question, (kind, _) in cells.items()}
    assert listed == expected


def test_difficulty_is_the_mean_score_over_the_maximum(graded_class):
    stats = graded_class["stats"]
    # from SCORES, by hand: A 8/6 of 2, B 4/5 (hal awaits review), C 8/6, D 2/6,
    # W 3/5 (bob's answer awaits a manual grade)
    expected = {A: 8 / 12, B: 4 / 10, C: 8 / 12, D: 2 / 12, W: 3 / 10}
    assert {q: s.difficulty for q, s in stats.items()} == pytest.approx(expected)
    assert {q: len(s.scores) for q, s in stats.items()} == {A: 6, B: 5, C: 6, D: 6, W: 5}
    assert {q: s.pending for q, s in stats.items()} == {A: 0, B: 1, C: 0, D: 0, W: 1}
    assert stats[D].distribution == {0.0: 5, 2.0: 1}
    rows = _rows(graded_class["csvs"]["score_distribution.csv"])
    assert {(r["question"], r["score"]): int(r["students"]) for r in rows if r["question"] == B} \
        == {(B, "0"): 3, (B, "2"): 2}


def test_discrimination_is_the_item_rest_correlation(graded_class):
    stats = graded_class["stats"]
    # (item, rest) per student with a known item score, from SCORES by hand, in the
    # order ann, bob, cat, dan, eve, hal; the rest leaves out scores awaiting a grade
    item_rest = {
        A: ([2, 2, 0, 2, 0, 2], [8, 4, 2, 1, 0, 2]),
        B: ([2, 2, 0, 0, 0], [8, 4, 2, 3, 0]),
        C: ([2, 2, 2, 0, 0, 2], [8, 4, 0, 3, 0, 2]),
        D: ([2, 0, 0, 0, 0, 0], [8, 6, 2, 3, 0, 4]),
        W: ([2, 0, 1, 0, 0], [8, 2, 2, 0, 4]),
    }
    for question, (item, rest) in item_rest.items():
        assert stats[question].discrimination == pytest.approx(
            statistics.correlation(item, rest)), question
    # one worked by hand: A's deviations from its mean 4/3 are +2/3 (ann, bob, dan, hal)
    # and -4/3 (cat, eve): cross sum 2/3 * 15 - 4/3 * 2 = 22/3, sxx 16/3, and the rest
    # (sum 89 of squares, mean 17/6) has syy 89 - 289/6 = 245/6:
    # r = (22/3) / sqrt(16/3 * 245/6) = 0.4969
    assert stats[A].discrimination == pytest.approx(0.4969, abs=1e-4)
    rows = {r["question"]: r for r in _rows(graded_class["csvs"]["questions.csv"])}
    assert float(rows[A]["discrimination"]) == pytest.approx(0.4969, abs=1e-4)


def test_submissions_to_look_at(graded_class):
    rows = _rows(graded_class["csvs"]["problems.csv"])
    found = {(r["student"], r["problem"]) for r in rows}
    assert found == {("fay", "could not be graded"), ("gus", "not graded yet"),
                     ("hal", "flagged")}
    reasons = {student: [r["reason"] for r in rows if r["student"] == student]
               for student, _ in found}
    assert reasons["fay"] == [FAILED_REASON]
    # hal: the scan's reason on the answer cell, and the zeroed test awaiting review
    assert len(reasons["hal"]) == 2
    assert any("mask_module" in r and "uses course_lib" in r for r in reasons["hal"])
    assert any(B in r and "review" in r for r in reasons["hal"])


def test_the_html_report_embeds_its_figures_with_alt_texts(graded_class):
    page = graded_class["page"].read_text()
    assert page.count('<img src="data:image/png;base64,') == 3
    assert page.count('alt="') == 3 and 'alt=""' not in page
    assert "sparse_connectivity.forward_identity" in page
    assert "elementwise by the mask" in page
    assert "0.50" in page  # A's discrimination


def test_the_draft_box_lists_the_most_frequent_mistakes_first(graded_class):
    box = (graded_class["page"].parent / "common_mistakes.md").read_text()
    assert ":::{admonition} Common mistakes" in box and box.rstrip().endswith(":::")
    items = [line for line in box.splitlines() if line.startswith("- ")]
    assert len(items) == 5
    assert items[0].startswith(f"- **{B}** (`sparse_connectivity.forward_identity`, 2 of 6")
    assert items[1].startswith(f"- **{D}** (`sparse_connectivity.step_mask_not_applied`, 2 of 6")
    assert "common.not_implemented" not in box  # unfinished work is no misconception


def test_the_command_prints_a_summary_and_writes_the_files(graded_class, tmp_path, capsys):
    course = graded_class["course"]
    status = cli.main(["--course", str(course.root), "report", ASSIGNMENT,
                       "--to", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert (tmp_path / "out" / "report.html").is_file()
    assert "sparse_connectivity.step_mask_not_applied (2)" in out


def test_the_command_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["report", "--help"])
    assert exit_.value.code == 0
    assert "usage: course report" in capsys.readouterr().out


def test_an_assignment_never_graded_is_one_line(graded_class, capsys):
    course = graded_class["course"]
    shutil.copytree(course.folder("source", ".", ASSIGNMENT),
                    course.folder("source", ".", "02_other"))
    status = cli.main(["--course", str(course.root), "report", "02_other"])
    err = capsys.readouterr().err
    assert status == cli.EXIT_USAGE and "autograde it first" in err and err.count("\n") == 1


# ------------------------------------------------------------------ end to end

# Corpus submissions (tests/grading_corpus.py) and the first failure of each failed test
# cell, as the checker catalogue (tests/test_checks_sparse_connectivity.py) names them.
END_TO_END = {
    "solution": {},
    "untouched": {A: "common.not_implemented", B: "common.not_implemented",
                  C: "common.not_implemented", D: "common.not_implemented"},
    "partly_solved": {C: "common.not_implemented", D: "common.not_implemented"},
    # a constant seed, forward without the mask, no parametrization, step without mask
    "wrong_answers": {A: "sparse_connectivity.seed_ignored",
                      B: "sparse_connectivity.forward_identity",
                      C: "sparse_connectivity.not_parametrized",
                      D: "sparse_connectivity.step_mask_not_applied"},
    # the last answer cell raises before defining rate_rnn_step
    "raises": {D: "error.NameError"},
    "missing": None,  # an empty folder: cannot be graded
}


@pytest.mark.slow
def test_the_report_of_a_really_graded_class(tmp_path, tool_env):
    from grading_corpus import build_corpus

    course = copy_course(tmp_path / "course")
    cases = {c.student: c for c in build_corpus(ROOT)}
    for student in END_TO_END:
        cases[student].write(course)
    graded = subprocess.run([str(BIN / "course"), "autograde", ASSIGNMENT, "--no-progress"],
                            cwd=course, env=tool_env, capture_output=True, text=True,
                            timeout=1200)
    assert graded.returncode == cli.EXIT_FAILED, graded.stdout + graded.stderr  # "missing"
    result = subprocess.run([str(BIN / "course"), "report", ASSIGNMENT], cwd=course,
                            env=tool_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    folder = course / "reports" / ASSIGNMENT
    listed = {(r["student"], r["question"]): r["mistake"]
              for r in _rows(folder / "mistakes_per_student.csv")}
    expected = {(student, question): mistake for student, cells in END_TO_END.items()
                for question, mistake in (cells or {}).items()}
    assert listed == expected
    problems = {r["student"]: r["problem"] for r in _rows(folder / "problems.csv")}
    assert problems == {"missing": "could not be graded"}
    questions = {r["question"]: r for r in _rows(folder / "questions.csv")}
    # 5 graded students; A passed by solution, partly_solved, raises: 3 of 5
    assert float(questions[A]["difficulty"]) == pytest.approx(3 / 5, abs=1e-3)
    assert int(questions[A]["students"]) == 5
    # (item, rest) in the order partly_solved, raises, solution, untouched, wrong_answers
    # (totals 4, 6, 8, 0, 0; the written answers await a manual grade or score 0)
    item_rest = {A: ([2, 2, 2, 0, 0], [2, 4, 6, 0, 0]), C: ([0, 2, 2, 0, 0], [4, 4, 6, 0, 0]),
                 D: ([0, 0, 2, 0, 0], [4, 6, 6, 0, 0])}
    for question, (item, rest) in item_rest.items():
        assert float(questions[question]["discrimination"]) == pytest.approx(
            statistics.correlation(item, rest), abs=1e-4), question
    assert questions[W]["discrimination"] == ""  # everyone known scored 0: undefined

