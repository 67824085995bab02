"""The checkers' shared contract (course_lib/checks/_common.py): what a checker trusts and
how it names a mistake."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from catalogue import AlwaysEqual

from course_lib.checks import _common
from course_lib.checks._common import CheckFailure, call, close, fail, finite_gradient, tensor

CHECKS = Path(_common.__file__).parent


def _mistake(excinfo) -> str:
    return excinfo.value.mistake


def test_fail_carries_the_mistake_id_in_its_text():
    with pytest.raises(AssertionError) as excinfo:
        fail("dales_law.rows_not_columns", "signs act on columns")
    assert _mistake(excinfo) == "dales_law.rows_not_columns"
    assert str(excinfo.value) == "signs act on columns [mistake: dales_law.rows_not_columns]"


def test_every_checker_failure_names_its_mistake():
    """No checker uses the one-argument form fail(message): every id is explicit."""
    anonymous = []
    for module in sorted(CHECKS.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "fail" and len(node.args) < 2):
                anonymous.append(f"{module.name}:{node.lineno}")
    assert not anonymous, f"fail() without a mistake id at {anonymous}"


# ------------------------------------------------------------------ call


def test_call_reports_not_implemented_and_errors_in_the_students_terms():
    def stub(x):
        raise NotImplementedError()

    def broken(x):
        return x @ torch.ones(5)

    with pytest.raises(CheckFailure) as excinfo:
        call(stub, torch.ones(3), what="f(x)")
    assert _mistake(excinfo) == "common.not_implemented"
    with pytest.raises(CheckFailure, match=r"f\(x\) raised RuntimeError") as excinfo:
        call(broken, torch.ones(3), what="f(x)")
    assert _mistake(excinfo) == "common.raised"


@pytest.mark.parametrize(
    "in_place",
    [
        lambda w, m: w.mul_(m),
        lambda w, m: w.__setitem__(m == 0, 0.0) or w,
        lambda w, m: w.clamp_(min=0),
    ],
)
def test_call_catches_changes_of_the_callers_tensors(in_place):
    weight = torch.tensor([[1.0, -2.0], [3.0, 4.0]])
    mask = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(CheckFailure, match="changed its argument w in place") as excinfo:
        call(in_place, weight, mask, what="masked(w, m)")
    assert _mistake(excinfo) == "common.in_place"


def test_call_allows_a_new_tensor_and_sees_nan_inputs_as_unchanged():
    weight = torch.tensor([float("nan"), 1.0])
    result = call(lambda w: w * 2, weight, what="double(w)")
    assert torch.equal(result[1:], torch.tensor([2.0]))


def test_call_catches_use_of_the_global_random_generator_and_restores_it():
    state = torch.get_rng_state()

    def reseeds(n, seed):
        torch.manual_seed(seed)
        return torch.rand(n)

    with pytest.raises(CheckFailure) as excinfo:
        call(reseeds, 3, 0, what="random(3, seed=0)")
    assert _mistake(excinfo) == "common.global_rng"
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(7)  # the notebook ran the function once: the generator is at its seed
    with pytest.raises(CheckFailure) as excinfo:
        call(reseeds, 0, 7, what="random(0, seed=7)")
    assert _mistake(excinfo) == "common.global_rng"
    generator = torch.Generator().manual_seed(0)
    call(lambda n: torch.rand(n, generator=generator), 3, what="random(3)")
    call(lambda n: torch.rand(n), 3, what="init(3)", uses_global_rng=True)


def test_call_watches_numpys_and_pythons_generators_for_random_functions():
    """Students' legacy global-generator calls are the point here (hence the noqa)."""
    import random

    for draw in (lambda n: np.random.rand(n), lambda n: random.random() + n):  # noqa: NPY002
        call(draw, 3, what="deterministic(3)")  # not watched unless the function is random
        with pytest.raises(CheckFailure) as excinfo:
            call(draw, 3, what="random(3)", all_generators=True)
        assert _mistake(excinfo) == "common.global_rng"
    np.random.seed(5)  # noqa: NPY002
    numpy_state = np.random.get_state()  # noqa: NPY002
    with pytest.raises(CheckFailure):  # reseeding to where the generator already was
        call(lambda n: np.random.seed(5), 3, what="random(3)",  # noqa: NPY002
             all_generators=True)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])  # noqa: NPY002


# ------------------------------------------------------------------ tensor


@pytest.mark.parametrize(
    ("value", "mistake"),
    [
        (None, "common.wrong_type"),
        ([1.0, 2.0], "common.wrong_type"),
        (np.ones(2), "common.wrong_type"),
        (torch.ones(2).as_subclass(AlwaysEqual), "common.tensor_subclass"),
        (torch.eye(2).to_sparse(), "common.sparse"),
        (torch.ones(2, dtype=torch.int64), "common.wrong_dtype"),
        (torch.ones(3), "common.wrong_shape"),
        (torch.tensor([1.0, float("inf")]), "common.not_finite"),
    ],
)
def test_tensor_accepts_plain_float_tensors_only(value, mistake):
    with pytest.raises(CheckFailure) as excinfo:
        tensor(value, "f(x)", shape=(2,), dtype=torch.float32)
    assert _mistake(excinfo) == mistake


def test_tensor_returns_a_private_copy_and_accepts_parameters():
    value = torch.nn.Parameter(torch.ones(2))
    copy = tensor(value, "f(x)", shape=(2,), dtype=torch.float32)
    assert type(copy) is torch.Tensor and not copy.requires_grad
    copy += 1
    assert torch.equal(value.detach(), torch.ones(2))


def test_finite_gradient():
    x = torch.zeros(3, requires_grad=True)
    x.sqrt().sum().backward()  # the derivative of sqrt at 0 is inf
    with pytest.raises(CheckFailure) as excinfo:
        finite_gradient(x.grad, "norm(x)")
    assert _mistake(excinfo) == "common.gradient_not_finite"
    with pytest.raises(CheckFailure) as excinfo:
        finite_gradient(None, "norm(x)")
    assert _mistake(excinfo) == "common.no_gradient"


def test_close_ignores_a_patched_torch_allclose(monkeypatch):
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch, "equal", lambda *a, **k: True)
    assert not close(torch.zeros(2), torch.ones(2))
    assert close(torch.ones(2), torch.ones(2) + 1e-8)
