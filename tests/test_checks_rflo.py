"""The assignment-08 checkers: the library's reference and correct variants pass at several
seeds; each plausible mistake is rejected with its own id and message, in the student's terms."""

from __future__ import annotations

import pytest
import torch
from catalogue import AlwaysEqual, not_implemented, rejects

from course_lib.checks.rflo import (
    check_rflo_trial_updates,
    check_rflo_update,
    check_trace_step,
    variant_trial,
)
from course_lib.learning_rules.rflo import (
    LeakyRNN,
    phi_prime,
    rflo_trace_step,
    rflo_trial,
    rflo_weight_update,
)

SEEDS = (0, 1, 808, 2019)


# ------------------------------------------------------------ part 1: the trace


def reference_trace(trace, u, pre, tau):
    return rflo_trace_step(trace, phi_prime(u), pre, tau)


def trace_einsum(trace, u, pre, tau):
    slope = 1 / torch.cosh(u) ** 2
    return trace - trace / tau + torch.einsum("bi,bj->bij", slope, pre) / tau


def trace_bmm(trace, u, pre, tau):
    alpha = 1.0 / tau
    outer = torch.bmm((1 - torch.tanh(u) ** 2).unsqueeze(2), pre.unsqueeze(1))
    return (1 - alpha) * trace + alpha * outer


def trace_loops(trace, u, pre, tau):
    new = trace.clone()
    for n in range(trace.shape[0]):
        for a in range(trace.shape[1]):
            for b in range(trace.shape[2]):
                slope = 1 - torch.tanh(u[n, a]) ** 2
                new[n, a, b] = (1 - 1 / tau) * trace[n, a, b] + slope * pre[n, b] / tau
    return new


@pytest.mark.parametrize("correct", [reference_trace, trace_einsum, trace_bmm, trace_loops])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_traces_pass(correct, seed):
    check_trace_step(correct, seed=seed)


def _outer(post, pre):
    return post[..., :, None] * pre[..., None, :]


def trace_rule(keep, gain, slope=phi_prime, transpose=False):
    """A student's trace keep(tau) * p + gain(tau) * outer(slope(u), pre)."""

    def wrong(trace, u, pre, tau):
        outer = _outer(pre, slope(u)) if transpose else _outer(slope(u), pre)
        return keep(tau) * trace + gain(tau) * outer

    return wrong


def leak(tau):
    return 1 - 1 / tau


def inverse(tau):
    return 1 / tau


def transposed_when_square(trace, u, pre, tau):
    if trace.shape[-1] != trace.shape[-2]:
        return reference_trace(trace, u, pre, tau)
    return trace_rule(leak, inverse, transpose=True)(trace, u, pre, tau)


def trace_floor_division_for_whole_tau(trace, u, pre, tau):
    """Right for a float tau, but 1 // tau = 0 when tau is a whole number of steps."""
    alpha = 1 // tau if isinstance(tau, int) else 1 / tau
    return (1 - alpha) * trace + alpha * _outer(phi_prime(u), pre)


def trace_in_place(trace, u, pre, tau):
    trace.mul_(1 - 1 / tau)
    return trace.add_(_outer(phi_prime(u), pre) / tau)


def trace_numpy(trace, u, pre, tau):
    return reference_trace(trace, u, pre, tau).numpy()


def trace_subclass(trace, u, pre, tau):
    return reference_trace(trace, u, pre, tau).as_subclass(AlwaysEqual)


def trace_squeezed(trace, u, pre, tau):
    return reference_trace(trace, u, pre, tau).squeeze()


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (trace_rule(lambda tau: 1.0, inverse), "rflo.trace_not_decayed",
         "the trace does not decay"),
        (trace_rule(lambda tau: 0.0, inverse), "rflo.trace_old_dropped",
         "the old trace is dropped"),
        (trace_rule(leak, lambda tau: 1.0), "rflo.trace_new_term_not_scaled",
         "the new term must be scaled by 1/tau"),
        (trace_rule(inverse, leak), "rflo.trace_factors_swapped", "the factors are swapped"),
        (trace_rule(leak, lambda tau: -1 / tau), "rflo.trace_new_term_sign",
         "the sign of the new term is flipped"),
        (trace_rule(leak, inverse, slope=torch.tanh), "rflo.trace_rate_not_slope",
         "not the rate tanh\\(u\\)"),
        (trace_rule(leak, inverse, slope=lambda u: 1 - u**2), "rflo.trace_slope_of_u",
         "not 1 - u\\^2"),
        (trace_rule(leak, inverse, slope=lambda u: 1 - torch.tanh(u)),
         "rflo.trace_slope_not_squared",
         "the square is missing"),
        (trace_rule(leak, inverse, slope=lambda u: u), "rflo.trace_current_not_slope",
         "not the current u itself"),
        (trace_rule(leak, inverse, slope=torch.ones_like), "rflo.trace_slope_missing",
         "the postsynaptic factor phi'\\(u_a\\) is missing"),
        (trace_rule(leak, inverse, transpose=True), "rflo.trace_outer_transposed",
         "the outer product is transposed"),
        (transposed_when_square, "rflo.trace_outer_transposed", "the outer product is transposed"),
        (trace_rule(lambda tau: 1 - 1 // tau, lambda tau: 1 // tau), "rflo.trace_integer_division",
         "1 // tau is 0"),
        (trace_floor_division_for_whole_tau, "rflo.trace_integer_division", "1 // tau is 0"),
        (trace_rule(leak, lambda tau: 1 / tau + 1e-3), "rflo.trace_wrong_value",
         "differs from \\(1 - 1/tau\\) p \\+ \\(1/tau\\) phi'\\(u\\) pre"),
        (lambda *args: reference_trace(*args).clamp(-5, 5), "rflo.trace_clipped",
         "clipped to \\[-5, 5\\]: the formula has no limit"),
        (trace_in_place, "common.in_place", "changed its argument trace in place"),
        (lambda *args: reference_trace(*args).double(), "common.wrong_dtype",
         "keep the dtype of the inputs"),
        (trace_squeezed, "rflo.trace_shape", "the trace keeps its shape"),
        (trace_numpy, "common.wrong_type", "must return a torch.Tensor"),
        (trace_subclass, "common.tensor_subclass", "plain torch.Tensor"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_trace_mistakes_rejected(wrong, mistake, message):
    rejects(check_trace_step, wrong, mistake, message)


# ------------------------------------------------------------ part 2: the weight update


def update_einsum(error, feedback, trace):
    return torch.einsum("bo,ho,bhp->hp", error, feedback, trace) / error.shape[0]


def update_loop(error, feedback, trace):
    total = torch.zeros(trace.shape[1:], dtype=trace.dtype)
    for n in range(error.shape[0]):
        total = total + (feedback @ error[n])[:, None] * trace[n]
    return total / error.shape[0]


@pytest.mark.parametrize("correct", [rflo_weight_update, update_einsum, update_loop])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_updates_pass(correct, seed):
    check_rflo_update(correct, seed=seed)


def update_summed(error, feedback, trace):
    return ((error @ feedback.T)[:, :, None] * trace).sum(0)


def feedback_not_transposed(error, feedback, trace):
    return ((error @ feedback)[:, :, None] * trace).mean(0)


def feedback_not_transposed_square_only(error, feedback, trace):
    if feedback.shape[0] != feedback.shape[1]:
        return rflo_weight_update(error, feedback, trace)
    return feedback_not_transposed(error, feedback, trace)


def error_on_presynaptic(error, feedback, trace):
    return ((error @ feedback.T)[:, None, :] * trace).mean(0)


def product_of_means(error, feedback, trace):
    return (error @ feedback.T).mean(0)[:, None] * trace.mean(0)


def batch_kept(error, feedback, trace):
    return (error @ feedback.T)[:, :, None] * trace


def update_transposed(error, feedback, trace):
    return rflo_weight_update(error, feedback, trace).T


def update_in_place(error, feedback, trace):
    trace *= (error @ feedback.T)[:, :, None]
    return trace.mean(0)


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (lambda e, b, p: -rflo_weight_update(e, b, p), "rflo.update_sign_flipped",
         "the sign is flipped"),
        (update_summed, "rflo.update_summed", "do not sum"),
        (product_of_means, "rflo.update_product_of_means", "not the product of the batch avera"),
        (feedback_not_transposed, "rflo.update_feedback_not_transposed",
         "error @ B.T, not error @ B"),
        (feedback_not_transposed_square_only, "rflo.update_feedback_not_transposed",
         "error @ B.T, not error @ B"),
        (error_on_presynaptic, "rflo.update_error_on_presynaptic",
         "belongs to the POSTsynaptic unit a"),
        (update_transposed, "rflo.update_transposed", "the update is transposed"),
        (batch_kept, "rflo.update_shape", "the update has the shape of the weight"),
        (lambda e, b, p: rflo_weight_update(e, b, p) * e.shape[0] / e.shape[1],
         "rflo.update_scaled", "times < \\[B eps\\]_a p_ab >_batch: look for a wrong normal"),
        (lambda e, b, p: rflo_weight_update(e, b, p) + 1e-3, "rflo.update_wrong_value",
         "differs from < \\[B eps\\]_a p_ab >_batch"),
        (lambda e, b, p: rflo_weight_update(e, b, p).clamp(-5, 5), "rflo.update_clipped",
         "clipped to \\[-5, 5\\]"),
        (update_in_place, "common.in_place", "changed its argument trace in place"),
        (lambda e, b, p: rflo_weight_update(e, b, p).double(), "common.wrong_dtype",
         "keep the dtype of the inputs"),
        (lambda e, b, p: None, "common.wrong_type", "did you forget `return`"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_update_mistakes_rejected(wrong, mistake, message):
    rejects(check_rflo_update, wrong, mistake, message)


# ------------------------------------------------------------ part 3: a whole trial


def reference_trial(w_in, w_rec, w_out, feedback, inputs, targets, tau):
    """The library's `rflo_trial` on a network holding these weights."""
    n_hidden, n_input = w_in.shape
    rnn = LeakyRNN(n_input, n_hidden, w_out.shape[0], tau=tau, seed=0).to(inputs.dtype)
    with torch.no_grad():
        for name, value in (("w_in", w_in), ("w_rec", w_rec), ("w_out", w_out)):
            getattr(rnn, name).copy_(value)
        rnn.feedback.copy_(feedback)
    trial = rflo_trial(rnn, inputs, targets)
    return trial.w_in, trial.w_rec, trial.w_out


def trial_with_lists(w_in, w_rec, w_out, feedback, inputs, targets, tau):
    """Store the updates per step in lists and average them at the end."""
    batch = inputs.shape[1]
    h = torch.zeros_like(inputs[0, :, :1]).expand(batch, w_rec.shape[0]).clone()
    p = torch.zeros(batch, *w_rec.shape, dtype=inputs.dtype)
    q = torch.zeros(batch, *w_in.shape, dtype=inputs.dtype)
    steps = {"in": [], "rec": [], "out": []}
    for x, target in zip(inputs, targets, strict=True):
        u = torch.einsum("hj,bj->bh", w_rec, h) + torch.einsum("hi,bi->bh", w_in, x)
        slope = 1 - torch.tanh(u) ** 2
        p = (1 - 1 / tau) * p + torch.einsum("bh,bj->bhj", slope, h) / tau
        q = (1 - 1 / tau) * q + torch.einsum("bh,bi->bhi", slope, x) / tau
        h = h + (torch.tanh(u) - h) / tau
        error = target - h @ w_out.T
        signal = error @ feedback.T
        steps["rec"].append((signal[:, :, None] * p).mean(0))
        steps["in"].append((signal[:, :, None] * q).mean(0))
        steps["out"].append(torch.einsum("bo,bh->oh", error, h) / batch)
    return tuple(torch.stack(steps[k]).mean(0) for k in ("in", "rec", "out"))


def student_trial(activity="rate", slope_of="u"):
    """A trial written out as a student would, with the leaky average of the current
    instead of the rate, or the slope phi' of the activity h instead of the current u."""

    def trial(w_in, w_rec, w_out, feedback, inputs, targets, tau):
        steps, batch, n_input = inputs.shape
        n = w_rec.shape[0]
        h = inputs.new_zeros(batch, n)
        p, q = inputs.new_zeros(batch, n, n), inputs.new_zeros(batch, n, n_input)
        d_in, d_rec, d_out = (torch.zeros_like(w) for w in (w_in, w_rec, w_out))
        for x, target in zip(inputs, targets, strict=True):
            u = h @ w_rec.T + x @ w_in.T
            slope = phi_prime(u if slope_of == "u" else h)
            p = (1 - 1 / tau) * p + _outer(slope, h) / tau
            q = (1 - 1 / tau) * q + _outer(slope, x) / tau
            h = (1 - 1 / tau) * h + (torch.tanh(u) if activity == "rate" else u) / tau
            error = target - h @ w_out.T
            d_rec = d_rec + rflo_weight_update(error, feedback, p)
            d_in = d_in + rflo_weight_update(error, feedback, q)
            d_out = d_out + error.T @ h / batch
        return d_in / steps, d_rec / steps, d_out / steps

    return trial


def trial_in_float32(*args):
    """Computed in float32 whatever the inputs, returned in the inputs' dtype."""
    tensors, tau = args[:-1], args[-1]
    updates = reference_trial(*(t.float() for t in tensors), tau)
    return tuple(d.to(tensors[0].dtype) for d in updates)


@pytest.mark.parametrize(
    "correct", [reference_trial, trial_with_lists, student_trial(), trial_in_float32]
)
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_trials_pass(correct, seed):
    check_rflo_trial_updates(correct, seed=seed)


def make_variant(**flags):
    """A student's trial with one mistake, in the dtype of the inputs."""

    def wrong(w_in, w_rec, w_out, feedback, inputs, targets, tau):
        updates = variant_trial(w_in, w_rec, w_out, feedback, inputs, targets, tau, **flags)
        return tuple(d.to(inputs.dtype) for d in updates)

    return wrong


def test_variant_without_flags_is_the_reference():
    check_rflo_trial_updates(make_variant())


def as_list_of_two(*args):
    return list(reference_trial(*args)[:2])


def transposed_input_update(*args):
    d_in, d_rec, d_out = reference_trial(*args)
    return d_in.T, d_rec, d_out


def frozen_readout(*args):
    d_in, d_rec, d_out = reference_trial(*args)
    return d_in, d_rec, torch.zeros_like(d_out)


def readout_not_divided_by_steps(w_in, w_rec, w_out, feedback, inputs, targets, tau):
    d_in, d_rec, d_out = reference_trial(w_in, w_rec, w_out, feedback, inputs, targets, tau)
    return d_in, d_rec, d_out * inputs.shape[0]


def swapped_order(*args):
    d_in, d_rec, d_out = reference_trial(*args)
    return d_rec, d_in, d_out


def swapped_order_when_square(*args):
    d_in, d_rec, d_out = reference_trial(*args)
    return (d_rec, d_in, d_out) if d_in.shape == d_rec.shape else (d_in, d_rec, d_out)


def float32_state(w_in, w_rec, w_out, feedback, inputs, targets, tau):
    """Creates h in the default dtype: breaks on float64 inputs."""
    h = torch.zeros(inputs.shape[1], w_rec.shape[0])
    h @ w_rec.T  # noqa: B018 - the student's first use of h
    return reference_trial(w_in, w_rec, w_out, feedback, inputs, targets, tau)


def floor_division_for_whole_tau(w_in, w_rec, w_out, feedback, inputs, targets, tau):
    """Right for a float tau; with a whole number of steps 1 // tau = 0 freezes h at 0."""
    if isinstance(tau, int):
        zero = inputs.new_zeros(())
        return tuple(torch.zeros_like(w) + zero for w in (w_in, w_rec, w_out))
    return reference_trial(w_in, w_rec, w_out, feedback, inputs, targets, tau)


def float32_sums(w_in, w_rec, w_out, feedback, inputs, targets, tau):
    """Sums in float32 tensors updated in place: float64 updates come back as float32."""
    sums = [torch.zeros(w.shape) for w in (w_in, w_rec, w_out)]
    for total, update in zip(sums, reference_trial(w_in, w_rec, w_out, feedback, inputs,
                                                   targets, tau), strict=True):
        total += update
    return tuple(sums)


def trial_in_place(w_in, w_rec, w_out, feedback, inputs, targets, tau):
    w_rec.fill_diagonal_(0.0)  # "no self-connections"
    return reference_trial(w_in, w_rec, w_out, feedback, inputs, targets, tau)


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (make_variant(through_w_out=True), "rflo.trial_through_w_out",
         "through W_out\\^T: that is the exact gradient"),
        (make_variant(slope_previous=True), "rflo.trial_slope_previous",
         "phi' is taken at the wrong time"),
        (make_variant(pre_current=True), "rflo.trial_pre_current",
         "with the PREVIOUS activity h_b\\(t-1\\)"),
        (make_variant(no_leak=True), "rflo.trial_no_leak", "the network has no leak"),
        (make_variant(no_gain=True), "rflo.trial_new_activity_not_scaled",
         "the new activity enters with 1/tau"),
        (make_variant(trace_no_decay=True), "rflo.trial_trace_not_decayed",
         "the traces do not decay"),
        (make_variant(error_sign=-1.0), "rflo.trial_error_sign", "the sign is flipped"),
        (make_variant(error_previous_h=True), "rflo.trial_error_before_step",
         "computed from the previous activity"),
        (make_variant(error_previous_h=True, readout_previous_h=True),
         "rflo.trial_error_before_step", "computed from the previous activity"),
        (make_variant(readout_previous_h=True), "rflo.trial_readout_previous_h",
         "not with h_\\{t-1\\}"),
        (make_variant(readout_summed=True), "rflo.trial_readout_summed",
         "averaged over the batch"),
        (make_variant(sum_over_time=True), "rflo.trial_not_divided_by_steps",
         "divided by the number of time steps T"),
        (as_list_of_two, "rflo.trial_not_three_updates", "must return the three updates"),
        (lambda *args: reference_trial(*args)[0], "rflo.trial_not_three_updates",
         "got Tensor"),
        (transposed_input_update, "rflo.trial_transposed", "dW_in has shape \\(3, 5\\)"),
        (frozen_readout, "rflo.trial_wrong_w_out", "dW_out differs from the RFLO update"),
        (student_trial(activity="current"), "rflo.trial_wrong_w_out",
         "check h_t = \\(1 - 1/tau\\) h_\\{t-1\\} \\+ \\(1/tau\\) tanh\\(u_t\\)"),
        (student_trial(slope_of="h"), "rflo.trial_wrong_w_in",
         "dW_out is right, so h_t and eps_t are: check the traces"),
        (readout_not_divided_by_steps, "rflo.trial_w_out_scaled",
         "dW_out is 7 times the RFLO update \\(here T = 7 steps"),
        (swapped_order, "rflo.trial_wrong_order", "in another order"),
        (lambda *args: tuple(d.clamp(-2, 2) for d in reference_trial(*args)),
         "rflo.trial_w_out_clipped", "dW_out is the RFLO update clipped to \\[-2, 2\\]"),
        (swapped_order_when_square, "rflo.trial_wrong_order", "in another order"),
        (float32_state, "rflo.trial_float32_state", "with the inputs' dtype"),
        (floor_division_for_whole_tau, "rflo.trial_wrong_w_out",
         "with tau = [0-9]+: dW_out differs from the RFLO update"),
        (float32_sums, "common.wrong_dtype", "torch.zeros_like"),
        (trial_in_place, "common.in_place", "changed its argument w_rec in place"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_trial_mistakes_rejected(wrong, mistake, message):
    rejects(check_rflo_trial_updates, wrong, mistake, message)
