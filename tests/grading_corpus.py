"""A corpus of broken submissions, generated from the released exercise of one assignment.

Every submission is built programmatically from the committed release
(`exercises/<assignment>/<assignment>.ipynb`) and, where a student would have answered,
from the code between the solution markers of `solutions/` (what a student who solved
it would have typed). Nothing here is a hand-edited notebook file.

Each case says what grading must give: the autograded score of every grade cell, whether
the grading itself fails (the submission is then recorded as zero and flagged), and
whether the pipeline flags it for the instructor. The breakage is put in the **last**
answer cell wherever that is enough, so the expected scores follow from the notebook's
structure (the last test cell checks the last answer; no earlier test depends on it).
"""

from __future__ import annotations

import ast
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ASSIGNMENT = "01_sparse_connectivity"
# The corpus is graded with a short per-cell timeout and wall-time limit (the test sets
# them); a stalling submission sleeps this long in each of eight cells, under the former
# and far beyond the latter however fast the machine.
CELL_TIMEOUT = 12
STALL_SECONDS = 10

# The reference implementation that a lazy submission imports instead of writing it.
REFERENCE_SHORTCUT = {
    "01_sparse_connectivity": ("random_sparse_mask", "course_lib.connectivity"),
}


@dataclass
class Case:
    """One submission and what grading it must give."""

    student: str
    what: str
    files: dict[str, bytes]
    # grade_id -> expected auto_score; None means "left for manual grading".
    expected: dict[str, float | None]
    fails: bool = False  # grading fails: recorded as zero, flagged, with a reason
    flagged: bool = False  # the pipeline flags it for the instructor
    reason: str = ""  # a word that the failure reason must contain
    slow: bool = False  # waits for a timeout: left out of the regrade round
    extra: dict = field(default_factory=dict)

    def write(self, course: Path, assignment: str = ASSIGNMENT) -> Path:
        folder = course / "submitted" / self.student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in self.files.items():
            (folder / name).write_bytes(content)
        return folder


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


# ------------------------------------------------------------------ the corpus


def build_corpus(root: Path, assignment: str = ASSIGNMENT) -> list[Case]:
    """Every broken submission of the issue, with its expected grading result."""
    name = f"{assignment}.ipynb"
    release = nbformat.read(root / "exercises" / assignment / name, as_version=4)
    solution = nbformat.read(root / "solutions" / assignment / name, as_version=4)
    cells = grade_cells(release)
    tests = [gid for gid, (kind, _) in cells.items() if kind == "code"]
    written = [gid for gid, (kind, _) in cells.items() if kind != "code"]
    last_test = tests[-1]

    def full(**changes):
        expected = {gid: cells[gid][1] for gid in tests}
        expected.update({gid: None for gid in written})  # answered: left to the grader
        expected.update(changes)
        return expected

    zero = {gid: 0.0 for gid in cells}  # untouched answers score 0, "No response."

    def with_last_answer(prefix: str = "", suffix: str = ""):
        nb = filled(release, solution)
        cell = _answer_cells(nb)[-1]
        cell.source = prefix + cell.source + suffix
        return nb

    cases: list[Case] = []
    add = cases.append

    add(Case("untouched", "the released exercise, unchanged", {name: _dump(release)}, zero))
    add(Case("solution", "every answer filled in correctly",
             {name: _dump(filled(release, solution))}, full()))

    add(Case("raises", "the last answer cell raises before defining anything",
             {name: _dump(with_last_answer('raise RuntimeError("not finished")\n'))},
             full(**{last_test: 0.0})))

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

    nb = filled(release, solution)
    first_test = next(c for c in nb.cells if _is_test(c))
    nb.cells.remove(first_test)
    add(Case("deleted_test", "a test cell deleted (nbgrader adds it back)",
             {name: _dump(nb)}, full()))

    nb = copy.deepcopy(release)
    for cell in _test_cells(nb):
        cell.source = 'print("all tests passed")'
    add(Case("edited_tests", "every test cell replaced by a print (checksums differ)",
             {name: _dump(nb)}, zero))

    nb = filled(release, solution)
    doubled = []
    for cell in nb.cells:
        doubled.append(cell)
        if _meta(cell).get("grade") or _meta(cell).get("solution"):
            twin = copy.deepcopy(cell)
            twin["id"] = f"{cell.get('id', 'cell')}-copy"  # Jupyter gives a copy a new id
            doubled.append(twin)
    nb.cells = doubled
    add(Case("duplicated", "every answer and test cell duplicated", {name: _dump(nb)}, full()))

    renamed = f"{assignment} (copy).ipynb"
    add(Case("renamed", "the notebook saved under another name",
             {renamed: _dump(filled(release, solution))},
             zero, fails=True, flagged=True, reason="renamed", extra={"found": renamed}))

    text = _dump(filled(release, solution))
    add(Case("not_json", "a notebook cut in half (not valid JSON)",
             {name: text[: len(text) // 2]}, zero, fails=True, flagged=True, reason="JSON"))

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
             {name: _dump(nb)}, full(**{last_test: 0.0})))

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

    escape = (
        "import os\n"
        "for _path in ('../../../gradebook.db', '../../../../gradebook.db'):\n"
        "    if os.path.exists(_path):\n"
        "        open(_path, 'wb').write(b'not a database any more')\n"
        "for _path in ('../../../ESCAPED.txt', '../../../../ESCAPED.txt',\n"
        "              os.path.expanduser('~/ESCAPED.txt'), '../ESCAPED.txt'):\n"
        "    open(_path, 'w').write('written by another student')\n"
    )
    nb = filled(release, solution)
    first = _answer_cells(nb)[0]
    first.source = escape + first.source
    add(Case("writes_outside", "overwrites ../../../gradebook.db and writes files outside",
             {name: _dump(nb)}, full()))

    function, module = REFERENCE_SHORTCUT[assignment]
    nb = filled(release, solution)
    for cell in _answer_cells(nb):
        if _function_name(cell.source) == function:
            definition = next(n for n in ast.parse(cell.source).body
                              if isinstance(n, ast.FunctionDef))
            cell.source = (
                f"import {module}\n\n\n"
                f"def {function}({ast.unparse(definition.args)}):\n"
                f"    return {module}.{function}({_forward(definition.args)})\n"
            )
    first_code_test = tests[0]
    add(Case("calls_reference", f"{function} calls {module}.{function} instead of implementing it",
             {name: _dump(nb)}, full(**{first_code_test: 0.0}), flagged=True,
             extra={"checker_must_reject": first_code_test}))
    return cases


def corrupt(text: bytes) -> bool:
    """True if the bytes are not a JSON document (used to double-check the not_json case)."""
    try:
        json.loads(text)
    except ValueError:
        return True
    return False
