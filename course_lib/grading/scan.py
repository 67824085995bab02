"""Reading a submission's code before it runs: what the assignments never need.

The grader parses, **outside the kernel**, every cell of a submitted notebook whose code
will run as the student wrote it (the answer cells, and every cell the student added or
whose nbgrader metadata nbgrader will not restore) and flags what no honest answer to
these exercises needs, because it is how a submission reaches the grading machinery:

- IPython's own machinery (``get_ipython``, ``%`` and ``!`` lines, cell magics): input
  transformers, ``pre_run_cell`` events and the display hook can rewrite or fake the
  test cells that run after the answer;
- introspection and dynamic code: ``exec``/``eval``/``compile``, ``globals()``/
  ``locals()``/``vars()``, ``__import__``, every dunder attribute (``__code__``,
  ``__globals__``, ``__class__``, ``__dict__``, ``__torch_function__``...), private
  attributes of modules, ``getattr``/``setattr`` with computed or dunder names;
- rebinding what the test cells rely on: a name the imports cell imports (a checker, a
  module), a builtin at the top level, an attribute of an imported module, class or
  function (``torch.allclose = ...``); tensor subclasses and comparison overrides;
- modules outside the assignment's allowlist (the modules its solution imports plus a
  small base list), ``course_lib`` beyond what the imports cell imports, files opened
  outside the working folder, torch/numpy loaders that read or run arbitrary files.

A cell that does not parse is not flagged (it fails when it runs, which is its grade).

**Parts.** The source notebook is a sequence of answer cells, each followed by the test
cells that check it. A *part* is one answer code cell and the grade cells after it, up to
the next answer code cell. A flagged answer cell zeroes its own part **and every later
part**: what it changed (a patched function, a hook) stays in the kernel for every cell
that runs after it. A flag in any other cell that runs as submitted (a cell the student
added, a copy of a cell) zeroes the whole notebook. The instructor sees the reason in the
gradebook comment of the answer cell and can give a manual score in the formgrader.

Nothing here imports nbgrader or torch; IPython is imported only to read magics exactly
as the kernel does.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

# Modules any assignment may import, besides those its solution imports.
BASE_MODULES = frozenset({
    "__future__", "torch", "numpy", "math", "cmath", "matplotlib", "scipy", "functools",
    "itertools", "collections", "dataclasses", "typing", "statistics", "random", "time",
    "copy", "numbers", "operator", "fractions", "string", "enum", "abc",
})
# Modules (and names) that reach the process, the interpreter or the grading machinery;
# flagged wherever they appear in a dotted name (``torch.os`` is the ``os`` module).
FORBIDDEN_SEGMENTS = frozenset({
    "os", "sys", "subprocess", "signal", "socket", "multiprocessing", "threading",
    "_thread", "ctypes", "ctypeslib", "importlib", "builtins", "inspect", "gc", "io",
    "pathlib", "shutil", "pickle", "marshal", "types", "code", "codeop", "runpy",
    "resource", "mmap", "pty", "posix", "fcntl", "asyncio", "concurrent", "tempfile",
    "glob", "IPython", "ipykernel", "traitlets", "cpp_extension", "hub", "f2py",
    "distutils", "library", "overrides", "package", "distributed", "serialization",
})
# Library functions that read, write or execute arbitrary files.
FORBIDDEN_CALLS = frozenset({
    "torch.load", "torch.save", "torch.from_file", "torch.compile", "torch.jit",
    "torch.ops", "torch.classes", "numpy.load", "numpy.save", "numpy.savez",
    "numpy.savez_compressed", "numpy.fromfile", "numpy.loadtxt", "numpy.savetxt",
    "numpy.genfromtxt", "numpy.memmap", "scipy.io",
})
FORBIDDEN_NAMES = frozenset({
    "get_ipython", "exec", "eval", "compile", "globals", "locals", "vars", "__import__",
    "__builtins__", "__builtin__", "breakpoint", "__loader__", "__spec__",
})
# Printing to the standard streams is honest (debugging output): ``import sys`` is
# allowed for ``sys.stdout`` and ``sys.stderr`` only, and every other use of ``sys``
# (``sys.modules``, passing ``sys`` itself around) is flagged.
STANDARD_STREAMS = frozenset({"sys.stdout", "sys.stderr"})
HARMLESS_DUNDERS = frozenset({"__init__", "__name__", "__doc__", "__main__"})
# Methods whose override makes an object lie to a comparison in a test cell.
LYING_METHODS = frozenset({
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__float__",
    "__int__", "__index__", "__len__", "__abs__", "__getattribute__", "__getattr__",
    "__instancecheck__", "__subclasscheck__", "__torch_function__", "__torch_dispatch__",
    "__array__", "__array_ufunc__", "__array_function__", "__del__", "__reduce__",
    "__init_subclass__", "__class_getitem__", "__set_name__", "__hash__",
})
TENSOR_CLASSES = frozenset({"torch.Tensor", "torch.nn.Parameter", "torch.nn.parameter.Parameter",
                            "numpy.ndarray"})
# Functions that test cells and checkers compare with: setting an attribute of that name
# on anything (``[torch][0].allclose = ...``) is flagged, whatever object it is.
CHECKING_NAMES = frozenset({
    "allclose", "equal", "isclose", "eq", "ne", "all", "any", "item", "tolist", "fail",
    "close", "call", "tensor", "worst_entry", "finite_gradient", "isfinite",
})
ATTRIBUTE_FUNCTIONS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
BUILTIN_NAMES = frozenset(dir(builtins))
# Builtins a test cell's own asserts use: rebinding one at the top level changes them.
TESTED_BUILTINS = frozenset({
    "print", "len", "abs", "float", "int", "bool", "str", "isinstance", "issubclass", "type",
    "range", "round", "min", "max", "sum", "all", "any", "list", "tuple", "dict", "set",
    "zip", "enumerate", "sorted", "repr", "getattr", "hasattr", "callable", "super", "object",
})
DUNDER = re.compile(r"^__\w+__$")
# `%matplotlib inline` is the one magic an honest notebook commonly keeps.
MATPLOTLIB_MAGIC = re.compile(r"^\s*%matplotlib(\s+[\w-]+)?\s*$")


@dataclass(frozen=True)
class Flag:
    """One construct found in one cell."""

    cell: str  # the answer cell's grade_id, or a description of the cell
    line: int  # in the cell, from 1
    reason: str
    whole_notebook: bool  # not in an answer cell: every part is affected

    def __str__(self) -> str:
        return f"{self.cell}, line {self.line}: {self.reason}"


@dataclass
class Context:
    """What the assignment's source notebook says about a submission of it."""

    imported: dict[str, str] = field(default_factory=dict)  # name -> dotted origin
    modules: frozenset[str] = BASE_MODULES  # top-level modules allowed
    course_lib: dict[str, set[str]] = field(default_factory=dict)  # module -> names

    @classmethod
    def from_source(cls, source: Path) -> Context:
        """The imports area (locked code cells that are not tests) and the allowlist."""
        context = cls()
        modules = set(BASE_MODULES)
        for cell in _cells(json.loads(Path(source).read_text())):
            tree = _parse(_text(cell))
            if tree is None or cell.get("cell_type") != "code":
                continue
            meta = _meta(cell)
            in_imports_area = meta.get("locked") and not meta.get("grade") and not meta.get(
                "solution")
            for node in ast.walk(tree):
                for module, name, bound in _imports(node):
                    top = module.split(".")[0]
                    if top != "course_lib":
                        modules.add(top)
                    if in_imports_area:
                        context.imported[bound] = f"{module}.{name}" if name else module
                        if top == "course_lib":
                            context.course_lib.setdefault(module, set()).add(name)
        context.modules = frozenset(modules)
        return context


# ------------------------------------------------------------------ notebook access


def _cells(nb) -> list[dict]:
    cells = nb.get("cells") if isinstance(nb, dict) else None
    return [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else []


def _meta(cell: dict) -> dict:
    metadata = cell.get("metadata")
    meta = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return meta if isinstance(meta, dict) else {}


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _parse(source: str) -> ast.Module | None:
    """The cell as the kernel runs it (IPython's own transforms), or None if it does not
    parse. ``%matplotlib`` lines are dropped first: they are the one harmless magic."""
    from IPython.core.inputtransformer2 import TransformerManager

    lines = ["" if MATPLOTLIB_MAGIC.match(ln) else ln for ln in source.splitlines()]
    try:
        return ast.parse(TransformerManager().transform_cell("\n".join(lines)))
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        return None


def _imports(node) -> list[tuple[str, str, str]]:
    """(module, imported name or "", name bound) for an import statement."""
    if isinstance(node, ast.Import):
        return [(a.name, "", a.asname or a.name.split(".")[0]) for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return [(node.module, a.name, a.asname or a.name) for a in node.names]
    return []


# ------------------------------------------------------------------ one cell


def _dotted(node) -> list[str] | None:
    """``torch.nn.functional`` -> ["torch", "nn", "functional"]; None if not a plain chain."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def _root(node) -> str | None:
    """The name at the bottom of ``a.b[0].c`` (attributes and subscripts walked)."""
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


class _CellScanner(ast.NodeVisitor):
    """Collects (line, reason) for one parsed cell."""

    def __init__(self, context: Context, aliases: dict[str, str], streams: set[int]):
        self.context = context
        self.streams = streams  # id() of the ``sys`` names in ``sys.stdout``/``sys.stderr``
        self.aliases = aliases  # name -> dotted origin; shared by the cells of a notebook
        self.found: list[tuple[int, str]] = []
        self.function_depth = 0
        self.globals_declared: set[str] = set()

    def flag(self, node, reason: str) -> None:
        self.found.append((getattr(node, "lineno", 0), reason))

    def resolve(self, node) -> str | None:
        parts = _dotted(node)
        if not parts or parts[0] not in self.aliases:
            return None
        return ".".join([self.aliases[parts[0]], *parts[1:]])

    # ---- imports

    def visit_Import(self, node):
        self._check_import(node)

    def visit_ImportFrom(self, node):
        if node.level:
            self.flag(node, "a relative import")
        elif any(a.name == "*" for a in node.names):
            self.flag(node, f"'from {node.module} import *' (it can rebind any name)")
        else:
            self._check_import(node)

    def _check_import(self, node) -> None:
        for module, name, bound in _imports(node):
            origin = f"{module}.{name}" if name else module
            top = module.split(".")[0]
            if module == "sys" and (not name or origin in STANDARD_STREAMS):
                self._bind(node, bound, origin)
                continue
            if top == "course_lib":
                if name not in self.context.course_lib.get(module, ()):
                    self.flag(node, f"imports {origin} (only the imports cell's "
                                    "checkers may be imported from course_lib)")
            elif top not in self.context.modules:
                self.flag(node, f"imports {module}, which this assignment does not need")
            else:
                self._check_dotted(node, origin)
            self._bind(node, bound, origin)

    def _bind(self, node, name: str, origin: str | None) -> None:
        """A binding of ``name``; ``origin`` is its dotted origin if known. Only a
        top-level binding can rebind what the test cells use."""
        top_level = self.function_depth == 0 or name in self.globals_declared
        imported = self.context.imported.get(name)
        if not top_level:
            pass
        elif imported is not None and origin != imported:
            self.flag(node, f"rebinds {name}, which the imports cell imports")
        elif (name in TESTED_BUILTINS or name.endswith(("Error", "Exception"))) and (
                imported is None and name in BUILTIN_NAMES):
            self.flag(node, f"rebinds the builtin {name}, which test cells use")
        if origin is not None:
            self.aliases[name] = origin
        else:
            self.aliases.pop(name, None)

    # ---- names and attributes

    def visit_Name(self, node):
        if self.aliases.get(node.id) == "sys" and id(node) not in self.streams:
            self.flag(node, "uses sys (only sys.stdout and sys.stderr are allowed)")
        if node.id in FORBIDDEN_NAMES:
            self.flag(node, f"uses {node.id}")
        elif DUNDER.match(node.id) and node.id not in HARMLESS_DUNDERS:
            self.flag(node, f"uses {node.id}")
        if isinstance(node.ctx, ast.Store | ast.Del):
            self._bind(node, node.id, None)

    def visit_Attribute(self, node):
        if DUNDER.match(node.attr) and node.attr not in HARMLESS_DUNDERS:
            self.flag(node, f"accesses the attribute {node.attr}")
        dotted = self.resolve(node)
        if dotted is not None:
            self._check_dotted(node, dotted)
        if isinstance(node.ctx, ast.Store | ast.Del):
            if _root(node) in self.aliases:
                what = dotted or ast.unparse(node)
                self.flag(node, f"changes {what}, an attribute of an imported module, "
                                "class or function")
            elif node.attr in CHECKING_NAMES or node.attr.startswith("check"):
                self.flag(node, f"sets an attribute named {node.attr}, a function that "
                                "tests use")
        self.generic_visit(node)

    def visit_Subscript(self, node):
        root = self.aliases.get(_root(node) or "")
        # matplotlib's settings (``plt.rcParams["figure.figsize"] = ...``) are honest
        if isinstance(node.ctx, ast.Store | ast.Del) and root and root.split(".")[0] != (
                "matplotlib"):
            self.flag(node, f"changes an item of {ast.unparse(node.value)}, which is imported")
        self.generic_visit(node)

    def _check_dotted(self, node, dotted: str) -> None:
        parts = dotted.split(".")
        if ".".join(parts[:2]) in STANDARD_STREAMS:
            return
        if any(p in FORBIDDEN_SEGMENTS for p in parts[1:]) or parts[0] in FORBIDDEN_SEGMENTS:
            self.flag(node, f"uses {dotted}")
        elif any(p.startswith("_") and not DUNDER.match(p) for p in parts):
            self.flag(node, f"uses {dotted}, a private part of a library")
        elif any(dotted == c or dotted.startswith(c + ".") for c in FORBIDDEN_CALLS):
            self.flag(node, f"uses {dotted}, which reads, writes or runs files")

    def visit_Constant(self, node):
        if isinstance(node.value, str) and DUNDER.match(node.value) and (
                node.value not in HARMLESS_DUNDERS):
            self.flag(node, f"names the attribute {node.value} in a string")

    # ---- statements that bind or change scope

    def visit_Assign(self, node):
        """``t = torch`` makes ``t`` an alias of torch (``t.allclose = f`` is caught)."""
        self.visit(node.value)
        plain = isinstance(node.value, ast.Attribute | ast.Name)
        origin = self.resolve(node.value) if plain else None
        for target in node.targets:
            if isinstance(target, ast.Name) and origin is not None:
                if target.id in FORBIDDEN_NAMES or DUNDER.match(target.id):
                    self.flag(target, f"uses {target.id}")
                self._bind(target, target.id, origin)
            else:
                self.visit(target)

    def _function(self, node):
        name = getattr(node, "name", None)  # a lambda has none
        if name is not None:
            self._bind(node, name, None)
        for part in (*getattr(node, "decorator_list", []), node.args,
                     getattr(node, "returns", None)):
            if part is not None:
                self.visit(part)
        saved = self.aliases, self.globals_declared
        body = node.body if isinstance(node.body, list) else [node.body]
        declared = {n for s in body for g in ast.walk(s) if isinstance(g, ast.Global)
                    for n in g.names}
        # The function's own variables (its arguments, what it assigns) hide the
        # imported names of the same spelling inside it.
        local = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
        local |= {n.id for s in body for n in ast.walk(s)
                  if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} - declared
        self.aliases = {k: v for k, v in self.aliases.items() if k not in local}
        self.globals_declared = set()
        self.function_depth += 1
        for statement in body:
            self.visit(statement)
        self.function_depth -= 1
        self.aliases, self.globals_declared = saved

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_ClassDef(self, node):
        for base in node.bases:
            origin = self.resolve(base)
            if origin in TENSOR_CLASSES:
                self.flag(base, f"defines a subclass of {origin}")
        for statement in node.body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    statement.name in LYING_METHODS):
                self.flag(statement, f"defines {statement.name} in class {node.name}")
        if self.function_depth == 0:
            self._bind(node, node.name, None)
        for part in (*node.decorator_list, *node.bases, *node.keywords):
            self.visit(part)
        self.function_depth += 1  # a class body's names are the class's own
        for statement in node.body:
            self.visit(statement)
        self.function_depth -= 1

    def visit_Global(self, node):
        self.globals_declared.update(node.names)
        for name in node.names:
            if name in self.context.imported or name in TESTED_BUILTINS:
                self.flag(node, f"declares {name} global, to rebind it")

    def visit_Nonlocal(self, node):
        self.generic_visit(node)

    def visit_ExceptHandler(self, node):
        if node.name:
            self._bind(node, node.name, None)
        self.generic_visit(node)

    def visit_comprehension(self, node):
        self.function_depth += 1  # comprehension variables are local
        self.visit(node.target)
        self.function_depth -= 1
        self.visit(node.iter)
        for condition in node.ifs:
            self.visit(condition)

    # ---- calls

    def visit_Call(self, node):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name == "open":
            self._check_open(node)
        elif name in ATTRIBUTE_FUNCTIONS:
            self._check_attribute_function(node, name)
        self.generic_visit(node)

    def _check_open(self, node) -> None:
        path = node.args[0] if node.args else None
        if not (isinstance(path, ast.Constant) and isinstance(path.value, str)):
            self.flag(node, "opens a file whose path is computed")
        elif path.value.startswith(("/", "~")) or ".." in Path(path.value).parts:
            self.flag(node, f"opens {path.value!r}, outside the working folder")

    def _check_attribute_function(self, node, name: str) -> None:
        attribute = node.args[1] if len(node.args) > 1 else None
        if not (isinstance(attribute, ast.Constant) and isinstance(attribute.value, str)):
            self.flag(node, f"{name} with a computed attribute name")
        elif attribute.value.startswith("_"):
            self.flag(node, f"{name} of the private attribute {attribute.value}")
        if name in ("setattr", "delattr") and node.args and _root(node.args[0]) in self.aliases:
            self.flag(node, f"{name} on {ast.unparse(node.args[0])}, which is imported")


def scan_source(source: str, context: Context, aliases: dict[str, str] | None = None
                ) -> list[tuple[int, str]]:
    """(line, reason) for every flagged construct of one cell; [] if it does not parse."""
    tree = _parse(source)
    if tree is None:
        return []
    streams = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)
               and n.attr in ("stdout", "stderr") and isinstance(n.value, ast.Name)}
    aliases = aliases if aliases is not None else dict(context.imported)
    scanner = _CellScanner(context, aliases, streams)
    scanner.visit(tree)
    return sorted(set(scanner.found))


# ------------------------------------------------------------------ a notebook


def _roles(source_nb) -> tuple[set[str], set[str]]:
    """(grade_ids of answer code cells, grade_ids of cells nbgrader restores)."""
    answers, restored = set(), set()
    for cell in _cells(source_nb):
        meta = _meta(cell)
        grade_id = meta.get("grade_id")
        if not grade_id:
            continue
        if meta.get("solution"):
            if cell.get("cell_type") == "code":
                answers.add(grade_id)
        elif meta.get("locked") or meta.get("grade"):
            restored.add(grade_id)
    return answers, restored


def scan_notebook(submitted: dict, source: Path | None) -> list[Flag]:
    """Every flag of a submitted notebook (already read as JSON), against its source
    notebook; without one, the submission's own metadata says which cells are answers
    and nothing counts as imported."""
    if source is None:
        context, answers, restored = Context(), *_roles(submitted)
    else:
        context = Context.from_source(source)
        answers, restored = _roles(json.loads(Path(source).read_text()))
    cells = _cells(submitted)
    ids = [_meta(c).get("grade_id") for c in cells]
    aliases = dict(context.imported)
    flags = []
    for index, (cell, grade_id) in enumerate(zip(cells, ids, strict=True)):
        copies = ids.count(grade_id) if grade_id else 1
        if grade_id in restored and copies == 1:
            continue  # nbgrader puts the instructor's version back before it runs
        if grade_id not in answers and cell.get("cell_type") != "code":
            continue  # markdown and raw cells do not run
        is_answer = grade_id in answers and copies == 1
        where = f"answer cell {grade_id}" if is_answer else f"cell {index + 1} (added or copied)"
        for line, reason in scan_source(_text(cell), context, aliases):
            flags.append(Flag(grade_id if is_answer else where, line, reason, not is_answer))
    return flags


def zeroed_cells(source: Path, flags: list[Flag]) -> dict[str, Flag]:
    """grade_id of each autograded grade cell a flag zeroes -> the first such flag.

    The source notebook's order defines the parts (see the module docstring)."""
    if not flags:
        return {}
    whole = next((f for f in flags if f.whole_notebook), None)
    by_answer = {f.cell: f for f in reversed(flags) if not f.whole_notebook}
    zeroed: dict[str, Flag] = {}
    current = whole
    for cell in _cells(json.loads(Path(source).read_text())):
        meta = _meta(cell)
        if cell.get("cell_type") != "code":
            continue
        grade_id = meta.get("grade_id")
        if meta.get("solution") and current is None:
            current = by_answer.get(grade_id)
        if meta.get("grade") and current is not None:
            zeroed[grade_id] = current
    return zeroed


def answer_cell_of(source: Path, grade_cell: str) -> str | None:
    """The answer code cell of the part a grade cell belongs to."""
    answer = None
    for cell in _cells(json.loads(Path(source).read_text())):
        meta = _meta(cell)
        if cell.get("cell_type") == "code" and meta.get("solution"):
            answer = meta.get("grade_id")
        if meta.get("grade_id") == grade_cell:
            return answer
    return None
