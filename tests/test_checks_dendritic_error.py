"""The assignment-07 checkers: the reference passes; each plausible mistake is rejected
with its own message, in the student's terms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.checks.dendritic_error import (
    check_apical_voltage,
    check_basal_prediction,
    check_forward_weight_update,
    reference_apical_voltage,
    reference_forward_weight_update,
)
from course_lib.learning_rules.dendritic import basal_prediction, rate


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# ------------------------------------------------------------ part 1: the apical voltage


def voltages_not_rates(u_above, u_int, top_down, w_pi):
    return u_above @ top_down.T + u_int @ w_pi.T


def subtracts_inhibition(u_above, u_int, top_down, w_pi):
    return rate(u_above) @ top_down.T - rate(u_int) @ w_pi.T


def no_interneurons(u_above, u_int, top_down, w_pi):
    return rate(u_above) @ top_down.T


def no_top_down(u_above, u_int, top_down, w_pi):
    return rate(u_int) @ w_pi.T


def swapped(u_above, u_int, top_down, w_pi):
    return rate(u_int) @ top_down.T + rate(u_above) @ w_pi.T


def relu_rates(u_above, u_int, top_down, w_pi):
    return torch.relu(u_above) @ top_down.T + torch.relu(u_int) @ w_pi.T


def sigmoid_rates(u_above, u_int, top_down, w_pi):
    return torch.sigmoid(u_above) @ top_down.T + torch.sigmoid(u_int) @ w_pi.T


def not_transposed(u_above, u_int, top_down, w_pi):
    return rate(u_above) @ top_down + rate(u_int) @ w_pi


def transposed_only_when_square(u_above, u_int, top_down, w_pi):
    if top_down.shape[0] == top_down.shape[1]:
        return not_transposed(u_above, u_int, top_down, w_pi)
    return reference_apical_voltage(u_above, u_int, top_down, w_pi)


def returns_list(u_above, u_int, top_down, w_pi):
    return reference_apical_voltage(u_above, u_int, top_down, w_pi).tolist()


def test_reference_apical_passes():
    check_apical_voltage(reference_apical_voltage)
    check_apical_voltage(reference_apical_voltage, seed=707)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (voltages_not_rates, "receives \\*rates\\*: apply phi"),
        (subtracts_inhibition, "do not subtract it again"),
        (no_interneurons, "the interneuron term W_PI phi\\(u_I\\) is missing"),
        (no_top_down, "the top-down term B phi\\(u_above\\) is missing"),
        (swapped, "the rates are swapped"),
        (relu_rates, "not a ReLU"),
        (sigmoid_rates, "not a sigmoid"),
        (not_transposed, "raised RuntimeError"),
        (transposed_only_when_square, "B r is r @ B.T, not r @ B"),
        (returns_list, "must return a torch.Tensor"),
        (not_implemented, "not implemented yet"),
    ],
)
def test_apical_mistakes_rejected(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_apical_voltage(wrong)


# ------------------------------------------------------------ part 2: the basal prediction


def reference_prediction(v_basal, g, output):
    return basal_prediction(v_basal, g, output=output)


def unchanged(v_basal, g, output):
    return v_basal


def no_leak(v_basal, g, output):
    return g.basal / (g.basal + (0.0 if output else g.apical)) * v_basal


def upside_down(v_basal, g, output):
    return (g.leak + g.basal + (0.0 if output else g.apical)) / g.basal * v_basal


def with_somatic(v_basal, g, output):
    return g.basal / (g.leak + g.basal + g.somatic + (0.0 if output else g.apical)) * v_basal


def always_hidden(v_basal, g, output):
    return g.basal / (g.leak + g.basal + g.apical) * v_basal


def always_output(v_basal, g, output):
    return g.basal / (g.leak + g.basal) * v_basal


def output_flag_inverted(v_basal, g, output):
    return basal_prediction(v_basal, g, output=not output)


def test_reference_prediction_passes():
    check_basal_prediction(reference_prediction)
    check_basal_prediction(reference_prediction, seed=77)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (unchanged, "v_basal was returned unchanged"),
        (no_leak, "g.leak is missing"),
        (upside_down, "upside down"),
        (with_somatic, "somatic \\(nudging\\) conductance does not belong here"),
        (always_hidden, "output neurons have no apical dendrite"),
        (always_output, "hidden neurons also lose current to their \\(silent\\) apical"),
        (output_flag_inverted, "hidden neurons also lose current"),
        (not_implemented, "not implemented yet"),
    ],
)
def test_prediction_mistakes_rejected(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_basal_prediction(wrong)


# ------------------------------------------------------------ part 3: the plasticity rule


def raw_basal(u, v_basal, r_pre, g, output):
    return (rate(u) - rate(v_basal)).T @ r_pre / len(u)


def voltage_difference(u, v_basal, r_pre, g, output):
    v_hat = basal_prediction(v_basal, g, output=output)
    return (u - v_hat).T @ r_pre / len(u)


def update_sign_flip(u, v_basal, r_pre, g, output):
    return -reference_forward_weight_update(u, v_basal, r_pre, g, output)


def update_summed(u, v_basal, r_pre, g, output):
    return reference_forward_weight_update(u, v_basal, r_pre, g, output) * len(u)


def rate_of_rate(u, v_basal, r_pre, g, output):
    v_hat = basal_prediction(v_basal, g, output=output)
    return (rate(u) - rate(v_hat)).T @ F.softplus(r_pre) / len(u)


def rate_of_difference(u, v_basal, r_pre, g, output):
    v_hat = basal_prediction(v_basal, g, output=output)
    return rate(u - v_hat).T @ r_pre / len(u)


def update_transposed(u, v_basal, r_pre, g, output):
    return reference_forward_weight_update(u, v_basal, r_pre, g, output).T


def test_reference_update_passes():
    check_forward_weight_update(reference_forward_weight_update)
    check_forward_weight_update(reference_forward_weight_update, seed=7070)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (raw_basal, "not with v_basal itself"),
        (voltage_difference, "compares rates, phi\\(u\\) - phi\\(v\\^_B\\), not voltages"),
        (update_sign_flip, "the sign is flipped"),
        (update_summed, "do not sum"),
        (rate_of_rate, "r_pre is already a rate"),
        (rate_of_difference, "phi\\(u - v\\^_B\\) is not phi\\(u\\) - phi\\(v\\^_B\\)"),
        (update_transposed, "shape of the weight, \\(post, pre\\) = \\(3, 5\\)"),
        (not_implemented, "not implemented yet"),
    ],
)
def test_update_mistakes_rejected(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_forward_weight_update(wrong)
