"""The corpus of hostile and broken submissions (tests/grading_corpus.py), graded by
`course autograde` (sandbox on) as one class with the honest students, twice.

What must hold (issue 12, "Proof"): honest scores as expected; every cheat zero on the
parts it attacked, and flagged where the grader's scan should catch it; every broken
submission graded or reported in one line; a regrade identical; no secret (solution lines,
hidden tests, another student's text, the gradebook) in any feedback page, also after
decoding; nothing outside the graded folders changed (course files and the instructor's
HOME hashed before and after); no process left behind; the network unreachable; and the
grades equal to sequential `nbgrader autograde` for submissions both can grade.

The graders run with a throw-away HOME (`grading_corpus.isolated_env`), so an attack
that escapes lands there and is seen, not in the real one.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from conftest import copy_course
from grading_corpus import (
    ASSIGNMENT,
    CORPUS_CONFIG,
    GRADING_OUTPUTS,
    Listener,
    build_corpus,
    differences,
    fingerprint,
    isolated_env,
    leaks,
    own_text,
    secrets,
    survivors,
)

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
WALL_TIME = 45  # seconds per submission: the stalling one needs more, the others far less
MEMORY_MB = 2048  # a kernel with torch maps about 1.4 GiB
WORKERS = 2
SEQUENTIAL = ["solution", "raises", "stderr"]
CASES = build_corpus(Path(__file__).parents[1])


def _course_command(course: Path, env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "course"), *args], cwd=course, env=env, capture_output=True, text=True,
        timeout=1800,
    )


def _autograde(course: Path, env, *args: str) -> subprocess.CompletedProcess:
    return _course_command(
        course, env, "autograde", ASSIGNMENT, "--wall-time", str(WALL_TIME),
        "--memory-limit", str(MEMORY_MB), "--workers", str(WORKERS), "--no-progress", *args,
    )


def _make_course(destination: Path) -> Path:
    course = copy_course(destination)
    config = course / "nbgrader_config.py"
    config.write_text(config.read_text() + CORPUS_CONFIG)
    return course


def _gradebook(course: Path) -> dict:
    """(student, grade cell) -> what the gradebook holds, plus per-notebook state."""
    from nbgrader.api import Gradebook

    rows = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for submission in gb.assignment_submissions(ASSIGNMENT):
            for notebook in submission.notebooks:
                comments = {c.name: c.auto_comment for c in notebook.comments}
                for grade in notebook.grades:
                    rows[(submission.student.id, grade.name)] = {
                        "auto_score": grade.auto_score,
                        "manual_score": grade.manual_score,
                        "needs_manual_grade": grade.needs_manual_grade,
                        "auto_comment": comments.get(grade.name),
                    }
                rows[(submission.student.id, "*notebook")] = {
                    "flagged": notebook.flagged,
                    "comments": sorted(c.auto_comment for c in notebook.comments
                                       if c.auto_comment),
                    "late_penalty": notebook.late_submission_penalty,
                    "timestamp": str(submission.timestamp),
                }
    return rows


def _grading_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any("course-grading-" in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory, root):
    """The whole corpus graded as one class, its feedback, then every submission that
    does not wait for a timeout graded again."""
    base = tmp_path_factory.mktemp("corpus")
    home = base / "home"
    env = isolated_env(home, BIN)
    # the grader's scratch folders apart from other runs' (a short path: the kernel's
    # sockets live there, and a socket's path is limited to 107 bytes)
    scratch = Path(tempfile.mkdtemp(prefix="corpus-"))
    env["TMPDIR"] = str(scratch)
    course = _make_course(base / "course")
    with Listener() as server:
        corpus = {case.student: case for case in build_corpus(root, port=server.port)}
        for case in corpus.values():
            case.write(course)
        course_files, home_files = fingerprint(course, GRADING_OUTPUTS), fingerprint(home)
        start = time.time()
        first = _autograde(course, env)
        print(f"corpus of {len(corpus)} graded in {time.time() - start:.0f} s\n{first.stdout}")
        state = {
            "grades": _gradebook(course),
            "outputs": {s: _outputs(course, s) for s in corpus},
            "sizes": {(s, folder): _size(course / folder / s)
                      for s in corpus for folder in ("autograded", "feedback")},
            "survivors": survivors(start),
            "grading_processes": _grading_processes(),
            "leftover_scratch": list(scratch.glob("course-grading-*")),
        }
        feedback = _course_command(course, env, "feedback", ASSIGNMENT)
        print(f"feedback:\n{feedback.stdout}{feedback.stderr}")
        state["pages"] = {s: {p.name: p.read_bytes() for p in
                              (course / "feedback" / s / ASSIGNMENT).glob("*.html")}
                          for s in corpus}
        state["sizes"].update({(s, "feedback"): _size(course / "feedback" / s) for s in corpus})
        state["export"] = _course_command(course, env, "export", "--to", str(base / "export"))
        again = [arg for s, case in corpus.items() if not case.slow for arg in ("--student", s)]
        second = _autograde(course, env, "--force", *again)
        print(f"regraded after {time.time() - start:.0f} s\n{second.stdout}")
    state.update(
        corpus=corpus, course=course, base=base, env=env, first=first, feedback=feedback,
        second=second,
        regraded=_gradebook(course), received=list(server.received),
        changed=differences(course_files, fingerprint(course, GRADING_OUTPUTS))
        + [f"~/{p}" for p in differences(home_files, fingerprint(home))],
        late_survivors=survivors(start),
    )
    yield state
    for process in survivors(start):  # started by this test's submissions
        process.kill()
    shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="module")
def corpus(graded):
    return graded["corpus"]


def _summary_lines(result, student: str) -> list[str]:
    return [ln for ln in result.stdout.splitlines() if ln.split(" ")[0] == student]


def _notes(line: str) -> str:
    """The notes column of a summary row (after the score and the seconds)."""
    match = re.match(r"\S+\s+\S+\s+[\d.]+ / [\d.]+\s+\S+\s*(.*)$", line)
    return match.group(1) if match else ""


def test_the_command_ends_cleanly_and_reports_every_student_in_one_line(graded, corpus):
    result = graded["first"]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip() == "", result.stderr[-3000:]  # no progress bar without a TTY
    assert result.returncode == 1, result.stdout  # some submissions could not be graded
    for student in corpus:
        assert len(_summary_lines(result, student)) == 1, student
    failing = sum(case.fails for case in corpus.values())
    maybe = sum(case.either for case in corpus.values())
    reported = int(re.search(r"(\d+) could not be graded", result.stdout).group(1))
    assert failing <= reported <= failing + maybe, result.stdout


@pytest.mark.parametrize("student", [c.student for c in CASES])
def test_each_submission_gets_its_expected_result(graded, corpus, student):
    case = corpus[student]
    grades, course = graded["grades"], graded["course"]
    (line,) = _summary_lines(graded["first"], student)
    notebook = grades[(student, "*notebook")]
    outputs = graded["outputs"][student]  # of the first round's graded notebook, if any
    not_graded = " failed " in line
    if case.fails or not_graded:
        assert case.fails or case.either, f"{case.what}: {line}"
        assert case.reason in line, line
        assert case.extra.get("found", "") in line
        assert notebook["flagged"], line
        for grade_id in case.expected:
            assert grades[(student, grade_id)]["auto_score"] == 0.0, (grade_id, line)
        assert outputs == "", "no graded notebook, as nbgrader leaves a failed submission"
    else:
        assert " graded " in line, line
        for grade_id, expected in case.expected.items():
            if grade_id == case.extra.get("checker_must_reject"):
                continue  # see test_the_checker_rejects_the_reference
            row = grades[(student, grade_id)]
            assert row["auto_score"] == expected, (grade_id, row, case.what, line)
            assert row["manual_score"] is None, (grade_id, row)
            if not (case.flagged and expected == 0.0):  # a zero for a flag awaits review
                assert row["needs_manual_grade"] == (expected is None), (grade_id, row)
        assert outputs, "the graded notebook is kept"
        if case.flagged is not None:
            assert notebook["flagged"] == case.flagged, f"{case.what}: {line}"
        if case.flagged:  # the reason, for the instructor
            assert _notes(line), line
            reasons = [c for c in notebook["comments"] if c != "No response."]
            assert reasons, f"no gradebook comment says why: {line}"
    log = course / "autograded" / student / f"{ASSIGNMENT}.log"
    assert log.read_text().strip(), "every submission keeps its grading log"


def _outputs(course: Path, student: str) -> str:
    notebook = course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    if not notebook.exists():
        return ""
    cells = json.loads(notebook.read_text())["cells"]
    return json.dumps([c.get("outputs", []) for c in cells])


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) \
        if folder.is_dir() else 0


def test_the_memory_bomb_hit_the_memory_limit(graded):
    assert "MemoryError" in graded["outputs"]["memory_bomb"]


def test_a_forking_tree_is_limited_as_a_whole(graded, corpus):
    case = corpus["fork_memory_bomb"]
    assert case.extra["must_not_print"] not in graded["outputs"][case.student]


def test_output_and_disk_are_limited_in_the_graded_and_feedback_folders(graded, corpus):
    for case in corpus.values():
        if "max_bytes" in case.extra:
            for folder in ("autograded", "feedback"):
                size = graded["sizes"][(case.student, folder)]
                assert size <= case.extra["max_bytes"], (case.student, folder, size)


def test_the_infinite_loop_was_interrupted_by_the_cell_timeout(graded):
    assert "CellTimeoutError" in graded["outputs"]["infinite_loop"]


def test_the_edited_tests_ran_as_released(graded):
    outputs = graded["outputs"]["edited_tests"]
    assert "NotImplementedError" in outputs and "all tests passed" not in outputs


def test_the_checker_rejects_the_reference(graded, corpus):
    case = corpus["calls_reference"]
    part = case.extra["checker_must_reject"]
    assert graded["grades"][("calls_reference", part)]["auto_score"] == 0.0


def test_feedback_finishes_for_everyone_and_shows_no_secret(graded, corpus, root):
    result = graded["feedback"]
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
    secret_lines = secrets(root)
    assert secret_lines
    problems = []  # every student's, not only the first one's
    for student in corpus:
        pages = graded["pages"][student]
        if graded["outputs"][student]:  # graded in the first round
            if not pages and student not in result.stdout + result.stderr:
                problems.append(f"{student}: neither a feedback page nor a line saying why")
            if not pages and corpus[student].kind == "honest":
                problems.append(f"{student}: an honest student's feedback was withheld")
        for name, page in pages.items():
            found = leaks(page, secret_lines, own=own_text(corpus[student]))
            if found:
                problems.append(f"{student}: {name} shows {found[:3]}")
    assert not problems, "\n".join(problems)


def test_export_finishes_with_a_row_for_every_student(graded, corpus):
    result = graded["export"]
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    with open(graded["base"] / "export" / "grades.csv", newline="") as file:
        exported = {row["student_id"] for row in csv.DictReader(file)}
    assert set(corpus) <= exported


def test_nothing_outside_the_graded_folders_changed(graded):
    assert graded["changed"] == []
    assert (graded["course"] / "gradebook.db").read_bytes()[:16] == b"SQLite format 3\x00"
    assert not list(graded["base"].rglob("ESCAPED.txt"))
    assert not list(Path(tempfile.gettempdir()).glob("*/ESCAPED.txt"))
    assert not graded["leftover_scratch"], "private folders must be removed"
    course = graded["course"]
    students = {p.name for p in (course / "autograded").iterdir() if p.is_dir()}
    assert students <= {p.name for p in (course / "submitted").iterdir()}


def test_no_process_outlives_the_grading(graded):
    assert not graded["survivors"], [p.info["cmdline"] for p in graded["survivors"]]
    assert not graded["late_survivors"]
    assert not graded["grading_processes"], "no kernel or worker may outlive the grading"


def test_the_network_is_unreachable(graded):
    assert graded["received"] == []


def test_regrading_gives_identical_results(graded):
    second = graded["second"]
    assert "Traceback" not in second.stderr, second.stderr[-3000:]
    assert graded["regraded"] == graded["grades"]


def test_parallel_grading_equals_sequential_nbgrader(graded, tmp_path, corpus):
    course = _make_course(tmp_path / "course")
    env = graded["env"]
    for student in SEQUENTIAL:
        corpus[student].write(course)
    subprocess.run(
        ["nbgrader", "generate_assignment", ASSIGNMENT, "--force"], cwd=course, env=env,
        check=True, capture_output=True,
    )
    result = subprocess.run(
        ["nbgrader", "autograde", ASSIGNMENT], cwd=course, env=env, capture_output=True,
        text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sequential = _gradebook(course)
    parallel = {k: v for k, v in graded["grades"].items() if k[0] in SEQUENTIAL}
    assert set(sequential) == set(parallel)
    for key in sorted(sequential):
        assert parallel[key] == sequential[key], key


def test_a_regrade_without_force_skips_graded_submissions(graded):
    result = _autograde(graded["course"], graded["env"], "--student", "solution")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped" in _summary_lines(result, "solution")[0]


def test_the_leak_detector_sees_through_the_corpus_encodings(root):
    """The feedback check above can fail: every encoding an attack uses is undone."""
    import base64
    import codecs
    import zlib

    secret_lines = secrets(root)
    secret = sorted(secret_lines)[0]
    page = f"<pre><span>{secret[:7]}</span>{secret[7:]}</pre>".encode()
    encoded = [
        page,
        b"<pre>>> x " + base64.b64encode(zlib.compress(secret.encode() * 3)) + b"</pre>",
        b"<pre>" + (secret.encode() * 2).hex().encode() + b"</pre>",
        codecs.encode(f"<pre>{secret}</pre>", "rot13").encode(),
        f"<pre>{secret[::-1]}</pre>".encode(),
        base64.b64encode(b"SQLite format 3\x00" + bytes(100)),
    ]
    for data in encoded:
        assert leaks(data, secret_lines), data[:80]
    assert not leaks(b"<pre>all tests passed</pre>", secret_lines)
