"""Checkers for assignment 12_predictive_coding.

The references are `course_lib.learning_rules.predictive_coding` (Whittington & Bogacz
2017) and `course_lib.learning_rules.equilibrium_propagation` (Scellier & Bengio 2017).
Layers run from the input ``x_0`` to the output ``x_L``; ``weights[l]`` is ``W_l``, the
``(n_{l+1}, n_l)`` matrix from layer ``l`` to ``l + 1``; tensors are ``(batch, units)``::

    error nodes      eps_l  = (x_l - W_{l-1} f(x_{l-1})) / sigma_l^2     (eps_0 = 0)
    inference step   x_l   <- x_l + step_size (-eps_l + f'(x_l) * (eps_{l+1} @ W_l))
                     (hidden layers only: the input and the output stay clamped)
    Hebbian update   dW_l   = eps_{l+1}^T f(x_l) / batch
    EqProp update    dW_l   = (rho(s^b_{l+1})^T rho(s^b_l) - rho(s^0_{l+1})^T rho(s^0_l))
                              / (batch beta)
    symmetric        dW_l   = (H(s^{+b}) - H(s^{-b})) / (2 beta)

with ``f = tanh`` and ``rho(s) = sigmoid(4 s - 2)``. Each check runs seeded cases in
float32 (the course's dtype) and in float64: first networks whose layers all have the same
width (so that a wrong layer index or transposed weights still give numbers, which the
check can name), then networks of different widths, then the test cell's example. It
computes the expected values itself, in float64, with private references to torch taken
at import (an answer cell that patches torch changes neither the cases nor the expected
values). When an answer is wrong it names the mistake from a table of plausible ones, or
else says by what factor it is off, or which layer and entry differ most; a wrong
inference step that the right one would not have made is also told whether it moved a
clamped layer or climbs the energy ``F = sum_l sigma_l^2 ||eps_l||^2 / 2`` that inference
descends. Every failure has a stable id ``predictive_coding.<mistake>``.
"""

from __future__ import annotations

import torch

from course_lib.checks._common import (
    CheckFailure,
    call,
    close,
    fail,
    own_work,
    scale_factor,
    single_threaded,
    tensor,
    worst_entry,
)
from course_lib.checks._common import (
    generator as _generator,
)
from course_lib.learning_rules import equilibrium_propagation as _eqprop
from course_lib.learning_rules import predictive_coding as _pc

# Private references (see `_common`).
_randn = torch.randn
_rand = torch.rand
_zeros_like = torch.zeros_like
_cat = torch.cat
_tanh = torch.tanh
_sigmoid = torch.sigmoid
_as_tensor = torch.tensor
_isfinite = torch.isfinite
_Tensor = torch.Tensor
_Parameter = torch.nn.Parameter
_float32 = torch.float32
_float64 = torch.float64
_type = type
_isinstance = isinstance
_len = len
_list = list

TOL = 1e-5  # absolute and relative: a correct float32 computation is well inside it
ASSIGNMENT = "predictive_coding"

_REFERENCES = (_pc.error_nodes, _pc.inference_step, _pc.hebbian_update,
               _eqprop.eqprop_update, _eqprop.symmetric_eqprop_update, _eqprop.hebbian_term,
               _eqprop.chl_update)
_own_work = own_work(ASSIGNMENT, _REFERENCES)


# ---------------------------------------------------------------- the model, in float64


def _f(x: torch.Tensor) -> torch.Tensor:
    return _tanh(x)


def _f_prime(x: torch.Tensor) -> torch.Tensor:
    return 1 - _tanh(x) ** 2


def _rho(s: torch.Tensor) -> torch.Tensor:
    return _sigmoid(4 * s - 2)


def _rho_prime(s: torch.Tensor) -> torch.Tensor:
    r = _rho(s)
    return 4 * r * (1 - r)


def _f64(tensors) -> list[torch.Tensor]:
    return [t.to(_float64) for t in tensors]


def _square(values) -> bool:
    """Every layer has the same width (a wrong layer index or transposed weights still
    compute, and the check can name them)."""
    return _len({t.shape[-1] for t in values}) == 1


def _errors(values, weights, variances, *, prediction=None, scale=None):
    """eps_l = (x_l - mu_l) / sigma_l^2 in float64; ``prediction(k)`` (mu_{k+1}) and
    ``scale(e, k)`` (the division of layer k + 1's error) replaced for a mistake."""
    x, w = _f64(values), _f64(weights)
    prediction = prediction or (lambda k: _f(x[k]) @ w[k].T)
    scale = scale or (lambda e, k: e / variances[k + 1])
    return [_zeros_like(x[0])] + [scale(x[k + 1] - prediction(k), k) for k in range(_len(w))]


# ---------------------------------------------------------------- checking a list of layers


def _same_layers(out, expected) -> bool:
    return _len(out) == _len(expected) and all(close(o, e, TOL) for o, e in
                                               zip(out, expected, strict=True))


def _layers(value, what: str, expected, dtype, name: str, item: str, hint: str):
    """The student's list: a list or tuple of plain tensors, one per ``item``, each of
    the expected shape and dtype and finite; returns private float64 copies."""
    if _type(value) not in (_list, tuple):
        kind = "None (did you forget `return`?)" if value is None else _type(value).__name__
        fail(f"{ASSIGNMENT}.{name}_not_a_list",
             f"{what} must return a list of tensors, one per {item}, got {kind}: {hint}.")
    if _len(value) != _len(expected):
        fail(f"{ASSIGNMENT}.{name}_length",
             f"{what} returned {_len(value)} tensors for a network of {_len(expected)} "
             f"{item}s: {hint}.")
    layers = []
    for k, (layer, right) in enumerate(zip(value, expected, strict=True)):
        label = f"{what}[{k}]"
        out = tensor(layer, label, finite=False)
        if tuple(out.shape) != tuple(right.shape):
            if out.dim() == 2 and tuple(out.shape) == tuple(right.shape)[::-1]:
                fail(f"{ASSIGNMENT}.{name}_transposed",
                     f"{label} has shape {tuple(out.shape)}, the transpose of "
                     f"{tuple(right.shape)}: {hint}.")
            fail(f"{ASSIGNMENT}.{name}_shape",
                 f"{label} has shape {tuple(out.shape)}; it should be {tuple(right.shape)}: "
                 f"{hint}.")
        if out.dtype != dtype:
            fail("common.wrong_dtype",
                 f"{label} has dtype {out.dtype} for {dtype} inputs: keep the dtype of the "
                 "inputs (do not convert with .float() or .double(), and do not build a new "
                 "tensor with torch.tensor(...) from the numbers).")
        if not bool(_isfinite(out).all()):
            fail("common.not_finite",
                 f"{label} contains NaN or inf although every input is finite.")
        layers.append(out.to(_float64))
    return layers


def _judge_layers(out, expected, what: str, mistakes, name: str, formula: str,
                  then=None) -> None:
    """Pass if every layer matches; else name the first mistake of ``mistakes()`` (triples
    ``(id, message, wrong layers or None)``) that matches, or what ``then()`` names (a
    check of one layer, which fails or returns), or the factor the answer is off by, or
    the first layer that differs and its worst entry."""
    if _same_layers(out, expected):
        return
    for mistake_id, message, wrong in mistakes():
        if wrong is not None and _same_layers(out, wrong):
            fail(f"{ASSIGNMENT}.{mistake_id}", f"{what}: {message}.")
    if then is not None:
        then()
    factor = scale_factor(_cat([o.flatten() for o in out]),
                          _cat([e.flatten() for e in expected]), TOL)
    if factor is not None:
        fail(f"{ASSIGNMENT}.{name}_scaled", f"{what} is {factor:.4g} times {formula}: look "
             "for a wrong normalisation (a division by the wrong size, or a missing one).")
    k = next(k for k, (o, e) in enumerate(zip(out, expected, strict=True))
             if not close(o, e, TOL))
    fail(f"{ASSIGNMENT}.{name}_wrong_value",
         f"{what}[{k}] differs from {formula}: {worst_entry(out[k], expected[k])}.")


def _call(fn, lists: dict, what: str, **options):
    """Call ``fn(*lists.values(), **options)`` on fresh lists of copies, and name an
    in-place change: of a caller's list (an item replaced) or of one of its tensors."""
    given = {name: _list(t.clone() for t in tensors) for name, tensors in lists.items()}
    items = {name: _list(tensors) for name, tensors in given.items()}
    value = call(fn, *given.values(), what=what, allow_in_place=True, **options)
    for name, tensors in lists.items():
        now, handed = given[name], items[name]
        if _len(now) != _len(handed) or any(a is not b for a, b in zip(now, handed,
                                                                           strict=True)):
            fail(f"{ASSIGNMENT}.list_changed_in_place",
                 f"{what} changed the caller's list `{name}` (an item was replaced, added or "
                 f"removed, as by `{name}[k] = ...`): the caller still needs it. Copy it "
                 f"first, `new = list({name})`, change and return the copy.")
        for k, (before, after) in enumerate(zip(tensors, now, strict=True)):
            if (_type(after) not in (_Tensor, _Parameter) or after.shape != before.shape
                    or not close(after.detach(), before, 0.0)):
                fail("common.in_place",
                     f"{what} changed the tensor {name}[{k}] in place: compute new tensors "
                     f"instead (`x = x + step`, not `x += step` or `x[...] = ...` on an "
                     "input), because the caller still needs the original.")
    return value


# ---------------------------------------------------------------- the cases


def _round(generator, low: float, high: float) -> float:
    return round(low + float(_rand(1, generator=generator)) * (high - low), 3)


def _variances(generator, n_layers: int) -> list[float]:
    """sigma_l^2 in [0.3, 2.5), never 1 (a missing division must show); [0] is unused."""
    return [1.0] + [_round(generator, 0.3, 2.5) for _ in range(n_layers - 1)]


SHAPES = (  # (batch, widths, dtype): all widths equal first, then not
    (4, (3, 3, 3), _float32),
    (2, (3, 3, 3, 3), _float64),
    (5, (4, 3, 2), _float32),
    (3, (2, 5, 3, 4), _float64),
    (1, (3, 2, 2), _float32),
)


def _network(generator, batch: int, widths, dtype):
    """Random values (not a feedforward pass: every error is non-zero) and weights."""
    values = [_randn(batch, n, generator=generator, dtype=_float64) * 0.8 for n in widths]
    weights = [_randn(n_out, n_in, generator=generator, dtype=_float64) / n_in**0.5
               for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)]
    return [v.to(dtype) for v in values], [w.to(dtype) for w in weights]


# The test cells' examples: input 0, hidden 0.5, output 1.0; both weights 1.
EXAMPLE_VALUES = ([[0.0]], [[0.5]], [[1.0]])
EXAMPLE_WEIGHTS = ([[1.0]], [[1.0]])


def _example():
    return [_as_tensor(v) for v in EXAMPLE_VALUES], [_as_tensor(w) for w in EXAMPLE_WEIGHTS]


def _pc_cases(generator):
    """(values, weights, variances, step_size): SHAPES, then the test cells' example."""
    for batch, widths, dtype in SHAPES:
        values, weights = _network(generator, batch, widths, dtype)
        yield values, weights, _variances(generator, _len(widths)), _round(generator, 0.05, 0.4)
    values, weights = _example()
    yield values, weights, [1.0, 0.5, 1.0], 0.1


# ---------------------------------------------------------------- part 1: the error nodes

ERRORS_HINT = ("errors[l] has the shape of values[l], and errors[0], the clamped input's, "
               "is zero: one error tensor per layer")
ERRORS_FORMULA = "eps_l = (x_l - W_{l-1} f(x_{l-1})) / sigma_l^2"


def _errors_mistakes(values, weights, variances):
    x, w = _f64(values), _f64(weights)
    square = _square(x)
    shifted = _errors(values, weights, variances)
    return [
        ("errors_not_divided_by_variance",
         "the error is not divided by the variance: eps_l = (x_l - mu_l) / sigma_l^2, and "
         "variances[l] is sigma_l^2 (a layer with a large variance is trusted less)",
         _errors(values, weights, variances, scale=lambda e, k: e)),
        ("errors_times_variance",
         "the error is multiplied by the variance: divide by it, eps_l = (x_l - mu_l) / "
         "sigma_l^2",
         _errors(values, weights, variances, scale=lambda e, k: e * variances[k + 1])),
        ("errors_variance_squared",
         "variances[l] already IS sigma_l^2: divide by it once, not by its square",
         _errors(values, weights, variances, scale=lambda e, k: e / variances[k + 1] ** 2)),
        ("errors_divided_by_sigma",
         "variances[l] is sigma_l^2, the variance: divide by it, not by its square root",
         _errors(values, weights, variances, scale=lambda e, k: e / variances[k + 1] ** 0.5)),
        ("errors_variance_of_wrong_layer",
         "each layer's error is divided by the variance of the layer below: eps_l uses "
         "variances[l], the variance of the layer it belongs to",
         _errors(values, weights, variances, scale=lambda e, k: e / variances[k])),
        ("errors_sign",
         "the sign is flipped: the error is what the layer holds minus what the layer below "
         "predicts, x_l - mu_l",
         [-e for e in shifted]),
        ("errors_no_activation",
         "the prediction uses the values themselves: the layer below sends its rate, "
         "mu_l = W_{l-1} f(x_{l-1}) with f = tanh (`activation`)",
         _errors(values, weights, variances, prediction=lambda k: x[k] @ w[k].T)),
        ("errors_f_prime_not_f",
         "the prediction uses f'(x_{l-1}): the layer below sends its rate f(x_{l-1}) "
         "(`activation`), not the derivative",
         _errors(values, weights, variances, prediction=lambda k: _f_prime(x[k]) @ w[k].T)),
        ("errors_activation_after_weights",
         "f is applied after the weights: the prediction is W_{l-1} f(x_{l-1}), the "
         "weights acting on the rates, not f(W_{l-1} x_{l-1})",
         _errors(values, weights, variances, prediction=lambda k: _f(x[k] @ w[k].T))),
        ("errors_transposed_weights",
         "the weights are transposed: weights[l-1] is (n_l, n_{l-1}) = (post, pre), so "
         "with rows of rates the prediction is f(x_{l-1}) @ W_{l-1}.T",
         _errors(values, weights, variances, prediction=lambda k: _f(x[k]) @ w[k])
         if square else None),
        ("errors_predicted_from_wrong_layer",
         "each layer is predicted from itself: the prediction of layer l comes from the "
         "layer BELOW, W_{l-1} f(x_{l-1})",
         _errors(values, weights, variances, prediction=lambda k: _f(x[k + 1]) @ w[k].T)
         if square else None),
        ("errors_shifted",
         "the list is shifted by one layer: errors[0] must be the input's zero error, and "
         "errors[l] the error of layer l",
         shifted[1:] + [shifted[0]]),
    ]


@single_threaded
@_own_work
def check_error_nodes(error_nodes, seed: int = 0) -> None:
    """Compare with eps_l = (x_l - W_{l-1} f(x_{l-1})) / sigma_l^2 on seeded networks."""
    for values, weights, variances, _ in _pc_cases(_generator(seed)):
        what = f"error_nodes(values, weights, variances={variances})"
        value = _call(error_nodes, {"values": values, "weights": weights}, what,
                      variances=_list(variances))
        expected = _errors(values, weights, variances)
        out = _layers(value, what, expected, values[0].dtype, "errors", "layer", ERRORS_HINT)
        _judge_layers(out, expected, what,
                      lambda c=(values, weights, variances): _errors_mistakes(*c),
                      "errors", ERRORS_FORMULA, then=lambda o=out, e=expected, w=what:
                      _input_error_not_zero(o, e, w))


def _input_error_not_zero(out, expected, what: str) -> None:
    if _same_layers(out[1:], expected[1:]) and not close(out[0], expected[0], TOL):
        fail(f"{ASSIGNMENT}.errors_input_not_zero",
             f"{what}[0] is not zero: nothing predicts the clamped input, so its error "
             "node is zero (torch.zeros_like(values[0])).")


# ---------------------------------------------------------------- part 2: one inference step

INFERENCE_HINT = "one tensor of values per layer, each of the shape of values[l]"
INFERENCE_FORMULA = ("x_l + step_size (-eps_l + f'(x_l) * (eps_{l+1} @ W_l)) (hidden "
                     "layers; input and output unchanged)")


def _step(values, weights, variances, step_size, *, errors=None, own=1.0, top_down=1.0,
          gain=_f_prime, through=None, apply=None, layers=None):
    """The inference step in float64, with its pieces replaceable for a mistake:
    ``own``/``top_down`` weigh the two terms of the drive, ``gain(k)`` is f'(x_k),
    ``through(e, k)`` is eps_{k+1} @ W_k, ``apply(x, drive)`` the Euler step and
    ``layers`` the layers that move."""
    x, w = _f64(values), _f64(weights)
    eps = errors if errors is not None else _errors(values, weights, variances)
    n = _len(x)
    through = through or (lambda e, k: e[k + 1] @ w[k])
    apply = apply or (lambda old, drive: old + step_size * drive)
    layers = range(1, n - 1) if layers is None else layers
    new = _list(x)
    for k in layers:
        drive = -own * eps[k]
        if k < n - 1:
            drive = drive + top_down * gain(x, k) * through(eps, k)
        new[k] = apply(x[k], drive)
    return new


def _f_prime_at(x, k):
    return _f_prime(x[k])


def _inference_mistakes(values, weights, variances, step_size):
    x, w = _f64(values), _f64(weights)
    square = _square(x)
    n = _len(x)
    args = (values, weights, variances, step_size)

    def step(**change):
        return _step(*args, gain=change.pop("gain", _f_prime_at), **change)

    def sequential(order):
        """Layers updated one at a time, each from the values already moved."""
        now = _list(x)
        for k in order:
            now[k] = _step(now, w, variances, step_size, gain=_f_prime_at, layers=[k])[k]
        return now

    return [
        ("inference_top_down_sign",
         "the sign of the top-down term is flipped: the error above PUSHES the layer to "
         "predict it better, + f'(x_l) * (eps_{l+1} @ W_l)",
         step(top_down=-1.0)),
        ("inference_own_error_sign",
         "the sign of the layer's own error is flipped: -eps_l pulls x_l toward its "
         "prediction",
         step(own=-1.0)),
        ("inference_step_sign",
         "the step goes uphill: x_l moves by + step_size times dx_l/dt = -eps_l + f'(x_l) * "
         "(eps_{l+1} @ W_l), which descends the energy",
         step(apply=lambda old, drive: old - step_size * drive)),
        ("inference_top_down_missing",
         "the top-down term is missing: the layer also moves to reduce the error above it, "
         "+ f'(x_l) * (eps_{l+1} @ W_l)",
         step(top_down=0.0)),
        ("inference_own_error_missing",
         "the layer's own error is missing: -eps_l pulls x_l toward the prediction from "
         "below",
         step(own=0.0)),
        ("inference_no_f_prime",
         "f'(x_l) is missing from the top-down term: the error above is a function of "
         "f(x_l), so it reaches x_l through f'(x_l)",
         step(gain=lambda x_, k: 1.0)),
        ("inference_f_not_f_prime",
         "the top-down term uses f(x_l): it needs the derivative, f'(x_l) = 1 - tanh(x_l)^2 "
         "(`activation_derivative`)",
         step(gain=lambda x_, k: _f(x_[k]))),
        ("inference_f_prime_of_rate",
         "f' is taken of the rate f(x_l): take it of the value itself, f'(x_l)",
         step(gain=lambda x_, k: _f_prime(_f(x_[k])))),
        ("inference_f_prime_of_prediction",
         "f' is taken of the prediction W_{l-1} f(x_{l-1}): take it of the value x_l itself",
         step(gain=lambda x_, k: _f_prime(_f(x_[k - 1]) @ w[k - 1].T))),
        ("inference_f_prime_wrong_layer",
         "f' is taken on the layer above: the top-down term of layer l is f'(x_l) * "
         "(eps_{l+1} @ W_l), the derivative of layer l's own rate",
         step(gain=lambda x_, k: _f_prime(x_[k + 1])) if square else None),
        ("inference_f_prime_on_whole_drive",
         "f'(x_l) multiplies the whole drive: it belongs to the top-down term only, "
         "-eps_l + f'(x_l) * (eps_{l+1} @ W_l)",
         _gain_on_whole(x, w, variances, step_size)),
        ("inference_transposed_weights",
         "the error above comes down through the transposed weights: W_l is (n_{l+1}, n_l), "
         "so eps_{l+1} @ W_l (that is, W_l^T eps_{l+1} for each example)",
         step(through=lambda e, k: e[k + 1] @ w[k].T) if square else None),
        ("inference_wrong_weights",
         "the error above comes down through the wrong weights: W_l (weights[l]) connects "
         "layer l to layer l + 1, not weights[l - 1]",
         step(through=lambda e, k: e[k + 1] @ w[k - 1]) if square else None),
        ("inference_wrong_error_layer",
         "the top-down term uses the layer's own error: it is the error of the layer ABOVE, "
         "eps_{l+1}, that the layer can reduce",
         step(through=lambda e, k: e[k] @ w[k]) if square else None),
        ("inference_no_step_size",
         "the step size is missing: x_l + step_size * (-eps_l + f'(x_l) * (eps_{l+1} @ W_l))",
         step(apply=lambda old, drive: old + drive)),
        ("inference_step_size_twice",
         "the step size is applied twice: multiply the drive by step_size once",
         step(apply=lambda old, drive: old + step_size**2 * drive)),
        ("inference_returns_change",
         "this is the change of the values: return the new values, x_l + step_size * drive",
         [new - old for new, old in zip(step(), x, strict=True)]),
        ("inference_values_unchanged",
         "no layer moved: return a new list in which every hidden layer has taken its step, "
         "x_l + step_size * (-eps_l + f'(x_l) * (eps_{l+1} @ W_l))",
         x),
        ("inference_not_simultaneous",
         "the layers are updated one after the other, each from values already moved: "
         "compute every error from the OLD values first, then move all hidden layers",
         sequential(range(1, n - 1)) if n > 3 else None),
        ("inference_not_simultaneous",
         "the layers are updated one after the other (from the top), each from values "
         "already moved: compute every error from the OLD values first, then move all "
         "hidden layers",
         sequential(range(n - 2, 0, -1)) if n > 3 else None),
        ("inference_errors_not_divided_by_variance",
         "the errors are not divided by the variances: use eps_l = (x_l - mu_l) / sigma_l^2 "
         "from your error_nodes(values, weights, variances)",
         step(errors=_errors(values, weights, variances, scale=lambda e, k: e))),
    ]


def _gain_on_whole(x, w, variances, step_size):
    """f'(x_l) * (-eps_l + eps_{l+1} @ W_l): the derivative on the whole drive."""
    eps = _errors(x, w, variances)
    new = _list(x)
    for k in range(1, _len(x) - 1):
        new[k] = x[k] + step_size * _f_prime(x[k]) * (-eps[k] + eps[k + 1] @ w[k])
    return new


@single_threaded
@_own_work
def check_inference_step(inference_step, seed: int = 0) -> None:
    """Compare one Euler step of dx_l/dt = -eps_l + f'(x_l) * (eps_{l+1} @ W_l) (hidden
    layers; input and output clamped) on seeded networks; name the mistake."""
    for values, weights, variances, step_size in _pc_cases(_generator(seed)):
        what = f"inference_step(values, weights, variances={variances}, step_size={step_size})"
        value = _call(inference_step, {"values": values, "weights": weights}, what,
                      variances=_list(variances), step_size=step_size)
        expected = _step(values, weights, variances, step_size, gain=_f_prime_at)
        out = _layers(value, what, expected, values[0].dtype, "inference", "layer",
                      INFERENCE_HINT)
        _judge_layers(out, expected, what,
                      lambda c=(values, weights, variances, step_size): _inference_mistakes(*c),
                      "inference", INFERENCE_FORMULA,
                      then=lambda o=out, c=(values, weights, variances), e=expected, w=what:
                      _diagnose_step(o, e, *c, w))


def _diagnose_step(out, expected, values, weights, variances, what: str) -> None:
    """What a wrong step that is none of the listed mistakes still shows."""
    _clamps_moved(out, expected, what)
    _energy_rises(out, expected, values, weights, variances, what)


def _energy(values, weights, variances) -> float:
    """F = sum_l ||x_l - W_{l-1} f(x_{l-1})||^2 / (2 sigma_l^2), summed over the batch."""
    errors = _errors(values, weights, variances)
    return float(sum(variances[k] * (e**2).sum() / 2 for k, e in enumerate(errors) if k))


def _energy_rises(out, expected, values, weights, variances, what: str) -> None:
    """Name a step that climbs the energy that the right step descends."""
    before = _energy(values, weights, variances)
    right, now = _energy(expected, weights, variances), _energy(out, weights, variances)
    if right < before < now:
        fail(f"{ASSIGNMENT}.inference_energy_rises",
             f"{what} raises the energy F = sum_l sigma_l^2 ||eps_l||^2 / 2 from "
             f"{before:.4g} to {now:.4g}; the right step lowers it to {right:.4g}. "
             "Inference descends the energy: check the signs of the two terms of "
             "-eps_l + f'(x_l) * (eps_{l+1} @ W_l).")


def _clamps_moved(out, expected, what: str) -> None:
    """Name a step that moved the clamped input, or (hidden layers right) the output."""
    if not close(out[0], expected[0], TOL):
        fail(f"{ASSIGNMENT}.inference_input_moved",
             f"{what}[0] differs from values[0]: the input is clamped, return it "
             "unchanged and move only the hidden layers 1 .. L-1.")
    if _same_layers(out[1:-1], expected[1:-1]) and not close(out[-1], expected[-1], TOL):
        fail(f"{ASSIGNMENT}.inference_output_not_clamped",
             f"{what}[-1] differs from values[-1]: the output is clamped to the target "
             "while learning, return it unchanged.")


# ---------------------------------------------------------------- part 3: the Hebbian update

HEBBIAN_HINT = ("one update per weight matrix, update[l] of the shape of weights[l], "
                "(n_{l+1}, n_l) = (post, pre)")
HEBBIAN_FORMULA = "eps_{l+1}^T f(x_l) / batch"


def _hebbian(values, errors, *, post=None, pre=None, batch_mean=True):
    """update_l = post(l)^T pre(l) / batch in float64 (eps_{l+1} and f(x_l) by default)."""
    x, e = _f64(values), _f64(errors)
    post = post or (lambda k: e[k + 1])
    pre = pre or (lambda k: _f(x[k]))
    batch = x[0].shape[0] if batch_mean else 1
    return [post(k).T @ pre(k) / batch for k in range(_len(x) - 1)]


def _hebbian_mistakes(values, errors):
    x, e = _f64(values), _f64(errors)
    square = _square(x)
    batch = x[0].shape[0]
    right = _hebbian(values, errors)
    return [
        ("hebbian_sign",
         "the sign is flipped: the update is + eps_{l+1}^T f(x_l) / batch, the direction "
         "that lowers the energy (W_l += learning_rate * update_l)",
         [-u for u in right]),
        ("hebbian_no_activation",
         "the pre-synaptic factor is the value x_l: the synapse sees the RATE of the layer "
         "below, f(x_l) (`activation`)",
         _hebbian(values, errors, pre=lambda k: x[k])),
        ("hebbian_f_prime_not_f",
         "the pre-synaptic factor is f'(x_l): it is the rate f(x_l) (`activation`), what "
         "the layer below sends through the synapse",
         _hebbian(values, errors, pre=lambda k: _f_prime(x[k]))),
        ("hebbian_extra_f_prime",
         "the error is multiplied by f'(x_{l+1}) as in backprop's delta: the error node "
         "eps_{l+1} already is the post-synaptic factor, eps_{l+1}^T f(x_l)",
         _hebbian(values, errors, post=lambda k: e[k + 1] * _f_prime(x[k + 1]))),
        ("hebbian_error_of_wrong_layer",
         "the error of the wrong layer: W_l predicts layer l + 1, so its update pairs "
         "eps_{l+1} (post) with f(x_l) (pre)",
         _hebbian(values, errors, post=lambda k: e[k]) if square else None),
        ("hebbian_rate_of_wrong_layer",
         "the rate of the wrong layer: the pre-synaptic factor of W_l is the rate of layer "
         "l, f(x_l), not of layer l + 1",
         _hebbian(values, errors, pre=lambda k: _f(x[k + 1])) if square else None),
        ("hebbian_transposed",
         "the update is transposed: update[l] has the layout of W_l, (post, pre), so "
         "eps_{l+1}^T @ f(x_l)",
         [u.T for u in right] if square else None),
        ("hebbian_batch_sum",
         "the update is summed over the batch: average it, eps_{l+1}^T f(x_l) / batch",
         _hebbian(values, errors, batch_mean=False) if batch > 1 else None),
    ]


@single_threaded
@_own_work
def check_hebbian_update(hebbian_update, seed: int = 0) -> None:
    """Compare with update_l = eps_{l+1}^T f(x_l) / batch; name the mistake."""
    for values, weights, variances, _ in _pc_cases(_generator(seed)):
        errors = [e.to(values[0].dtype) for e in _errors(values, weights, variances)]
        what = "hebbian_update(values, errors)"
        value = _call(hebbian_update, {"values": values, "errors": errors}, what)
        expected = _hebbian(values, errors)
        out = _layers(value, what, expected, values[0].dtype, "hebbian", "weight matrix",
                      HEBBIAN_HINT)
        _judge_layers(out, expected, what, lambda c=(values, errors): _hebbian_mistakes(*c),
                      "hebbian", HEBBIAN_FORMULA)


# ---------------------------------------------------------------- part 4: equilibrium propagation

EQPROP_HINT = ("one update per weight matrix, update[l] of the shape of W_l, (n_{l+1}, n_l) "
               "= (post, pre)")
EQPROP_FORMULA = ("(rho(s^b_{l+1})^T rho(s^b_l) - rho(s^0_{l+1})^T rho(s^0_l)) / "
                  "(batch beta)")
SYMMETRIC_FORMULA = "(H(s^{+b}) - H(s^{-b})) / (2 beta), H_l = rho(s_{l+1})^T rho(s_l) / batch"


def _hebbian_term(states, *, rate=_rho, pairs=None, batch_mean=True):
    """H_l = rho(s_{l+1})^T rho(s_l) / batch in float64; ``pairs(r, k)`` replaces the
    (post, pre) pair for a mistake."""
    r = [rate(s) for s in _f64(states)]
    pairs = pairs or (lambda r_, k: (r_[k + 1], r_[k]))
    batch = r[0].shape[0] if batch_mean else 1
    return [a.T @ b / batch for a, b in (pairs(r, k) for k in range(_len(r) - 1))]


def _combine(first, second, a: float, b: float):
    return [a * p - b * q for p, q in zip(first, second, strict=True)]


def _phase_mistakes(first_states, second_states, beta: float, divisor: float, prefix: str):
    """Wrong answers shared by the one-sided and the symmetric update: the first phase's
    Hebbian term minus the second's, divided by ``divisor`` (beta or 2 beta)."""
    first, second = _hebbian_term(first_states), _hebbian_term(second_states)
    s1, s2 = _f64(first_states), _f64(second_states)
    right = _combine(first, second, 1 / divisor, 1 / divisor)
    square = _square(s1)
    batch = s1[0].shape[0]

    def rule(**change):
        return _combine(_hebbian_term(first_states, **change),
                        _hebbian_term(second_states, **change), 1 / divisor, 1 / divisor)

    differenced = [(s1[k + 1] - s2[k + 1]) for k in range(_len(s1) - 1)]
    rates1, rates2 = [_rho(s) for s in s1], [_rho(s) for s in s2]
    return [
        (f"{prefix}_phases_swapped",
         "the phases are swapped (the sign is flipped): the NUDGED phase's term comes "
         "first, minus the other one",
         [-u for u in right]),
        (f"{prefix}_zero",
         "the update is zero: both Hebbian terms come from the same phase; one is the "
         "nudged phase's, the other the free (or opposite) phase's",
         [_zeros_like(u) for u in right]),
        (f"{prefix}_states_not_rates",
         "the Hebbian terms use the states s: a synapse sees the RATES rho(s) "
         "(`rate`) of its two units",
         rule(rate=lambda s: s)),
        (f"{prefix}_rate_derivative",
         "the Hebbian terms use rho'(s): they are products of the rates themselves, "
         "rho(s_{l+1})^T rho(s_l)",
         rule(rate=_rho_prime)),
        (f"{prefix}_plain_sigmoid",
         "the rate is the plain sigmoid(s): this network's rate is rho(s) = "
         "sigmoid(4 s - 2) (`rate`)",
         rule(rate=_sigmoid)),
        (f"{prefix}_transposed",
         "the update is transposed: update[l] has the layout of W_l, (post, pre), so "
         "rho(s_{l+1})^T @ rho(s_l)",
         [u.T for u in right] if square else None),
        (f"{prefix}_same_layer",
         "each term pairs a layer with itself: W_l connects layer l (pre) to layer l + 1 "
         "(post), rho(s_{l+1})^T rho(s_l)",
         rule(pairs=lambda r, k: (r[k + 1], r[k + 1])) if square else None),
        (f"{prefix}_batch_sum",
         "the Hebbian terms are summed over the batch: average them (divide by the batch "
         "size)",
         rule(batch_mean=False) if batch > 1 else None),
        (f"{prefix}_rates_differenced",
         "the rates are subtracted before the product: the update is the difference of "
         "two Hebbian PRODUCTS, rho(s^b_{l+1})^T rho(s^b_l) - rho(s^0_{l+1})^T rho(s^0_l), "
         "not (rho(s^b_{l+1}) - rho(s^0_{l+1}))^T (rho(s^b_l) - rho(s^0_l))",
         [(rates1[k + 1] - rates2[k + 1]).T @ (rates1[k] - rates2[k]) / (batch * divisor)
          for k in range(_len(s1) - 1)]),
        (f"{prefix}_post_difference_only",
         "only the post-synaptic rate is differenced: subtract the two Hebbian products, "
         "each with its own phase's pre-synaptic rate",
         [(rates1[k + 1] - rates2[k + 1]).T @ rates2[k] / (batch * divisor)
          for k in range(_len(s1) - 1)]),
        (f"{prefix}_states_differenced",
         "the states are subtracted before the rate is taken: the update is the difference "
         "of two Hebbian products of rates",
         [_rho(differenced[k]).T @ _rho(s1[k] - s2[k]) / (batch * divisor)
          for k in range(_len(s1) - 1)]),
    ]


def _eqprop_mistakes(free_states, nudged_states, beta):
    nudged, free = _hebbian_term(nudged_states), _hebbian_term(free_states)
    return [
        ("eqprop_no_beta",
         "the division by beta is missing: the two phases differ by O(beta), so the "
         "difference must be divided by beta to estimate the gradient",
         _combine(nudged, free, 1, 1)),
        ("eqprop_times_beta",
         "the difference is multiplied by beta: DIVIDE it by beta",
         _combine(nudged, free, beta, beta)),
        ("eqprop_beta_on_nudged_only",
         "beta divides only the nudged phase's term: divide the whole difference, "
         "(H(s^b) - H(s^0)) / beta",
         _combine(nudged, free, 1 / beta, 1)),
        ("eqprop_beta_on_free_only",
         "beta divides only the free phase's term: divide the whole difference, "
         "(H(s^b) - H(s^0)) / beta",
         _combine(nudged, free, 1, 1 / beta)),
        ("eqprop_free_term_missing",
         "the free phase's term is missing: the update is the DIFFERENCE of the nudged "
         "and the free Hebbian terms, divided by beta",
         _combine(nudged, free, 1 / beta, 0)),
        ("eqprop_abs_beta",
         "the update is divided by |beta|: divide by beta itself (a negative nudge flips "
         "the difference, and the division flips it back)",
         _combine(nudged, free, 1 / abs(beta), 1 / abs(beta)) if beta < 0 else None),
        ("eqprop_two_beta",
         "the update is divided by 2 beta: that is the symmetric estimate's divisor; the "
         "one-sided one divides by beta",
         _combine(nudged, free, 0.5 / beta, 0.5 / beta)),
    ] + _phase_mistakes(nudged_states, free_states, beta, beta, "eqprop")


def _states(generator, batch: int, widths, dtype, beta: float):
    """Free states (rates anywhere in (0, 1)) and states nudged by O(beta); the input is
    the same in both phases."""
    free = [_rand(batch, n, generator=generator, dtype=_float64) * 1.4 - 0.2 for n in widths]
    nudged = [free[0]] + [s + beta * _randn(s.shape, generator=generator, dtype=_float64)
                          for s in free[1:]]
    return [s.to(dtype) for s in free], [s.to(dtype) for s in nudged]


# The test cells' examples: input 0.5, output 0.5 free, 1.0 nudged (beta 0.5); 1.0 and
# 0.0 nudged by +beta and -beta (beta 0.25).
EXAMPLE_FREE = ([[0.5]], [[0.5]])
EXAMPLE_NUDGED = ([[0.5]], [[1.0]])
EXAMPLE_NEGATIVE = ([[0.5]], [[0.0]])


def _eqprop_cases(generator):
    """(free_states, nudged_states, beta): SHAPES (one with a negative beta), then the test
    cells' example."""
    for number, (batch, widths, dtype) in enumerate(SHAPES):
        beta = _round(generator, 0.2, 0.8) * (-1 if number == 2 else 1)
        yield (*_states(generator, batch, widths, dtype, beta), beta)
    yield [_as_tensor(s) for s in EXAMPLE_FREE], [_as_tensor(s) for s in EXAMPLE_NUDGED], 0.5


@single_threaded
@_own_work
def check_eqprop_update(eqprop_update, seed: int = 0) -> None:
    """Compare with (H(s^b) - H(s^0)) / beta, H_l = rho(s_{l+1})^T rho(s_l) / batch."""
    for free, nudged, beta in _eqprop_cases(_generator(seed)):
        what = f"eqprop_update(free_states, nudged_states, beta={beta})"
        value = _call(eqprop_update, {"free_states": free, "nudged_states": nudged}, what,
                      beta=beta)
        expected = _combine(_hebbian_term(nudged), _hebbian_term(free), 1 / beta, 1 / beta)
        out = _layers(value, what, expected, free[0].dtype, "eqprop", "weight matrix",
                      EQPROP_HINT)
        _judge_layers(out, expected, what,
                      lambda c=(free, nudged, beta): _eqprop_mistakes(*c),
                      "eqprop", EQPROP_FORMULA)


# ---------------------------------------------------------------- part 5: the symmetric estimate


def _symmetric_mistakes(positive_states, negative_states, beta):
    positive, negative = _hebbian_term(positive_states), _hebbian_term(negative_states)
    return [
        ("symmetric_not_halved",
         "the difference is divided by beta: the two phases are 2 beta apart (+beta and "
         "-beta), so divide by 2 beta",
         _combine(positive, negative, 1 / beta, 1 / beta)),
        ("symmetric_no_beta",
         "beta is missing: divide the difference by 2 beta, not by 2",
         _combine(positive, negative, 0.5, 0.5)),
        ("symmetric_no_division",
         "the division by 2 beta is missing",
         _combine(positive, negative, 1, 1)),
        ("symmetric_times_beta",
         "the difference is multiplied by beta: divide it by 2 beta",
         _combine(positive, negative, beta / 2, beta / 2)),
        ("symmetric_beta_on_one_term",
         "2 beta divides only one of the two terms: divide the whole difference, "
         "(H(s^{+b}) - H(s^{-b})) / (2 beta)",
         _combine(positive, negative, 1 / (2 * beta), 1)),
        ("symmetric_beta_on_one_term",
         "2 beta divides only one of the two terms: divide the whole difference, "
         "(H(s^{+b}) - H(s^{-b})) / (2 beta)",
         _combine(positive, negative, 1, 1 / (2 * beta))),
    ] + _phase_mistakes(positive_states, negative_states, beta, 2 * beta, "symmetric")


def _symmetric_cases(generator):
    """(positive_states, negative_states, beta): states nudged by +beta and -beta around
    a free state, SHAPES; then the test cell's example."""
    for batch, widths, dtype in SHAPES:
        beta = _round(generator, 0.2, 0.8)
        free, positive = _states(generator, batch, widths, _float64, beta)
        negative = [free[0]] + [2 * f - p + 0.3 * beta * _randn(f.shape, generator=generator,
                                                                 dtype=_float64)
                                for f, p in zip(free[1:], positive[1:], strict=True)]
        yield [s.to(dtype) for s in positive], [s.to(dtype) for s in negative], beta
    yield ([_as_tensor(s) for s in EXAMPLE_NUDGED], [_as_tensor(s) for s in EXAMPLE_NEGATIVE],
           0.25)


@single_threaded
@_own_work
def check_symmetric_eqprop_update(symmetric_eqprop_update, seed: int = 0) -> None:
    """Compare with (H(s^{+b}) - H(s^{-b})) / (2 beta); name the mistake."""
    for positive, negative, beta in _symmetric_cases(_generator(seed)):
        what = f"symmetric_eqprop_update(positive_states, negative_states, beta={beta})"
        value = _call(symmetric_eqprop_update,
                      {"positive_states": positive, "negative_states": negative}, what,
                      beta=beta)
        expected = _combine(_hebbian_term(positive), _hebbian_term(negative),
                            1 / (2 * beta), 1 / (2 * beta))
        out = _layers(value, what, expected, positive[0].dtype, "symmetric",
                      "weight matrix", EQPROP_HINT)
        _judge_layers(out, expected, what,
                      lambda c=(positive, negative, beta): _symmetric_mistakes(*c),
                      "symmetric", SYMMETRIC_FORMULA)


__all__ = ["CheckFailure", "check_eqprop_update", "check_error_nodes", "check_hebbian_update",
           "check_inference_step", "check_symmetric_eqprop_update"]
