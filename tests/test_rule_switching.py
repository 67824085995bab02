"""The WCST-like rule-switching task: valid trials, switch rate, feedback, and a cell-typed
network that learns to switch rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.rule_switching import (
    RuleSwitchingTask,
    accuracy_since_switch,
    closed_loop,
    make_sessions,
    train_rule_switching,
)

N_CARDS = 4


def decode_trial(env: RuleSwitchingTask):
    """Read a trial back from the observation the network sees (not from env.trial)."""
    names = env.observation_space.name
    ob, gt = env.ob, env.gt
    colour_units = ob[:, names["colour"]]
    shape_units = ob[:, names["shape"]]
    return ob, gt, colour_units, shape_units


def test_every_trial_has_exactly_one_correct_choice():
    env = RuleSwitchingTask(n_cards=N_CARDS, switch_prob=0.2, seed=1)
    names = env.observation_space.name
    for _ in range(1000):
        trial = env.new_trial()
        ob, gt, colour_units, shape_units = decode_trial(env)
        decision = ob[:, names["fixation"]] == 0
        assert decision.sum() >= 1 and (gt[~decision] == 0).all()
        shown = colour_units[decision][-1], shape_units[decision][-1]
        assert shown[0].sum() == 1 and shown[1].sum() == 1  # one colour, one shape
        colour, shape = int(shown[0].argmax()), int(shown[1].argmax())
        assert colour != shape  # the rules disagree, so a switch is observable
        # WCST key cards: key card k has colour k and shape k. Sort by the rule's feature.
        key_cards = [(k, k) for k in range(N_CARDS)]
        card, dim = (colour, shape), trial["rule"]
        matching = [k for k, key in enumerate(key_cards) if key[dim] == card[dim]]
        assert len(matching) == 1
        assert (gt[decision] == 1 + matching[0]).all()
        other = [k for k, key in enumerate(key_cards) if key[1 - dim] == card[1 - dim]]
        assert other != matching  # the other rule would have chosen another card


@pytest.mark.parametrize("switch_prob", [0.1, 0.3])
def test_rule_switches_at_the_configured_rate(switch_prob):
    env = RuleSwitchingTask(switch_prob=switch_prob, seed=2)
    switches, opportunities = 0, 0
    for _ in range(200):
        env.start_session()
        rules = [env.new_trial()["rule"] for _ in range(50)]
        assert rules[0] == 0  # a session starts with the colour rule
        switches += sum(a != b for a, b in zip(rules[:-1], rules[1:], strict=True))
        opportunities += len(rules) - 1
    rate = switches / opportunities
    standard_error = np.sqrt(switch_prob * (1 - switch_prob) / opportunities)
    assert abs(rate - switch_prob) < 4 * standard_error


def test_switch_extremes_and_trials_since_switch():
    never = make_sessions(RuleSwitchingTask(switch_prob=0.0, seed=0), 5, 10)
    assert (never.rules == 0).all() and (never.trials_since_switch == -1).all()
    always = make_sessions(RuleSwitchingTask(switch_prob=1.0, seed=0), 3, 6)
    assert always.rules[:, 0].tolist() == [0, 1, 0, 1, 0, 1]
    # trials since switch, recomputed from the rule sequence
    batch = make_sessions(RuleSwitchingTask(switch_prob=0.3, seed=4), 20, 15)
    for column in range(20):
        rules = batch.rules[:, column].tolist()
        since = -1
        for n, rule in enumerate(rules):
            if n > 0 and rule != rules[n - 1]:
                since = 0
            elif since >= 0:
                since += 1
            assert batch.trials_since_switch[n, column] == since


def test_observer_feedback_reports_the_previous_trial():
    env = RuleSwitchingTask(switch_prob=0.3, seed=5)
    names = env.observation_space.name
    batch = make_sessions(env, 10, 20)
    steps = batch.trial_steps
    for column in range(10):
        rules = [0] + batch.rules[:, column].tolist()  # the colour rule before trial 0
        for n in range(20):
            first_step = batch.inputs[n * steps, column]
            reward, no_reward = first_step[names["reward"]], first_step[names["no_reward"]]
            if n == 0:
                assert reward == 0 and no_reward == 0  # nothing to report yet
            else:
                # an observer sorting trial n-1 by the rule of trial n-2 was right iff no switch
                rewarded = rules[n] == rules[n - 1]
                assert (reward, no_reward) == ((1, 0) if rewarded else (0, 1))


@pytest.mark.parametrize("answer_correctly", [True, False])
def test_agent_feedback_reports_the_agents_own_choice(answer_correctly):
    env = RuleSwitchingTask(feedback="agent", seed=6)
    env.reset()
    for _ in range(5):
        trial = env.trial
        while env.trial is trial:  # step through the trial
            in_decision = env.in_period("decision")
            wrong = 1 + (trial["ground_truth"] % N_CARDS)  # another key card
            action = trial["ground_truth"] if answer_correctly else wrong
            env.step(action if in_decision else 0)
        assert env.trial["feedback"] == int(answer_correctly)
        names = env.observation_space.name
        assert env.ob[0, names["reward" if answer_correctly else "no_reward"]] == 1


def test_sessions_are_seeded():
    a = make_sessions(RuleSwitchingTask(seed=3), 4, 10)
    b = make_sessions(RuleSwitchingTask(seed=3), 4, 10)
    c = make_sessions(RuleSwitchingTask(seed=4), 4, 10)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)


def test_accuracy_since_switch_by_hand():
    batch = make_sessions(RuleSwitchingTask(switch_prob=1.0, seed=0), 1, 4)
    # rules 0, 1, 0, 1: trials since switch -1, 0, 0, 0; a perfect player scores 1 / 1 / 1
    outputs = torch.nn.functional.one_hot(batch.targets, 5).float()
    accuracy, counts = accuracy_since_switch(outputs, batch, max_lag=1)
    assert counts.tolist() == [3, 0] and accuracy[0] == 1 and torch.isnan(accuracy[1])


def test_bad_input_raises():
    with pytest.raises(ValueError, match="n_cards"):
        RuleSwitchingTask(n_cards=1)
    with pytest.raises(ValueError, match="switch_prob"):
        RuleSwitchingTask(switch_prob=1.5)
    with pytest.raises(ValueError, match="feedback must be one of"):
        RuleSwitchingTask(feedback="teacher")
    with pytest.raises(ValueError, match="unknown period"):
        RuleSwitchingTask(timing={"delay": 300})
    with pytest.raises(ValueError, match="n_sessions"):
        make_sessions(RuleSwitchingTask(), 0, 5)


def test_cell_typed_network_learns_to_switch_rules(capfd):
    result = train_rule_switching(seed=0)
    accuracy = result.accuracy_by_lag
    # the switch trial itself cannot be predicted: a network that follows the feedback
    # keeps the old rule there and errs
    assert accuracy[0] < 0.3
    # one "no reward" later it has switched
    assert (accuracy[1:4] > 0.8).all(), f"accuracy by trials since switch: {accuracy}"
    assert result.accuracy_before_switch > 0.9
    # in closed loop (it hears the outcome of its own choices) it still switches
    task = RuleSwitchingTask(switch_prob=0.3, seed=20_000)
    outputs, heard = closed_loop(result.model, make_sessions(task, 256, 8), task)
    closed, _ = accuracy_since_switch(outputs, heard)
    assert closed[0] < 0.3 and (closed[1:4] > 0.7).all(), f"closed loop: {closed}"
    assert result.seconds < 60
    assert capfd.readouterr().err == ""  # silent: nbgrader gives zero to stderr output
