"""Small helpers shared by the checkers.

A checker runs in the student's kernel, after the student's answer cells. It therefore
trusts nothing an answer cell could have rebound or patched:

- the torch functions it compares with are **private references taken when this module
  is imported** (the imports cell runs before any answer cell), so patching
  ``torch.allclose`` or ``torch.equal`` in an answer cell changes nothing here;
- it accepts **exact types only** (`tensor`): a tensor subclass that answers ``True`` to
  every comparison is rejected, and what it compares is a private copy;
- it calls the student's code through `call`, which hands over copies of the arguments,
  checks the caller's tensors were not changed in place and the global random state was
  not touched, and turns every exception into a message in the student's terms.

Every failure carries a **stable mistake id** (``"dales_law.rows_not_columns"``) next to
its message: `fail` raises `CheckFailure`, whose text ends with ``[mistake: <id>]``. The
ids are what the class report counts, so an id never changes meaning once released.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
from typing import NoReturn

import numpy as np
import torch

from course_lib._threads import one_thread
from course_lib.grading.reference_guard import ReferenceWatch, is_reference

# Private references (see the module docstring).
_Generator = torch.Generator
_Tensor = torch.Tensor
_Parameter = torch.nn.Parameter
_allclose = torch.allclose
_equal = torch.equal
_isfinite = torch.isfinite
_rand = torch.rand
_py_getstate, _py_setstate, _py_random = random.getstate, random.setstate, random.random
_np_get_state, _np_set_state, _np_random = (np.random.get_state, np.random.set_state,
                                            np.random.random)
_np_array_equal = np.array_equal
_get_rng_state = torch.get_rng_state
_set_rng_state = torch.set_rng_state
_strided = torch.strided
_cpu = torch.device("cpu")
_float64 = torch.float64
_isinstance = isinstance
_type = type
_environ = os.environ
_sha256 = hashlib.sha256


def single_threaded(check):
    """Run a checker on one CPU thread: its tensors are tiny, and several threads only
    fight each other (and other students' notebooks on a shared grader)."""
    return functools.wraps(check)(one_thread()(check))


class CheckFailure(AssertionError):
    """A checker's verdict: what is wrong (``message``) and which mistake it is (``mistake``)."""

    def __init__(self, mistake: str, message: str):
        super().__init__(f"{message} [mistake: {mistake}]")
        self.mistake = mistake
        self.message = message


def fail(mistake: str, message: str | None = None) -> NoReturn:
    """Raise the failure ``mistake`` (a stable id such as ``"rflo.trace_not_decayed"``)
    with ``message`` for the student. ``fail(message)`` alone is the old form, kept only
    until every checker names its mistakes (tests/test_checks_common.py counts them)."""
    if message is None:
        mistake, message = "unclassified", mistake
    raise CheckFailure(mistake, message)


# ------------------------------------------------------------------ calling student code


def _snapshot(value):
    """A private copy of every tensor inside ``value`` (tuples, lists and dicts walked)."""
    if _type(value) in (_Tensor, _Parameter):
        return value.detach().clone()
    if _isinstance(value, (list, tuple)):
        return [_snapshot(v) for v in value]
    if _isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    return None


def _changed(before, after) -> bool:
    if before is None:
        return False
    if _type(before) is _Tensor:
        if not _isinstance(after, _Tensor):
            return True
        now = after.detach()
        if now.shape != before.shape or now.dtype != before.dtype:
            return True
        return not _equal(now.nan_to_num(0.123), before.nan_to_num(0.123))
    if _isinstance(before, list):
        return not _isinstance(after, (list, tuple)) or any(
            _changed(b, a) for b, a in zip(before, after, strict=False))
    if _isinstance(before, dict):
        return not _isinstance(after, dict) or any(
            _changed(b, after.get(k)) for k, b in before.items())
    return False


def _global_generators(all_generators: bool):
    """The states of torch's global random generator, and of numpy's and Python's."""
    if not all_generators:
        return (_get_rng_state(),)
    return _get_rng_state(), _np_get_state(), _py_getstate()


def _advance_generators(all_generators: bool) -> None:
    """Draw once from each watched generator: a function that reseeds a generator to
    where it was is then seen too."""
    _rand(1)
    if all_generators:
        _np_random()
        _py_random()


def _same_generators(a, b) -> bool:
    if not _equal(a[0], b[0]):
        return False
    if len(a) == 1:
        return True
    numpy_a, numpy_b = a[1], b[1]
    return (a[2] == b[2] and numpy_a[0] == numpy_b[0]
            and _np_array_equal(numpy_a[1], numpy_b[1]) and numpy_a[2:] == numpy_b[2:])


def _restore_generators(states) -> None:
    _set_rng_state(states[0])
    if len(states) > 1:
        _np_set_state(states[1])
        _py_setstate(states[2])


def _argument_names(fn, args, kwargs) -> list[tuple[str, object]]:
    names = getattr(getattr(fn, "__code__", None), "co_varnames", ())
    positional = [(names[i] if i < len(names) else f"argument {i + 1}", a)
                  for i, a in enumerate(args)]
    return positional + list(kwargs.items())


def call(fn, *args, what: str, allow_in_place: bool = False, uses_global_rng: bool = False,
         all_generators: bool = False, **kwargs):
    """Call the student's ``fn(*args, **kwargs)``; ``what`` names the call in messages.

    - an exception becomes a failure that names the call (``NotImplementedError``: not
      done yet);
    - unless ``allow_in_place``, a tensor argument changed by the call fails with
      ``common.in_place`` (the instructions never ask for in-place changes of inputs);
    - unless ``uses_global_rng``, a call that draws from or reseeds torch's global random
      generator (and, with ``all_generators``, numpy's or Python's: for functions meant to
      be random, since other libraries may touch those legitimately) fails with
      ``common.global_rng`` (everything random takes a seed or a generator); the watched
      states are restored either way.
    """
    before = [(name, _snapshot(value)) for name, value in _argument_names(fn, args, kwargs)]
    saved = _global_generators(all_generators)
    _advance_generators(all_generators)
    before_call = _global_generators(all_generators)
    try:
        result = fn(*args, **kwargs)
    except CheckFailure:
        raise
    except NotImplementedError:
        fail("common.not_implemented", f"{what} is not implemented yet (it raised "
             "NotImplementedError): replace the `raise NotImplementedError()` with your code.")
    except Exception as error:  # noqa: BLE001 - any error becomes feedback
        fail("common.raised", f"{what} raised {_type(error).__name__}: {error}")
    finally:
        rng_changed = not _same_generators(_global_generators(all_generators), before_call)
        _restore_generators(saved)
    if rng_changed and not uses_global_rng:
        fail("common.global_rng", f"{what} used or reseeded a global random generator "
             "(torch.manual_seed, torch.rand/randn/randperm without generator=, np.random.seed, "
             "np.random.choice, random.shuffle, or a randomised "
             "routine such as torch.pca_lowrank): draw random numbers only from the seed or "
             "torch.Generator the function is given, and compute everything else exactly, so "
             "that results are reproducible and nothing else in the notebook is affected.")
    if not allow_in_place:
        for (name, snapshot), (_, value) in zip(before, _argument_names(fn, args, kwargs),
                                                    strict=True):
            if _changed(snapshot, value):
                fail("common.in_place", f"{what} changed its argument {name} in place: compute "
                     "a new tensor instead (e.g. `x = x * m`, not `x *= m` or `x[...] = ...` "
                     "on the input), because the caller still needs the original.")
    return result


# ------------------------------------------------------------------ what the student returned


def tensor(value, what: str, *, shape: tuple[int, ...] | None = None,
           dtype: torch.dtype | None = None, finite: bool = True,
           keep_graph: bool = False) -> torch.Tensor:
    """Check that ``value`` is a plain dense CPU ``torch.Tensor`` (an ``nn.Parameter`` is
    accepted too), optionally of a given ``shape`` and ``dtype`` and finite; return a
    private copy (detached unless ``keep_graph``: then the value itself, for a backward
    pass, after the type checks)."""
    kind = _type(value)
    if kind is not _Tensor and kind is not _Parameter:
        if _isinstance(value, _Tensor):
            fail("common.tensor_subclass", f"{what} must return a plain torch.Tensor, got a "
                 f"subclass ({kind.__module__}.{kind.__name__}).")
        name = "None (did you forget `return`?)" if value is None else \
            f"{kind.__module__}.{kind.__name__}"
        fail("common.wrong_type", f"{what} must return a torch.Tensor, got {name}.")
    if value.layout != _strided:
        fail("common.sparse", f"{what} returned a sparse tensor ({value.layout}): return a "
             "dense tensor (call .to_dense() on it).")
    if value.device != _cpu:
        fail("common.device", f"{what} returned a tensor on {value.device}: keep it on the CPU "
             "like its inputs.")
    if shape is not None and tuple(value.shape) != tuple(shape):
        fail("common.wrong_shape", f"{what} has shape {tuple(value.shape)} but should have "
             f"shape {tuple(shape)}.")
    if dtype is not None and value.dtype != dtype:
        hint = ""
        if not value.dtype.is_floating_point and dtype.is_floating_point:
            hint = " (an integer or boolean tensor: later arithmetic needs floats)"
        fail("common.wrong_dtype", f"{what} has dtype {value.dtype} but should have dtype "
             f"{dtype}{hint}.")
    if finite and value.numel() and not bool(_isfinite(value.detach()).all()):
        fail("common.not_finite", f"{what} contains NaN or inf: look for a division by zero, "
             "a log or square root of zero, or a norm of a zero vector.")
    if keep_graph:
        return value
    return value.detach().clone()


def as_tensor(value, what: str) -> torch.Tensor:
    """The older form of `tensor`: the type checks only, and the value itself (graph kept)."""
    return tensor(value, what, finite=False, keep_graph=True)


def finite_gradient(gradient, what: str) -> torch.Tensor:
    """A gradient that exists and is finite (a function meant to be trained through)."""
    if gradient is None:
        fail("common.no_gradient", f"{what}: no gradient flows back to the input; do not "
             "detach it or convert it to numpy inside the function.")
    if not bool(_isfinite(gradient).all()):
        fail("common.gradient_not_finite", f"{what}: the gradient contains NaN or inf, "
             "although the value is finite; typical causes are sqrt or rsqrt of zero, or a "
             "norm or distance of identical points (clamp before the square root).")
    return gradient.detach().clone()


# ------------------------------------------------------------------ comparing


def worst_entry(actual: torch.Tensor, expected: torch.Tensor) -> str:
    """'entry (i, j) is a but should be b' for the largest difference."""
    diff = (actual.detach().to(_float64) - expected.detach().to(_float64)).abs()
    index = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
    return f"entry {index} is {actual[index].item():.4g} but should be {expected[index].item():.4g}"


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-6) -> bool:
    """Same shape and equal within ``tol`` (absolute and relative), compared in float64.
    Tolerances must fit float32 work: 1e-6 relative is about 8 float32 ulps."""
    return a.shape == b.shape and _allclose(
        a.detach().to(_float64), b.detach().to(_float64), atol=tol, rtol=tol
    )


def generator(seed: int) -> torch.Generator:
    """A private ``torch.Generator`` seeded with ``seed`` (the checker's own cases)."""
    rng = _Generator()
    rng.manual_seed(int(seed))
    return rng


def variant(seed: int) -> int:
    """The seed of a hidden case for the student being graded: ``seed`` itself when
    ``$COURSE_VARIANT`` is unset or empty (no course secret), else a 31-bit seed drawn
    from SHA-256 of the student's key and ``seed`` (see `course_lib.grading.variants`)."""
    key = _environ.get("COURSE_VARIANT", "")
    if not key:
        return int(seed)
    digest = _sha256(f"{key}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def own_work(assignment: str, references: tuple):
    """Decorator for a checker ``check(fn, seed)``: fail with ``<assignment>.uses_reference``
    a submission that runs one of the course's ``references`` (imported, wrapped or
    aliased) instead of its own code; a profile hook watches what executes during the
    check. ``allow_reference=True`` lets the course's own tests build cases on the
    reference."""

    def decorate(check):
        @functools.wraps(check)
        def checked(fn, seed: int = 0, *, allow_reference: bool = False) -> None:
            if allow_reference:
                return check(fn, seed)
            message = (f"your {check.__name__.removeprefix('check_')} uses the course's "
                       "reference implementation (course_lib) instead of your own code: write "
                       "it yourself; the reference is there to check your work, not to be "
                       "submitted.")
            if is_reference(fn, *references):
                fail(f"{assignment}.uses_reference", message)
            with ReferenceWatch(*references) as watch:
                check(fn, seed)
            if watch.called:
                fail(f"{assignment}.uses_reference", message)
            return None

        return checked

    return decorate


# ------------------------------------------------------------------ naming a wrong value


def scale_factor(out: torch.Tensor, expected: torch.Tensor, tol: float) -> float | None:
    """c if ``out`` is c times ``expected`` (a wrong normalisation), else None."""
    e, o = expected.to(_float64), out.to(_float64)
    norm = float((e * e).sum())
    if norm == 0.0:
        return None
    c = float((o * e).sum()) / norm
    return c if abs(c) > 1e-3 and close(out, c * e, tol) else None  # (zeros: not a scale)


def clipped_range(out: torch.Tensor, expected: torch.Tensor,
             tol: float) -> tuple[float, float] | None:
    """(low, high) if ``out`` is ``expected`` clipped to [low, high] (a limit nobody asked
    for), else None."""
    low, high = float(out.min()), float(out.max())
    if high - low <= tol:  # a constant is not a clipped formula
        return None
    reached = float(expected.min()) < low - tol or float(expected.max()) > high + tol
    return (low, high) if reached and close(out, expected.clamp(low, high), tol) else None


def judge(out, expected, what: str, mistakes, case: tuple, name: str, formula: str, *,
          assignment: str, tol: float) -> None:
    """Pass if ``out`` matches ``expected``; else fail with the first of ``mistakes(*case)``
    (``(mistake_id, message, wrong_value)`` triples) that matches, or say that ``out`` is
    the formula clipped, or by what factor it is off, or where it differs most. The ids
    are ``<assignment>.<mistake_id>`` and ``<assignment>.<name>_clipped|_scaled|_wrong_value``."""
    if close(out, expected, tol):
        return
    for mistake_id, message, wrong in mistakes(*case):
        if wrong is not None and close(out, wrong, tol):
            fail(f"{assignment}.{mistake_id}", f"{what}: {message}.")
    limits = clipped_range(out, expected, tol)
    if limits is not None:
        fail(f"{assignment}.{name}_clipped", f"{what} is {formula} clipped to "
             f"[{limits[0]:.4g}, {limits[1]:.4g}]: the formula has no limit, do not clamp it.")
    factor = scale_factor(out, expected, tol)
    if factor is not None:
        fail(f"{assignment}.{name}_scaled", f"{what} is {factor:.4g} times {formula}: look "
             "for a wrong normalisation (a division by the wrong size, or a missing one).")
    fail(f"{assignment}.{name}_wrong_value",
         f"{what} differs from {formula}: {worst_entry(out, expected)}.")
