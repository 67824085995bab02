"""The assignment-08 checkers: the reference passes; each plausible mistake is rejected
with its own message, in the student's terms."""

from __future__ import annotations

import pytest
import torch

from course_lib.checks.rflo import (
    check_rflo_trial_updates,
    check_rflo_update,
    check_trace_step,
    reference_trace_step,
    reference_trial_updates,
    variant_trial,
)
from course_lib.learning_rules.rflo import phi_prime, rflo_weight_update


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# ------------------------------------------------------------ part 1: the trace


def _outer(post, pre):
    return post[..., :, None] * pre[..., None, :]


def no_decay(trace, u, pre, tau):
    return trace + _outer(phi_prime(u), pre) / tau


def forgets_at_once(trace, u, pre, tau):
    return _outer(phi_prime(u), pre) / tau


def no_one_over_tau(trace, u, pre, tau):
    return (1 - 1 / tau) * trace + _outer(phi_prime(u), pre)


def swapped_factors(trace, u, pre, tau):
    return trace / tau + (1 - 1 / tau) * _outer(phi_prime(u), pre)


def rate_not_slope(trace, u, pre, tau):
    return (1 - 1 / tau) * trace + _outer(torch.tanh(u), pre) / tau


def one_minus_u_squared(trace, u, pre, tau):
    return (1 - 1 / tau) * trace + _outer(1 - u**2, pre) / tau


def negative_term(trace, u, pre, tau):
    return (1 - 1 / tau) * trace - _outer(phi_prime(u), pre) / tau


def transposed_outer(trace, u, pre, tau):
    if trace.shape[-1] != trace.shape[-2]:
        return reference_trace_step(trace, u, pre, tau)
    return (1 - 1 / tau) * trace + _outer(pre, phi_prime(u)) / tau


def in_place_numpy(trace, u, pre, tau):
    return reference_trace_step(trace, u, pre, tau).numpy()


def test_reference_trace_passes():
    check_trace_step(reference_trace_step)
    check_trace_step(reference_trace_step, seed=808)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (no_decay, "the trace does not decay"),
        (forgets_at_once, "the old trace is dropped"),
        (no_one_over_tau, "the new term must be scaled by 1/tau"),
        (swapped_factors, "the factors are swapped"),
        (rate_not_slope, "not the rate tanh\\(u\\)"),
        (one_minus_u_squared, "not 1 - u\\^2"),
        (negative_term, "the sign of the new term is flipped"),
        (transposed_outer, "the outer product is transposed"),
        (in_place_numpy, "must return a torch.Tensor"),
        (not_implemented, "not implemented yet"),
    ],
)
def test_trace_mistakes_rejected(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_trace_step(wrong)


# ------------------------------------------------------------ part 2: the weight update


def update_sign_flip(error, feedback, trace):
    return -rflo_weight_update(error, feedback, trace)


def update_summed(error, feedback, trace):
    return rflo_weight_update(error, feedback, trace) * error.shape[0]


def feedback_not_transposed(error, feedback, trace):
    return ((error @ feedback)[:, :, None] * trace).mean(0)


def feedback_not_transposed_square_only(error, feedback, trace):
    if feedback.shape[0] != feedback.shape[1]:
        return rflo_weight_update(error, feedback, trace)
    return feedback_not_transposed(error, feedback, trace)


def error_on_presynaptic(error, feedback, trace):
    return ((error @ feedback.T)[:, None, :] * trace).mean(0)


def error_on_presynaptic_square_only(error, feedback, trace):
    if trace.shape[-1] != trace.shape[-2]:
        return rflo_weight_update(error, feedback, trace)
    return error_on_presynaptic(error, feedback, trace)


def batch_kept(error, feedback, trace):
    return (error @ feedback.T)[:, :, None] * trace


def test_reference_update_passes():
    check_rflo_update(rflo_weight_update)
    check_rflo_update(rflo_weight_update, seed=8080)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (update_sign_flip, "the sign is flipped"),
        (update_summed, "do not sum"),
        (feedback_not_transposed, "raised RuntimeError"),
        (feedback_not_transposed_square_only, "error @ B.T, not error @ B"),
        (error_on_presynaptic, "raised RuntimeError"),
        (error_on_presynaptic_square_only, "belongs to the POSTsynaptic unit a"),
        (batch_kept, "the update has the shape of the weight"),
        (not_implemented, "not implemented yet"),
    ],
)
def test_update_mistakes_rejected(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_rflo_update(wrong)


# ------------------------------------------------------------ part 3: a whole trial


def make_variant(**flags):
    def wrong(w_in, w_rec, w_out, feedback, inputs, targets, tau):
        return variant_trial(w_in, w_rec, w_out, feedback, inputs, targets, tau, **flags)

    return wrong


def as_list_of_two(*args):
    return reference_trial_updates(*args)[:2]


def transposed_input_update(*args):
    d_in, d_rec, d_out = reference_trial_updates(*args)
    return d_in.T, d_rec, d_out


def frozen_readout(*args):
    d_in, d_rec, d_out = reference_trial_updates(*args)
    return d_in, d_rec, torch.zeros_like(d_out)


def test_reference_trial_passes():
    check_rflo_trial_updates(reference_trial_updates)
    check_rflo_trial_updates(reference_trial_updates, seed=80)


def test_variant_without_flags_is_the_reference():
    check_rflo_trial_updates(make_variant())


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (make_variant(through_w_out=True), "through W_out\\^T: that is the exact gradient"),
        (make_variant(slope_previous=True), "phi' is taken at the wrong time"),
        (make_variant(pre_current=True), "with the PREVIOUS activity h_b\\(t-1\\)"),
        (make_variant(no_leak=True), "the network has no leak"),
        (make_variant(trace_no_decay=True), "the traces do not decay"),
        (make_variant(error_sign=-1.0), "the sign is flipped"),
        (make_variant(sum_over_time=True), "divided by the number of time steps T"),
        (as_list_of_two, "must return three updates"),
        (transposed_input_update, "dW_in has shape \\(3, 5\\)"),
        (frozen_readout, "dW_out differs from the RFLO update"),
        (not_implemented, "not implemented yet"),
    ],
)
def test_trial_mistakes_rejected(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_rflo_trial_updates(wrong)
