"""Checkers for assignment 07_dendritic_error.

The references are `course_lib.learning_rules.dendritic` (Sacramento, Ponte Costa, Bengio &
Senn 2018): the apical voltage, the basal prediction of the soma, and the soma-basal
plasticity rule of the forward weights (Urbanczik & Senn 2014 form)::

    v_A   = B phi(u_above) + W_PI phi(u_I)                (batch of row vectors)
    v^_B  = g_B / (g_lk + g_B + g_A) v_B      (hidden)    g_B / (g_lk + g_B) v_B   (output)
    dW    = (phi(u) - phi(v^_B))^T r_pre / batch
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_lib._validate import make_generator
from course_lib.checks._common import (
    as_tensor,
    call,
    close,
    fail,
    single_threaded,
    worst_entry,
)
from course_lib.learning_rules.dendritic import (
    Conductances,
    apical_voltage,
    basal_prediction,
    dendritic_prediction_update,
    rate,
)

# ---------------------------------------------------------------- part 1: apical voltage


def reference_apical_voltage(u_above, u_interneuron, top_down, pyramid_from_interneuron):
    """``v_A = B phi(u_above) + W_PI phi(u_I)`` from the somatic voltages."""
    return apical_voltage(rate(u_above), rate(u_interneuron), top_down, pyramid_from_interneuron)


def _apical_mistakes(u_above, u_int, top_down, w_pi):
    r_above, r_int = rate(u_above), rate(u_int)
    square = top_down.shape[0] == top_down.shape[1]
    mistakes = [
        (
            "the apical dendrite receives *rates*: apply phi (softplus, the `rate` function) "
            "to the voltages u_above and u_interneuron first",
            u_above @ top_down.T + u_int @ w_pi.T,
        ),
        (
            "the lateral term must be added, + W_PI phi(u_I): the inhibition is already in the "
            "(negative) weights W_PI, do not subtract it again",
            r_above @ top_down.T - r_int @ w_pi.T,
        ),
        (
            "the interneuron term W_PI phi(u_I) is missing: the apical voltage is top-down "
            "input plus lateral input from the interneurons",
            r_above @ top_down.T,
        ),
        (
            "the top-down term B phi(u_above) is missing",
            r_int @ w_pi.T,
        ),
        (
            "the rates are swapped: the top-down weights B carry the layer above, W_PI the "
            "interneurons",
            r_int @ top_down.T + r_above @ w_pi.T,
        ),
        (
            "phi is the softplus log(1 + exp(u)) (the `rate` function), not a ReLU",
            torch.relu(u_above) @ top_down.T + torch.relu(u_int) @ w_pi.T,
        ),
        (
            "phi is the softplus log(1 + exp(u)) (the `rate` function), not a sigmoid",
            torch.sigmoid(u_above) @ top_down.T + torch.sigmoid(u_int) @ w_pi.T,
        ),
    ]
    if square:
        mistakes.append(
            (
                "weights are (post, pre): with a batch of row vectors, B r is r @ B.T, not r @ B",
                r_above @ top_down + r_int @ w_pi,
            )
        )
    return mistakes


@single_threaded
def check_apical_voltage(apical_voltage_fn, seed: int = 0) -> None:
    """Compare with the reference on seeded cases; name the likely mistake."""
    rng = make_generator(seed)
    what = "apical_voltage(u_above, u_interneuron, top_down, pyramid_from_interneuron)"
    for n_k, n_above in ((5, 3), (4, 4), (3, 6)):
        batch = 3
        u_above = torch.randn(batch, n_above, generator=rng, dtype=torch.float64) * 2
        u_int = torch.randn(batch, n_above, generator=rng, dtype=torch.float64) * 2
        top_down = torch.randn(n_k, n_above, generator=rng, dtype=torch.float64)
        w_pi = torch.randn(n_k, n_above, generator=rng, dtype=torch.float64)
        args = (u_above.clone(), u_int.clone(), top_down.clone(), w_pi.clone())
        out = as_tensor(call(apical_voltage_fn, *args, what=what), what)
        expected = reference_apical_voltage(u_above, u_int, top_down, w_pi)
        if tuple(out.shape) != tuple(expected.shape):
            fail(
                f"{what} returned shape {tuple(out.shape)}; it should be (batch, n_k) = "
                f"{tuple(expected.shape)}: one apical voltage per pyramidal neuron of layer k."
            )
        if close(out, expected):
            continue
        for message, wrong in _apical_mistakes(u_above, u_int, top_down, w_pi):
            if close(out, wrong):
                fail(f"{what}: {message}.")
        fail(
            f"{what} differs from rate(u_above) @ top_down.T + rate(u_interneuron) @ "
            f"pyramid_from_interneuron.T: {worst_entry(out, expected)}."
        )

    # The self-predicting state: interneurons copy the layer above and W_PI = -B.
    u_above = torch.randn(2, 4, generator=rng, dtype=torch.float64)
    top_down = torch.randn(6, 4, generator=rng, dtype=torch.float64)
    out = as_tensor(
        call(apical_voltage_fn, u_above, u_above.clone(), top_down, -top_down, what=what), what
    )
    if not close(out, torch.zeros(2, 6, dtype=torch.float64)):
        fail(
            f"{what} should be exactly 0 in the self-predicting state (u_interneuron = "
            "u_above and pyramid_from_interneuron = -top_down), but it is not."
        )


# ---------------------------------------------------------------- part 2: basal prediction


def _random_conductances(rng) -> Conductances:
    values = torch.rand(5, generator=rng, dtype=torch.float64) * 1.5 + 0.1
    return Conductances(*(round(float(v), 3) for v in values))


def _prediction_mistakes(v_basal, g: Conductances, output: bool):
    wrong_hidden = g.basal / (g.leak + g.basal) * v_basal
    wrong_output = g.basal / (g.leak + g.basal + g.apical) * v_basal
    specific = (
        (
            "output neurons have no apical dendrite: with output=True the attenuation is "
            "g_B / (g_lk + g_B), without g_A",
            wrong_output,
        )
        if output
        else (
            "hidden neurons also lose current to their (silent) apical compartment: with "
            "output=False the attenuation is g_B / (g_lk + g_B + g_A)",
            wrong_hidden,
        )
    )
    mistakes = [
        specific,
        (
            "v_basal was returned unchanged: the soma also leaks (and, in a hidden layer, "
            "couples to the apical compartment), so it only reaches a fraction of v_B",
            v_basal,
        ),
        (
            "the leak conductance g.leak is missing from the denominator",
            g.basal / (g.basal + (0.0 if output else g.apical)) * v_basal,
        ),
        (
            "the conductances are upside down: the attenuation is g_B / (g_lk + g_B [+ g_A])",
            (g.leak + g.basal + (0.0 if output else g.apical)) / g.basal * v_basal,
        ),
        (
            "the somatic (nudging) conductance does not belong here: the prediction is the "
            "soma without a teacher",
            g.basal / (g.leak + g.basal + g.somatic + (0.0 if output else g.apical)) * v_basal,
        ),
    ]
    return mistakes


@single_threaded
def check_basal_prediction(basal_prediction_fn, seed: int = 0) -> None:
    """Compare the attenuated basal voltage with the reference, hidden and output."""
    rng = make_generator(seed)
    for g in (Conductances(), _random_conductances(rng), _random_conductances(rng)):
        for output in (False, True):
            v_basal = torch.randn(3, 4, generator=rng, dtype=torch.float64)
            what = f"basal_prediction(v_basal, g, output={output}) with g = {g}"
            out = as_tensor(
                call(basal_prediction_fn, v_basal.clone(), g, output=output, what=what), what
            )
            expected = basal_prediction(v_basal, g, output=output)
            if tuple(out.shape) != tuple(expected.shape):
                fail(
                    f"{what} returned shape {tuple(out.shape)}; "
                    f"it should be {tuple(v_basal.shape)}."
                )
            if close(out, expected):
                continue
            for message, wrong in _prediction_mistakes(v_basal, g, output):
                if close(out, wrong):
                    fail(f"{what}: {message}.")
            fail(f"{what} differs from the reference: {worst_entry(out, expected)}.")


# ---------------------------------------------------------------- part 3: plasticity


def reference_forward_weight_update(u_soma, v_basal, rate_pre, g, output):
    """``(phi(u) - phi(v^_B))^T r_pre / batch``, the soma teaching its basal dendrite."""
    v_hat = basal_prediction(v_basal, g, output=output)
    return dendritic_prediction_update(u_soma, v_hat, rate_pre)


def _update_mistakes(u, v_basal, r_pre, g, output):
    batch = u.shape[0]
    v_hat = basal_prediction(v_basal, g, output=output)
    right = reference_forward_weight_update(u, v_basal, r_pre, g, output)
    return [
        (
            "the rule compares the soma with the basal *prediction* v^_B = attenuation * "
            "v_basal (Part 2), not with v_basal itself",
            (rate(u) - rate(v_basal)).T @ r_pre / batch,
        ),
        (
            "the rule compares rates, phi(u) - phi(v^_B), not voltages u - v^_B",
            (u - v_hat).T @ r_pre / batch,
        ),
        (
            "the sign is flipped: the dendrite must move towards the soma, phi(u) - phi(v^_B)",
            -right,
        ),
        ("average over the batch (divide by the batch size), do not sum", right * batch),
        (
            "r_pre is already a rate: do not apply phi to it again",
            (rate(u) - rate(v_hat)).T @ F.softplus(r_pre) / batch,
        ),
        (
            "phi(u - v^_B) is not phi(u) - phi(v^_B): take the difference of the two rates",
            rate(u - v_hat).T @ r_pre / batch,
        ),
    ]


@single_threaded
def check_forward_weight_update(forward_weight_update, seed: int = 0) -> None:
    """Compare with the reference; check it vanishes when the soma sits on its prediction."""
    rng = make_generator(seed)
    cases = (((4, 3, 5), False), ((3, 2, 4), True), ((5, 4, 4), False))
    for (batch, n_post, n_pre), output in cases:
        g = _random_conductances(rng)
        u = torch.randn(batch, n_post, generator=rng, dtype=torch.float64) * 2
        v_basal = torch.randn(batch, n_post, generator=rng, dtype=torch.float64) * 2
        r_pre = torch.rand(batch, n_pre, generator=rng, dtype=torch.float64) * 2
        what = f"forward_weight_update(u_soma, v_basal, rate_pre, g, output={output})"
        args = (u.clone(), v_basal.clone(), r_pre.clone(), g)
        out = as_tensor(call(forward_weight_update, *args, output=output, what=what), what)
        expected = reference_forward_weight_update(u, v_basal, r_pre, g, output)
        if tuple(out.shape) != tuple(expected.shape):
            fail(
                f"{what} returned shape {tuple(out.shape)}; a weight update has the shape of "
                f"the weight, (post, pre) = {tuple(expected.shape)}: "
                "(post difference).T @ rate_pre."
            )
        if close(out, expected):
            continue
        for message, wrong in _update_mistakes(u, v_basal, r_pre, g, output):
            if close(out, wrong):
                fail(f"{what}: {message}.")
        fail(f"{what} differs from the reference: {worst_entry(out, expected)}.")

    g = Conductances()
    v_basal = torch.randn(3, 4, generator=rng, dtype=torch.float64)
    u = basal_prediction(v_basal, g, output=False)
    r_pre = torch.rand(3, 5, generator=rng, dtype=torch.float64)
    what = "forward_weight_update(u_soma, v_basal, rate_pre, g, output=False)"
    out = as_tensor(
        call(forward_weight_update, u, v_basal, r_pre, g, output=False, what=what), what
    )
    if not close(out, torch.zeros(4, 5, dtype=torch.float64)):
        fail(
            f"{what} must be 0 when every soma sits exactly on its basal prediction "
            "(the self-predicting state without a target), but it is not."
        )
