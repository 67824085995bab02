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
  attributes of modules, frames and code objects (``gi_frame.f_back.f_globals``);
  looking attributes up by a string anywhere but a direct ``getattr``/``setattr``/
  ``operator.attrgetter`` call with a constant public name (``reduce(getattr, ...)``,
  ``string.Formatter().get_field``, ``case object(f_globals=g)``, ``functools.
  update_wrapper(..., assigned=...)``); library functions that run strings or files
  as code (``typing.get_type_hints`` on string annotations, ``torch.utils.benchmark``,
  ``numpy.testing.measure``, unpickling loaders, ``module://`` backends), and strings
  that hold such code; numpy's raw-memory views (``as_strided``);
- rebinding what the test cells rely on: a name the imports cell imports (a checker, a
  module), a builtin at the top level, an attribute of an imported module, class or
  function (``torch.allclose = ...``) or of a class found at run time (``type(x).sum =
  ...``); hooks torch calls for every module or graph; tensor subclasses, comparison
  overrides and classes made by ``type(name, bases, namespace)``;
- modules outside the assignment's allowlist (the modules its solution imports plus a
  small base list), ``course_lib`` beyond what the imports cell imports, files opened
  outside the working folder or named like code (``.py``, ``.npy``, ``.pt``...),
  torch/numpy loaders that read or run arbitrary files.

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
    "fx", "python_multiprocessing",
    # these run strings as code: annotations (``def f(x: "get_ipython()")``), timers
    # (``torch.utils.benchmark.Timer(stmt=...)``, ``numpy.testing.measure``), namespaces
    "get_type_hints", "ForwardRef", "get_annotations", "singledispatch",
    "singledispatchmethod", "benchmark", "measure", "make_dataclass", "rundocs",
    # a Formatter subclass receives the objects "{0.__globals__}" looks up
    "Formatter",
    # these unpickle (run) what a file or a file-like object holds
    "read_array", "NpzFile", "npyio", "open_memmap", "model_zoo", "load_url",
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
# Look attributes up by a name given as a string, like getattr: allowed only when called
# directly with constant public names, never passed around (``reduce(getattr, ...)``).
ATTRIBUTE_LOOKUPS = frozenset({"operator.attrgetter", "operator.methodcaller"})
# Copy attributes chosen by name (``__code__`` too) from one function onto another.
ATTRIBUTE_COPIERS = frozenset({"functools.update_wrapper", "functools.wraps"})
CALL_ONLY = ATTRIBUTE_LOOKUPS | ATTRIBUTE_COPIERS
# Attributes of frames, generators, coroutines, tracebacks, code objects and closure
# cells: from a generator's frame a function walks up to its caller's globals (the
# checker's module, the test cell's namespace) without a single dunder.
INTERPRETER_ATTRIBUTES = frozenset({
    "f_back", "f_builtins", "f_code", "f_globals", "f_locals", "f_lasti", "f_lineno",
    "f_trace", "f_trace_lines", "f_trace_opcodes", "gi_frame", "gi_code", "gi_yieldfrom",
    "gi_running", "gi_suspended", "cr_frame", "cr_code", "cr_await", "cr_origin",
    "cr_running", "cr_suspended", "ag_frame", "ag_code", "ag_await", "ag_running",
    "tb_frame", "tb_next", "tb_lasti", "tb_lineno", "cell_contents", "co_code", "co_consts",
    "co_names", "co_varnames", "co_freevars", "co_cellvars", "co_filename", "co_name",
    "co_qualname", "co_lines", "co_positions", "co_linetable", "co_exceptiontable",
})
# string.Formatter's lookups of "0.__globals__"-style fields return the object itself.
FIELD_LOOKUPS = frozenset({"get_field", "get_value"})
# The kernel's own objects, reachable from its output streams (``sys.stdout.session``)
# and its shell: they forge or suppress a test cell's outputs.
KERNEL_ATTRIBUTES = frozenset({
    "session", "pub_thread", "parent_header", "iopub_socket", "iopub_thread",
    "comm_manager", "display_pub", "displayhook", "excepthook", "input_transformers_post",
    "input_transformers_cleanup", "ast_transformers", "user_ns", "user_global_ns",
    "set_custom_exc", "custom_exceptions", "showtraceback",
})
# Hooks torch calls for every module or autograd graph in the process (the checker's too).
GLOBAL_HOOK_PREFIX = "register_module_"
GLOBAL_HOOKS = frozenset({"saved_tensors_hooks", "disable_saved_tensors_hooks",
                          "save_on_cpu"})
# Views of raw memory: numpy's as_strided does not check its strides, and with an
# object's address (``id``, ``hash``, ``repr``) it rewrites any object in the process,
# a checker's code included.
RAW_MEMORY = frozenset({"as_strided", "as_strided_", "as_strided_scatter", "byte_bounds",
                        "DummyArray", "ctypes", "ctypeslib"})
# Files that an allowed library imports or unpickles (``matplotlib.use("module://x")``
# imports x.py from the working folder): an answer never writes them.
CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyw", ".so", ".pth", ".pkl", ".pickle", ".npy",
                           ".npz", ".pt", ".ckpt", ".ipynb"})
# What may follow ``sys.stdout`` / ``sys.stderr``.
STREAM_METHODS = frozenset({"write", "flush", "writelines"})
BUILTIN_NAMES = frozenset(dir(builtins))
# Builtins a test cell's own asserts use: rebinding one at the top level changes them.
TESTED_BUILTINS = frozenset({
    "print", "len", "abs", "float", "int", "bool", "str", "isinstance", "issubclass", "type",
    "range", "round", "min", "max", "sum", "all", "any", "list", "tuple", "dict", "set",
    "zip", "enumerate", "sorted", "repr", "getattr", "hasattr", "callable", "super", "object",
})
DUNDER = re.compile(r"^__\w+__$")
DUNDER_FIELD = re.compile(r"\{[^{}]*\.__\w+__")  # "{0.__globals__}".format(f)
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
                for module, name, bound, origin in _imports(node):
                    top = module.split(".")[0]
                    if top != "course_lib":
                        modules.add(top)
                    if in_imports_area:
                        context.imported[bound] = origin
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


def _imports(node) -> list[tuple[str, str, str, str]]:
    """(module, imported name or "", name bound, what the name is bound to) for an import
    statement; ``import torch.nn`` binds ``torch`` to torch, ``import torch.nn as t`` binds
    ``t`` to torch.nn."""
    if isinstance(node, ast.Import):
        return [(a.name, "", a.asname, a.name) if a.asname else
                (a.name, "", a.name.split(".")[0], a.name.split(".")[0]) for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return [(node.module, a.name, a.asname or a.name, f"{node.module}.{a.name}")
                for a in node.names]
    return []


def _attribute_reason(name: str) -> str | None:
    """Why reading or writing an attribute called ``name`` (on anything) is flagged."""
    if DUNDER.match(name) and name not in HARMLESS_DUNDERS:
        return f"accesses the attribute {name}"
    if name in INTERPRETER_ATTRIBUTES:
        return f"accesses {name}, the interpreter's own frames and code"
    if name in KERNEL_ATTRIBUTES:
        return f"accesses {name}, the kernel's own machinery"
    if name in RAW_MEMORY:
        return f"uses {name}, which reads and writes raw memory"
    if name in FIELD_LOOKUPS:
        return f"uses {name}, which looks attributes up by a string, like getattr"
    if name.startswith(GLOBAL_HOOK_PREFIX) or name in GLOBAL_HOOKS:
        return f"uses {name}, a hook torch calls for everyone's tensors (the checker's too)"
    return None


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
        self.called: set[int] = set()  # id() of getattr-like functions called directly

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
        for module, name, bound, origin in _imports(node):
            top = module.split(".")[0]
            if module == "sys" and (not name or origin in STANDARD_STREAMS):
                self._bind(node, bound, origin)
                continue
            if top == "course_lib":
                if name not in self.context.course_lib.get(module, ()):
                    imported = f"{module}.{name}" if name else module
                    self.flag(node, f"imports {imported} (only the imports cell's "
                                    "checkers may be imported from course_lib)")
            elif top not in self.context.modules:
                self.flag(node, f"imports {module}, which this assignment does not need")
            else:
                self._check_dotted(node, f"{module}.{name}" if name else module)
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
        looks_up = node.id in ATTRIBUTE_FUNCTIONS or self.aliases.get(node.id) in CALL_ONLY
        if looks_up and id(node) not in self.called:
            self.flag(node, f"passes {node.id} around (it may only be called, with a "
                            "constant attribute name)")
        if node.id in FORBIDDEN_NAMES:
            self.flag(node, f"uses {node.id}")
        elif DUNDER.match(node.id) and node.id not in HARMLESS_DUNDERS:
            self.flag(node, f"uses {node.id}")
        if isinstance(node.ctx, ast.Store | ast.Del):
            self._bind(node, node.id, None)

    def visit_Attribute(self, node):
        reason = _attribute_reason(node.attr)
        if reason:
            self.flag(node, reason)
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
            elif _root(node) is None and any(isinstance(n, ast.Call)
                                             for n in ast.walk(node.value)):
                self.flag(node, f"changes {ast.unparse(node)}, an attribute of what a call "
                                "returned (such as the class type(x))")
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
            if len(parts) > 2 and parts[2] not in STREAM_METHODS:
                self.flag(node, f"uses {dotted} (only write and flush of sys.stdout and "
                                "sys.stderr are allowed)")
            return
        reasons = [_attribute_reason(p) for p in parts[1:] if _attribute_reason(p)]
        if reasons:
            self.flag(node, reasons[0])
        if dotted in CALL_ONLY and id(node) not in self.called:
            self.flag(node, f"passes {dotted} around (it may only be called, with constant "
                            "attribute names)")
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
        elif isinstance(node.value, str) and "{" in node.value and DUNDER_FIELD.search(
                node.value):
            self.flag(node, "a format string that looks up a dunder attribute")
        elif isinstance(node.value, str):
            self._check_code_in_string(node)

    def _check_code_in_string(self, node) -> None:
        """A string that is code some library runs (a timer's statement, an annotation
        that typing evaluates) is scanned as code too."""
        text = node.value
        if "module://" in text:
            self.flag(node, "names a module to import (matplotlib's 'module://' backends)")
        if len(text) > 10_000 or not any(c in text for c in "(.[=:"):
            return  # a word or a sentence, not a statement worth running
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return
        inner = _CellScanner(self.context, dict(self.aliases), self.streams)
        inner.visit(tree)
        if inner.found:
            self.flag(node, f"a string holding code that {inner.found[0][1]}")

    # ---- statements that bind or change scope

    def visit_Assign(self, node):
        """``t = torch`` makes ``t`` an alias of torch (``t.allclose = f`` is caught)."""
        self.visit(node.value)
        plain = isinstance(node.value, ast.Attribute | ast.Name)
        origin = self.resolve(node.value) if plain else None
        if origin is None and _runtime_class(node.value):
            origin = RUNTIME_CLASS  # ``T = type(x)``: ``T.sum = f`` patches a class
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
            elif _runtime_class(base):
                self.flag(base, f"defines a subclass of {ast.unparse(base)}, a class found "
                                "at run time")
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

    def _match_binding(self, node, name: str | None) -> None:
        """``case check_x:``, ``case [*torch]``, ``case {**print}`` bind names too."""
        if name is None:
            return
        if name in FORBIDDEN_NAMES or (DUNDER.match(name) and name not in HARMLESS_DUNDERS):
            self.flag(node, f"uses {name}")
        self._bind(node, name, None)

    def visit_MatchAs(self, node):
        self._match_binding(node, node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node):
        self._match_binding(node, node.name)

    def visit_MatchClass(self, node):
        """``case object(f_globals=g)`` reads the attribute f_globals, like getattr."""
        for name in node.kwd_attrs:
            if _name_reason(name):
                self.flag(node, f"a match pattern looks up {name}: {_name_reason(name)}")
        self.generic_visit(node)

    def visit_MatchMapping(self, node):
        self._match_binding(node, node.rest)
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
        if any(k.arg == "allow_pickle" for k in node.keywords):
            self.flag(node, "allow_pickle: unpickling runs whatever the data says")
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name == "open":
            self._check_open(node)
        elif name in ATTRIBUTE_FUNCTIONS:
            self.called.add(id(node.func))
            self._check_attribute_function(node, name)
        elif name == "type" and len(node.args) == 3:
            self.flag(node, "creates a class with type(name, bases, namespace), whose "
                            "methods can have any name")
        elif self.resolve(node.func) in ATTRIBUTE_LOOKUPS:
            self.called.add(id(node.func))
            self._check_lookup(node)
        self._check_wrapper_copy(node)
        self.generic_visit(node)

    def _check_wrapper_copy(self, node) -> None:
        """functools.update_wrapper(target, source, assigned=names) and wraps(source)(target)
        copy attributes chosen by name (``__code__`` too) onto the target."""
        what = self.resolve(node.func)
        if what in ATTRIBUTE_COPIERS:
            self.called.add(id(node.func))
        if isinstance(node.func, ast.Call) and self.resolve(node.func.func) == "functools.wraps":
            target = node.args[0] if node.args else None
        elif what == "functools.update_wrapper":
            target = node.args[0] if node.args else None
        else:
            return
        if target is None or _root(target) in self.aliases or _root(target) is None:
            self.flag(node, f"copies attributes onto {ast.unparse(target) if target else '?'}"
                            ", which is imported or computed")
        call = node.func if what != "functools.update_wrapper" else node
        if len(call.args) > (2 if what == "functools.update_wrapper" else 1) or call.keywords:
            self.flag(node, "chooses the attributes functools copies (assigned=, updated=)")

    def _check_lookup(self, node) -> None:
        """``operator.attrgetter("a.b")``, ``operator.methodcaller("name", ...)``."""
        what = self.resolve(node.func)
        names = node.args if what == "operator.attrgetter" else node.args[:1]
        if not names or node.keywords and what == "operator.attrgetter":
            self.flag(node, f"{what} with a computed attribute name")
        for argument in names:
            if not (isinstance(argument, ast.Constant) and isinstance(argument.value, str)):
                self.flag(node, f"{what} with a computed attribute name")
                continue
            for part in argument.value.split("."):
                reason = _name_reason(part)
                if reason:
                    self.flag(node, f"{what}: {reason}")

    def _check_open(self, node) -> None:
        path = node.args[0] if node.args else None
        if not (isinstance(path, ast.Constant) and isinstance(path.value, str)):
            self.flag(node, "opens a file whose path is computed")
        elif path.value.startswith(("/", "~")) or ".." in Path(path.value).parts:
            self.flag(node, f"opens {path.value!r}, outside the working folder")
        elif Path(path.value).suffix.lower() in CODE_SUFFIXES:
            self.flag(node, f"opens {path.value!r}, a file Python imports or unpickles")

    def _check_attribute_function(self, node, name: str) -> None:
        attribute = node.args[1] if len(node.args) > 1 else None
        if not (isinstance(attribute, ast.Constant) and isinstance(attribute.value, str)):
            self.flag(node, f"{name} with a computed attribute name")
        elif _name_reason(attribute.value):
            self.flag(node, f"{name}: {_name_reason(attribute.value)}")
        elif name in ("setattr", "delattr") and (attribute.value in CHECKING_NAMES
                                                 or attribute.value.startswith("check")):
            self.flag(node, f"{name} of {attribute.value}, a function that tests use")
        if name in ("setattr", "delattr") and node.args:
            root = _root(node.args[0])
            if root in self.aliases:
                self.flag(node, f"{name} on {ast.unparse(node.args[0])}, which is imported")
            elif root is None:
                self.flag(node, f"{name} on {ast.unparse(node.args[0])}, what a call "
                                "returned (such as the class type(x))")


def _name_reason(name: str) -> str | None:
    """Why an attribute name given as a string (to getattr, attrgetter...) is flagged."""
    if name.startswith("_"):
        return f"the private attribute {name}"
    if name in FORBIDDEN_SEGMENTS:
        return f"the attribute {name}"
    return _attribute_reason(name)


RUNTIME_CLASS = "type(...)"  # the origin of a name bound to a class found at run time


def _runtime_class(node) -> bool:
    """``type(x)``, ``C.mro()[1]``: a class found at run time (torch.Tensor, say)."""
    while isinstance(node, ast.Subscript):
        node = node.value
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "type" and len(node.args) == 1) or (
        isinstance(func, ast.Attribute) and func.attr == "mro")


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
