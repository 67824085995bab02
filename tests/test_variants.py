"""A variant per student: hidden seeds from an HMAC of a course secret and the student id.

The expected keys and seeds are computed here with the standard library (``hmac``,
``hashlib``) from the rule the instructor guide states, not with the code under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from course_lib.checks._common import CheckFailure, variant
from course_lib.checks.learning_from_reward import check_update_baseline
from course_lib.grading import sandbox, variants, worker
from course_lib.grading.course import Course, load_config
from course_lib.grading.runner import Job, prepare

ROOT = Path(__file__).resolve().parents[1]
SECRET = "0f" * 32


def expected_key(secret: str, assignment: str, student: str) -> str:
    return hmac.new(secret.encode(), f"{assignment}/{student}".encode(),
                    hashlib.sha256).hexdigest()


def expected_seed(key: str, seed: int) -> int:
    return int(hashlib.sha256(f"{key}:{seed}".encode()).hexdigest()[:8], 16) % 2**31


# ------------------------------------------------------------------ keys and seeds


def test_the_key_is_the_hmac_of_assignment_and_student():
    assert variants.variant_key(SECRET, "08_rflo", "alice") == \
        expected_key(SECRET, "08_rflo", "alice")


def test_two_students_hidden_seeds_differ(monkeypatch):
    seeds = {}
    for student in ("alice", "bob"):
        monkeypatch.setenv("COURSE_VARIANT", variants.variant_key(SECRET, "08_rflo", student))
        seeds[student] = [variant(s) for s in (808, 2019)]
    assert seeds["alice"] != seeds["bob"]
    assert all(0 <= s < 2**31 for s in seeds["alice"] + seeds["bob"])
    key = expected_key(SECRET, "08_rflo", "bob")
    assert seeds["bob"] == [expected_seed(key, 808), expected_seed(key, 2019)]


def test_without_a_key_the_literal_seed_is_used(monkeypatch):
    monkeypatch.delenv("COURSE_VARIANT", raising=False)
    assert variant(1992) == 1992
    monkeypatch.setenv("COURSE_VARIANT", "")
    assert variant(1992) == 1992


def test_regrading_gives_the_same_key_and_seeds(monkeypatch, tmp_path):
    """The key depends only on the secret, the assignment and the student: preparing the
    same submission twice gives the same job key, another student another key."""
    monkeypatch.setenv(variants.SECRET_ENV, SECRET)
    course = Course.load(_toy_course(tmp_path / "course"))
    submitted = course.folder("submitted", "alice", "toy")
    submitted.mkdir(parents=True)
    template = tmp_path / "template.db"
    template.write_bytes(b"")
    specs = []
    for student in ("alice", "alice", "bob"):
        scratch = tmp_path / f"scratch-{len(specs)}"
        scratch.mkdir()
        specs.append(prepare(course, Job("toy", student, submitted), template, scratch))
    assert specs[0]["variant"] == specs[1]["variant"] == expected_key(SECRET, "toy", "alice")
    assert specs[2]["variant"] == expected_key(SECRET, "toy", "bob")
    for spec in specs:  # the job carries the key, never the secret
        assert SECRET not in json.dumps(spec)
        assert SECRET not in (Path(spec["course"]) / "nbgrader_config.py").read_text()


def test_a_cluster_job_keeps_the_key_the_instructor_derived(monkeypatch, tmp_path):
    """A job unpacked on a worker without the secret still carries the instructor's key
    (in the job's own configuration), and nothing else decides it."""
    monkeypatch.setenv(variants.SECRET_ENV, SECRET)
    course = Course.load(_toy_course(tmp_path / "course"))
    submitted = course.folder("submitted", "alice", "toy")
    submitted.mkdir(parents=True)
    template = tmp_path / "template.db"
    template.write_bytes(b"")
    (tmp_path / "here").mkdir()
    spec = prepare(course, Job("toy", "alice", submitted), template, tmp_path / "here")
    monkeypatch.setenv(variants.SECRET_ENV, "another secret")  # the worker's, if any
    on_worker = Course.load(Path(spec["course"]))
    (tmp_path / "there").mkdir()
    again = prepare(on_worker, Job("toy", "alice", submitted), template, tmp_path / "there")
    assert again["variant"] == expected_key(SECRET, "toy", "alice")


# ------------------------------------------------------------------ hard-coded outputs


def _record_literal_case() -> dict:
    """What a student sees who copies the outputs of the literal-seed hidden case (from a
    classmate's feedback, say): inputs -> correct output of `update_baseline`."""
    stored = {}

    def honest(baseline, reward, rate):
        out = baseline + rate * (reward - baseline)
        stored[_inputs(baseline, reward, rate)] = out.clone()
        return out

    check_update_baseline(honest, seed=1992)
    return stored


def _inputs(baseline, reward, rate):
    reward = reward.tolist() if isinstance(reward, torch.Tensor) else reward
    return repr((baseline.tolist(), reward, rate))


def test_hard_coded_outputs_pass_one_variant_and_fail_another(monkeypatch):
    monkeypatch.delenv("COURSE_VARIANT", raising=False)
    stored = _record_literal_case()

    def copied(baseline, reward, rate):  # knows the stored cases, computes nothing
        known = stored.get(_inputs(baseline, reward, rate))
        return known.clone() if known is not None else baseline.clone()

    check_update_baseline(copied, seed=variant(1992))  # the literal seed: it passes
    monkeypatch.setenv("COURSE_VARIANT", variants.variant_key(SECRET, "11", "bob"))
    with pytest.raises(CheckFailure):
        check_update_baseline(copied, seed=variant(1992))


# ------------------------------------------------------------------ what reaches the kernel


def test_the_kernel_gets_the_key_and_never_the_secret(tmp_path):
    job = {"private": str(tmp_path / "private"), "workdir": str(tmp_path), "course": "c",
           "variant": "a-key"}
    grading_process = {"COURSE_VARIANT_SECRET": SECRET, **worker.kernel_environment(job)}
    assert grading_process["COURSE_VARIANT"] == "a-key"
    kernel = sandbox.kernel_env(grading_process, sys.prefix + "/bin", None)
    assert kernel["COURSE_VARIANT"] == "a-key"
    assert SECRET not in json.dumps(kernel)


def test_the_repository_config_holds_no_secret():
    config = load_config(ROOT)
    assert variants.CONFIG_SECTION not in config
    text = (ROOT / "nbgrader_config.py").read_text()
    assert "CourseVariants" not in text and variants.SECRET_ENV not in text


def test_every_hidden_seed_is_a_variant():
    """Every seed in a hidden block goes through `variant` (the literal is its default)."""
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            hidden = re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS",
                                cell.source, re.S)
            for block in hidden:
                assert not re.search(r"seed=\d", block), f"{path.name}: {block}"


# ------------------------------------------------------------------ the property


TEST_CELL = {"grade": True, "locked": True, "points": 1, "schema_version": 3,
             "solution": False, "task": False}
ANSWER_CELL = {"grade": False, "locked": False, "schema_version": 3, "solution": True,
               "task": False}
FAIR = "from course_lib.checks._common import variant\nassert answer() == 1\nvariant(5)\nNone"
UNFAIR = ("from course_lib.checks._common import variant\nassert answer() == 1\n"
          "assert variant(1992) % 2 == 0, 'a case the solution fails for odd seeds'")


def _toy_course(root: Path, tests: dict[str, str] | None = None) -> Path:
    """One assignment "toy": an answer cell, then test cells (a fair and an unfair one
    unless ``tests`` names others)."""
    tests = tests or {"fair": FAIR, "unfair": UNFAIR}

    def notebook(answer: str):
        cells = [new_code_cell(answer, metadata={"nbgrader": {**ANSWER_CELL, "grade_id": "a"}})]
        for name, source in tests.items():
            cells.append(new_code_cell(
                source, metadata={"nbgrader": {**TEST_CELL, "grade_id": name}}))
        return new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})

    for folder, answer in (("solutions", "def answer():\n    return 1"),
                           ("exercises", "def answer():\n    raise NotImplementedError()")):
        (root / folder / "toy").mkdir(parents=True)
        nbformat.write(notebook(answer), root / folder / "toy" / "toy.ipynb")
    (root / "nbgrader_config.py").write_text(
        'c = get_config()\nc.CourseDirectory.source_directory = "solutions"\n'
        'c.CourseDirectory.release_directory = "exercises"\n')
    return root


def test_the_property_reports_every_id_an_unfair_case_fails(tmp_path):
    course = Course.load(_toy_course(tmp_path / "course"))
    ids = [f"student-{i}" for i in range(12)]
    problems = variants.fairness_problems(course, "toy", ids=ids, secret=SECRET)
    odd = [s for s in ids if expected_seed(expected_key(SECRET, "toy", s), 1992) % 2]
    assert 0 < len(odd) < len(ids)  # the case is unfair for some ids, not all
    failing = sorted(re.search(r"student id (\S+)", line).group(1)
                     for line in problems["solution"])
    assert failing == sorted(odd), problems
    assert all(line.startswith("toy.ipynb/unfair: 0% of its points") for line in
               problems["solution"])
    assert problems["untouched"] == []  # the release raises NotImplementedError everywhere


#: Ids per assignment in the test suite. 50 (``course check``'s default) on all 13
#: assignments adds about 94 s of CPU to the 54 s of running each notebook once (2-core
#: machine, 2026-11): too much for the suite's budget; 10 ids add about 19 s.
IDS_IN_TESTS = 10


@pytest.mark.slow
@pytest.mark.parametrize("assignment", sorted(p.name for p in (ROOT / "solutions").iterdir()
                                              if p.is_dir()))
def test_no_variant_is_unfair(assignment):
    problems = variants.fairness_problems(Course.load(ROOT), assignment, IDS_IN_TESTS)
    assert problems == {"solution": [], "untouched": []}


@pytest.mark.slow
def test_the_grader_hands_each_student_their_key(tmp_path, monkeypatch, tool_env):
    """End to end (runner, grading process, sandbox): with a secret, the solution is
    graded as student "solution" and its hidden seed is that student's; without, the
    literal seed. A test cell that expects the other seed gets 0."""
    from course_lib.grading.check import check_course
    from course_lib.grading.limits import Limits

    monkeypatch.setenv("PATH", tool_env["PATH"])
    seed = expected_seed(expected_key(SECRET, "toy", "solution"), 1992)
    imports = "from course_lib.checks._common import variant\n"
    root = _toy_course(tmp_path / "course", tests={
        "with_key": f"{imports}assert variant(1992) == {seed}",
        "without": f"{imports}assert variant(1992) == 1992",
    })
    course = Course.load(root)
    limits = Limits.from_config(course.config, workers=1)
    logger = logging.getLogger("test")
    found = {}
    for secret in (SECRET, ""):
        monkeypatch.setenv(variants.SECRET_ENV, secret)
        findings = check_course(course, ["toy"], limits, logger, variant_ids=0)
        found[secret] = next(f.problems for f in findings if f.check == "solution full marks")
    assert found[SECRET] == ["toy/without: 0 of 1"], found
    assert found[""] == ["toy/with_key: 0 of 1"], found
