"""The kernel in a bubblewrap sandbox, and the limits of a whole submission.

Fast tests check the pieces (the bwrap command line, the kernel's environment, output
truncation that keeps a test cell's grade, the memory cgroup, disk accounting, the
refusal without bubblewrap). Slow tests grade probing submissions with ``course
autograde`` in a copy of the course and read what the probes saw from inside.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from conftest import ROOT, copy_course
from jupyter_core.paths import jupyter_data_dir
from nbgrader.utils import determine_grade

from course_lib.grading import cli
from course_lib.grading.limits import MemoryGroup, tree_rss
from course_lib.grading.sandbox import (
    HOME,
    PACKAGES,
    SandboxError,
    bwrap_command,
    kernel_env,
    private_folder_size,
    sandbox_problem,
)

ASSIGNMENT = "01_sparse_connectivity"
RELEASE = ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
BIN = Path(sys.executable).parent
MISSING_BWRAP = "/nonexistent/bwrap"
needs_bwrap = pytest.mark.skipif(bool(sandbox_problem()), reason=sandbox_problem() or "-")


# ------------------------------------------------------------------ the pieces


def _private(tmp_path: Path) -> Path:
    private = tmp_path / "private"
    for name in ("work", "home", "tmp"):
        (private / name).mkdir(parents=True)
    return private


def _pairs(args: list[str], option: str) -> dict[str, str]:
    """destination -> source of every ``option SOURCE DESTINATION`` in a bwrap command."""
    return {args[i + 2]: args[i + 1] for i, a in enumerate(args) if a == option}


def test_the_bwrap_command_binds_only_the_private_folders_writable(tmp_path):
    private, ipc = _private(tmp_path), tmp_path / "ipc"
    command = bwrap_command("bwrap", [sys.executable, "-m", "ipykernel_launcher"],
                            cwd="/somewhere/autograded/alice/a1", private=private, ipc=ipc,
                            packages=tmp_path / "packages", hidden=[ROOT])
    assert command[-3:] == [sys.executable, "-m", "ipykernel_launcher"]
    for option in ("--unshare-all", "--die-with-parent", "--new-session"):
        assert option in command
    writable = _pairs(command, "--bind")
    assert writable == {
        "/tmp": str(private / "tmp"), HOME: str(private / "home"),
        "/somewhere/autograded/alice/a1": str(private / "work"), str(ipc): str(ipc),
    }
    readable = _pairs(command, "--ro-bind")
    assert readable[PACKAGES] == str(tmp_path / "packages")
    for source in readable.values():  # nothing of the course, nor all of HOME or /etc
        assert not Path(ROOT).is_relative_to(source), source
        assert source not in ("/", "/etc", str(Path.home()))
    assert "/etc/shadow" not in readable


def test_a_python_installation_holding_the_course_is_refused(tmp_path):
    with pytest.raises(SandboxError, match="must hide"):
        bwrap_command("bwrap", [sys.executable], cwd=str(tmp_path), private=_private(tmp_path),
                      ipc=tmp_path, packages=None, hidden=[Path(sys.prefix) / "course"])


def test_the_kernel_environment_holds_no_variable_of_the_instructor():
    launch = {"AWS_SECRET_ACCESS_KEY": "s3cr3t", "HOME": "/root", "JUPYTER_PATH": "/root/j",
              "LANG": "C.UTF-8", "NBGRADER_EXECUTION": "autograde", "PATH": "/root/bin"}
    env = kernel_env(launch, "/venv/bin", Path("/somewhere"))
    assert "AWS_SECRET_ACCESS_KEY" not in env and "JUPYTER_PATH" not in env
    assert env["HOME"] == HOME and env["TMPDIR"] == "/tmp" and env["PYTHONPATH"] == PACKAGES
    assert env["LANG"] == "C.UTF-8" and env["NBGRADER_EXECUTION"] == "autograde"
    assert "/root" not in env["PATH"]


def _message(kind: str, **content) -> dict:
    msg_type = "stream" if kind in ("stdout", "stderr") else kind
    if msg_type == "stream":
        content = {"name": kind, **content}
    return {"msg_type": msg_type, "content": content, "parent_header": {"msg_id": "m"},
            "header": {"msg_type": msg_type}, "metadata": {}}


def _grade(outputs) -> float:
    cell = nbformat.v4.new_code_cell("check()")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 2,
                                 "grade_id": "t", "locked": True, "schema_version": 3}
    cell.outputs = outputs
    return determine_grade(cell)[0]


def _executor(**budgets):
    """GradingExecute in the state nbclient puts it in before running a notebook."""
    from course_lib.grading.worker import GradingExecute

    execute = GradingExecute(**budgets)
    execute.reset_execution_trackers()  # as nbclient does for each notebook
    execute.clear_before_next_output = False  # as nbclient does for each cell
    return execute


SPAM = _message("stdout", text="x" * 3000)
FAILING_AFTER_SPAM = {
    "error after spam": [SPAM, SPAM, _message("error", ename="AssertionError", evalue="no",
                                              traceback=["y" * 5000] * 50)],
    "stderr after spam": [SPAM, SPAM, _message("stderr", text="warning " * 2000)],
}


@pytest.mark.parametrize("name", sorted(FAILING_AFTER_SPAM))
def test_truncated_output_keeps_the_grade_of_a_failing_test_cell(name):
    limited = _executor(cell_output_bytes=4000, notebook_output_bytes=10**9)
    unlimited = _executor(cell_output_bytes=10**9, notebook_output_bytes=10**9)
    kept, full = [], []
    for message in FAILING_AFTER_SPAM[name]:
        limited.output(kept, message, None, 0)
        unlimited.output(full, message, None, 0)
    assert _grade(full) == 0 and _grade(kept) == 0
    assert sum(len(json.dumps(o)) for o in kept) < 20_000 < sum(len(json.dumps(o)) for o in full)
    notes = [o for o in kept if o.output_type == "stream" and "output truncated" in o.text]
    assert len(notes) == 1 and notes[0].name == "stdout"  # a note that changes no grade


def test_the_notebook_budget_spans_cells():
    execute = _executor(cell_output_bytes=10**9, notebook_output_bytes=5000)
    cells = [[], [], []]
    for index, outs in enumerate(cells):
        execute.output(outs, SPAM, None, index)
    assert [o.text for o in cells[0]] == ["x" * 3000]
    assert cells[1][0].text == "x" * 2000 and "the notebook printed" in cells[1][1].text
    assert len(cells[2]) == 1 and "output truncated" in cells[2][0].text


def test_disk_use_counts_blocks_written_not_sparse_sizes(tmp_path):
    with open(tmp_path / "sparse", "wb") as sparse:
        sparse.truncate(200 * 2**20)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "real").write_bytes(os.urandom(2**20))
    os.symlink("/usr", tmp_path / "link")  # not followed
    assert 2**20 <= private_folder_size(tmp_path) < 3 * 2**20


def test_tree_rss_counts_the_children():
    alone = tree_rss(os.getpid())
    child = subprocess.Popen([sys.executable, "-c",
                              "b = bytearray(300 * 2**20); import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while tree_rss(os.getpid()) < alone + 250 * 2**20:
            assert time.monotonic() < deadline, "the child's memory was not counted"
            time.sleep(0.1)
    finally:
        child.kill()
        child.wait()


def test_a_memory_cgroup_limits_the_whole_tree():
    group = MemoryGroup.create(f"course-test-{os.getpid()}", 400 * 2**20)
    if group is None:
        pytest.skip("this machine lets us create no memory cgroup (the grader watches RSS)")
    tree = textwrap.dedent(f"""
        import subprocess, sys
        from pathlib import Path
        from course_lib.grading.limits import MemoryGroup
        MemoryGroup(Path({str(group.path)!r}), {group.version}).join()
        code = "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096])"
        children = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
        sys.exit(sum(c.wait() == -9 for c in children))
    """)
    try:
        killed = subprocess.run([sys.executable, "-c", tree], timeout=120).returncode
        assert killed >= 1, "no process was killed at the limit"
        assert group.killed_by_limit()
    finally:
        group.remove()
    assert not group.path.exists()


def _config_only_course(tmp_path: Path) -> Path:
    course = copy_course(tmp_path / "course")
    folder = course / "submitted" / "alice" / ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / RELEASE.name).write_bytes(RELEASE.read_bytes())
    return course


def test_autograde_refuses_without_bubblewrap(tmp_path, monkeypatch, capsys):
    course = _config_only_course(tmp_path)
    monkeypatch.setenv("COURSE_BWRAP", MISSING_BWRAP)
    status = cli.main(["--course", str(course), "autograde", ASSIGNMENT, "--no-progress"])
    err = capsys.readouterr().err
    assert status == cli.EXIT_USAGE and err.count("\n") == 1, err
    assert "bubblewrap" in err and "apt-get install bubblewrap" in err and "--no-sandbox" in err
    assert not (course / "autograded").exists() and not (course / "gradebook.db").exists()


# ------------------------------------------------------------------ end to end

PROBE = """
import json, os, socket, sys
from pathlib import Path
seen = {{}}
seen["visible"] = [p for p in {secrets!r} if os.path.exists(p)]
seen["listed"] = {{p: os.listdir(p) for p in {listed!r} if os.path.isdir(p)}}
seen["course_lib"] = __import__("course_lib").__file__
seen["checks"] = __import__("course_lib.checks.sparse_connectivity").checks.__file__
seen["editable_source"] = os.path.exists({editable!r})
commands = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            commands.append(open(f"/proc/{{pid}}/cmdline").read())
        except OSError:
            pass
seen["processes"] = commands
seen["parent_cwd"] = os.path.exists(f"/proc/{{os.getppid()}}/cwd/nbgrader_config.py")
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    seen["network"] = "up"
except OSError as error:
    seen["network"] = type(error).__name__
written = {{}}
for path in ("/usr/planted", "/etc/planted", "/planted", seen["course_lib"] + ".planted",
             "/tmp/planted", os.path.expanduser("~/planted"), "planted.txt"):
    try:
        Path(path).write_text("x")
        written[path] = True
    except OSError:
        written[path] = False
seen["written"] = written
seen["scratch"] = sorted(os.listdir(Path.cwd().parents[3]))
import subprocess
subprocess.Popen(["sleep", "4321.5"], start_new_session=True)  # left running on purpose
print(json.dumps(seen))
"""

FORK_BOMB = """
import os, time
children = []
for _ in range(6):  # 6 x 400 MiB: each under the per-process limit, together over 1500
    pid = os.fork()
    if pid == 0:
        block = bytearray(400 * 2**20)
        block[::4096] = b"x" * len(block[::4096])
        time.sleep(4)
        os._exit(0)
    children.append(pid)
killed = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == -9 for pid in children]
print("killed", sum(killed))
"""

DISK = """
block = b"x" * 2**20
for n in range(40):
    with open(f"big{n}.bin", "wb") as big:
        for _ in range(20):
            big.write(block)
import time
time.sleep(10)
"""

HUGE_OUTPUT = """
for i in range(50000):
    print("line", i, "y" * 100)
"""

ENDLESS = """
print("started", flush=True)
while True:
    pass
"""

KILLS_ITS_GRADER = """
import json, os, signal, subprocess
from pathlib import Path
subprocess.Popen(["sleep", "4322.5"], start_new_session=True)  # to outlive the grader
for folder in Path(os.getcwd()).parents:
    if (folder / "worker.log").exists():  # what a grader trusting files would read
        (folder / "result.json").write_text(json.dumps({"success": True}))
os.kill(os.getppid(), signal.SIGKILL)
"""

LIMITS = """
c.Execute.timeout = 15
c.SubmissionLimits.tree_memory_mb = 1500
c.SubmissionLimits.disk_mb = 100
c.SubmissionLimits.cell_output_kb = 64
"""


def _submit(course: Path, student: str, code: str) -> None:
    notebook = nbformat.read(RELEASE, as_version=4)
    notebook.cells.insert(1, nbformat.v4.new_code_cell(code))
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / RELEASE.name)


def _grade_class(course: Path, students: dict[str, str], *args: str, config: str = LIMITS,
                 env: dict | None = None) -> dict:
    config_file = course / "nbgrader_config.py"
    config_file.write_text(config_file.read_text() + config)
    for student, code in students.items():
        _submit(course, student, code)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    done = subprocess.run([str(BIN / "course"), "autograde", ASSIGNMENT, "--no-progress",
                           *args], cwd=course, env=env, capture_output=True, text=True,
                          timeout=900)
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    outputs = {}
    for student in students:
        graded = course / "autograded" / student / ASSIGNMENT / RELEASE.name
        if graded.exists():
            outputs[student] = nbformat.read(graded, as_version=4).cells[1].outputs
    return {"run": done, "rows": rows, "outputs": outputs, "course": course}


def _text(outputs) -> str:
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory):
    course = copy_course(tmp_path_factory.mktemp("sandbox") / "course")
    secrets = [str(course), str(ROOT / "solutions"), str(ROOT / "nbgrader_config.py"),
               str(ROOT / "course_lib"), jupyter_data_dir()]
    probe = PROBE.format(secrets=secrets, listed=[str(ROOT), str(Path.home())],
                         editable=str(ROOT / "course_lib" / "__init__.py"))
    students = {"probe": probe, "forkbomb": FORK_BOMB, "disk": DISK, "huge": HUGE_OUTPUT,
                "endless": ENDLESS}
    return _grade_class(course, students)


@pytest.mark.slow
@needs_bwrap
def test_inside_the_sandbox_the_course_home_and_network_are_out_of_reach(sandboxed):
    assert "Each kernel ran in the bubblewrap sandbox." in sandboxed["run"].stdout
    seen = json.loads(_text(sandboxed["outputs"]["probe"]))
    assert seen["visible"] == []
    # of the course directory and HOME, only the folders leading to Python are there
    pythons = [Path(sys.prefix), Path(sys.base_prefix)]
    for folder, names in seen["listed"].items():
        for name in names:
            assert any((Path(folder) / name) in [p, *p.parents] for p in pythons), name
    assert not seen["editable_source"] and not seen["parent_cwd"]
    assert seen["network"] != "up"
    assert not any("nbgrader" in c or "course" in c.split("\0")[0] for c in seen["processes"])
    assert len(seen["processes"]) <= 4, seen["processes"]  # bwrap's init, the kernel, ...
    assert not any(name.startswith(s) for name in seen["scratch"]
                   for s in ("forkbomb", "disk", "huge", "endless"))


@pytest.mark.slow
@needs_bwrap
def test_course_lib_is_a_read_only_snapshot_and_only_private_folders_are_writable(sandboxed):
    seen = json.loads(_text(sandboxed["outputs"]["probe"]))
    assert seen["course_lib"] == f"{PACKAGES}/course_lib/__init__.py"
    assert seen["checks"].startswith(f"{PACKAGES}/course_lib/checks/")
    written = {path: ok for path, ok in seen["written"].items()}
    assert [p for p, ok in written.items() if ok] == ["/tmp/planted", f"{HOME}/planted",
                                                      "planted.txt"]
    course = sandboxed["course"]
    assert not list(course.rglob("planted*")), "a private write reached the course"
    assert not (ROOT / "course_lib" / "__init__.py.planted").exists()


@pytest.mark.slow
@needs_bwrap
def test_nothing_the_kernel_started_outlives_the_grading(sandboxed):
    leftovers = []
    for process in psutil.process_iter(["cmdline"]):
        if "4321.5" in (process.info["cmdline"] or []):
            leftovers.append(process.pid)
    assert leftovers == []


@pytest.mark.slow
@needs_bwrap
def test_a_forking_memory_bomb_is_stopped_at_the_limit_of_the_whole_tree(sandboxed):
    row = sandboxed["rows"]["forkbomb"]
    outputs = sandboxed["outputs"].get("forkbomb")
    if outputs is not None and "killed" in _text(outputs):  # the cgroup stopped children
        killed = int(_text(outputs).split("killed")[1].split()[0])
        assert killed >= 3, "six children of 400 MiB fit in 1500 MiB only if 3 die"
    else:  # no cgroup: the grader stopped the tree
        assert "memory limit of the whole submission" in row, row


@pytest.mark.slow
@needs_bwrap
def test_disk_output_and_time_are_limited_with_a_note(sandboxed):
    assert "disk limit" in sandboxed["rows"]["disk"], sandboxed["rows"]["disk"]
    huge = sandboxed["outputs"]["huge"]
    assert sum(len(o.get("text", "")) for o in huge) < 80 * 1024
    assert "output truncated: this cell printed more than 64 KiB" in _text(huge)
    endless = sandboxed["outputs"]["endless"]
    assert "started" in _text(endless)  # the interrupt reached the kernel through bwrap
    assert any(o.output_type == "error" and o.ename == "CellTimeoutError" for o in endless)


@pytest.mark.slow
def test_no_sandbox_grades_and_says_so_and_a_dead_grader_means_not_graded(tmp_path):
    course = copy_course(tmp_path / "course")
    config = LIMITS + "c.SubmissionLimits.memory_cgroup = False\n"
    graded = _grade_class(course, {"killer": KILLS_ITS_GRADER, "forkbomb": FORK_BOMB},
                          "--no-sandbox", config=config, env={"COURSE_BWRAP": MISSING_BWRAP})
    run, rows = graded["run"], graded["rows"]
    assert "WARNING: graded WITHOUT the sandbox (--no-sandbox)" in run.stdout, run.stdout
    assert "failed" in rows["killer"] and "killed by signal 9" in rows["killer"], rows
    assert "0 / " in rows["killer"]
    assert "memory limit of the whole submission" in rows["forkbomb"], rows
    assert not (course / "autograded" / "killer" / ASSIGNMENT / RELEASE.name).exists()
    leftovers = [p.pid for p in psutil.process_iter(["cmdline"])
                 if "4322.5" in (p.info["cmdline"] or [])]
    assert leftovers == [], "a process escaped when its grading process died"
