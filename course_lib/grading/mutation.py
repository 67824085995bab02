"""Mutation testing of the checkers: does every wrong answer near the solution fail?

For one assignment, the reference solution in ``solutions/<slug>/<slug>.ipynb`` is
turned into a small project that mutmut 3 can test:

- ``answers.py``: the imports cell, then every answer cell in notebook order. Only the
  lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` may be mutated: every
  other line (the stub the student got: ``def`` lines, docstrings) carries mutmut's
  ``# pragma: no mutate``. ``raise`` lines are not mutated either: no checker reads
  the wording of an error message, so its mutants would all be equivalent;
- ``tests/test_notebook.py``: one test per graded test cell, visible and hidden tests
  together, run against ``answers`` as nbgrader runs it (a cell that writes to stderr
  fails). A cell that uses a name set by an earlier test cell runs that cell first.

mutmut then changes the solution one small edit at a time (a mutant: ``+`` for ``-``,
``1`` for ``0``, an argument dropped) and runs only the tests that call the changed
function, in forked processes, with a time limit (an endless mutant counts as killed).
A mutant that passes every test "survives": either the checkers miss a wrong answer, or
the mutant computes the same function (an *equivalent* mutant). Equivalent mutants are
listed, one per line with the reason, in ``tests/mutation/<slug>.txt``::

    answers.x_dale_weight__mutmut_1  # w / s is w * s when every sign s is +1 or -1

Names number the mutants of one function in order, so they are the same on every run
of the same source; editing a function's solution renumbers that function's mutants.

Usage::

    python -m course_lib.grading.mutation 02_dales_law [03_cell_types ...]
    python -m course_lib.grading.mutation --all [--jobs 2] [--keep /tmp/mutation]

It prints every mutant's name and status, the diff of every survivor, and one summary
line per assignment; it exits with 1 when a survivor is not listed as equivalent or a
listed name no longer survives (a stale entry). ``--keep DIR`` leaves the projects in
``DIR/<slug>`` so that ``mutmut show <name>`` or ``mutmut browse`` can be run there.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tokenize
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.utils import is_grade, is_solution

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
# The first code cell of every exercise installs the course on Colab, and only there.
COLAB_SETUP = "colab_setup"
# The assignments are analysed in threads, and CPython 3.11's AST construction is not safe
# across threads: now and then it raises "SystemError: AST constructor recursion depth
# mismatch" (python/cpython#106905). One parse at a time.
_PARSE_LOCK = threading.Lock()


def parse(source: str) -> ast.Module:
    """``ast.parse``, one thread at a time."""
    with _PARSE_LOCK:
        return ast.parse(source)
EQUIVALENTS = ROOT / "tests" / "mutation"
MUTMUT = Path(sys.executable).parent / "mutmut"
MODULE = "answers"  # mutant names read answers.x_<function>__mutmut_<n>

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_MARKERS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
NO_MUTATE = "# pragma: no mutate"

# mutmut's statuses: a killed mutant failed a test or ran out of time (SIGKILL after the
# CPU limit shows as "segfault"). Any other status survives: "survived", or "no tests"
# when no test cell calls the function.
KILLED = {"killed", "timeout", "segfault"}

MUTMUT_CONFIG = """\
[tool.mutmut]
source_paths = ["{module}.py"]
# Per mutant: a wall-clock limit of (test time + 2 s) * 10, so an endless loop is killed.
timeout_multiplier = 10.0
timeout_constant = 2.0
pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:warnings"]
# The wording of an error message is the student's choice and no checker reads it:
# mutating what a raise statement raises only makes equivalent mutants.
do_not_mutate_patterns = ['^\\s*raise\\b']
use_git_change_detection = false

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

TEST_MODULE = '''\
"""The graded test cells of {notebook}, run as nbgrader runs them."""

import contextlib
import io
import json
from pathlib import Path

import pytest

import {module}

# grade id -> {{"source": the cell without the hidden-test markers,
#               "needs": earlier test cells that set names this cell uses}}
CELLS = json.loads((Path(__file__).parent / "cells.json").read_text())


def run_cell(grade_id, namespace):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        exec(compile(CELLS[grade_id]["source"], f"<cell {{grade_id}}>", "exec"), namespace)
    # nbgrader gives zero to a test cell that writes to stderr (a warning, a log line).
    assert not stderr.getvalue(), f"cell {{grade_id}} wrote to stderr: {{stderr.getvalue()}}"


@pytest.mark.parametrize("grade_id", list(CELLS))
def test_cell(grade_id):
    namespace = dict(vars({module}))
    for earlier in CELLS[grade_id]["needs"]:
        run_cell(earlier, namespace)
    run_cell(grade_id, namespace)
'''


class MutationRunError(RuntimeError):
    """mutmut could not test an assignment (e.g. the solution fails its own tests)."""


# ---------------------------------------------------------------- the project


def solution_rows(lines: list[str]) -> set[int]:
    """Indices of the lines strictly between the solution markers."""
    rows, inside = set(), False
    for row, line in enumerate(lines):
        marker = line.strip()
        if marker == BEGIN_SOLUTION:
            inside = True
        elif marker == END_SOLUTION:
            inside = False
        elif inside:
            rows.add(row)
    return rows


def protect_stub(source: str) -> str:
    """The cell with ``# pragma: no mutate`` ending every code line outside a solution.

    The pragma goes where a logical or bracketed line ends (tokenize's NEWLINE and NL),
    never inside a multi-line string."""
    lines = source.splitlines()
    free = solution_rows(lines)
    line_ends = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.NEWLINE, tokenize.NL):
            line_ends[token.start[0] - 1] = token.start[1]
    for row, column in line_ends.items():
        text = lines[row] if row < len(lines) else ""
        if row in free or not text.strip() or text.strip().startswith("#"):
            continue
        lines[row] = f"{text[:column].rstrip()}  {NO_MUTATE}"
    return "\n".join(lines) + "\n"


def functions(tree: ast.Module) -> list[ast.FunctionDef]:
    """The functions and methods mutmut mutates (it skips decorated ones, but for
    ``staticmethod`` and ``classmethod``, and code outside functions)."""
    found = []
    for node in tree.body:
        members = node.body if isinstance(node, ast.ClassDef) else [node]
        found += [f for f in members if isinstance(f, ast.FunctionDef)]
    allowed = ("staticmethod", "classmethod")
    return [f for f in found if all(getattr(d, "id", "") in allowed for d in f.decorator_list)]


def check_mutable(source: str) -> None:
    """Refuse a solution that mutmut would leave alone: it would count as fully tested."""
    lines = source.splitlines()
    covered = set()
    for function in functions(parse(source)):
        covered.update(range(function.lineno - 1, function.end_lineno))
    for row in sorted(solution_rows(lines) - covered):
        text = lines[row].strip()
        if text and not text.startswith("#"):
            raise ValueError(
                f"solution line {text!r} is outside a function (or in a decorated one): "
                "mutmut cannot mutate it"
            )


def without_hidden_markers(source: str) -> str:
    return "\n".join(ln for ln in source.splitlines() if ln.strip() not in HIDDEN_MARKERS)


def names_set(tree: ast.AST) -> set[str]:
    """Names a cell binds at its top level or anywhere inside (assignments, imports, defs)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def names_used(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def graded_cells(notebook: nbformat.NotebookNode, module_names: set[str]) -> dict[str, dict]:
    """The graded test cells in notebook order, each with the earlier cells it needs.

    A cell needs an earlier one when it uses a name that the earlier cell sets and the
    answers module does not define (``signs`` from a previous test, say)."""
    cells: dict[str, dict] = {}
    bound_by: dict[str, set[str]] = {}
    for cell in notebook.cells:
        if cell.cell_type != "code" or is_solution(cell) or not is_grade(cell):
            continue
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        source = without_hidden_markers(cell.source)
        tree = parse(source)
        used = names_used(tree) - module_names - names_set(tree)
        needs: list[str] = []
        for earlier, bound in bound_by.items():
            if bound & used:
                needs += [n for n in cells[earlier]["needs"] + [earlier] if n not in needs]
        cells[grade_id] = {"source": source, "needs": needs}
        bound_by[grade_id] = names_set(tree)
    return cells


def answers_module(notebook: nbformat.NotebookNode) -> str:
    """The imports cell (the first code cell after the Colab set-up cell) and every answer
    cell, stubs protected."""
    code = [c for c in notebook.cells if c.cell_type == "code"
            and c.metadata.get("nbgrader", {}).get("grade_id") != COLAB_SETUP]
    imports = code[0]
    if is_solution(imports) or is_grade(imports):
        raise ValueError("the notebook's first code cell must be its imports cell")
    answers = [c.source for c in code if is_solution(c)]
    for source in answers:
        check_mutable(source)
    parts = [protect_stub(source) for source in [imports.source, *answers]]
    return "\n\n".join(parts)


def notebook_path(slug: str) -> Path:
    return SOLUTIONS / slug / f"{slug}.ipynb"


def write_project(notebook: Path, project: Path) -> Path:
    """Write the mutmut project for one source notebook into ``project``."""
    nb = nbformat.read(notebook, as_version=4)
    module_source = answers_module(nb)
    module_names = names_set(parse(module_source))
    (project / "tests").mkdir(parents=True, exist_ok=True)
    (project / f"{MODULE}.py").write_text(module_source)
    (project / "pyproject.toml").write_text(MUTMUT_CONFIG.format(module=MODULE))
    cells = graded_cells(nb, module_names)
    if not cells:
        raise ValueError(f"{notebook}: no graded test cells")
    (project / "tests" / "cells.json").write_text(json.dumps(cells, indent=1))
    (project / "tests" / "test_notebook.py").write_text(
        TEST_MODULE.format(notebook=notebook.name, module=MODULE)
    )
    return project


# ---------------------------------------------------------------- running mutmut


def mutmut_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",  # one thread per torch process: the children share 2 cores
        MKL_NUM_THREADS="1",
        NBGRADER_EXECUTION="autograde",  # library code stays as quiet as when graded
        COURSE_PROGRESS="0",
    )
    env["PATH"] = f"{MUTMUT.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_mutmut(project: Path, children: int, timeout: float) -> None:
    command = [str(MUTMUT), "run", "--max-children", str(children)]
    with subprocess.Popen(
        command,
        cwd=project,
        env=mutmut_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, with every mutant it forks
    ) as mutmut:
        try:
            output, _ = mutmut.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(mutmut.pid, signal.SIGKILL)
            raise
    if mutmut.returncode != 0:
        unmutated = "failed to collect stats" in output or "Failed to run clean test" in output
        reason = "the solution itself fails its test cells" if unmutated else "mutmut failed"
        raise MutationRunError(
            f"{reason} in {project} (exit {mutmut.returncode}):\n{output[-4000:]}"
        )


def mutant_statuses(project: Path) -> dict[str, str]:
    """Mutant name -> mutmut's status, read from mutmut's own result file."""
    from mutmut.stats import status_by_exit_code

    meta = json.loads((project / "mutants" / f"{MODULE}.py.meta").read_text())
    return {name: status_by_exit_code[code] for name, code in meta["exit_code_by_key"].items()}


def mutant_diff(project: Path, name: str) -> str:
    shown = subprocess.run(
        [str(MUTMUT), "show", name],
        cwd=project,
        env=mutmut_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return shown.stdout.partition("\n")[2].strip() or shown.stderr.strip()


# ---------------------------------------------------------------- equivalents


def read_equivalents(path: Path) -> dict[str, str]:
    """``<mutant name>  # <reason>`` per line; blank lines and comment lines allowed."""
    listed: dict[str, str] = {}
    if not path.exists():
        return listed
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, _, reason = text.partition("#")
        if not reason.strip():
            raise ValueError(f"{path}:{number}: give the reason after '#': {text!r}")
        listed[name.strip()] = reason.strip()
    return listed


@dataclass
class Analysis:
    """The mutants of one assignment and what became of them."""

    slug: str
    status: dict[str, str]  # mutant name -> mutmut status
    equivalent: dict[str, str]  # listed name -> reason
    diffs: dict[str, str] = field(default_factory=dict)  # survivor -> diff
    seconds: float = 0.0
    error: str = ""  # why mutmut could not run, if it could not

    @property
    def killed(self) -> list[str]:
        return [n for n, s in self.status.items() if s in KILLED]

    @property
    def survivors(self) -> list[str]:
        return [n for n, s in self.status.items() if s not in KILLED]

    @property
    def unlisted(self) -> list[str]:
        """Survivors not listed as equivalent: a wrong answer the checkers miss."""
        return [n for n in self.survivors if n not in self.equivalent]

    @property
    def stale(self) -> list[str]:
        """Listed equivalents that no longer exist or are now killed."""
        return [n for n in self.equivalent if n not in self.survivors]

    @property
    def ok(self) -> bool:
        return not self.error and not self.unlisted and not self.stale

    def summary(self) -> str:
        if self.error:
            return f"mutation {self.slug}: not run ({self.error.splitlines()[0]})"
        total, killed = len(self.status), len(self.killed)
        equivalent = len([n for n in self.equivalent if n in self.survivors])
        rest = total - equivalent
        rate = 100.0 * killed / rest if rest else 100.0
        return (
            f"mutation {self.slug}: killed {killed} of {total} "
            f"({equivalent} equivalent, kill rate of non-equivalent {rate:.1f} %)"
        )

    def problems(self) -> str:
        lines = [self.error] if self.error else []
        for name in self.unlisted:
            lines.append(f"{name} survived ({self.status[name]}), not listed as equivalent:")
            lines.append(self.diffs.get(name, ""))
        for name in self.stale:
            state = self.status.get(name, "no such mutant")
            lines.append(f"{name} is listed as equivalent but is {state}: remove the line")
        return "\n".join(lines)


def analyse_notebook(
    notebook: Path,
    equivalents: Path,
    slug: str | None = None,
    children: int = 1,
    keep: Path | None = None,
    timeout: float = 1800,
) -> Analysis:
    """Run mutmut on one source notebook and compare the survivors with ``equivalents``."""
    start = time.perf_counter()
    slug = slug or notebook.stem
    workdir = None if keep else Path(tempfile.mkdtemp(prefix=f"mutation-{slug}-"))
    project = (keep or workdir) / slug
    try:
        if project.exists():
            shutil.rmtree(project)  # mutmut caches results: always start fresh
        write_project(notebook, project)
        run_mutmut(project, children, timeout)
        status = mutant_statuses(project)
        analysis = Analysis(slug, status, read_equivalents(equivalents))
        analysis.diffs = {name: mutant_diff(project, name) for name in analysis.survivors}
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    analysis.seconds = time.perf_counter() - start
    return analysis


def analyse(slug: str, children: int = 1, keep: Path | None = None) -> Analysis:
    """Mutation analysis of one assignment of the course (``error`` says if it failed)."""
    equivalents = EQUIVALENTS / f"{slug}.txt"
    try:
        return analyse_notebook(notebook_path(slug), equivalents, slug, children, keep)
    except (MutationRunError, ValueError, subprocess.TimeoutExpired) as error:
        return Analysis(slug, {}, {}, error=str(error))


def analyse_many(slugs: list[str], jobs: int | None = None, keep: Path | None = None):
    """Analyse several assignments in parallel: ``jobs`` at a time, and the CPU cores
    shared out between them (each mutmut runs cores // jobs mutants at a time)."""
    cores = os.cpu_count() or 1
    jobs = max(1, min(jobs or cores, len(slugs)))
    children = max(1, cores // jobs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda slug: analyse(slug, children, keep), slugs))


def all_slugs() -> list[str]:
    return sorted(p.name for p in SOLUTIONS.iterdir() if notebook_path(p.name).exists())


def print_analysis(analysis: Analysis) -> None:
    print(f"== {analysis.slug} ({analysis.seconds:.0f} s)")
    for name, status in analysis.status.items():
        note = " (listed as equivalent)" if name in analysis.equivalent else ""
        print(f"{name}: {status}{note}")
    for name in analysis.survivors:
        print(f"\n--- {name} ({analysis.status[name]})")
        print(analysis.diffs.get(name, ""))
    if not analysis.ok:
        print("\n" + analysis.problems())
    print(analysis.summary() + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.grading.mutation", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("slugs", nargs="*", help="assignments, e.g. 02_dales_law")
    parser.add_argument("--all", action="store_true", help="every assignment in solutions/")
    parser.add_argument("--jobs", type=int, default=None, help="assignments at a time")
    parser.add_argument("--keep", type=Path, default=None, help="keep the projects here")
    args = parser.parse_args(argv)
    slugs = all_slugs() if args.all else args.slugs
    if not slugs:
        parser.error("name at least one assignment, or --all")
    start = time.perf_counter()
    analyses = analyse_many(slugs, args.jobs, args.keep)
    for analysis in analyses:
        print_analysis(analysis)
    for analysis in analyses:
        print(analysis.summary() + ("" if analysis.ok else "  <- see above"))
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0 if all(a.ok for a in analyses) else 1


if __name__ == "__main__":
    sys.exit(main())
