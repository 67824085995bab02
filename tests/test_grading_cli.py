"""The `course` command line and the pieces of course_lib.grading.

Fast tests check each piece on small inputs (help, one-line errors, the reference guard,
hiding hidden tests, leak detection, limits, killing a process tree, the private course
folder). Slow tests run the installed command end to end in a copy of the course:
release, autograde, feedback, export and check.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from conftest import ROOT, copy_course
from grading_corpus import ASSIGNMENT, build_corpus

from course_lib.grading import cli
from course_lib.grading.leaks import find_leaks, secret_lines, visible_text
from course_lib.grading.reference_guard import ReferenceWatch, forbid_reference, scan_notebook

BIN = Path(sys.executable).parent
SOURCE = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
RELEASE = ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
COMMANDS = ["check", "release", "autograde", "feedback", "export", "report"]


def course_command(course: Path, env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "course"), *args], cwd=course, env=env, capture_output=True, text=True,
        timeout=900,
    )


# ------------------------------------------------------------------ the command line


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"] if command else ["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "usage: course" in text
    if command is None:
        assert all(name in text for name in COMMANDS)


def test_the_console_script_is_installed(tool_env, tmp_path):
    result = course_command(tmp_path, tool_env, "autograde", "01_sparse_connectivity")
    assert result.returncode == cli.EXIT_USAGE
    assert result.stderr.count("\n") == 1, result.stderr
    assert "no nbgrader_config.py" in result.stderr and "Traceback" not in result.stderr


def _config_only_course(tmp_path: Path) -> Path:
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions", course / "solutions")
    return course


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["autograde", "no_such_assignment"], "unknown assignment 'no_such_assignment'"),
        (["autograde", ASSIGNMENT], f"no submissions of {ASSIGNMENT}"),
        (["feedback", ASSIGNMENT], f"no autograded submissions of {ASSIGNMENT}"),
        (["release", "nope"], "unknown assignment 'nope'"),
        (["autograde", ASSIGNMENT, "--memory-limit", "10"], "at least 512 MiB"),
        (["export"], "no gradebook"),
    ],
)
def test_errors_are_one_line_and_a_non_zero_exit(args, message, tmp_path, capsys):
    course = _config_only_course(tmp_path)
    status = cli.main(["--course", str(course), *args])
    err = capsys.readouterr().err
    assert status == cli.EXIT_USAGE
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_missing_config_is_one_line(tmp_path, capsys):
    assert cli.main(["--course", str(tmp_path), "check"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "no nbgrader_config.py" in err and err.count("\n") == 1


def test_table_lines_up_columns():
    text = cli.table(("a", "bb"), [("xxx", 1), ("y", 22)])
    lines = text.splitlines()
    assert lines[0] == "a    bb" and lines[1] == "---  --" and lines[3] == "y    22"


# ------------------------------------------------------------------ limits


def test_limits_come_from_the_config_and_the_command_line():
    from traitlets.config import Config

    from course_lib.grading.limits import Limits, available_cores

    config = Config()
    config.SubmissionLimits.memory_mb = 3000
    config.SubmissionLimits.wall_time = 120
    limits = Limits.from_config(config)
    assert (limits.memory_mb, limits.wall_time, limits.workers) == (3000, 120, available_cores())
    limits = Limits.from_config(config, memory_mb=1024, workers=3, wall_time=None)
    assert (limits.memory_mb, limits.wall_time, limits.workers) == (1024, 120, 3)
    with pytest.raises(ValueError, match="wall-time"):
        Limits.from_config(config, wall_time=0)


@pytest.mark.slow
def test_the_course_config_may_set_limits_without_upsetting_nbgrader(tmp_path, tool_env):
    course = _config_only_course(tmp_path)
    config = course / "nbgrader_config.py"
    config.write_text(config.read_text() + "\nc.SubmissionLimits.memory_mb = 3000\n")
    result = subprocess.run(
        ["nbgrader", "generate_assignment", ASSIGNMENT, "--force"], cwd=course, env=tool_env,
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "SubmissionLimits" not in result.stderr


PARENT = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from course_lib.grading.limits import confine_this_process
    confine_this_process(1024)
    # a child that double-forks a sleeper into its own session, then exits
    code = "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    time.sleep(600)\\n"
    subprocess.run([sys.executable, "-c", code])
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("ready", flush=True)
    time.sleep(600)
    """
)


def test_kill_tree_ends_double_forked_descendants():
    from course_lib.grading.limits import kill_tree

    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "ready"
        tree = psutil.Process(parent.pid).children(recursive=True)
        assert len(tree) == 2, "the orphaned sleeper is re-parented to the subreaper"
        limit = psutil.Process(parent.pid).rlimit(psutil.RLIMIT_AS)
        assert limit == (1024 * 2**20, 1024 * 2**20)
        kill_tree(parent.pid)
        parent.wait(timeout=10)
        time.sleep(0.2)
        alive = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not alive
    finally:
        if parent.poll() is None:
            parent.kill()


# ------------------------------------------------------------------ the reference guard


def _own_mask(n_post, n_pre, density, seed=0, self_connections=True):
    import torch

    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n_post, n_pre, generator=g) < density).float()


def test_the_reference_guard_catches_aliases_and_wrappers():
    from course_lib import connectivity

    reference = connectivity.random_sparse_mask

    def wrapper(*args, **kwargs):
        return reference(*args, **kwargs)

    def wrapper_of_wrapper(*args, **kwargs):
        return wrapper(*args, **kwargs)

    def via_import(*args, **kwargs):
        import importlib

        return importlib.import_module("course_lib.connectivity").random_sparse_mask(*args)

    with pytest.raises(AssertionError, match="reference implementation"):
        forbid_reference(reference, reference, what="random_sparse_mask")
    for cheat in (wrapper, wrapper_of_wrapper, via_import):
        guarded = forbid_reference(cheat, reference, what="random_sparse_mask")
        with pytest.raises(AssertionError, match="write it yourself"):
            guarded(4, 4, 0.5, seed=1)
    assert forbid_reference(wrapper, reference, what="x", allow=True) is wrapper
    own = forbid_reference(_own_mask, reference, what="random_sparse_mask")
    assert own(4, 4, 0.5, seed=1).shape == (4, 4)
    assert sys.getprofile() is None, "the profile hook is removed after the call"


def test_the_reference_guard_catches_a_subclass_of_a_reference_class():
    import torch

    from course_lib import connectivity

    class Lazy(connectivity.Mask):
        pass

    with pytest.raises(AssertionError):
        forbid_reference(Lazy, connectivity.Mask, what="Mask")
    with ReferenceWatch(connectivity.Mask) as watch:
        connectivity.Mask(torch.ones(2, 2))(torch.ones(2, 2))
    assert watch.called


def test_the_grader_notes_answer_cells_that_use_course_lib(tmp_path):
    cases = {c.student: c for c in build_corpus(ROOT)}
    for student in ("calls_reference", "solution"):
        path = tmp_path / f"{student}.ipynb"
        path.write_bytes(cases[student].files[f"{ASSIGNMENT}.ipynb"])
        notes = scan_notebook(path)
        assert bool(notes) == (student == "calls_reference"), notes
    assert "course_lib.connectivity" in scan_notebook(tmp_path / "calls_reference.ipynb")[0]


# ------------------------------------------------------------------ leaks and feedback


def test_the_committed_release_has_no_secret_but_the_source_has():
    secrets = secret_lines(SOURCE)
    assert any("seed=variant(20261)" in line for line in secrets), "hidden tests are secret"
    assert any("torch.randperm" in line for line in secrets), "solutions are secret"
    assert find_leaks(visible_text(RELEASE), secrets) == []
    assert find_leaks(visible_text(SOURCE), secrets)


def test_hide_hidden_tests_removes_the_code_and_shortens_its_traceback():
    from course_lib.grading.feedback import NOTE, HideHiddenTests

    cell = nbformat.v4.new_code_cell(
        "check(f)\n### BEGIN HIDDEN TESTS\ncheck(f, seed=20261)\n### END HIDDEN TESTS"
    )
    cell.outputs = [nbformat.v4.new_output(
        "error", ename="AssertionError", evalue="entry (0, 1) is wrong",
        traceback=["\x1b[0;32m----> 3\x1b[0m check(f, seed=20261)", "AssertionError: ..."],
    )]
    visible = nbformat.v4.new_code_cell("x = 1")
    visible.outputs = [nbformat.v4.new_output(
        "error", ename="ValueError", evalue="v", traceback=["line x = 1", "ValueError: v"]
    )]
    nb = nbformat.v4.new_notebook(cells=[cell, visible])
    nb, _ = HideHiddenTests()(nb, {})
    assert "20261" not in json.dumps(nb.cells[0])
    assert nb.cells[0].outputs[0].traceback[-1] == NOTE
    assert "entry (0, 1) is wrong" in nb.cells[0].outputs[0].traceback[0]
    assert nb.cells[1].outputs[0].traceback == ["line x = 1", "ValueError: v"]


# ------------------------------------------------------------------ private course folder


@pytest.mark.filterwarnings("ignore:.*not in session:Warning")  # nbgrader + SQLAlchemy 2
def test_a_private_course_holds_one_submission_and_no_solution(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    from course_lib.grading.course import Course
    from course_lib.grading.record import template_gradebook
    from course_lib.grading.runner import Job, prepare

    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")  # alembic
    course_root = _config_only_course(tmp_path)
    course = Course.load(course_root)
    with Gradebook(course.db_url) as gb:
        gb.add_assignment(ASSIGNMENT)
        for student in ("alice", "bob_the_other_student"):
            gb.add_student(student, first_name="Secret", last_name=f"Name_{student}")
            gb.add_submission(ASSIGNMENT, student)
    for student in ("alice", "bob_the_other_student"):
        folder = course.folder("submitted", student, ASSIGNMENT)
        folder.mkdir(parents=True)
        (folder / f"{ASSIGNMENT}.ipynb").write_bytes(RELEASE.read_bytes())
        os.symlink("/etc/hostname", folder / "link_to_elsewhere")
    template = template_gradebook(course, tmp_path / "template" / "gradebook.db")
    assert b"bob_the_other_student" not in template.read_bytes()
    job = Job(ASSIGNMENT, "alice", course.folder("submitted", "alice", ASSIGNMENT))
    spec = prepare(course, job, template, tmp_path)
    private = Path(spec["course"])
    files = sorted(p.relative_to(private).as_posix() for p in private.rglob("*") if p.is_file())
    assert files == [
        "gradebook.db", "nbgrader_config.py", f"submitted/alice/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
    ]
    assert os.stat(spec["workdir"]).st_mode & 0o077 == 0, "private to the instructor's user"
    assert spec["autograded"].endswith(f"/autograded/alice/{ASSIGNMENT}")


# ------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def class_course(tmp_path_factory, tool_env):
    """A copy of the course: released, three submissions autograded with the CLI."""
    course = copy_course(tmp_path_factory.mktemp("cli") / "course")
    released = course_command(course, tool_env, "release")
    cases = {c.student: c for c in build_corpus(ROOT)}
    for student in ("solution", "untouched", "raises"):
        cases[student].write(course)
    graded = course_command(course, tool_env, "autograde", ASSIGNMENT, "--no-progress")
    return {"course": course, "released": released, "graded": graded}


@pytest.mark.slow
def test_release_regenerates_the_committed_exercises(class_course):
    result, course = class_course["released"], class_course["course"]
    assert result.returncode == 0, result.stderr
    assert f"released exercises/{ASSIGNMENT}" in result.stdout
    for path in (ROOT / "exercises").rglob("*.ipynb"):
        fresh = course / path.relative_to(ROOT)
        assert json.loads(fresh.read_text()) == json.loads(path.read_text())


@pytest.mark.slow
def test_autograde_prints_a_summary(class_course):
    result = class_course["graded"]
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {ln.split()[0]: ln for ln in result.stdout.splitlines() if ln.strip()}
    assert "8 / 10" in rows["solution"] and "0 / 10" in rows["untouched"]
    assert "6 / 10" in rows["raises"]
    assert "3 graded, 0 could not be graded" in result.stdout


@pytest.mark.slow
def test_feedback_shows_no_hidden_test(class_course, tool_env):
    course = class_course["course"]
    result = course_command(course, tool_env, "feedback", ASSIGNMENT)
    assert result.returncode == 0, result.stdout + result.stderr
    pages = sorted((course / "feedback").glob(f"*/{ASSIGNMENT}/*.html"))
    assert len(pages) == 3
    hidden = secret_lines(SOURCE, hidden_only=True)
    for page in pages:
        text = visible_text(page)
        assert find_leaks(text, hidden, visible_text(RELEASE)) == [], page
        assert "Part 1" in text
    untouched = visible_text(course / "feedback" / "untouched" / ASSIGNMENT / f"{ASSIGNMENT}.html")
    assert "NotImplementedError" in untouched  # the errors themselves are kept
    # nbgrader's own feedback does show them: the check above can fail
    subprocess.run(
        ["nbgrader", "generate_feedback", ASSIGNMENT, "--force", "--student", "untouched"],
        cwd=course, env=tool_env, check=True, capture_output=True,
    )
    plain = visible_text(course / "feedback" / "untouched" / ASSIGNMENT / f"{ASSIGNMENT}.html")
    assert find_leaks(plain, hidden, visible_text(RELEASE))


@pytest.mark.slow
def test_export_writes_grades_per_assignment_and_per_question(class_course, tool_env):
    course = class_course["course"]
    result = course_command(course, tool_env, "export", "--to", "grades_out")
    assert result.returncode == 0, result.stderr
    with (course / "grades_out" / "grades.csv").open() as handle:
        totals = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)
                  if row["assignment"] == ASSIGNMENT}
    assert totals == {"solution": 8.0, "untouched": 0.0, "raises": 6.0}
    with (course / "grades_out" / "grades_per_question.csv").open() as handle:
        questions = [r for r in csv.DictReader(handle) if r["assignment"] == ASSIGNMENT]
    assert len(questions) == 3 * 5
    for student, total in totals.items():
        rows = [r for r in questions if r["student_id"] == student]
        assert sum(float(r["score"]) for r in rows) == total
    raises = {r["question"]: r for r in questions if r["student_id"] == "raises"}
    assert raises["test_rate_rnn_step"]["score"] == "0.0"
    assert raises["test_random_sparse_mask"]["score"] == "2.0"
    assert raises["written_answer"]["needs_manual_grade"] == "True"


def _broken_assignment(course: Path) -> str:
    """A second assignment whose release is stale and leaks, and whose solution is wrong."""
    name = "99_broken"
    source = nbformat.read(SOURCE, as_version=4)
    for cell in source.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "rate_rnn_step":
            cell.source = cell.source.replace("(1 - alpha) * x +", "x +")
    (course / "solutions" / name).mkdir()
    nbformat.write(source, course / "solutions" / name / f"{name}.ipynb")
    release = nbformat.read(RELEASE, as_version=4)
    release.cells[0].source += "\n    generator = torch.Generator().manual_seed(seed)"
    (course / "exercises" / name).mkdir()
    nbformat.write(release, course / "exercises" / name / f"{name}.ipynb")
    return name


@pytest.mark.slow
def test_check_passes_on_the_course_and_fails_on_a_broken_assignment(tmp_path, tool_env):
    course = copy_course(tmp_path / "course")
    broken = _broken_assignment(course)
    result = course_command(course, tool_env, "check", ASSIGNMENT, broken, "--no-progress",
                            "--variant-ids", "5")
    assert result.returncode == cli.EXIT_FAILED, result.stdout + result.stderr
    rows = {ln.split()[0]: ln.split()[1:] for ln in result.stdout.splitlines() if ln.strip()}
    assert rows[ASSIGNMENT] == ["ok", "ok", "ok", "ok"], result.stdout
    assert rows[broken] == ["FAIL", "FAIL", "FAIL", "ok"], result.stdout
    assert "test_rate_rnn_step: 0 of 2" in result.stdout
    assert "3 check(s) failed" in result.stdout
