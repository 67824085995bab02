"""Checkers for assignment 07_dendritic_error.

The references are `course_lib.learning_rules.dendritic` (Sacramento, Ponte Costa, Bengio &
Senn 2018): the apical voltage, the basal prediction of the soma, and the soma-basal
plasticity rule of the forward weights (Urbanczik & Senn 2014 form)::

    v_A   = B phi(u_above) + W_PI phi(u_I)                (batch of row vectors)
    v^_B  = g_B / (g_lk + g_B + g_A) v_B      (hidden)    g_B / (g_lk + g_B) v_B   (output)
    dW    = (phi(u) - phi(v^_B))^T r_pre / batch

Each check runs seeded cases in float32 (the course's dtype) and one in float64, of several
shapes (a batch of one, square and non-square weights), and the examples printed in the
test cells. It computes the expected value itself, in float64, with private references to
torch taken at import (an answer cell that patches torch changes neither the cases nor the
expected values). When an answer is wrong it names the mistake from a table of plausible
ones, or else says by what factor the answer is off, where it is clipped, or which entry
differs most. Every failure has a stable id ``dendritic_error.<mistake>``.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from course_lib.checks._common import (
    call,
    clipped_range,
    close,
    fail,
    judge,
    scale_factor,
    single_threaded,
    tensor,
    worst_entry,
)
from course_lib.checks._common import (
    generator as _generator,
)
from course_lib.learning_rules.dendritic import Conductances

# Private references (see `_common`).
_randn = torch.randn
_rand = torch.rand
_zeros = torch.zeros
_as_tensor = torch.tensor
_isfinite = torch.isfinite
_softplus = F.softplus
_relu = torch.relu
_sigmoid = torch.sigmoid
_tanh = torch.tanh
_exp = torch.exp
_float32 = torch.float32
_float64 = torch.float64
_replace = dataclasses.replace

TOL = 1e-5  # absolute and relative: a correct float32 computation is well inside it


def _phi(u: torch.Tensor) -> torch.Tensor:
    """The rate phi(u) = log(1 + exp(u)), in float64."""
    return _softplus(u.to(_float64))


def _f64(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.to(_float64) for t in tensors]


def _result(value, what: str, expected: torch.Tensor, dtype: torch.dtype, shape_id: str,
            shape_hint: str) -> torch.Tensor:
    """The student's tensor (exact type, private copy), checked for shape, dtype and finiteness."""
    out = tensor(value, what, finite=False)
    if tuple(out.shape) != tuple(expected.shape):
        if out.dim() == 2 and tuple(out.shape) == tuple(expected.shape)[::-1]:
            fail(f"dendritic_error.{shape_id}_transposed",
                 f"{what} returned shape {tuple(out.shape)}, the transpose of "
                 f"{tuple(expected.shape)}: {shape_hint}.")
        fail(f"dendritic_error.{shape_id}_shape",
             f"{what} returned shape {tuple(out.shape)}; it should be "
             f"{tuple(expected.shape)}: {shape_hint}.")
    if out.dtype != dtype:
        fail("common.wrong_dtype",
             f"{what} returned dtype {out.dtype} for {dtype} inputs: keep the dtype of the "
             "inputs (do not convert with .float(), .double() or torch.tensor(...)).")
    if not bool(_isfinite(out).all()):
        fail("common.not_finite",
             f"{what} contains NaN or inf although every input is finite: look for a log "
             "of a number <= 0 or a division by zero; phi(u) = log(1 + exp(u)) is the "
             "imported `rate(u)`.")
    return out


def _judge(out, expected, what: str, mistakes, case: tuple, name: str, formula: str) -> None:
    """`judge` with this assignment's ids and tolerance."""
    judge(out, expected, what, mistakes, case, name, formula, assignment="dendritic_error", tol=TOL)


# ---------------------------------------------------------------- part 1: apical voltage


def _expected_apical(u_above, u_int, top_down, w_pi):
    """B phi(u_above) + W_PI phi(u_I) for a batch of row vectors, in float64."""
    top_down, w_pi = _f64(top_down, w_pi)
    return _phi(u_above) @ top_down.T + _phi(u_int) @ w_pi.T


def _apical_mistakes(u_above, u_int, top_down, w_pi):
    u_above, u_int, b, w = _f64(u_above, u_int, top_down, w_pi)
    r_above, r_int = _phi(u_above), _phi(u_int)
    square = b.shape[0] == b.shape[1]
    return [
        ("apical_voltages_not_rates",
         "the apical dendrite receives *rates*: apply phi (the `rate` function) to the "
         "voltages u_above and u_interneuron before the weights",
         u_above @ b.T + u_int @ w.T),
        ("apical_above_not_rate",
         "the top-down term uses the voltage u_above: it must be B rate(u_above)",
         u_above @ b.T + r_int @ w.T),
        ("apical_interneuron_not_rate",
         "the lateral term uses the voltage u_interneuron: it must be W_PI rate(u_interneuron)",
         r_above @ b.T + u_int @ w.T),
        ("apical_phi_after_weights",
         "phi is applied after the weights: the dendrite sums the weighted presynaptic "
         "*rates*, B rate(u_above), not rate(B u_above)",
         _softplus(u_above @ b.T) + _softplus(u_int @ w.T)),
        ("apical_phi_after_weights",
         "phi is applied to the summed input: v_A is the dendrite's voltage, the weighted "
         "sum of presynaptic rates, with no phi on top",
         _softplus(r_above @ b.T + r_int @ w.T)),
        ("apical_inhibition_subtracted",
         "the lateral term must be added, + W_PI phi(u_I): the inhibition is already in the "
         "(negative) weights W_PI, do not subtract it again",
         r_above @ b.T - r_int @ w.T),
        ("apical_interneuron_term_missing",
         "the interneuron term W_PI phi(u_I) is missing: the apical voltage is top-down "
         "input plus lateral input from the interneurons",
         r_above @ b.T),
        ("apical_top_down_term_missing",
         "the top-down term B phi(u_above) is missing", r_int @ w.T),
        ("apical_rates_swapped",
         "the rates are swapped: the top-down weights B carry the layer above, W_PI the "
         "interneurons",
         r_int @ b.T + r_above @ w.T),
        ("apical_top_down_for_interneurons",
         "the lateral term uses top_down: it must use pyramid_from_interneuron (W_PI), which "
         "equals -B only in the self-predicting state",
         r_above @ b.T - r_int @ b.T),
        ("apical_u_above_for_interneurons",
         "the lateral term uses u_above: the interneurons have their own voltages, "
         "u_interneuron",
         r_above @ b.T + r_above @ w.T),
        ("apical_phi_not_softplus",
         "phi is the softplus log(1 + exp(u)) (the `rate` function), not a ReLU",
         _relu(u_above) @ b.T + _relu(u_int) @ w.T),
        ("apical_phi_not_softplus",
         "phi is the softplus log(1 + exp(u)) (the `rate` function), not a sigmoid",
         _sigmoid(u_above) @ b.T + _sigmoid(u_int) @ w.T),
        ("apical_phi_not_softplus",
         "phi is the softplus log(1 + exp(u)) (the `rate` function), not tanh",
         _tanh(u_above) @ b.T + _tanh(u_int) @ w.T),
        ("apical_phi_not_softplus",
         "phi is the softplus log(1 + exp(u)) (the `rate` function), not exp(u)",
         _exp(u_above) @ b.T + _exp(u_int) @ w.T),
        ("apical_weights_not_transposed",
         "weights are (post, pre): with a batch of row vectors, B r is r @ B.T, not r @ B",
         r_above @ b + r_int @ w if square else None),
        ("apical_weights_not_transposed",
         "weights are (post, pre): the top-down term B r_above is rate(u_above) @ top_down.T, "
         "not rate(u_above) @ top_down",
         r_above @ b + r_int @ w.T if square else None),
        ("apical_weights_not_transposed",
         "weights are (post, pre): the lateral term W_PI r_I is rate(u_interneuron) @ "
         "pyramid_from_interneuron.T, not rate(u_interneuron) @ pyramid_from_interneuron",
         r_above @ b.T + r_int @ w if square else None),
    ]


def _apical_cases(generator):
    """(u_above, u_interneuron, top_down, pyramid_from_interneuron): random cases first
    (square weights first, so that r @ B is diagnosed, not only a shape error), then the
    test cell's examples and voltages far from 0 (but not beyond +-30)."""
    for batch, n_k, n_above, dtype in ((3, 4, 4, _float32), (1, 5, 3, _float32),
                                       (2, 3, 6, _float32), (4, 2, 3, _float64)):
        u_above = _randn(batch, n_above, generator=generator, dtype=_float64) * 2
        u_int = _randn(batch, n_above, generator=generator, dtype=_float64) * 2
        top_down = _randn(n_k, n_above, generator=generator, dtype=_float64)
        w_pi = _randn(n_k, n_above, generator=generator, dtype=_float64)
        yield tuple(t.to(dtype) for t in (u_above, u_int, top_down, w_pi))
    # The test cell's examples: the self-predicting state (v_A = 0), silent interneurons.
    u = _as_tensor([[0.0, 1.0]])
    b = _as_tensor([[1.0, 2.0], [0.5, -1.0], [0.0, 3.0]])
    yield u, u.clone(), b, -b
    yield u, _as_tensor([[-30.0, -30.0]]), b, -b
    # The self-predicting state with random weights, and voltages at the edge of what the
    # circuit meets (its voltages stay within a few units; the test cell's silent
    # interneurons sit at -30). A hand-written log(1 + exp(u)) is correct here: no case
    # needs a voltage where exp(u) overflows.
    u_above = _randn(2, 4, generator=generator)
    top_down = _randn(6, 4, generator=generator)
    yield u_above, u_above.clone(), top_down, -top_down
    far = _as_tensor([[30.0, -30.0, 0.5], [-25.0, 3.0, 20.0]])
    yield far, far.flip(1), _randn(2, 3, generator=generator), _randn(2, 3, generator=generator)


@single_threaded
def check_apical_voltage(apical_voltage_fn, seed: int = 0) -> None:
    """Compare with B phi(u_above) + W_PI phi(u_I) on seeded cases; name the likely mistake."""
    what = "apical_voltage(u_above, u_interneuron, top_down, pyramid_from_interneuron)"
    for u_above, u_int, top_down, w_pi in _apical_cases(_generator(seed)):
        args = (u_above.clone(), u_int.clone(), top_down.clone(), w_pi.clone())
        value = call(apical_voltage_fn, *args, what=what)
        expected = _expected_apical(u_above, u_int, top_down, w_pi)
        out = _result(value, what, expected, u_above.dtype, "apical",
                      "one apical voltage per pyramidal neuron of layer k, (batch, n_k), "
                      "i.e. rate(u_above) @ top_down.T + ...")
        _judge(out, expected, what, _apical_mistakes, (u_above, u_int, top_down, w_pi),
               "apical", "rate(u_above) @ top_down.T + rate(u_interneuron) @ "
               "pyramid_from_interneuron.T")


# ---------------------------------------------------------------- part 2: basal prediction


def _attenuation(g: Conductances, output: bool) -> float:
    """g_B / (g_lk + g_B + g_A) in a hidden layer, g_B / (g_lk + g_B) in the output layer."""
    return g.basal / (g.leak + g.basal + (0.0 if output else g.apical))


def _prediction_mistakes(v, g: Conductances):
    """(id, message, wrong v^_B as a function of output) for plausible mistakes."""
    v = v.to(_float64)

    def scaled(factor):
        return lambda output: factor(output) * v

    apical = {False: g.apical, True: 0.0}
    return [
        ("prediction_output_flag_inverted",
         "the output flag is inverted: output=True (the output layer, no apical dendrite) "
         "needs g_B / (g_lk + g_B), output=False (hidden) g_B / (g_lk + g_B + g_A)",
         scaled(lambda output: _attenuation(g, not output))),
        ("prediction_hidden_without_apical",
         "hidden neurons also lose current to their (silent) apical compartment: with "
         "output=False the attenuation is g_B / (g_lk + g_B + g_A)",
         scaled(lambda output: _attenuation(g, True))),
        ("prediction_output_with_apical",
         "output neurons have no apical dendrite: with output=True the attenuation is "
         "g_B / (g_lk + g_B), without g_A",
         scaled(lambda output: _attenuation(g, False))),
        ("prediction_unchanged",
         "v_basal was returned unchanged: the soma also leaks (and, in a hidden layer, "
         "couples to the apical compartment), so it only reaches a fraction of v_B",
         scaled(lambda output: 1.0)),
        ("prediction_leak_missing",
         "the leak conductance g.leak is missing from the denominator",
         scaled(lambda output: g.basal / (g.basal + apical[output]))),
        ("prediction_basal_missing_below",
         "g.basal is missing from the denominator: the basal dendrite also pulls the soma "
         "towards itself, g_B / (g_lk + g_B [+ g_A])",
         scaled(lambda output: g.basal / (g.leak + apical[output]))),
        ("prediction_basal_missing_above",
         "the numerator g.basal is missing: the attenuation is g_B / (g_lk + g_B [+ g_A])",
         scaled(lambda output: 1 / (g.leak + g.basal + apical[output]))),
        ("prediction_upside_down",
         "the conductances are upside down: the attenuation is g_B / (g_lk + g_B [+ g_A])",
         scaled(lambda output: 1 / _attenuation(g, output))),
        ("prediction_somatic_included",
         "the somatic (nudging) conductance g.somatic does not belong here: the prediction "
         "is the soma without a teacher",
         scaled(lambda output: g.basal / (g.leak + g.basal + g.somatic + apical[output]))),
        ("prediction_somatic_for_apical",
         "g.somatic is the teacher's nudging conductance: the hidden soma's apical coupling "
         "is g.apical",
         scaled(lambda output: g.basal / (g.leak + g.basal + (0.0 if output else g.somatic)))),
        ("prediction_dendritic_for_basal",
         "g.dendritic couples an *interneuron's* dendrite: the pyramidal basal coupling is "
         "g.basal",
         scaled(lambda output: g.dendritic / (g.leak + g.dendritic + apical[output]))),
        ("prediction_default_conductances",
         "this is the prediction with the default Conductances(): use the conductances g "
         "the function is given",
         lambda output: _attenuation(Conductances(), output) * v),
        ("prediction_rate_not_voltage",
         "the prediction is a voltage: attenuate v_basal itself, do not apply phi (rate)",
         lambda output: _attenuation(g, output) * _phi(v)),
    ]


def _prediction_cases(generator):
    """(v_basal, g): conductances that all differ first (so that using one for another
    shows), then the defaults, random ones, and the test cell's example."""
    distinct = Conductances(leak=0.3, basal=1.3, apical=0.7, dendritic=0.9, somatic=0.4)
    shapes = ((3, 4), (5,), (2, 3, 2))
    conductances = (distinct, Conductances(), _random_conductances(generator))
    for g, shape in zip(conductances, shapes, strict=True):
        yield _randn(shape, generator=generator), g
    large = _randn(2, 3, generator=generator, dtype=_float64) * 100  # far from 0, float64
    yield large, _random_conductances(generator)
    yield _as_tensor([2.0, 3.0]), Conductances(leak=0.5, basal=1.0, apical=0.5)


def _random_conductances(generator) -> Conductances:
    values = _rand(5, generator=generator, dtype=_float64) * 1.5 + 0.1
    return Conductances(*(round(float(v), 3) for v in values))


@single_threaded
def check_basal_prediction(basal_prediction_fn, seed: int = 0) -> None:
    """Compare the attenuated basal voltage with g_B / (g_lk + g_B [+ g_A]) v_B, for hidden
    and output neurons of the same conductances (so an inverted flag is told apart)."""
    for v_basal, g in _prediction_cases(_generator(seed)):
        outs, expected = {}, {}
        for output in (False, True):
            what = f"basal_prediction(v_basal, g, output={output}) with g = {g}"
            value = call(basal_prediction_fn, v_basal.clone(), _replace(g), output=output,
                         what=what)
            expected[output] = _attenuation(g, output) * v_basal.to(_float64)
            outs[output] = _result(value, what, expected[output], v_basal.dtype, "prediction",
                                   "v^_B has the shape of v_basal")
        if all(close(outs[o], expected[o], TOL) for o in outs):
            continue
        for mistake_id, message, wrong in _prediction_mistakes(v_basal, g):
            if all(close(outs[o], wrong(o), TOL) for o in outs):
                fail(f"dendritic_error.{mistake_id}",
                     f"basal_prediction(v_basal, g, output) with g = {g}: {message}.")
        output = close(outs[False], expected[False], TOL)  # the first flag that is wrong
        what = f"basal_prediction(v_basal, g, output={output}) with g = {g}"
        formula = (f"{'g_B / (g_lk + g_B)' if output else 'g_B / (g_lk + g_B + g_A)'} * "
                   f"v_basal = {_attenuation(g, output):.4g} * v_basal")
        limits = clipped_range(outs[output], expected[output], TOL)
        if limits is not None:
            fail("dendritic_error.prediction_clipped",
                 f"{what} is {formula} clipped to [{limits[0]:.4g}, {limits[1]:.4g}]: the "
                 "formula has no limit, do not clamp it.")
        factor = scale_factor(outs[output], v_basal, TOL)
        yours = "" if factor is None else f" (yours is {factor:.4g} * v_basal)"
        fail("dendritic_error.prediction_wrong_value",
             f"{what} differs from {formula}{yours}: "
             f"{worst_entry(outs[output], expected[output])}.")


# ---------------------------------------------------------------- part 3: plasticity


def _expected_update(u, v_basal, r_pre, g, output, attenuation=None):
    """(phi(u) - phi(v^_B))^T r_pre / batch, in float64."""
    u, v_basal, r_pre = _f64(u, v_basal, r_pre)
    v_hat = (_attenuation(g, output) if attenuation is None else attenuation) * v_basal
    return (_phi(u) - _phi(v_hat)).T @ r_pre / u.shape[0]


def _update_mistakes(u, v_basal, r_pre, g, output):
    u, v_basal, r_pre = _f64(u, v_basal, r_pre)
    batch = u.shape[0]
    v_hat = _attenuation(g, output) * v_basal
    right = _expected_update(u, v_basal, r_pre, g, output)
    square = right.shape[0] == right.shape[1]
    return [
        ("update_raw_basal",
         "the rule compares the soma with the basal *prediction* v^_B = "
         "basal_prediction(v_basal, g, output) (Part 2), not with v_basal itself",
         _expected_update(u, v_basal, r_pre, g, output, attenuation=1.0)),
        ("update_output_flag_ignored",
         f"this is the rule with v^_B of the {'hidden' if output else 'output'} layer: pass "
         "`output` on to basal_prediction",
         _expected_update(u, v_basal, r_pre, g, not output)),
        ("update_default_conductances",
         "this is the rule with the default Conductances(): use the conductances g the "
         "function is given",
         _expected_update(u, v_basal, r_pre, Conductances(), output)),
        ("update_voltages_not_rates",
         "the rule compares rates, phi(u) - phi(v^_B), not voltages u - v^_B",
         (u - v_hat).T @ r_pre / batch),
        ("update_prediction_not_rate",
         "apply phi to the prediction too: phi(u) - phi(v^_B), not phi(u) - v^_B",
         (_phi(u) - v_hat).T @ r_pre / batch),
        ("update_phi_of_difference",
         "phi(u - v^_B) is not phi(u) - phi(v^_B): take the difference of the two rates",
         _phi(u - v_hat).T @ r_pre / batch),
        ("update_sign_flipped",
         "the sign is flipped: the dendrite must move towards the soma, phi(u) - phi(v^_B)",
         -right),
        ("update_summed", "average over the batch (divide by the batch size), do not sum",
         right * batch),
        ("update_rate_pre_through_phi",
         "rate_pre is already a rate: do not apply phi to it again",
         (_phi(u) - _phi(v_hat)).T @ _phi(r_pre) / batch),
        ("update_product_of_means",
         "average the product over the batch, < (phi(u) - phi(v^_B))^T r_pre >, not the "
         "product of the two batch averages",
         (_phi(u) - _phi(v_hat)).mean(0)[:, None] * r_pre.mean(0)[None, :]),
        ("update_transposed",
         "the update is transposed: a weight is (post, pre), so it is "
         "(phi(u) - phi(v^_B)).T @ rate_pre, not rate_pre.T @ (...)",
         right.T if square else None),
    ]


def _update_cases(generator):
    """(u_soma, v_basal, rate_pre, g, output): random cases (distinct sizes first, a square
    weight, a batch of one with values far from 0, float64), then the test cell's examples
    and boundary cases."""
    sizes = (((4, 3, 5), False, 2.0, _float32), ((3, 4, 4), True, 2.0, _float32),
             ((1, 2, 3), False, 10.0, _float32), ((5, 3, 2), True, 2.0, _float64))
    for (batch, n_post, n_pre), output, scale, dtype in sizes:
        u = _randn(batch, n_post, generator=generator, dtype=_float64) * scale
        v_basal = _randn(batch, n_post, generator=generator, dtype=_float64) * scale
        r_pre = _rand(batch, n_pre, generator=generator, dtype=_float64) * scale
        g = _random_conductances(generator)
        yield u.to(dtype), v_basal.to(dtype), r_pre.to(dtype), g, output
    # The test cell's examples: the soma on its prediction (zero), and above it (> 0).
    g = Conductances()
    v_basal = _as_tensor([[1.0, -1.0]])
    u_rest = _attenuation(g, False) * v_basal
    yield u_rest, v_basal, _as_tensor([[1.0, 1.0, 1.0]]), g, False
    yield u_rest + 1.0, v_basal, _as_tensor([[1.0, 1.0, 1.0]]), g, False
    # Somas on their predictions in the output layer (zero), and silent presynaptic rates.
    v_basal = _randn(3, 4, generator=generator)
    yield _attenuation(g, True) * v_basal, v_basal, _rand(3, 5, generator=generator), g, True
    yield _randn(3, 4, generator=generator), v_basal, _zeros(3, 2), g, False


@single_threaded
def check_forward_weight_update(forward_weight_update, seed: int = 0) -> None:
    """Compare with (phi(u) - phi(v^_B))^T r_pre / batch; name the likely mistake."""
    for u, v_basal, r_pre, g, output in _update_cases(_generator(seed)):
        what = f"forward_weight_update(u_soma, v_basal, rate_pre, g, output={output})"
        args = (u.clone(), v_basal.clone(), r_pre.clone(), _replace(g))
        value = call(forward_weight_update, *args, output=output, what=what)
        expected = _expected_update(u, v_basal, r_pre, g, output)
        out = _result(value, what, expected, u.dtype, "update",
                      "a weight update has the shape of the weight, (post, pre) = "
                      "(n_post, n_pre): (phi(u_soma) - phi(v^_B)).T @ rate_pre / batch")
        _judge(out, expected, f"{what} with g = {g}",
               _update_mistakes, (u, v_basal, r_pre, g, output), "update",
               "(rate(u_soma) - rate(v^_B)).T @ rate_pre / batch")
