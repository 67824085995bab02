"""Checkers for assignment 08_rflo.

The references are `course_lib.learning_rules.rflo` (Murray 2019, eLife 8:e43299): the
eligibility trace, the RFLO weight update and one trial of online RFLO learning::

    p_ab(t) = (1 - 1/tau) p_ab(t-1) + (1/tau) phi'(u_a(t)) pre_b          phi = tanh
    dW_ab   = < [B eps]_a p_ab >_batch,         eps = y* - y
    trial:  u_t = W_rec h_{t-1} + W_in x_t,  h_t = (1 - 1/tau) h_{t-1} + (1/tau) phi(u_t)
            updates summed online and divided by T (learning rate 1)
"""

from __future__ import annotations

import torch

from course_lib._validate import make_generator
from course_lib.checks._common import (
    as_tensor,
    call,
    close,
    fail,
    single_threaded,
    worst_entry,
)
from course_lib.learning_rules.rflo import (
    LeakyRNN,
    phi_prime,
    readout_update,
    rflo_trace_step,
    rflo_trial,
    rflo_weight_update,
)

# ---------------------------------------------------------------- part 1: the trace


def reference_trace_step(trace, u, pre, tau):
    """``(1 - 1/tau) p + (1/tau) phi'(u) pre`` for every synapse of every trial."""
    return rflo_trace_step(trace, phi_prime(u), pre, tau)


def _trace_mistakes(trace, u, pre, tau):
    slope = phi_prime(u)
    outer = slope[..., :, None] * pre[..., None, :]
    keep = 1 - 1 / tau
    mistakes = [
        (
            "the trace does not decay: the old trace must be multiplied by (1 - 1/tau), the "
            "leak that makes it forget at the neuron's time scale",
            trace + outer / tau,
        ),
        (
            "the old trace is dropped (the trace forgets everything at once): keep "
            "(1 - 1/tau) times the previous trace",
            outer / tau,
        ),
        (
            "the new term must be scaled by 1/tau: p <- (1 - 1/tau) p + (1/tau) phi'(u) pre",
            keep * trace + outer,
        ),
        (
            "the factors are swapped: the old trace is kept with (1 - 1/tau), the new term "
            "enters with 1/tau",
            trace / tau + keep * outer,
        ),
        (
            "use the slope phi'(u) = 1 - tanh(u)^2, not the rate tanh(u)",
            keep * trace + torch.tanh(u)[..., :, None] * pre[..., None, :] / tau,
        ),
        (
            "phi'(u) is 1 - tanh(u)^2, not 1 - u^2: `u` is the current before the tanh",
            keep * trace + (1 - u**2)[..., :, None] * pre[..., None, :] / tau,
        ),
        ("the sign of the new term is flipped", keep * trace - outer / tau),
    ]
    if trace.shape[-1] == trace.shape[-2]:
        mistakes.append(
            (
                "the outer product is transposed: p_ab pairs the POSTsynaptic slope "
                "phi'(u_a) (rows) with the PREsynaptic activity pre_b (columns)",
                keep * trace + (pre[..., :, None] * slope[..., None, :]) / tau,
            )
        )
    return mistakes


@single_threaded
def check_trace_step(eligibility_trace_step, seed: int = 0) -> None:
    """Compare one trace step with the reference on seeded cases; name the likely mistake."""
    rng = make_generator(seed)
    what = "eligibility_trace_step(trace, u, pre, tau)"
    for n_post, n_pre in ((4, 3), (3, 3), (5, 2)):
        batch = 2
        trace = torch.randn(batch, n_post, n_pre, generator=rng, dtype=torch.float64)
        u = torch.randn(batch, n_post, generator=rng, dtype=torch.float64) * 1.5
        pre = torch.randn(batch, n_pre, generator=rng, dtype=torch.float64)
        tau = round(float(torch.rand(1, generator=rng)) * 8 + 2, 2)
        args = (trace.clone(), u.clone(), pre.clone(), tau)
        out = as_tensor(call(eligibility_trace_step, *args, what=what), what)
        expected = reference_trace_step(trace, u, pre, tau)
        if tuple(out.shape) != tuple(expected.shape):
            fail(
                f"{what} returned shape {tuple(out.shape)}; the trace keeps its shape "
                f"(batch, n_post, n_pre) = {tuple(expected.shape)}."
            )
        if close(out, expected):
            continue
        for message, wrong in _trace_mistakes(trace, u, pre, tau):
            if close(out, wrong):
                fail(f"{what} (tau = {tau}): {message}.")
        fail(
            f"{what} (tau = {tau}) differs from (1 - 1/tau) p + (1/tau) phi'(u) pre: "
            f"{worst_entry(out, expected)}."
        )


# ---------------------------------------------------------------- part 2: the update


def _update_mistakes(error, feedback, trace):
    batch = error.shape[0]
    right = rflo_weight_update(error, feedback, trace)
    mistakes = [
        ("the sign is flipped: dW = +[B eps]_a p_ab with eps = y* - y", -right),
        ("average over the batch (divide by the batch size), do not sum", right * batch),
    ]
    if feedback.shape[0] == feedback.shape[1]:
        mistakes.append(
            (
                "B is (n_hidden, n_output): the feedback to the hidden units is B eps, which "
                "for a batch of row vectors is error @ B.T, not error @ B",
                ((error @ feedback)[:, :, None] * trace).mean(0),
            )
        )
    if trace.shape[-1] == trace.shape[-2]:
        mistakes.append(
            (
                "the fed-back error [B eps]_a belongs to the POSTsynaptic unit a (the rows of "
                "the trace), not to the presynaptic unit b",
                ((error @ feedback.T)[:, None, :] * trace).mean(0),
            )
        )
    return mistakes


@single_threaded
def check_rflo_update(rflo_update, seed: int = 0) -> None:
    """Compare ``< [B eps]_a p_ab >`` with the reference; name the likely mistake."""
    rng = make_generator(seed)
    what = "rflo_update(error, feedback, trace)"
    for n_hidden, n_pre, n_out in ((4, 3, 2), (3, 3, 3), (5, 5, 2), (2, 4, 2)):
        batch = 3
        error = torch.randn(batch, n_out, generator=rng, dtype=torch.float64)
        feedback = torch.randn(n_hidden, n_out, generator=rng, dtype=torch.float64)
        trace = torch.randn(batch, n_hidden, n_pre, generator=rng, dtype=torch.float64)
        args = (error.clone(), feedback.clone(), trace.clone())
        out = as_tensor(call(rflo_update, *args, what=what), what)
        expected = rflo_weight_update(error, feedback, trace)
        if tuple(out.shape) != tuple(expected.shape):
            fail(
                f"{what} returned shape {tuple(out.shape)}; the update has the shape of the "
                f"weight, (n_hidden, n_pre) = {tuple(expected.shape)}."
            )
        if close(out, expected):
            continue
        for message, wrong in _update_mistakes(error, feedback, trace):
            if close(out, wrong):
                fail(f"{what}: {message}.")
        fail(f"{what} differs from < [B eps]_a p_ab >_batch: {worst_entry(out, expected)}.")


# ---------------------------------------------------------------- part 3: a whole trial


def variant_trial(
    w_in,
    w_rec,
    w_out,
    feedback,
    inputs,
    targets,
    tau,
    *,
    through_w_out=False,
    slope_previous=False,
    pre_current=False,
    no_leak=False,
    trace_no_decay=False,
    error_sign=1.0,
    sum_over_time=False,
):
    """One RFLO trial with optional mistakes; all flags off is the reference."""
    steps, batch, _ = inputs.shape
    n_hidden = w_rec.shape[0]
    b = w_out.T if through_w_out else feedback
    h = inputs.new_zeros(batch, n_hidden)
    u_previous = inputs.new_zeros(batch, n_hidden)
    p = inputs.new_zeros(batch, n_hidden, n_hidden)
    q = inputs.new_zeros(batch, n_hidden, inputs.shape[2])
    d_in, d_rec, d_out = (torch.zeros_like(w) for w in (w_in, w_rec, w_out))
    keep = 1.0 if no_leak else 1 - 1 / tau
    gain = 1.0 if no_leak else 1 / tau
    for t in range(steps):
        x = inputs[t]
        u = h @ w_rec.T + x @ w_in.T
        slope = phi_prime(u_previous if slope_previous else u)
        h_new = keep * h + gain * torch.tanh(u)
        pre_rec = h_new if pre_current else h
        if trace_no_decay:
            p = p + slope[:, :, None] * pre_rec[:, None, :] / tau
            q = q + slope[:, :, None] * x[:, None, :] / tau
        else:
            p = rflo_trace_step(p, slope, pre_rec, tau)
            q = rflo_trace_step(q, slope, x, tau)
        h, u_previous = h_new, u
        error = error_sign * (targets[t] - h @ w_out.T)
        d_rec += rflo_weight_update(error, b, p)
        d_in += rflo_weight_update(error, b, q)
        d_out += readout_update(error, h)
    if sum_over_time:
        return d_in, d_rec, d_out
    return d_in / steps, d_rec / steps, d_out / steps


def reference_trial_updates(w_in, w_rec, w_out, feedback, inputs, targets, tau):
    """The library's `rflo_trial` on a network holding these weights."""
    n_hidden, n_input = w_in.shape
    rnn = LeakyRNN(n_input, n_hidden, w_out.shape[0], tau=tau, seed=0).to(inputs.dtype)
    with torch.no_grad():
        for name, value in (("w_in", w_in), ("w_rec", w_rec), ("w_out", w_out)):
            getattr(rnn, name).copy_(value)
        rnn.feedback.copy_(feedback)
    trial = rflo_trial(rnn, inputs, targets)
    return trial.w_in, trial.w_rec, trial.w_out


_TRIAL_MISTAKES = [
    (
        "the error reaches the hidden units through W_out^T: that is the exact gradient's "
        "weight transport. RFLO feeds the error back through the fixed random `feedback` B",
        {"through_w_out": True},
    ),
    (
        "phi' is taken at the wrong time: the trace at step t uses the slope phi'(u_t) of the "
        "current computed at this step, not the previous step's",
        {"slope_previous": True},
    ),
    (
        "the recurrent trace must pair phi'(u_a(t)) with the PREVIOUS activity h_b(t-1), the "
        "one that produced u(t): update the trace before h moves on",
        {"pre_current": True},
    ),
    (
        "the network has no leak: h_t = (1 - 1/tau) h_{t-1} + (1/tau) tanh(u_t), not tanh(u_t)",
        {"no_leak": True},
    ),
    (
        "the traces do not decay: keep (1 - 1/tau) of the previous trace at each step",
        {"trace_no_decay": True},
    ),
    (
        "the sign is flipped: the error is eps = y* - y (target minus output), and the "
        "updates are added to the weights",
        {"error_sign": -1.0},
    ),
    (
        "the updates summed over the trial must be divided by the number of time steps T",
        {"sum_over_time": True},
    ),
]


@single_threaded
def check_rflo_trial_updates(rflo_trial_updates, seed: int = 0) -> None:
    """Run whole seeded trials; compare the three updates; name the likely mistake."""
    rng = make_generator(seed)
    what = "rflo_trial_updates(w_in, w_rec, w_out, feedback, inputs, targets, tau)"
    names = ("dW_in", "dW_rec", "dW_out")
    for n_input, n_hidden, n_out, steps in ((3, 5, 2, 7), (2, 4, 1, 9)):
        batch = 3
        w_in = torch.randn(n_hidden, n_input, generator=rng, dtype=torch.float64)
        w_rec = torch.randn(n_hidden, n_hidden, generator=rng, dtype=torch.float64) * 0.8
        w_out = torch.randn(n_out, n_hidden, generator=rng, dtype=torch.float64)
        feedback = torch.randn(n_hidden, n_out, generator=rng, dtype=torch.float64)
        inputs = torch.randn(steps, batch, n_input, generator=rng, dtype=torch.float64)
        targets = torch.randn(steps, batch, n_out, generator=rng, dtype=torch.float64)
        tau = round(float(torch.rand(1, generator=rng)) * 6 + 2, 2)
        tensors = (w_in, w_rec, w_out, feedback, inputs, targets)
        args = tuple(t.clone() for t in tensors)
        out = call(rflo_trial_updates, *args, tau, what=what)
        if not isinstance(out, tuple | list) or len(out) != 3:
            fail(f"{what} must return three updates (dW_in, dW_rec, dW_out).")
        got = [as_tensor(o, f"{what}[{i}]") for i, o in enumerate(out)]
        expected = reference_trial_updates(*tensors, tau)
        for name, g, e in zip(names, got, expected, strict=True):
            if tuple(g.shape) != tuple(e.shape):
                fail(
                    f"{what}: {name} has shape {tuple(g.shape)}; it should have the shape of "
                    f"its weight, {tuple(e.shape)}."
                )
        if all(close(g, e) for g, e in zip(got, expected, strict=True)):
            continue
        for message, flags in _TRIAL_MISTAKES:
            wrong = variant_trial(*tensors, tau, **flags)
            if all(close(g, w) for g, w in zip(got, wrong, strict=True)):
                fail(f"{what}: {message}.")
        for name, g, e in zip(names, got, expected, strict=True):
            if not close(g, e):
                fail(f"{what}: {name} differs from the RFLO update: {worst_entry(g, e)}.")
