"""Checkers for assignment 08_rflo.

The references are `course_lib.learning_rules.rflo` (Murray 2019, eLife 8:e43299): the
eligibility trace, the RFLO weight update and one trial of online RFLO learning::

    p_ab(t) = (1 - 1/tau) p_ab(t-1) + (1/tau) phi'(u_a(t)) pre_b          phi = tanh
    dW_ab   = < [B eps]_a p_ab >_batch,         eps = y* - y
    trial:  u_t = W_rec h_{t-1} + W_in x_t,  h_t = (1 - 1/tau) h_{t-1} + (1/tau) phi(u_t)
            updates summed online and divided by T (learning rate 1)

Each check runs seeded cases in float32 (the course's dtype) and one in float64, of several
shapes (a batch of one, square and non-square matrices, one output, one time step), and the
example printed in the test cell. It computes the expected value itself, in float64, with
private references to torch taken at import (an answer cell that patches torch changes
neither the cases nor the expected values). When an answer is wrong it names the mistake
from a table of plausible ones, or else says by what factor the answer is off, where it is
clipped, or which entry differs most. Every failure has a stable id ``rflo.<mistake>``.
"""

from __future__ import annotations

from itertools import permutations as _permutations

import torch

from course_lib.checks._common import (
    CheckFailure,
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

# Private references (see `_common`).
_randn = torch.randn
_rand = torch.rand
_zeros = torch.zeros
_ones = torch.ones
_as_tensor = torch.tensor
_isfinite = torch.isfinite
_tanh = torch.tanh
_float32 = torch.float32
_float64 = torch.float64
_isinstance = isinstance
_tuple_or_list = (tuple, list)

TOL = 1e-5  # absolute and relative: a correct float32 computation is well inside it


def _f64(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.to(_float64) for t in tensors]


def _slope(u: torch.Tensor) -> torch.Tensor:
    """phi'(u) = 1 - tanh(u)^2."""
    return 1 - _tanh(u) ** 2


def _outer(post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """post_a pre_b for every trial of the batch: (batch, n_post, n_pre)."""
    return post[:, :, None] * pre[:, None, :]


def _result(value, what: str, expected: torch.Tensor, dtype: torch.dtype, shape_id: str,
            shape_hint: str) -> torch.Tensor:
    """The student's tensor (exact type, private copy), checked for shape, dtype and finiteness."""
    out = tensor(value, what, finite=False)
    if tuple(out.shape) != tuple(expected.shape):
        if out.dim() == 2 and tuple(out.shape) == tuple(expected.shape)[::-1]:
            fail(f"rflo.{shape_id}_transposed",
                 f"{what} has shape {tuple(out.shape)}, the transpose of "
                 f"{tuple(expected.shape)}: {shape_hint}.")
        fail(f"rflo.{shape_id}_shape",
             f"{what} has shape {tuple(out.shape)}; it should be {tuple(expected.shape)}: "
             f"{shape_hint}.")
    if out.dtype != dtype:
        fail("common.wrong_dtype",
             f"{what} has dtype {out.dtype} for {dtype} inputs: keep the dtype of the inputs "
             "(create new tensors with torch.zeros_like(w) or x.new_zeros(...), and do not "
             "convert with .float() or .double()).")
    if not bool(_isfinite(out).all()):
        fail("common.not_finite", f"{what} contains NaN or inf although every input is finite.")
    return out


def _judge(out, expected, what: str, mistakes, case: tuple, name: str, formula: str) -> None:
    """`judge` with this assignment's ids and tolerance."""
    judge(out, expected, what, mistakes, case, name, formula, assignment="rflo", tol=TOL)


# ---------------------------------------------------------------- part 1: the trace


def _expected_trace(trace, u, pre, tau):
    """(1 - 1/tau) p + (1/tau) phi'(u) pre, in float64."""
    trace, u, pre = _f64(trace, u, pre)
    return (1 - 1 / tau) * trace + _outer(_slope(u), pre) / tau


def _trace_mistakes(trace, u, pre, tau):
    trace, u, pre = _f64(trace, u, pre)
    keep = 1 - 1 / tau

    def new_term(slope):
        return _outer(slope, pre) / tau

    square = trace.shape[-1] == trace.shape[-2]
    return [
        ("trace_not_decayed",
         "the trace does not decay: the old trace must be multiplied by (1 - 1/tau), the "
         "leak that makes it forget at the neuron's time scale",
         trace + new_term(_slope(u))),
        ("trace_old_dropped",
         "the old trace is dropped (the trace forgets everything at once): keep "
         "(1 - 1/tau) times the previous trace",
         new_term(_slope(u))),
        ("trace_new_term_not_scaled",
         "the new term must be scaled by 1/tau: p <- (1 - 1/tau) p + (1/tau) phi'(u) pre",
         keep * trace + _outer(_slope(u), pre)),
        ("trace_factors_swapped",
         "the factors are swapped: the old trace is kept with (1 - 1/tau), the new term "
         "enters with 1/tau",
         trace / tau + keep * _outer(_slope(u), pre)),
        ("trace_new_term_sign",
         "the sign of the new term is flipped: + (1/tau) phi'(u) pre",
         keep * trace - new_term(_slope(u))),
        ("trace_rate_not_slope",
         "use the slope phi'(u) = 1 - tanh(u)^2, not the rate tanh(u)",
         keep * trace + new_term(_tanh(u))),
        ("trace_slope_of_u",
         "phi'(u) is 1 - tanh(u)^2, not 1 - u^2: `u` is the current before the tanh",
         keep * trace + new_term(1 - u**2)),
        ("trace_slope_not_squared",
         "phi'(u) is 1 - tanh(u)^2: the square is missing",
         keep * trace + new_term(1 - _tanh(u))),
        ("trace_current_not_slope",
         "use the slope phi'(u) = 1 - tanh(u)^2, not the current u itself",
         keep * trace + new_term(u)),
        ("trace_slope_missing",
         "the postsynaptic factor phi'(u_a) is missing: p_ab pairs the slope of the "
         "postsynaptic unit with the presynaptic activity",
         keep * trace + new_term(_ones(u.shape, dtype=_float64))),
        ("trace_outer_transposed",
         "the outer product is transposed: p_ab pairs the POSTsynaptic slope "
         "phi'(u_a) (rows) with the PREsynaptic activity pre_b (columns)",
         keep * trace + _outer(pre, _slope(u)) / tau if square else None),
        ("trace_integer_division",
         "the trace did not change: 1 // tau is 0 (floor division); write 1 / tau",
         trace),
    ]


def _trace_cases(generator):
    """(trace, u, pre, tau): random cases (a square trace first, so that a transposed outer
    product is named, then a batch of one with values far from 0, float64), then the test
    cell's example."""
    for batch, n_post, n_pre, u_scale, scale, dtype in ((2, 3, 3, 1.5, 1.0, _float32),
                                                        (3, 4, 2, 1.5, 1.0, _float32),
                                                        (1, 2, 5, 20.0, 30.0, _float32),
                                                        (2, 5, 3, 1.5, 1.0, _float64)):
        trace = _randn(batch, n_post, n_pre, generator=generator, dtype=_float64) * scale
        u = _randn(batch, n_post, generator=generator, dtype=_float64) * u_scale
        pre = _randn(batch, n_pre, generator=generator, dtype=_float64) * scale
        tau = round(float(_rand(1, generator=generator)) * 7 + 3, 2)  # 1/tau != 1 - 1/tau
        if dtype == _float64:
            tau = int(tau)  # tau counts time steps: a whole number must work too
        yield trace.to(dtype), u.to(dtype), pre.to(dtype), tau
    yield _ones(1, 2, 2), _zeros(1, 2), _as_tensor([[1.0, 0.0]]), 4.0  # the test cell's


@single_threaded
def check_trace_step(eligibility_trace_step, seed: int = 0) -> None:
    """Compare one trace step with (1 - 1/tau) p + (1/tau) phi'(u) pre; name the mistake."""
    for trace, u, pre, tau in _trace_cases(_generator(seed)):
        what = f"eligibility_trace_step(trace, u, pre, tau={tau})"
        value = call(eligibility_trace_step, trace.clone(), u.clone(), pre.clone(), tau,
                     what=what)
        expected = _expected_trace(trace, u, pre, tau)
        out = _result(value, what, expected, trace.dtype, "trace",
                      "the trace keeps its shape (batch, n_post, n_pre)")
        _judge(out, expected, what, _trace_mistakes, (trace, u, pre, tau), "trace",
               "(1 - 1/tau) p + (1/tau) phi'(u) pre")


# ---------------------------------------------------------------- part 2: the update


def _expected_update(error, feedback, trace):
    """< [B eps]_a p_ab >_batch, in float64."""
    error, feedback, trace = _f64(error, feedback, trace)
    return ((error @ feedback.T)[:, :, None] * trace).mean(0)


def _update_mistakes(error, feedback, trace):
    error, feedback, trace = _f64(error, feedback, trace)
    batch = error.shape[0]
    right = _expected_update(error, feedback, trace)
    signal = error @ feedback.T
    return [
        ("update_sign_flipped", "the sign is flipped: dW = +[B eps]_a p_ab with eps = y* - y",
         -right),
        ("update_summed", "average over the batch (divide by the batch size), do not sum",
         right * batch),
        ("update_product_of_means",
         "average the product over the batch, < [B eps]_a p_ab >, not the product of the "
         "batch averages of [B eps]_a and p_ab",
         signal.mean(0)[:, None] * trace.mean(0)),
        ("update_feedback_not_transposed",
         "B is (n_hidden, n_output): the feedback to the hidden units is B eps, which for a "
         "batch of row vectors is error @ B.T, not error @ B",
         ((error @ feedback)[:, :, None] * trace).mean(0)
         if feedback.shape[0] == feedback.shape[1] else None),
        ("update_error_on_presynaptic",
         "the fed-back error [B eps]_a belongs to the POSTsynaptic unit a (the rows of the "
         "trace), not to the presynaptic unit b",
         (signal[:, None, :] * trace).mean(0) if trace.shape[-1] == trace.shape[-2] else None),
        ("update_transposed",
         "the update is transposed: it has the layout of the trace, (n_hidden, n_pre)",
         right.T if right.shape[0] == right.shape[1] else None),
    ]


def _update_cases(generator):
    """(error, feedback, trace): a square case first (B and the trace square, so that a
    missing transpose is named), one output with large errors, a batch of one, float64; the
    test cell's."""
    for batch, n_hidden, n_pre, n_out, scale, dtype in ((3, 4, 4, 4, 1.0, _float32),
                                                        (2, 5, 3, 1, 40.0, _float32),
                                                        (1, 3, 2, 2, 1.0, _float32),
                                                        (4, 4, 6, 2, 1.0, _float64)):
        error = _randn(batch, n_out, generator=generator, dtype=_float64) * scale
        feedback = _randn(n_hidden, n_out, generator=generator, dtype=_float64)
        trace = _randn(batch, n_hidden, n_pre, generator=generator, dtype=_float64)
        yield error.to(dtype), feedback.to(dtype), trace.to(dtype)
    yield _as_tensor([[2.0]]), _as_tensor([[1.0], [-0.5]]), _ones(1, 2, 3)  # the test cell's


@single_threaded
def check_rflo_update(rflo_update, seed: int = 0) -> None:
    """Compare ``< [B eps]_a p_ab >`` with the expected update; name the likely mistake."""
    what = "rflo_update(error, feedback, trace)"
    for error, feedback, trace in _update_cases(_generator(seed)):
        value = call(rflo_update, error.clone(), feedback.clone(), trace.clone(), what=what)
        expected = _expected_update(error, feedback, trace)
        out = _result(value, what, expected, error.dtype, "update",
                      "the update has the shape of the weight, (n_hidden, n_pre)")
        _judge(out, expected, what, _update_mistakes, (error, feedback, trace),
               "update", "< [B eps]_a p_ab >_batch")


# ---------------------------------------------------------------- part 3: a whole trial


def variant_trial(w_in, w_rec, w_out, feedback, inputs, targets, tau, *,
                  through_w_out=False, slope_previous=False, pre_current=False, no_leak=False,
                  no_gain=False, trace_no_decay=False, error_sign=1.0, error_previous_h=False,
                  readout_previous_h=False, readout_summed=False, sum_over_time=False):
    """One RFLO trial in float64 with optional mistakes; all flags off is the expected one."""
    w_in, w_rec, w_out, feedback, inputs, targets = _f64(
        w_in, w_rec, w_out, feedback, inputs, targets)
    steps, batch, n_input = inputs.shape
    n_hidden = w_rec.shape[0]
    b = w_out.T if through_w_out else feedback
    keep = 1.0 if no_leak else 1 - 1 / tau  # of the activity
    gain = 1.0 if (no_leak or no_gain) else 1 / tau
    trace_keep = 1.0 if trace_no_decay else 1 - 1 / tau
    h = _zeros(batch, n_hidden, dtype=_float64)
    u_previous = _zeros(batch, n_hidden, dtype=_float64)
    p = _zeros(batch, n_hidden, n_hidden, dtype=_float64)
    q = _zeros(batch, n_hidden, n_input, dtype=_float64)
    d_in, d_rec, d_out = (_zeros(w.shape, dtype=_float64) for w in (w_in, w_rec, w_out))
    for t in range(steps):
        x = inputs[t]
        u = h @ w_rec.T + x @ w_in.T
        slope = _slope(u_previous if slope_previous else u)
        h_new = keep * h + gain * _tanh(u)
        p = trace_keep * p + _outer(slope, h_new if pre_current else h) / tau
        q = trace_keep * q + _outer(slope, x) / tau
        error = error_sign * (targets[t] - (h if error_previous_h else h_new) @ w_out.T)
        signal = error @ b.T
        d_rec = d_rec + (signal[:, :, None] * p).mean(0)
        d_in = d_in + (signal[:, :, None] * q).mean(0)
        d_out = d_out + error.T @ (h if readout_previous_h else h_new) / (
            1 if readout_summed else batch)
        h, u_previous = h_new, u
    scale = 1 if sum_over_time else steps
    return d_in / scale, d_rec / scale, d_out / scale


_TRIAL_MISTAKES = [
    ("trial_through_w_out",
     "the error reaches the hidden units through W_out^T: that is the exact gradient's "
     "weight transport. RFLO feeds the error back through the fixed random `feedback` B",
     {"through_w_out": True}),
    ("trial_slope_previous",
     "phi' is taken at the wrong time: the traces at step t use the slope phi'(u_t) of the "
     "current computed at this step, not the previous step's",
     {"slope_previous": True}),
    ("trial_pre_current",
     "the recurrent trace must pair phi'(u_a(t)) with the PREVIOUS activity h_b(t-1), the "
     "one that produced u(t): update the traces before h moves on",
     {"pre_current": True}),
    ("trial_no_leak",
     "the network has no leak: h_t = (1 - 1/tau) h_{t-1} + (1/tau) tanh(u_t), not tanh(u_t)",
     {"no_leak": True}),
    ("trial_new_activity_not_scaled",
     "the new activity enters with 1/tau: h_t = (1 - 1/tau) h_{t-1} + (1/tau) tanh(u_t)",
     {"no_gain": True}),
    ("trial_trace_not_decayed",
     "the traces do not decay: keep (1 - 1/tau) of the previous trace at each step",
     {"trace_no_decay": True}),
    ("trial_error_sign",
     "the sign is flipped: the error is eps = y* - y (target minus output), and the "
     "updates are added to the weights",
     {"error_sign": -1.0}),
    ("trial_error_before_step",
     "the error is computed from the previous activity: eps_t = y*_t - W_out h_t uses the "
     "new h_t, so compute it after the activity update (step 4 after step 3)",
     {"error_previous_h": True, "readout_previous_h": True}),
    ("trial_error_before_step",
     "the error is computed from the previous activity: eps_t = y*_t - W_out h_t uses the "
     "new h_t, so compute it after the activity update (step 4 after step 3)",
     {"error_previous_h": True}),
    ("trial_readout_previous_h",
     "the readout's delta rule pairs eps_t with the new activity h_t (the one that made "
     "the output y_t), not with h_{t-1}",
     {"readout_previous_h": True}),
    ("trial_readout_summed",
     "the readout update must be averaged over the batch, < eps_t h_t^T >: divide by "
     "the batch size",
     {"readout_summed": True}),
    ("trial_not_divided_by_steps",
     "the updates summed over the trial must be divided by the number of time steps T",
     {"sum_over_time": True}),
]

_NAMES = ("dW_in", "dW_rec", "dW_out")


def _trial_cases(generator):
    """(w_in, w_rec, w_out, feedback, inputs, targets, tau): random float32 trials (a square
    W_in with one output and large targets, one step and one trial), then the test cell's
    example, then float64."""
    sizes = ((3, 5, 2, 7, 3, 1.0, _float32), (4, 4, 1, 5, 2, 500.0, _float32),
             (2, 3, 1, 1, 1, 1.0, _float32), (2, 4, 2, 6, 3, 1.0, _float64))
    for index, (n_input, n_hidden, n_out, steps, batch, scale, dtype) in enumerate(sizes):
        w_in = _randn(n_hidden, n_input, generator=generator, dtype=_float64)
        w_rec = _randn(n_hidden, n_hidden, generator=generator, dtype=_float64) * 0.8
        w_out = _randn(n_out, n_hidden, generator=generator, dtype=_float64)
        feedback = _randn(n_hidden, n_out, generator=generator, dtype=_float64)
        inputs = _randn(steps, batch, n_input, generator=generator, dtype=_float64)
        targets = _randn(steps, batch, n_out, generator=generator, dtype=_float64) * scale
        tau = round(float(_rand(1, generator=generator)) * 6 + 3, 2)
        if dtype == _float64:
            tau = int(tau)  # tau counts time steps: a whole number must work too
        if index == len(sizes) - 1:
            yield _test_cell_example()
        yield (*(t.to(dtype) for t in (w_in, w_rec, w_out, feedback, inputs, targets)), tau)


def _test_cell_example():
    generator = _generator(0)
    w_in, w_rec = _randn(4, 2, generator=generator), _randn(4, 4, generator=generator)
    w_out, feedback = _randn(1, 4, generator=generator), _randn(4, 1, generator=generator)
    inputs = _randn(6, 3, 2, generator=generator)
    targets = _randn(6, 3, 1, generator=generator)
    return w_in, w_rec, w_out, feedback, inputs, targets, 5.0


def _call_trial(rflo_trial_updates, case, what: str):
    """The student's three updates; a float64 failure after float32 passed is a dtype hint."""
    try:
        value = call(rflo_trial_updates, *(t.clone() for t in case[:-1]), case[-1], what=what)
    except CheckFailure as failure:
        if failure.mistake == "common.raised" and case[0].dtype == _float64:
            fail("rflo.trial_float32_state",
                 f"{failure.message}, with float64 inputs (the float32 cases passed): create "
                 "h, the traces and the sums with the inputs' dtype, e.g. "
                 "inputs.new_zeros(batch, n_hidden) or torch.zeros_like(w_in).")
        raise
    if not _isinstance(value, _tuple_or_list) or len(value) != 3:
        fail("rflo.trial_not_three_updates",
             f"{what} must return the three updates (dW_in, dW_rec, dW_out), got "
             f"{type(value).__name__}" + (f" of length {len(value)}." if _isinstance(
                 value, _tuple_or_list) else "."))
    return value


def _in_another_order(got, expected) -> bool:
    """The three updates, but permuted: told by the shapes, or by the values if they agree."""
    shapes = [tuple(t.shape) for t in got]
    for order in _permutations(range(3)):
        reordered = [expected[i] for i in order]
        if order == (0, 1, 2) or shapes != [tuple(e.shape) for e in reordered]:
            continue
        if shapes != [tuple(e.shape) for e in expected]:
            return True
        if all(close(g, e, TOL) for g, e in zip(got, reordered, strict=True)):
            return True
    return False


@single_threaded
def check_rflo_trial_updates(rflo_trial_updates, seed: int = 0) -> None:
    """Run whole seeded trials; compare the three updates; name the likely mistake."""
    what = "rflo_trial_updates(w_in, w_rec, w_out, feedback, inputs, targets, tau)"
    for case in _trial_cases(_generator(seed)):
        here = f"{what} with tau = {case[-1]}"
        value = _call_trial(rflo_trial_updates, case, here)
        expected = variant_trial(*case)
        got = [tensor(v, f"{here}: {name}", finite=False) for v, name in zip(value, _NAMES,
                                                                              strict=True)]
        if _in_another_order(got, expected):
            fail("rflo.trial_wrong_order", f"{here} returned the three updates in another "
                 "order: return (dW_in, dW_rec, dW_out).")
        got = [_result(g, f"{here}: {name}", e, case[0].dtype, "trial",
                       "each update has the shape of its weight, (post, pre)")
               for g, name, e in zip(got, _NAMES, expected, strict=True)]
        if all(close(g, e, TOL) for g, e in zip(got, expected, strict=True)):
            continue
        for mistake_id, message, flags in _TRIAL_MISTAKES:
            wrong = variant_trial(*case, **flags)
            if all(close(g, w, TOL) for g, w in zip(got, wrong, strict=True)):
                fail(f"rflo.{mistake_id}", f"{here}: {message}.")
        steps, batch = case[4].shape[:2]
        # dW_out first: it needs only h_t and eps_t, so it tells the forward pass from the traces.
        for index in (2, 0, 1):
            name, g, e = _NAMES[index], got[index], expected[index]
            if close(g, e, TOL):
                continue
            weight = name[1:].lower()  # "w_in"
            limits = clipped_range(g, e, TOL)
            if limits is not None:
                fail(f"rflo.trial_{weight}_clipped",
                     f"{here}: {name} is the RFLO update clipped to [{limits[0]:.4g}, "
                     f"{limits[1]:.4g}]: the rule has no limit, do not clamp it.")
            factor = scale_factor(g, e, TOL)
            if factor is not None:
                fail(f"rflo.trial_{weight}_scaled",
                     f"{here}: {name} is {factor:.4g} times the RFLO update (here T = {steps} "
                     f"steps and batch = {batch}): look for an extra factor, or a wrong "
                     "normalisation (average over the batch at each step, divide the sum over "
                     "the trial by T).")
            where = ("the delta rule < eps_t h_t^T > needs only the activity and the error, "
                     "so check h_t = (1 - 1/tau) h_{t-1} + (1/tau) tanh(u_t) and "
                     "eps_t = y*_t - W_out h_t" if name == "dW_out" else
                     "dW_out is right, so h_t and eps_t are: check the traces (Part 1, with "
                     "phi'(u_t) and h_{t-1} or x_t) and the fed-back error (Part 2)")
            fail(f"rflo.trial_wrong_{weight}",
                 f"{here}: {name} differs from the RFLO update ({worst_entry(g, e)}): {where}.")
