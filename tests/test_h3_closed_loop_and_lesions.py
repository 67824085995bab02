"""Closed-loop testing of rule-switching networks (the network hears the outcome of its own
choices) and lesions of cell-typed networks, against hand-stepped cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.cell_types import (
    CellTypeRNN,
    cut_synapses,
    scale_random_synapses,
    scale_synapses,
    silence_units,
)
from course_lib.rule_switching import (
    RuleSwitchingTask,
    accuracy_before_switch,
    accuracy_since_switch,
    closed_loop,
    make_sessions,
)

N_CARDS = 4
N_ACTIONS = 1 + N_CARDS


class Scripted(nn.Module):
    """A causal 'network' whose choice at each decision step is ``policy(inputs so far)``."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def forward(self, inputs):
        outputs = torch.zeros(*inputs.shape[:2], N_ACTIONS + 2)  # + 2 rule outputs, ignored
        for t in range(inputs.shape[0]):
            choice = self.policy(inputs[: t + 1])
            outputs[t, torch.arange(inputs.shape[1]), choice] = 1.0
        return outputs, None


def card_features(step_input, task):
    """1 + colour and 1 + shape of the card shown at one step (B,)."""
    names = task.observation_space.name
    colour = step_input[:, names["colour"]].argmax(dim=-1)
    shape = step_input[:, names["shape"]].argmax(dim=-1)
    return 1 + colour, 1 + shape


def win_stay_lose_shift(task):
    """The ideal observer: start with colour, switch rule after every "no reward"."""
    names = task.observation_space.name

    def policy(history):
        rule = torch.zeros(history.shape[1], dtype=torch.long)
        for step in history:  # count the "no reward" signals seen so far
            rule = (rule + step[:, names["no_reward"]].long()) % 2
        colour_key, shape_key = card_features(history[-1], task)
        choice = torch.where(rule == 0, colour_key, shape_key)
        fixating = history[-1, :, names["fixation"]] == 1
        return torch.where(fixating, 0, choice)

    return policy


def feedback_seen(batch, task):
    """(n_trials, B) 1 reward, 0 no reward, -1 none, read at each trial's first step."""
    names = task.observation_space.name
    first = batch.inputs[batch.decision_steps - batch.trial_steps + 1]
    reward, no_reward = first[..., names["reward"]], first[..., names["no_reward"]]
    assert ((reward + no_reward) <= 1).all()
    return torch.where(reward == 1, 1, torch.where(no_reward == 1, 0, -1))


@pytest.fixture
def task():
    return RuleSwitchingTask(switch_prob=0.3, seed=11)


@pytest.fixture
def sessions(task):
    return make_sessions(task, 40, 10)


def test_a_player_that_is_always_right_is_always_rewarded(task, sessions):
    targets = sessions.targets
    oracle = Scripted(lambda history: targets[len(history) - 1])
    outputs, heard = closed_loop(oracle, sessions, task)
    feedback = feedback_seen(heard, task)
    assert (feedback[0] == -1).all()  # nothing to report before the first trial
    assert (feedback[1:] == 1).all()
    accuracy, _ = accuracy_since_switch(outputs, heard)
    assert torch.all(accuracy[~torch.isnan(accuracy)] == 1.0)
    # the switch trials exist, so the observer's feedback would have said "no reward"
    assert (feedback_seen(sessions, task)[1:] == 0).any()


def test_a_player_that_is_always_wrong_is_never_rewarded(task, sessions):
    targets = sessions.targets

    def wrong(history):
        target = targets[len(history) - 1]
        return torch.where(target == 0, 0, 1 + target % N_CARDS)  # the next key card

    outputs, heard = closed_loop(Scripted(wrong), sessions, task)
    assert (feedback_seen(heard, task)[1:] == 0).all()
    assert accuracy_before_switch(outputs, heard) == 0.0


def test_the_ideal_observer_in_closed_loop_hears_the_observer_feedback(task, sessions):
    outputs, heard = closed_loop(Scripted(win_stay_lose_shift(task)), sessions, task)
    assert torch.equal(heard.inputs, sessions.inputs)
    assert torch.equal(heard.targets, sessions.targets)
    accuracy, counts = accuracy_since_switch(outputs, heard, max_lag=3)
    assert counts[0] > 0 and accuracy[0] == 0.0  # errs on every switch trial ...
    assert torch.all(accuracy[1:][counts[1:] > 0] == 1.0)  # ... and never after
    assert accuracy_before_switch(outputs, heard) == 1.0


def test_closed_loop_matches_the_agent_task_stepped_by_hand():
    """A random cell-typed network played against RuleSwitchingTask(feedback="agent"),
    one time step at a time, hears what closed_loop gives it."""
    model = CellTypeRNN(11, N_ACTIONS + 2, counts={"E_soma": 6, "PV": 2, "SST": 2, "VIP": 2},
                        dt=100, tau=100, seed=3)
    n_trials, heard_both = 12, set()
    for seed in range(4):
        env = RuleSwitchingTask(feedback="agent", switch_prob=0.3, seed=seed)
        env.reset()
        history = []
        for _ in range(n_trials):
            trial = env.trial
            history.append(env.ob.copy())  # the whole trial is known when it starts
            with torch.no_grad():
                outputs, _ = model(torch.as_tensor(np.concatenate(history))[:, None])
            choice = int(outputs[-1, 0, :N_ACTIONS].argmax())
            while env.trial is trial:
                env.step(choice if env.in_period("decision") else 0)
        by_hand = torch.as_tensor(np.concatenate(history))

        task = RuleSwitchingTask(switch_prob=0.3, seed=seed)  # observer mode, same draws
        loop_outputs, heard = closed_loop(model, make_sessions(task, 1, n_trials), task)
        assert torch.equal(heard.inputs[:, 0], by_hand)
        heard_both.update(feedback_seen(heard, task)[1:, 0].tolist())
        assert torch.allclose(loop_outputs[-1, 0], outputs[-1, 0, :N_ACTIONS])
    assert heard_both == {0, 1}  # the case is not trivial: both outcomes occurred


def test_closed_loop_refuses_a_noisy_model(task, sessions):
    noisy = CellTypeRNN(11, N_ACTIONS + 2, dt=100, tau=100, noise_std=0.1)
    with pytest.raises(ValueError, match="deterministic"):
        closed_loop(noisy, sessions, task)


def test_accuracy_before_switch_by_hand():
    batch = make_sessions(RuleSwitchingTask(switch_prob=1.0, seed=0), 1, 4)
    outputs = nn.functional.one_hot(batch.targets, N_ACTIONS).float()
    assert accuracy_before_switch(outputs, batch) == 1.0  # only trial 0 is before
    outputs[batch.decision_steps[0]] = torch.eye(N_ACTIONS)[0]  # fixate on trial 0
    assert accuracy_before_switch(outputs, batch) == 0.0
    never = make_sessions(RuleSwitchingTask(switch_prob=1.0, seed=0), 1, 1)
    never.trials_since_switch[:] = 0
    assert math.isnan(accuracy_before_switch(outputs[:3], never))


# ---------------------------------------------------------------------------------------
# Lesions
# ---------------------------------------------------------------------------------------

COUNTS = {"E_soma": 5, "PV": 3, "SST": 3, "VIP": 2}


@pytest.fixture
def model():
    net = CellTypeRNN(4, 3, counts=COUNTS, dt=20, tau=100, seed=5)
    with torch.no_grad():  # non-zero biases, so that silencing must remove them too
        net.recurrent.bias.normal_(0, 0.3)
        net.input.bias.normal_(0, 0.3)
    return net


def clamped_run(model, inputs, silent):
    """The leaky ReLU dynamics written out, with the ``silent`` units' rates forced to 0."""
    w_rec = model.recurrent.weight.detach()
    w_in = model.input.weight.detach()
    w_out = model.readout.weight.detach()
    x = torch.zeros(inputs.shape[1], w_rec.shape[0])
    r, rates = torch.zeros_like(x), []
    for u in inputs:
        drive = r @ w_rec.T + model.recurrent.bias + u @ w_in.T + model.input.bias
        x = (1 - model.alpha) * x + model.alpha * drive
        r = torch.relu(x)
        r[:, silent] = 0.0
        rates.append(r)
    rates = torch.stack(rates)
    return rates @ w_out.T + model.readout.bias, rates


def test_silenced_units_are_clamped_to_zero(model):
    inputs = torch.rand(30, 6, 4, generator=torch.Generator().manual_seed(0))
    silent = torch.tensor([0, 7, 15, 19])  # a soma, a dendrite, a PV and an SST cell
    with torch.no_grad():
        outputs, rates = silence_units(model, silent)(inputs)
    expected_outputs, expected_rates = clamped_run(model, inputs, silent)
    assert (rates[..., silent] == 0).all()
    assert torch.allclose(rates, expected_rates, atol=1e-5)
    assert torch.allclose(outputs, expected_outputs, atol=1e-5)
    with torch.no_grad():  # the lesion is on a copy: the model itself still uses them
        _, intact_rates = model(inputs)
    assert (intact_rates[..., silent] > 0).any()


def test_scale_synapses_scales_one_type_block_only(model):
    before = model.recurrent.weight.detach().clone()
    lesioned = scale_synapses(model, [("SST", "E_dend")], 0.25)
    after = lesioned.recurrent.weight.detach()
    layout = model.layout
    block = torch.zeros_like(before, dtype=torch.bool)
    block[layout.indices("E_dend")[:, None], layout.indices("SST")] = True
    assert (before[block] < 0).all()  # the dendrites' inhibition exists ...
    assert torch.allclose(after[block], 0.25 * before[block])  # ... and is a quarter now
    assert torch.equal(after[~block], before[~block])
    assert torch.equal(model.recurrent.weight.detach(), before)
    cut = cut_synapses(model, [("SST", "E_dend")]).recurrent.weight.detach()
    assert (cut[block] == 0).all() and torch.equal(cut[~block], before[~block])


def test_scale_random_synapses_changes_that_many_plastic_synapses(model):
    before = model.recurrent.weight.detach()
    plastic = model.recurrent_mask.bool()
    after = scale_random_synapses(model, 20, 0.5, seed=1).recurrent.weight.detach()
    changed = after != before
    assert int(changed.sum()) == 20
    assert plastic[changed].all()  # only plastic synapses, never the fixed couplings
    assert torch.allclose(after[changed], 0.5 * before[changed])
    again = scale_random_synapses(model, 20, 0.5, seed=1).recurrent.weight.detach()
    other = scale_random_synapses(model, 20, 0.5, seed=2).recurrent.weight.detach()
    assert torch.equal(after, again) and not torch.equal(after, other)
    with pytest.raises(ValueError, match="n_synapses"):
        scale_random_synapses(model, int(plastic.sum()) + 1, 0.5)
