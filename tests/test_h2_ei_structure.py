"""`course_lib.ei_structure`: preferred choices and same/other-preference weights, checked
on small streams and matrices whose answers are computed by hand."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

from course_lib.ei_structure import (
    NO_PREFERENCE,
    order_by_preference,
    plot_learning_bands,
    preferred_choice,
    same_other_weights,
    trial_stimulus_rates,
)
from course_lib.training import History

matplotlib.use("Agg")

STIMULUS = [1, 2]  # input channels 1 and 2 carry the stimulus; 0 is fixation


def stream():
    """One column, 12 steps: the end of a trial that began before the window, then two
    whole trials, then fixation. Rates outside stimulus steps are 100 so that counting
    them would show."""
    stim = [1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0]
    targets = [0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0]
    rates = torch.full((12, 1, 2), 100.0)
    rates[[0, 3, 4, 5, 8], 0] = torch.tensor([[9.0, 9.0], [1, 0], [2, 0], [3, 6], [5, 1]])
    inputs = torch.zeros(12, 1, 3)
    inputs[:, 0, 1] = torch.tensor(stim, dtype=torch.float32) * 0.4  # one stimulus channel
    return rates, inputs, torch.tensor(targets)[:, None]


def test_trial_rates_average_only_the_stimulus_steps_of_whole_trials():
    rates, inputs, targets = stream()
    trial_rates, choices = trial_stimulus_rates(rates, inputs, targets, STIMULUS)
    # trial 1: steps 3-5 -> unit 0 (1+2+3)/3 = 2, unit 1 (0+0+6)/3 = 2, correct choice 1
    # trial 2: step 8 only (step 9 is a delay without stimulus), correct choice 2
    # the first decision (step 1) ends a trial that began before the window: left out
    assert trial_rates.tolist() == [[2.0, 2.0], [5.0, 1.0]]
    assert choices.tolist() == [1, 2]


def test_trial_rates_keep_columns_apart():
    rates, inputs, targets = stream()
    # column 1: the same stream shifted by one step and with other rates
    rates2 = torch.cat([rates, torch.roll(rates, 1, dims=0) * 10], dim=1)
    inputs2 = torch.cat([inputs, torch.roll(inputs, 1, dims=0)], dim=1)
    targets2 = torch.cat([targets, torch.roll(targets, 1, dims=0)], dim=1)
    trial_rates, choices = trial_stimulus_rates(rates2, inputs2, targets2, STIMULUS)
    # column 1's second trial ends at step 11, the last step: cut, so left out
    assert trial_rates.tolist() == [[2.0, 2.0], [5.0, 1.0], [20.0, 20.0]]
    assert choices.tolist() == [1, 2, 1]


def test_trial_rates_need_a_whole_trial():
    rates, inputs, targets = stream()
    with pytest.raises(ValueError, match="no complete trial"):
        trial_stimulus_rates(rates[:7], inputs[:7], targets[:7], STIMULUS)


def test_preferred_choice_compares_mean_rates_per_choice():
    trial_rates = torch.tensor([[1.0, 0.0, 3.0, 0.0],
                                [3.0, 0.0, 3.0, 1.0],
                                [0.0, 0.0, 1.0, 4.0]])
    choices = torch.tensor([1, 1, 2])
    # unit 0: 2 vs 0; unit 1: silent; unit 2: 3 vs 1; unit 3: 0.5 vs 4
    assert preferred_choice(trial_rates, choices).tolist() == [1, NO_PREFERENCE, 1, 2]


def test_preferred_choice_needs_both_choices():
    with pytest.raises(ValueError, match="both choices"):
        preferred_choice(torch.ones(3, 2), torch.tensor([1, 1, 1]))


def test_same_other_weights_by_hand():
    # units 0-3 excitatory with preferences 1, 1, 2, 2; unit 4 has no preference
    preference = torch.tensor([1, 1, 2, 2, NO_PREFERENCE])
    weight = torch.full((5, 5), 0.2)
    weight[:2, :2] = 1.0
    weight[2:4, 2:4] = 3.0
    weight.fill_diagonal_(100.0)  # self-connections must not count
    weight[4, :] = weight[:, 4] = -50.0  # nor a unit without a preference
    exc = torch.tensor([True, True, True, True, True])
    same, other = same_other_weights(weight, preference, pre_units=exc, post_units=exc)
    # same pairs: (0,1), (1,0) at 1.0 and (2,3), (3,2) at 3.0; the 8 other pairs at 0.2
    assert same == pytest.approx(2.0)
    assert other == pytest.approx(0.2)


def test_same_other_weights_between_two_populations():
    # E units 0-3 (preferences 1, 2, 1, 2), I units 4-5 (preferences 1, 2)
    preference = torch.tensor([1, 2, 1, 2, 1, 2])
    is_exc = torch.tensor([True, True, True, True, False, False])
    weight = torch.zeros(6, 6)
    weight[0, 4], weight[2, 4], weight[1, 5], weight[3, 5] = -1.0, -2.0, -3.0, -4.0  # same
    weight[0, 5], weight[2, 5], weight[1, 4], weight[3, 4] = -5.0, -6.0, -7.0, -8.0  # other
    weight[4, 0] = 99.0  # E -> I: not asked for
    same, other = same_other_weights(weight, preference, pre_units=~is_exc, post_units=is_exc)
    assert same == pytest.approx(-10.0 / 4)
    assert other == pytest.approx(-26.0 / 4)


def test_same_other_weights_need_both_kinds_of_pairs():
    preference = torch.tensor([1, 1, 1])
    everyone = torch.ones(3, dtype=torch.bool)
    with pytest.raises(ValueError, match="same and with different"):
        same_other_weights(torch.ones(3, 3), preference, everyone, everyone)


def test_order_puts_e_before_i_and_groups_preferences():
    preference = torch.tensor([2, NO_PREFERENCE, 1, 1, 2, NO_PREFERENCE])
    is_exc = torch.tensor([True, True, True, False, False, False])
    assert order_by_preference(preference, is_exc).tolist() == [2, 0, 1, 3, 4, 5]


def test_learning_bands_show_the_geometric_mean_loss_and_the_mean_accuracy():
    runs = [History(loss=[1.0, 1.0], accuracy=[0.5], eval_steps=[2]),
            History(loss=[100.0, 0.01], accuracy=[0.7], eval_steps=[2])]
    loss_ax, accuracy_ax = plot_learning_bands({"a": runs})
    loss_line, accuracy_line = loss_ax.get_lines()[0], accuracy_ax.get_lines()[0]
    # geometric means: sqrt(1 * 100) = 10, sqrt(1 * 0.01) = 0.1
    assert loss_line.get_ydata().tolist() == pytest.approx([10.0, 0.1])
    assert accuracy_line.get_ydata().tolist() == pytest.approx([0.6])
    band = accuracy_ax.collections[0].get_paths()[0].vertices[:, 1]
    sd = math.sqrt(((0.5 - 0.6) ** 2 + (0.7 - 0.6) ** 2) / 1)  # sample SD of two seeds
    assert band.min() == pytest.approx(0.6 - sd) and band.max() == pytest.approx(0.6 + sd)
