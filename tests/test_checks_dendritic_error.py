"""The assignment-07 checkers: the library's reference and correct variants pass at several
seeds; each plausible mistake is rejected with its own id and message, in the student's terms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from catalogue import AlwaysEqual, not_implemented, rejects

from course_lib.checks.dendritic_error import (
    check_apical_voltage,
    check_basal_prediction,
    check_forward_weight_update,
)
from course_lib.learning_rules import dendritic
from course_lib.learning_rules.dendritic import Conductances, basal_prediction, rate

SEEDS = (0, 1, 707, 2018)


# ------------------------------------------------------------ part 1: the apical voltage


def reference_apical(u_above, u_int, top_down, w_pi):
    return dendritic.apical_voltage(rate(u_above), rate(u_int), top_down, w_pi)


def apical_einsum(u_above, u_int, top_down, w_pi):
    return torch.einsum("bj,kj->bk", rate(u_above), top_down) + torch.einsum(
        "bj,kj->bk", rate(u_int), w_pi
    )


def apical_loops(u_above, u_int, top_down, w_pi):
    out = torch.zeros(u_above.shape[0], top_down.shape[0], dtype=u_above.dtype)
    for i in range(u_above.shape[0]):
        for k in range(top_down.shape[0]):
            out[i, k] = (top_down[k] * rate(u_above[i])).sum() + (
                w_pi[k] * rate(u_int[i])
            ).sum()
    return out


def apical_transposed_product(u_above, u_int, top_down, w_pi):
    return (top_down @ F.softplus(u_above).T + w_pi @ F.softplus(u_int).T).T


def apical_in_float32(u_above, u_int, top_down, w_pi):
    """Computed in float32 whatever the inputs, returned in the inputs' dtype."""
    tensors = (u_above, u_int, top_down, w_pi)
    return reference_apical(*(t.float() for t in tensors)).to(u_above.dtype)


@pytest.mark.parametrize(
    "correct",
    [reference_apical, apical_einsum, apical_loops, apical_transposed_product, apical_in_float32],
)
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_apical_voltages_pass(correct, seed):
    check_apical_voltage(correct, seed=seed)


def _apical(phi_above, phi_int, sign=1.0, transpose=True, lateral="w_pi", above_for_int=False):
    """A student's apical voltage with one ingredient changed."""

    def wrong(u_above, u_int, top_down, w_pi):
        b, w = (top_down.T, w_pi.T) if transpose else (top_down, w_pi)
        lateral_w = {"w_pi": w, "minus_b": -b}[lateral]
        r_int = phi_above(u_above) if above_for_int else phi_int(u_int)
        return phi_above(u_above) @ b + sign * r_int @ lateral_w

    return wrong


def identity(u):
    return u


def naive_softplus(u_above, u_int, top_down, w_pi):
    """A hand-written log(1 + exp(u)): correct on every voltage the circuit meets."""
    return torch.log(1 + torch.exp(u_above)) @ top_down.T + torch.log(
        1 + torch.exp(u_int)
    ) @ w_pi.T


@pytest.mark.parametrize("seed", SEEDS)
def test_hand_written_softplus_passes(seed):
    """Issue 13 section 2: a correct formula written differently passes. The circuit's
    voltages stay within a few units, so no case needs a voltage where exp(u) overflows."""
    check_apical_voltage(naive_softplus, seed=seed)


def softplus_minus_one(u_above, u_int, top_down, w_pi):
    """log(exp(u) - 1) instead of log(1 + exp(u)): NaN for every negative voltage."""
    return torch.log(torch.exp(u_above) - 1) @ top_down.T + torch.log(
        torch.exp(u_int) - 1
    ) @ w_pi.T


def transposed_only_when_square(u_above, u_int, top_down, w_pi):
    if top_down.shape[0] == top_down.shape[1]:
        return _apical(rate, rate, transpose=False)(u_above, u_int, top_down, w_pi)
    return reference_apical(u_above, u_int, top_down, w_pi)


def apical_in_place(u_above, u_int, top_down, w_pi):
    u_above.clamp_(min=-20)  # "just to be safe"
    return reference_apical(u_above, u_int, top_down, w_pi)


def phi_after_weights(u_above, u_int, top_down, w_pi):
    return rate(u_above @ top_down.T) + rate(u_int @ w_pi.T)


def phi_on_the_sum(u_above, u_int, top_down, w_pi):
    return rate(reference_apical(u_above, u_int, top_down, w_pi))


def apical_float64(u_above, u_int, top_down, w_pi):
    return reference_apical(u_above.double(), u_int.double(), top_down.double(), w_pi.double())


def apical_batch_mean(u_above, u_int, top_down, w_pi):
    return reference_apical(u_above, u_int, top_down, w_pi).mean(0)


def apical_column_layout(u_above, u_int, top_down, w_pi):
    return top_down @ rate(u_above).T + w_pi @ rate(u_int).T


def returns(kind):
    def wrong(u_above, u_int, top_down, w_pi):
        value = reference_apical(u_above, u_int, top_down, w_pi)
        return {
            "list": value.tolist(),
            "numpy": value.numpy(),
            "none": None,
            "subclass": value.as_subclass(AlwaysEqual),
            "sparse": value.to_sparse(),
        }[kind]

    return wrong


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (_apical(identity, identity), "dendritic_error.apical_voltages_not_rates",
         "receives \\*rates\\*: apply phi"),
        (_apical(identity, rate), "dendritic_error.apical_above_not_rate",
         "uses the voltage u_above"),
        (_apical(rate, identity), "dendritic_error.apical_interneuron_not_rate",
         "uses the voltage u_interneuron"),
        (phi_after_weights, "dendritic_error.apical_phi_after_weights", "not rate\\(B u_above\\)"),
        (phi_on_the_sum, "dendritic_error.apical_phi_after_weights", "no phi on top"),
        (_apical(rate, rate, sign=-1.0), "dendritic_error.apical_inhibition_subtracted",
         "do not subtract it again"),
        (_apical(rate, lambda u: 0 * u), "dendritic_error.apical_interneuron_term_missing",
         "the interneuron term W_PI phi\\(u_I\\) is missing"),
        (_apical(lambda u: 0 * u, rate), "dendritic_error.apical_top_down_term_missing",
         "the top-down term B phi\\(u_above\\) is missing"),
        (lambda ua, ui, b, w: rate(ui) @ b.T + rate(ua) @ w.T,
         "dendritic_error.apical_rates_swapped", "the rates are swapped"),
        (_apical(rate, rate, lateral="minus_b"), "dendritic_error.apical_top_down_for_interneurons",
         "must use pyramid_from_interneuron"),
        (_apical(rate, rate, above_for_int=True), "dendritic_error.apical_u_above_for_interneurons",
         "the lateral term uses u_above"),
        (_apical(torch.relu, torch.relu), "dendritic_error.apical_phi_not_softplus", "not a ReLU"),
        (_apical(torch.sigmoid, torch.sigmoid), "dendritic_error.apical_phi_not_softplus",
         "not a sigmoid"),
        (_apical(torch.tanh, torch.tanh), "dendritic_error.apical_phi_not_softplus", "not tanh"),
        (_apical(rate, rate, transpose=False), "dendritic_error.apical_weights_not_transposed",
         "B r is r @ B.T, not r @ B"),
        (lambda ua, ui, b, w: rate(ua) @ b.T + rate(ui) @ w,
         "dendritic_error.apical_weights_not_transposed", "not rate\\(u_interneuron\\) @ pyr"),
        (transposed_only_when_square, "dendritic_error.apical_weights_not_transposed",
         "B r is r @ B.T, not r @ B"),
        (apical_column_layout, "dendritic_error.apical_transposed", "the transpose of"),
        (apical_batch_mean, "dendritic_error.apical_shape", "should be \\(3, 4\\)"),
        (lambda *args: reference_apical(*args).clamp(-10, 10), "dendritic_error.apical_clipped",
         "clipped to \\[-10, 10\\]: the formula has no limit"),
        (softplus_minus_one, "common.not_finite", "log of a number <= 0"),
        (apical_float64, "common.wrong_dtype", "keep the dtype of the inputs"),
        (apical_in_place, "common.in_place", "changed its argument u_above in place"),
        (returns("list"), "common.wrong_type", "must return a torch.Tensor"),
        (returns("numpy"), "common.wrong_type", "numpy.ndarray"),
        (returns("none"), "common.wrong_type", "did you forget `return`"),
        (returns("subclass"), "common.tensor_subclass", "plain torch.Tensor"),
        (returns("sparse"), "common.sparse", "sparse tensor"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_apical_mistakes_rejected(wrong, mistake, message):
    rejects(check_apical_voltage, wrong, mistake, message)


def test_apical_hard_coded_examples_rejected():
    """Zeros pass the self-predicting example but not the random cases."""

    def zeros(u_above, u_int, top_down, w_pi):
        return torch.zeros(u_above.shape[0], top_down.shape[0], dtype=u_above.dtype)

    rejects(check_apical_voltage, zeros, "dendritic_error.apical_wrong_value",
            "differs from rate\\(u_above\\) @ top_down.T")


# ------------------------------------------------------------ part 2: the basal prediction


def reference_prediction(v_basal, g, output):
    return basal_prediction(v_basal, g, output=output)


def prediction_with_if(v_basal, g, output):
    if output:
        return v_basal * g.basal / (g.leak + g.basal)
    return v_basal * (g.basal / (g.leak + g.basal + g.apical))


def prediction_as_tensor(v_basal, g, output):
    conductances = torch.tensor([g.leak, g.basal, 0.0 if output else g.apical],
                                dtype=v_basal.dtype)
    return v_basal * g.basal / conductances.sum()


@pytest.mark.parametrize("correct", [reference_prediction, prediction_with_if,
                                     prediction_as_tensor])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_predictions_pass(correct, seed):
    check_basal_prediction(correct, seed=seed)


def attenuated(factor):
    """A student's prediction factor(g, output) * v_basal."""
    return lambda v_basal, g, output: factor(g, output) * v_basal


def apical_term(g, output):
    return 0.0 if output else g.apical


def prediction_in_place(v_basal, g, output):
    v_basal *= g.basal / (g.leak + g.basal + apical_term(g, output))
    return v_basal


def prediction_float64(v_basal, g, output):
    return reference_prediction(v_basal, g, output).double()


def prediction_only_2d(v_basal, g, output):
    return reference_prediction(v_basal, g, output).reshape(v_basal.shape[0], -1)


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (attenuated(lambda g, o: 1.0), "dendritic_error.prediction_unchanged",
         "v_basal was returned unchanged"),
        (attenuated(lambda g, o: g.basal / (g.basal + apical_term(g, o))),
         "dendritic_error.prediction_leak_missing", "g.leak is missing"),
        (attenuated(lambda g, o: g.basal / (g.leak + apical_term(g, o))),
         "dendritic_error.prediction_basal_missing_below", "g.basal is missing from the denom"),
        (attenuated(lambda g, o: 1 / (g.leak + g.basal + apical_term(g, o))),
         "dendritic_error.prediction_basal_missing_above", "the numerator g.basal is missing"),
        (attenuated(lambda g, o: (g.leak + g.basal + apical_term(g, o)) / g.basal),
         "dendritic_error.prediction_upside_down", "upside down"),
        (attenuated(lambda g, o: g.basal / (g.leak + g.basal + g.somatic + apical_term(g, o))),
         "dendritic_error.prediction_somatic_included", "g.somatic does not belong here"),
        (attenuated(lambda g, o: g.basal / (g.leak + g.basal + (0.0 if o else g.somatic))),
         "dendritic_error.prediction_somatic_for_apical", "apical coupling is g.apical"),
        (attenuated(lambda g, o: g.dendritic / (g.leak + g.dendritic + apical_term(g, o))),
         "dendritic_error.prediction_dendritic_for_basal", "basal coupling is g.basal"),
        (attenuated(lambda g, o: g.basal / (g.leak + g.basal + g.apical)),
         "dendritic_error.prediction_output_with_apical", "output neurons have no apical"),
        (attenuated(lambda g, o: g.basal / (g.leak + g.basal)),
         "dendritic_error.prediction_hidden_without_apical", "hidden neurons also lose current"),
        (lambda v, g, output: basal_prediction(v, g, output=not output),
         "dendritic_error.prediction_output_flag_inverted", "the output flag is inverted"),
        (lambda v, g, output: basal_prediction(v, Conductances(), output=output),
         "dendritic_error.prediction_default_conductances", "use the conductances g"),
        (lambda v, g, output: basal_prediction(rate(v), g, output=output),
         "dendritic_error.prediction_rate_not_voltage", "do not apply phi"),
        (attenuated(lambda g, o: g.basal / (g.leak + g.basal + apical_term(g, o)) + 0.01),
         "dendritic_error.prediction_wrong_value",
         "g_B / \\(g_lk \\+ g_B \\+ g_A\\) \\* v_basal = 0.5652 \\* v_basal \\(yours is 0.5752"),
        (lambda v, g, output: reference_prediction(v, g, output).clamp(-5, 5),
         "dendritic_error.prediction_clipped", "clipped to \\[-5, 5\\]"),
        (prediction_in_place, "common.in_place", "changed its argument v_basal in place"),
        (prediction_float64, "common.wrong_dtype", "keep the dtype of the inputs"),
        (prediction_only_2d, "dendritic_error.prediction_shape", "the shape of v_basal"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_prediction_mistakes_rejected(wrong, mistake, message):
    rejects(check_basal_prediction, wrong, mistake, message)


# ------------------------------------------------------------ part 3: the plasticity rule


def reference_update(u, v_basal, r_pre, g, output):
    return dendritic.dendritic_prediction_update(
        u, basal_prediction(v_basal, g, output=output), r_pre
    )


def update_einsum(u, v_basal, r_pre, g, output):
    mismatch = F.softplus(u) - F.softplus(basal_prediction(v_basal, g, output=output))
    return torch.einsum("bi,bj->ij", mismatch, r_pre) / u.shape[0]


def update_outer_mean(u, v_basal, r_pre, g, output):
    mismatch = rate(u) - rate(basal_prediction(v_basal, g, output=output))
    return (mismatch[:, :, None] * r_pre[:, None, :]).mean(dim=0)


def update_hand_written_softplus(u, v_basal, r_pre, g, output):
    def phi(x):
        return torch.log(1 + torch.exp(x))

    mismatch = phi(u) - phi(basal_prediction(v_basal, g, output=output))
    return mismatch.T @ r_pre / len(u)


@pytest.mark.parametrize(
    "correct", [reference_update, update_einsum, update_outer_mean, update_hand_written_softplus]
)
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_updates_pass(correct, seed):
    check_forward_weight_update(correct, seed=seed)


def rule(difference, pre=lambda r: r, reduce="mean", output_flag=lambda o: o):
    """A student's update difference(u, v_hat, v_basal).T @ pre(r_pre), batch-reduced."""

    def wrong(u, v_basal, r_pre, g, output):
        v_hat = basal_prediction(v_basal, g, output=output_flag(output))
        total = difference(u, v_hat, v_basal).T @ pre(r_pre)
        return total / u.shape[0] if reduce == "mean" else total

    return wrong


def right_difference(u, v_hat, v_basal):
    return rate(u) - rate(v_hat)


def product_of_means(u, v_basal, r_pre, g, output):
    mismatch = rate(u) - rate(basal_prediction(v_basal, g, output=output))
    return torch.outer(mismatch.mean(0), r_pre.mean(0))


def update_transposed(u, v_basal, r_pre, g, output):
    return reference_update(u, v_basal, r_pre, g, output).T


def update_in_place(u, v_basal, r_pre, g, output):
    u -= basal_prediction(v_basal, g, output=output)  # u now holds the voltage mismatch
    return (rate(u + basal_prediction(v_basal, g, output=output)) - rate(
        basal_prediction(v_basal, g, output=output))).T @ r_pre / u.shape[0]


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (rule(lambda u, v_hat, v: rate(u) - rate(v)), "dendritic_error.update_raw_basal",
         "not with v_basal itself"),
        (rule(right_difference, output_flag=lambda o: False),
         "dendritic_error.update_output_flag_ignored", "pass `output` on to basal_prediction"),
        (rule(lambda u, v_hat, v: u - v_hat), "dendritic_error.update_voltages_not_rates",
         "compares rates, phi\\(u\\) - phi\\(v\\^_B\\), not voltages"),
        (rule(lambda u, v_hat, v: rate(u) - v_hat), "dendritic_error.update_prediction_not_rate",
         "apply phi to the prediction too"),
        (rule(lambda u, v_hat, v: rate(u - v_hat)), "dendritic_error.update_phi_of_difference",
         "phi\\(u - v\\^_B\\) is not phi\\(u\\) - phi\\(v\\^_B\\)"),
        (rule(lambda u, v_hat, v: rate(v_hat) - rate(u)), "dendritic_error.update_sign_flipped",
         "the sign is flipped"),
        (rule(right_difference, reduce="sum"), "dendritic_error.update_summed", "do not sum"),
        (rule(right_difference, pre=rate), "dendritic_error.update_rate_pre_through_phi",
         "rate_pre is already a rate"),
        (lambda u, v, r, g, output: reference_update(u, v, r, Conductances(), output),
         "dendritic_error.update_default_conductances", "use the conductances g"),
        (product_of_means, "dendritic_error.update_product_of_means",
         "not the product of the two batch averages"),
        (update_transposed, "dendritic_error.update_transposed", "the transpose of"),
        (lambda *args, output: reference_update(*args, output).clamp(-1, 1),
         "dendritic_error.update_clipped", "clipped to \\[-?0?.?[0-9]*, 1\\]"),
        (update_in_place, "common.in_place", "changed its argument u in place"),
        (lambda *args, output: reference_update(*args, output).double(), "common.wrong_dtype",
         "keep the dtype of the inputs"),
        (lambda u, *args, output: reference_update(u, *args, output) * u.shape[0] / u.shape[1],
         "dendritic_error.update_scaled", "times \\(rate\\(u_soma\\) - rate\\(v\\^_B\\)\\)"),
        (lambda *args, output: reference_update(*args, output) + 1e-3,
         "dendritic_error.update_wrong_value",
         "differs from \\(rate\\(u_soma\\) - rate\\(v\\^_B\\)\\).T @ rate_pre / batch"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_update_mistakes_rejected(wrong, mistake, message):
    rejects(check_forward_weight_update, wrong, mistake, message)


def test_update_transposed_on_a_square_weight_is_named():
    """A transposed update of a square weight has the right shape: the values tell."""

    def transposed_when_square(u, v_basal, r_pre, g, output):
        update = reference_update(u, v_basal, r_pre, g, output)
        return update.T if update.shape[0] == update.shape[1] else update

    rejects(check_forward_weight_update, transposed_when_square,
            "dendritic_error.update_transposed", "not rate_pre.T @")
