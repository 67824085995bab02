"""The grader's static scan of answer cells (course_lib.grading.scan), the trusted-data
rules of recording (no partial credit), reading broken notebooks, and the feedback's
secret search after decoding. Fast: nothing here runs a kernel."""

from __future__ import annotations

import base64
import codecs
import copy
import gzip
import json
import zlib
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

from course_lib.grading.autograde import precheck, read_notebook
from course_lib.grading.leaks import decoded_views
from course_lib.grading.record import without_partial_credit
from course_lib.grading.scan import Context, scan_notebook, scan_source, zeroed_cells

ASSIGNMENT = "01_sparse_connectivity"
SOURCE = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
RELEASE = ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
CONTEXT = Context.from_source(SOURCE)


def flags(code: str) -> list[str]:
    return [reason for _, reason in scan_source(code, CONTEXT)]


# ------------------------------------------------------------------ constructs

FLAGGED = {
    "get_ipython": "get_ipython().events.register('pre_run_cell', f)",
    "input transformer": "ip = get_ipython()\nip.input_transformers_post.append(f)",
    "line magic": "%config InlineBackend.figure_format = 'svg'",
    "shell escape": "!cat /etc/passwd",
    "captured shell": "files = !ls /",
    "cell magic": "%%bash\nls /",
    "sys.displayhook": "import sys\nsys.displayhook = lambda value: None",
    "sys.modules": "import sys\nm = sys.modules['course_lib.connectivity']",
    "sys passed around": "import sys\ndef f(m):\n    return m.modules\nf(sys)",
    "sys.stdout replaced": "import sys\nsys.stdout = None",
    "from sys import modules": "from sys import modules",
    "builtins": "import builtins\nbuiltins.print = None",
    "__builtins__": "__builtins__['abs'] = len",
    "settrace": "import sys\nsys.settrace(None)",
    "setprofile via torch.sys": "torch.sys.setprofile(None)",
    "inspect": "import inspect\nsource = inspect.getsource(check_sparse_linear)",
    "gc": "import gc\nobjects = gc.get_objects()",
    "ctypes": "import ctypes\nctypes.string_at(0)",
    "importlib": "import importlib\nm = importlib.import_module('course_lib.connectivity')",
    "__import__": "m = __import__('course_lib.connectivity')",
    "exec": "exec('x = 1')",
    "eval": "y = eval('1 + 1')",
    "compile": "code = compile('x = 1', 'x', 'exec')",
    "globals": "globals()['check_sparse_linear'] = print",
    "locals": "names = locals()",
    "vars": "v = vars(torch)",
    "setattr on a module": "setattr(torch, 'allclose', lambda *a, **k: True)",
    "setattr with a computed name": "setattr(obj, name, value)",
    "getattr of a dunder": "g = getattr(check_sparse_linear, '__globals__')",
    "delattr on a module": "delattr(torch, 'equal')",
    "rebinding a checker": "check_sparse_linear = lambda f: None",
    "rebinding a checker by def": "def check_mask_module(Mask):\n    pass",
    "rebinding a checker by import": "from builtins import print as check_rate_rnn_step",
    "rebinding a module": "torch = None",
    "rebinding via global": "def f():\n    global check_sparse_linear\n    check_sparse_linear = 1",
    "rebinding via walrus": "(check_sparse_linear := print)",
    "rebinding a builtin": "isinstance = lambda *a: True",
    "patching torch.allclose": "torch.allclose = lambda *a, **k: True",
    "patching through an alias": "t = torch\nt.equal = lambda *a: True",
    "patching a submodule": "nn.functional.relu = abs",
    "patching Tensor.__eq__": "torch.Tensor.__eq__ = lambda a, b: True",
    "deleting an attribute": "del torch.allclose",
    "patching through a container": "modules = [torch]\nmodules[0].allclose = abs",
    "patching through a default": "def f(t=torch):\n    t.equal = abs\nf()",
    "patching after a local import": "def f():\n    import torch as t\n    t.ones = abs",
    "__code__": "check_sparse_linear.__code__ = (lambda f: None).__code__",
    "__globals__": "g = check_sparse_linear.__globals__",
    "__class__": "c = ().__class__.__base__.__subclasses__()",
    "__dict__": "torch.__dict__['allclose'] = print",
    "__torch_function__": (
        "class Liar(torch.Tensor):\n"
        "    @classmethod\n"
        "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "        return True\n"
    ),
    "tensor subclass": "class T(torch.Tensor):\n    pass",
    "comparison override": "class Always:\n    def __eq__(self, other):\n        return True",
    "private torch": "torch._C._set_grad_enabled(False)",
    "os": "import os\nos.system('true')",
    "os._exit": "import os as o\no._exit(0)",
    "subprocess": "import subprocess",
    "signal": "import signal\nsignal.alarm(1)",
    "socket": "import socket",
    "multiprocessing": "from multiprocessing import Process",
    "threading": "import threading",
    "pathlib": "from pathlib import Path",
    "open outside": "open('/etc/passwd').read()",
    "open upwards": "open('../../../gradebook.db', 'w')",
    "open computed": "open(path, 'w')",
    "torch.load": "state = torch.load('weights.pt')",
    "numpy loader": "import numpy as np\nnp.load('x.npy', allow_pickle=True)",
    "course_lib reference": "from course_lib.connectivity import random_sparse_mask",
    "course_lib package": "import course_lib",
    "course_lib checker module": "from course_lib.checks import sparse_connectivity",
    "course_lib private helper": "from course_lib.checks.sparse_connectivity import _common",
    "star import": "from torch import *",
    "relative import": "from . import something",
    "unknown module": "import requests",
    "dunder in a string": "import operator\nf = operator.attrgetter('__code__')",
    # --- found by red-teaming the scan (issue 12); each was unflagged before
    "getattr passed around": "g = getattr\nm = g(torch, 's' + 'ys').modules",
    "reduce over getattr": "import functools\nm = functools.reduce(getattr, ['sy' + 's'], torch)",
    "map over getattr": "m = list(map(getattr, [torch], ['s' + 'ys']))[0]",
    "getattr in a dict": "tools = {'get': getattr}\nm = tools['get'](torch, 'sy' + 's')",
    "setattr passed around": "import functools\nput = functools.partial(setattr, torch)",
    "getattr of sys by a constant": "m = getattr(torch, 'sys')",
    "getattr of a frame attribute": "def f(g):\n    return getattr(g, 'gi_frame')",
    "setattr of a checker's name": "setattr(module, 'check_sparse_linear', print)",
    "setattr on a call result": "setattr(type(torch.ones(1)), 'sum', abs)",
    "attrgetter with a computed name": (
        "import operator\nm = operator.attrgetter('s' + 'ys')(torch)"),
    "attrgetter of sys by a constant": (
        "from operator import attrgetter\nm = attrgetter('nn.modules.module.sys')(torch)"),
    "attrgetter passed around": "import operator\nget = operator.attrgetter",
    "methodcaller with a computed name": "import operator\nf = operator.methodcaller('_' * 2)",
    "Formatter.get_field": (
        "import string\nobj, _ = string.Formatter().get_field('0.x', [check_sparse_linear], {})"),
    "format string with a dunder field": "text = '{0.__globals__}'.format(check_sparse_linear)",
    "generator frame walk": (
        "def up():\n    def gen():\n        yield box[0].gi_frame.f_back\n"
        "    box = [gen()]\n    return next(box[0]).f_globals\n"),
    "frame builtins": "def f(frame):\n    return frame.f_builtins",
    "coroutine frame": "async def c():\n    pass\nglobals_ = c().cr_frame.f_globals",
    "traceback frame": "def f(tb):\n    return tb.tb_frame",
    "code object of a generator": "def g():\n    yield\nconsts = g().gi_code.co_consts",
    "match capture rebinds a checker": "match print:\n    case check_sparse_linear:\n        pass",
    "match star rebinds a module": "match [1, 2]:\n    case [*torch]:\n        pass",
    "match mapping rest rebinds": "match {}:\n    case {**check_mask_module}:\n        pass",
    "match capture rebinds a builtin": "match abs:\n    case isinstance:\n        pass",
    "match capture of a dunder": "match {}:\n    case __builtins__:\n        pass",
    "patching type(x)": "T = type(torch.ones(1))\nT.sum = lambda self: 15",
    "patching a class from mro()": "T = torch.nn.Parameter.mro()[1]\nT.detach = abs",
    "patching through a call": "type(torch.ones(1)).clone = lambda self: self",
    "subclass of type(x)": "class Liar(type(torch.ones(1))):\n    pass",
    "type() with three arguments": "Liar = type('Liar', (), {'_' * 2 + 'eq' + '_' * 2: abs})",
    "get_type_hints evaluates annotations": (
        "import typing\ndef f(x: 'print() or int'):\n    pass\ntyping.get_type_hints(f)"),
    "singledispatch evaluates annotations": (
        "import functools\n@functools.singledispatch\ndef f(x):\n    pass"),
    "a string holding code": "stmt = \"get_ipython().set_custom_exc((Exception,), print)\"",
    "torch.utils.benchmark runs strings": (
        "from torch.utils import benchmark\nbenchmark.Timer(stmt='x = 1').timeit(1)"),
    "numpy.testing.measure runs strings": "import numpy as np\nnp.testing.measure('x = 1', 1)",
    "torch.fx": "import torch.fx\ng = torch.fx.Graph()",
    "make_dataclass with a namespace": (
        "import dataclasses\nP = dataclasses.make_dataclass('P', [], namespace={})"),
    "the kernel's session": "import sys\nsession = sys.stdout.session",
    "the kernel's IO thread": "from sys import stdout\nstdout.pub_thread.schedule(print)",
    "a stream handed to a function": "import sys\ndef f(s):\n    return s.session\nf(sys.stdout)",
    "a global module hook": (
        "torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: o * 0)"),
    "a global module hook imported": (
        "from torch.nn.modules.module import register_module_forward_pre_hook"),
    "saved-tensor hooks kept open": (
        "def keep():\n    with torch.autograd.graph.saved_tensors_hooks(abs, abs):\n"
        "        yield\nk = keep()\nnext(k)"),
    "multiprocessing under another name": (
        "from torch.utils.data import dataloader\nmp = dataloader.python_multiprocessing"),
    "raw memory through as_strided": (
        "from numpy.lib.stride_tricks import as_strided\nv = as_strided(x, (2, 8), (1, 1))"),
    "raw memory through byte_bounds": (
        "from numpy.lib.array_utils import byte_bounds\nlow, high = byte_bounds(x)"),
    "raw memory through DummyArray": (
        "import numpy as np\na = np.asarray(np.lib.stride_tricks.DummyArray({}, None))"),
    "raw memory through ndarray.ctypes": "import numpy as np\np.zeros(1).ctypes.data",
    "unpickling a file-like object": (
        "import numpy as np\nnp.lib.format.read_array(handle, allow_pickle=True)"),
    "writing a module file": "with open('tamper.py', 'w') as handle:\n    handle.write('x')",
    "a match pattern reads a dunder": (
        "match check_sparse_linear:\n    case object(__wrapped__=inner):\n        pass"),
    "a match pattern reads a frame": "match g:\n    case object(f_globals=space):\n        pass",
    "update_wrapper onto a checker": (
        "import functools\nfunctools.update_wrapper(check_sparse_linear, print)"),
    "update_wrapper with chosen names": (
        "import functools\nfunctools.update_wrapper(f, g, assigned=(name,), updated=())"),
    "wraps onto a checker": "from functools import wraps\nwraps(print)(check_mask_module)",
    "update_wrapper passed around": (
        "import functools\ncopy = functools.partial(functools.update_wrapper, updated=())"),
    "a Formatter subclass sees looked-up objects": (
        "import string\nclass Spy(string.Formatter):\n    def format_field(self, value, spec):\n"
        "        return ''"),
    "a matplotlib module backend": (
        "import matplotlib.pyplot as plt\nplt.switch_backend('module://tamper')"),
}

# Each of these made every test cell of a wrong 01 submission pass in a real kernel
# (nbclient, the instructor's test cells) before the scan flagged it.
SUBVERTED_A_REAL_KERNEL = {
    "frames": (
        "def _spy(*args, **kwargs):\n"
        "    def gen():\n"
        "        yield box[0].gi_frame.f_back\n"
        "    box = [gen()]\n"
        "    frame = next(box[0])\n"
        "    while frame is not None:\n"
        "        space = frame.f_globals\n"
        "        if space.get('__name__', '').startswith('course_lib.checks'):\n"
        "            for name in list(space):\n"
        "                if name.startswith('check_'):\n"
        "                    space[name] = lambda *a, **k: None\n"
        "        frame = frame.f_back\n"
        "    raise ValueError('x')\n"
        "try:\n"
        "    check_random_sparse_mask(_spy)\n"
        "except AssertionError:\n"
        "    pass\n"
    ),
    "getattr alias": (
        "g, s = getattr, setattr\n"
        "checks = g(torch, 'sy' + 's').modules['course_lib.checks.sparse_connectivity']\n"
        "for name in ['check_random_sparse_mask', 'check_mask_module']:\n"
        "    s(checks, name, lambda *a, **k: None)\n"
    ),
    "attrgetter": (
        "import operator, functools\n"
        "checks = operator.attrgetter('sy' + 's.modules')(torch)['course_lib.checks.x']\n"
        "put = functools.partial(setattr, checks)\n"
    ),
    "Formatter": (
        "import string\n"
        "space, _ = string.Formatter().get_field('0.' + '_' * 2 + 'wrapped' + '_' * 2 + '.'"
        " + '_' * 2 + 'globals' + '_' * 2, [check_random_sparse_mask], {})\n"
        "space['check_mask_module'] = lambda *a, **k: None\n"
    ),
    "get_type_hints": (
        "import typing\n"
        "def _f(x: 'get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)"
        " or int'):\n"
        "    pass\n"
        "typing.get_type_hints(_f)\n"
    ),
    "benchmark Timer": (
        "from torch.utils import benchmark\n"
        "benchmark.Timer(stmt=\"__import__('IPython').get_ipython().set_custom_exc("
        "(BaseException,), lambda *a, **k: None)\").timeit(1)\n"
    ),
    "numpy.testing.measure": (
        "import numpy as np\n"
        "np.testing.measure('get_ipython().set_custom_exc((BaseException,), "
        "lambda *a, **k: None)', 1)\n"
    ),
    "numpy raw memory": (
        "import numpy as np\n"
        "from numpy.lib.stride_tricks import as_strided\n"
        "from numpy.lib.array_utils import byte_bounds\n"
        "def _noop(*args, **kwargs):\n"
        "    return None\n"
        "def _memory(address, size):\n"
        "    base = np.zeros(1, np.uint8)\n"
        "    low, _ = byte_bounds(base)\n"
        "    return as_strided(base, shape=(2, size), strides=(address - low, 1))[1]\n"
        "for _checker in [check_random_sparse_mask, check_mask_module]:\n"
        "    _memory(id(_checker) + 48, 8)[:] = _memory(id(_noop) + 48, 8)\n"
    ),
    "update_wrapper swaps a checker's code": (
        "import functools\n"
        "def _make():\n"
        "    a = b = None\n"
        "    def noop(*args, **kwargs):\n"
        "        return (a, b)\n"
        "    return noop\n"
        "for _checker in [check_random_sparse_mask, check_mask_module]:\n"
        "    functools.update_wrapper(_checker, _make(), assigned=('_' * 2 + 'code' + '_' * 2,),"
        " updated=())\n"
    ),
    "Formatter subclass": (
        "import string\n"
        "box = []\n"
        "class Spy(string.Formatter):\n"
        "    def format_field(self, value, spec):\n"
        "        box.append(value)\n"
        "        return ''\n"
        "Spy().format('{0.' + '_' * 2 + 'wrapped' + '_' * 2 + '.' + '_' * 2 + 'globals'"
        " + '_' * 2 + '}', check_random_sparse_mask)\n"
        "box[0]['check_mask_module'] = lambda *a, **k: None\n"
    ),
    "matplotlib backend module": (
        "with open('tamper.py', 'w') as handle:\n"
        "    handle.write('from IPython import get_ipython\\n'\n"
        "                 'get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)')\n"
        "import matplotlib.pyplot as plt\n"
        "try:\n"
        "    plt.switch_backend('module://tamper')\n"
        "except Exception:\n"
        "    pass\n"
    ),
}

HONEST = {
    "solution style": (
        "def random_sparse_mask(n_post, n_pre, density, seed=0, self_connections=True):\n"
        "    generator = torch.Generator().manual_seed(seed)\n"
        "    mask = (torch.rand(n_post, n_pre, generator=generator) < density).float()\n"
        "    if not self_connections:\n"
        "        mask.fill_diagonal_(0)\n"
        "    return mask\n"
    ),
    "module class": (
        "class Mask(nn.Module):\n"
        "    def __init__(self, mask):\n"
        "        super().__init__()\n"
        "        self.register_buffer('mask', mask)\n"
        "\n"
        "    def forward(self, w):\n"
        "        return w * self.mask\n"
    ),
    "old-style super": (
        "class M(nn.Module):\n    def __init__(self):\n        nn.Module.__init__(self)"
    ),
    "reimport": (
        "import torch\nfrom torch import nn\nimport torch.nn.utils.parametrize as parametrize"
    ),
    "alias of a submodule": "F = torch.nn.functional\ny = F.relu(torch.ones(2))",
    "numpy and math": "import numpy as np\nimport math\nx = np.zeros(3) + math.pi",
    "matplotlib": (
        "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\n"
        "plt.rcParams['figure.figsize'] = (4, 3)"
    ),
    "no_grad": "@torch.no_grad()\ndef f(w):\n    w[0] = 1\n    return w",
    "in-place on own tensors": "w = torch.zeros(2, 2)\nw[0, 1] = 3.0\nw.requires_grad_(True)",
    "comprehensions and lambdas": "xs = [i * i for i in range(4)]\nsq = lambda v: v ** 2",
    "local shadowing": "def f(sum, max):\n    torch = 3\n    return sum + max + torch",
    "parametrize": (
        "def sparse_linear(n_in, n_out, density, seed=0):\n"
        "    layer = nn.Linear(n_in, n_out)\n"
        "    parametrize.register_parametrization(layer, 'weight', Mask(torch.ones(2, 2)))\n"
        "    return layer\n"
    ),
    "calling checkers": "check_sparse_linear(sparse_linear)",
    "type hints and f-strings": "def f(x: torch.Tensor) -> str:\n    return f'{x.shape}'",
    "getattr with a plain name": "relu = getattr(torch, 'relu')",
    "open in the working folder": "with open('notes.txt', 'w') as handle:\n    handle.write('x')",
    "try and raise": "try:\n    x = 1 / 0\nexcept ZeroDivisionError as error:\n    print(error)",
    "time and dataclasses": "import time\nfrom dataclasses import dataclass\nstart = time.time()",
    "__name__ guard": "if __name__ == '__main__':\n    print('hi')",
    "torch.manual_seed": "torch.manual_seed(0)\nx = torch.randn(3)",
    "printing to stderr": (
        "import sys\nprint('debug', file=sys.stderr)\nsys.stdout.write('x')\n"
        "from sys import stderr\nprint(1, file=stderr)"
    ),
    "module with parameters": (
        "import torch.nn.functional as F\n"
        "from typing import Optional\n"
        "class Layer(nn.Module):\n"
        "    \"\"\"A masked layer.\"\"\"\n"
        "    def __init__(self, n: int, bias: Optional[bool] = None):\n"
        "        super().__init__()\n"
        "        self.weight = nn.Parameter(torch.randn(n, n) / math.sqrt(n))\n"
        "        self.weight.data.mul_(0.5)\n"
        "        self.grad_seen = None\n"
        "    def forward(self, x):\n"
        "        return F.relu(x @ self.weight.T)\n"
    ),
    "numpy generator and asserts": (
        "import numpy as np\nrng = np.random.default_rng(0)\nx = torch.from_numpy(rng.random(3))\n"
        "assert x.shape == (3,), x.shape\ny = x.clone().detach()\ny.grad = None"
    ),
    "dataclass": "from dataclasses import dataclass\n@dataclass\nclass P:\n    tau: float = 1.0",
    "class attributes": "class Config:\n    sum = 3\n    check_sparse_linear = None",
    "import of a submodule without as": "import torch.nn.functional\ny = torch.nn.functional.relu",
    "string annotations": (
        "from typing import ClassVar\nfrom dataclasses import dataclass\n@dataclass\n"
        "class P:\n    x: 'ClassVar[int]' = 1\n"
        "    def f(self, w: 'torch.Tensor') -> 'torch.Tensor':\n        return w"),
    "strings that look like code": (
        "print('mask = (w > 0).float()', 'x.shape[0]', 'done: 3 of 4')\n"
        "equation = torch.einsum('ij,jk->ik', torch.ones(2, 2), torch.ones(2, 2))"),
    "format strings": "print(f'{x.shape} {x.dtype!r}', '{0.shape}'.format(x), '{}'.format(1))",
    "getattr of an honest attribute": "w = getattr(layer, 'weight')\nok = hasattr(layer, 'bias')",
    "setattr on an own object": "setattr(self_made, 'alpha', 0.5)",
    "attrgetter with constant names": (
        "import operator\nshape_of = operator.attrgetter('shape')\nn = shape_of(torch.ones(2))"),
    "type of a value": "print(type(torch.ones(1)), type(3).__name__)",
    "match statement": (
        "match (1, 2):\n    case (a, *rest):\n        total = a + sum(rest)\n"
        "    case {'k': value, **others}:\n        pass"),
    "stream methods": "import sys\nsys.stdout.write('x')\nsys.stderr.flush()",
    "module hooks on own modules": (
        "layer = nn.Linear(2, 2)\nhandle = layer.register_forward_hook(lambda m, i, o: None)\n"
        "self_register = nn.Module()\nself_register.register_module('child', layer)"),
    "a decorator with functools.wraps": (
        "import functools\ndef logged(fn):\n    @functools.wraps(fn)\n"
        "    def inner(*args):\n        return fn(*args)\n    return inner"),
    "match class patterns": "match p:\n    case complex(real=0, imag=y):\n        pass",
    "sliding windows": (
        "import numpy as np\nv = np.lib.stride_tricks.sliding_window_view(np.arange(5), 3)"),
    "writing notes and figures": (
        "import matplotlib.pyplot as plt\nwith open('notes.txt', 'w') as handle:\n"
        "    handle.write('x')\nplt.savefig('figure.png')"),
}


@pytest.mark.parametrize("what", sorted(FLAGGED))
def test_the_scan_flags(what):
    assert flags(FLAGGED[what]), f"{what} was not flagged"


@pytest.mark.parametrize("what", sorted(SUBVERTED_A_REAL_KERNEL))
def test_attacks_that_subverted_a_real_kernel_zero_every_part(what):
    nb = _with("random_sparse_mask", SUBVERTED_A_REAL_KERNEL[what])
    found = scan_notebook(nb, SOURCE)
    assert found, f"{what} was not flagged"
    assert sorted(zeroed_cells(SOURCE, found)) == [
        "test_mask_module", "test_random_sparse_mask", "test_rate_rnn_step", "test_sparse_linear"
    ]


@pytest.mark.parametrize("what", sorted(HONEST))
def test_the_scan_passes_honest_code(what):
    assert flags(HONEST[what]) == [], what


def test_unparseable_code_is_not_tampering():
    assert flags("def f(:\n    return exec('x')") == []


def test_the_scan_says_what_and_where():
    found = scan_source("x = 1\ntorch.allclose = lambda *a, **k: True", CONTEXT)
    assert found == [(2, "changes torch.allclose, an attribute of an imported module, "
                         "class or function")]


@pytest.mark.parametrize("solution", sorted((ROOT / "solutions").glob("*/*.ipynb")),
                         ids=lambda p: p.stem)
def test_every_solution_and_release_passes_the_scan(solution):
    release = ROOT / "exercises" / solution.parent.name / solution.name
    for notebook in (solution, release):
        assert scan_notebook(json.loads(notebook.read_text()), solution) == []


def test_the_assignment_allowlist_comes_from_its_solution():
    fa = ROOT / "solutions" / "06_feedback_alignment" / "06_feedback_alignment.ipynb"
    assert "math" in Context.from_source(fa).modules
    dendritic = ROOT / "solutions" / "07_dendritic_error" / "07_dendritic_error.ipynb"
    context = Context.from_source(dendritic)
    assert scan_source("def f(u):\n    rate = u\n    return rate", context) == []
    assert scan_source("rate = lambda u: u", context), "rate is imported by the imports cell"


# ------------------------------------------------------------------ cells and parts


def _source_nb():
    return json.loads(SOURCE.read_text())


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _with(answer: str | None, code: str, nb=None) -> dict:
    """The release with the answer cell ``answer`` replaced by ``code`` (or, for None,
    a new cell with ``code`` added at the end)."""
    nb = copy.deepcopy(nb or json.loads(RELEASE.read_text()))
    if answer is None:
        nb["cells"].append(nbformat.v4.new_code_cell(code))
    for cell in nb["cells"]:
        if _grade_id(cell) == answer:
            cell["source"] = code
    return nb


def test_a_flagged_answer_zeroes_its_part_and_every_later_part():
    nb = _with("mask_module", "torch.equal = lambda *a: True")
    found = scan_notebook(nb, SOURCE)
    assert [(f.cell, f.whole_notebook) for f in found] == [("mask_module", False)]
    zeroed = zeroed_cells(SOURCE, found)
    assert sorted(zeroed) == ["test_mask_module", "test_rate_rnn_step", "test_sparse_linear"]


def test_a_flag_in_an_added_cell_zeroes_the_whole_notebook():
    found = scan_notebook(_with(None, "import os"), SOURCE)
    assert found and all(f.whole_notebook for f in found)
    assert sorted(zeroed_cells(SOURCE, found)) == [
        "test_mask_module", "test_random_sparse_mask", "test_rate_rnn_step", "test_sparse_linear"
    ]


def test_restored_cells_are_not_scanned_but_copies_of_them_are():
    nb = json.loads(RELEASE.read_text())
    imports = next(c for c in nb["cells"] if _grade_id(c) == "imports")
    imports["source"] += "\nimport os"  # nbgrader puts the locked cell back: harmless
    assert scan_notebook(nb, SOURCE) == []
    nb["cells"].append(copy.deepcopy(imports))  # a copy runs as submitted
    assert scan_notebook(nb, SOURCE)


def test_an_answer_cell_turned_markdown_is_still_scanned():
    nb = _with("random_sparse_mask", "import os")
    for cell in nb["cells"]:
        if _grade_id(cell) == "random_sparse_mask":
            cell["cell_type"] = "markdown"  # nbgrader turns it back into code
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    assert {f.cell for f in scan_notebook(nb, SOURCE)} == {"random_sparse_mask"}


# ------------------------------------------------------------------ reading submissions


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "is empty"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b'{"cells": [', "not JSON"),
        (b'{"hello": "world"}', "not a notebook"),
        (b"[1, 2, 3]", "not a notebook"),
        (json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {},
                     "worksheets": [{"cells": []}]}).encode(), "format 3"),
        (json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": [{"cell_type": 7}],
                     "metadata": {}}).encode(), "not a valid notebook"),
    ],
)
def test_a_broken_notebook_is_one_line(tmp_path, content, reason):
    path = tmp_path / f"{ASSIGNMENT}.ipynb"
    path.write_bytes(content)
    nb, why = read_notebook(path)
    assert nb is None and reason in why and "\n" not in why
    assert reason in precheck(tmp_path, [ASSIGNMENT]).reason


def test_precheck_scans_and_notes_a_bad_timestamp(tmp_path):
    nb = _with("rate_rnn_step", "import subprocess")
    (tmp_path / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb))
    (tmp_path / "timestamp.txt").write_text("not a date")
    result = precheck(tmp_path, [ASSIGNMENT], SOURCE.parent)
    assert result.reason == ""
    assert "timestamp.txt is not a date" in result.notes[0]
    assert any("rate_rnn_step" in line and "subprocess" in line for line in result.summary())


def test_hidden_test_markers_in_an_answer_comment_are_the_students_text():
    from course_lib.grading.feedback import HideHiddenTests

    answer = nbformat.v4.new_code_cell("# ### BEGIN HIDDEN TESTS\nx = 1")
    answer.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "a"}
    test = nbformat.v4.new_code_cell("check(f)\n### BEGIN HIDDEN TESTS\nsecret\n"
                                     "### END HIDDEN TESTS")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "t",
                                 "points": 1}
    added = nbformat.v4.new_code_cell("y = 2  # ### BEGIN HIDDEN TESTS")
    nb = nbformat.v4.new_notebook(cells=[answer, test, added])
    nb, _ = HideHiddenTests()(copy.deepcopy(nb), {})
    assert nb.cells[0].source == answer.source and nb.cells[2].source == added.source
    assert "secret" not in nb.cells[1].source


# ------------------------------------------------------------------ trusted grades


def test_test_cells_pass_or_fail_without_partial_credit():
    from nbgrader.utils import determine_grade

    test = nbformat.v4.new_code_cell("check(f)")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "t",
                                 "points": 2}
    test.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "0.5"},
                                           execution_count=1)]
    faked = copy.deepcopy(test)
    faked.outputs[0]["data"]["text/plain"] = "4000"
    nb = nbformat.v4.new_notebook(cells=[test, faked])
    assert determine_grade(test)[0] == 0.5  # nbgrader's partial credit: the check can fail
    with pytest.raises(ValueError):
        determine_grade(faked)  # above the maximum: nbgrader stops
    assert without_partial_credit(nb) == 2
    assert [determine_grade(c)[0] for c in nb.cells] == [2.0, 2.0]


# ------------------------------------------------------------------ decoding outputs

SECRET = "mask = (torch.rand(n_post, n_pre, generator=generator) < density).float()"


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: base64.b64encode(s.encode()).decode(),
        lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("="),
        lambda s: s.encode().hex(),
        lambda s: codecs.encode(s, "rot13"),
        lambda s: s[::-1],
        lambda s: base64.b64encode(zlib.compress(s.encode())).decode(),
        lambda s: base64.b64encode(gzip.compress(s.encode())).decode(),
        lambda s: zlib.compress(s.encode()).hex(),
        lambda s: base64.b64encode(base64.b64encode(s.encode())).decode(),
    ],
    ids=["base64", "urlsafe", "hex", "rot13", "reversed", "zlib+base64", "gzip+base64",
         "zlib+hex", "base64 twice"],
)
def test_decoded_views_undo_common_encodings(encode):
    text = f"Out[3]: some output\n{encode(SECRET)}\nmore output"
    assert SECRET not in text
    assert any(SECRET in view for view in decoded_views(text))


def test_decoding_leaves_honest_output_alone():
    text = "tensor([[1., 0.], [0., 1.]])\nAssertionError: column 3 has +0.31"
    assert all(SECRET not in view for view in decoded_views(text))


def test_a_feedback_page_with_a_secret_is_caught(tmp_path):
    from course_lib.grading.feedback import Secrets

    secrets = Secrets(lines={SECRET}, public=set(), by_student={
        "alice": set(), "bob": {"bobs_own_line = torch.ones(7) * 41"},
    })
    page = tmp_path / "page.html"
    encoded = base64.b64encode(zlib.compress(SECRET.encode())).decode()
    page.write_text(f"<html><body><pre>{encoded}</pre></body></html>")
    assert secrets.found_in(page, "alice")
    page.write_text("<pre>bobs_own_line = torch.ones(7) * 41</pre>")
    assert secrets.found_in(page, "alice") and not secrets.found_in(page, "bob")
    page.write_text(f"<pre>{SECRET}</pre>")
    secrets.by_student["alice"] = {SECRET}  # her own code, shown back to her
    assert not secrets.found_in(page, "alice")
    page.write_text("<pre>tensor([1., 0.])</pre>")
    assert not secrets.found_in(page, "bob")


def test_a_short_or_common_line_of_another_student_is_not_a_leak(tmp_path):
    """Bob's wrong 'return weight' is part of Alice's own right line: her page is hers."""
    from course_lib.grading.feedback import Secrets

    secrets = Secrets(lines=set(), public=set(), by_student={
        "alice": {"return weight * self.mask"},
        "bob": {"return weight", "weight = weight.masked_fill(mask == 0, 0.0)  # bob"},
    })
    page = tmp_path / "page.html"
    page.write_text("<pre>return weight * self.mask</pre>")
    assert not secrets.found_in(page, "alice")
    page.write_text("<pre>weight = weight.masked_fill(mask == 0, 0.0)  # bob</pre>")
    assert secrets.found_in(page, "alice")


def test_the_reference_guard_scan_reports_reference_imports(tmp_path):
    from course_lib.grading.reference_guard import scan_notebook as notes_of

    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(
        _with("random_sparse_mask", "from course_lib.connectivity import random_sparse_mask")
    ))
    assert "course_lib.connectivity" in notes_of(path, SOURCE)[0]
    assert notes_of(Path(RELEASE), SOURCE) == []
