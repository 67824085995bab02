"""A rule-switching card task in the spirit of the Wisconsin Card Sorting Test (WCST).

In the WCST a person sorts cards onto fixed key cards by a hidden rule (colour, shape...),
told only "right" or "wrong" after each card; the rule changes without warning. Liu & Wang
2024 (Nat Commun 15:6497) train cell-typed networks on an analogue with two rules (colour
and shape) and the previous trial's feedback as an input. Here:

- ``n_cards`` fixed key cards; key card ``k`` has colour ``k`` and shape ``k``;
- each trial shows one card to sort, of colour ``i`` and shape ``j`` with ``i != j``, so
  the two rules always disagree and exactly one key card is correct: ``i`` under the colour
  rule, ``j`` under the shape rule;
- the rule switches before a trial with probability ``switch_prob`` (never announced).

Trial structure (one trial = ``feedback`` -> ``stimulus`` -> ``decision``)::

    feedback   outcome of the previous trial (reward / no reward), fixation on   target 0
    stimulus   the card to sort, fixation on                                    target 0
    decision   the card to sort, fixation off                 target 1 + chosen key card

Where the feedback comes from. With ``feedback="agent"`` (the reinforcement-learning
interface, `env.step(action)`), it is the outcome of the agent's own last choice. With
``feedback="observer"`` (the default, used to generate whole supervised sessions ahead of
time, as neurogym's `Dataset` does), it is the outcome for an *ideal observer* who sorts by
the rule that held on the trial before: so it is "no reward" exactly on the first trial
after each switch. Only a player that behaves exactly like that observer would get the same
feedback: a trained network that slips hears "no reward" where the observer was rewarded
(see `closed_loop`). A session starts with the colour rule (the first sorting
category of the WCST), so a network with a fresh state knows where to begin.

A network trained on observer sessions is tested in *closed loop* by `closed_loop`: the
feedback at the start of trial ``n + 1`` is the outcome of the network's own choice on
trial ``n`` (what ``feedback="agent"`` gives), so its own errors come back as "no reward".
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib import progress as progress_
from course_lib._threads import one_thread
from course_lib._validate import make_generator
from course_lib.cell_types import CellTypeRNN
from course_lib.tasks import Batch
from course_lib.training import History

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from neurogym.core import TrialEnv
    from neurogym.utils import spaces

RULES: tuple[str, ...] = ("colour", "shape")
FEEDBACK_MODES = ("observer", "agent")


class RuleSwitchingTask(TrialEnv):
    """WCST-like rule switching as a neurogym `TrialEnv` (see the module docstring).

    Args:
        dt: time step (ms).
        n_cards: number of key cards (and of colours and shapes), at least 2.
        switch_prob: probability that the rule switches before a trial (after the first
            trial of a session); blocks are geometric, so a switch is never announced.
        timing: durations (ms, fixed numbers) of ``feedback``, ``stimulus``, ``decision``.
        feedback: ``"observer"`` or ``"agent"`` (see the module docstring).
        seed: seeds every random draw of the task.

    Observation: ``fixation``, ``colour`` (one-hot, ``n_cards``), ``shape`` (one-hot),
    ``reward``, ``no_reward``. Actions: 0 fixate, ``1 + k`` put the card on key card ``k``.
    ``env.trial`` records ``rule`` (0 colour, 1 shape), ``switched``, ``trials_since_switch``
    (-1 before the session's first switch), ``colour``, ``shape``, ``ground_truth`` and
    ``feedback`` (1, 0, or None on a session's first trial).
    """

    metadata = {  # noqa: RUF012 (neurogym's convention)
        "paper_link": "https://doi.org/10.1038/s41467-024-50501-y",
        "paper_name": "Flexible gating between subspaces in a neural network model of "
        "internally guided task switching (Liu & Wang 2024)",
        "tags": ["rule switching", "reward feedback", "supervised"],
    }

    def __init__(
        self,
        dt: int = 100,
        n_cards: int = 4,
        switch_prob: float = 0.1,
        timing: dict[str, int] | None = None,
        feedback: str = "observer",
        seed: int = 0,
    ):
        super().__init__(dt=dt)
        if not isinstance(n_cards, int) or isinstance(n_cards, bool) or n_cards < 2:
            raise ValueError(f"n_cards must be an integer >= 2, got {n_cards!r}")
        if not (isinstance(switch_prob, int | float) and 0.0 <= switch_prob <= 1.0):
            raise ValueError(f"switch_prob must be a probability in [0, 1], got {switch_prob!r}")
        if feedback not in FEEDBACK_MODES:
            raise ValueError(f"feedback must be one of {FEEDBACK_MODES}, got {feedback!r}")
        self.n_cards = n_cards
        self.switch_prob = float(switch_prob)
        self.feedback_mode = feedback
        self.timing = {"feedback": 100, "stimulus": 100, "decision": 100}
        for period, duration in (timing or {}).items():
            if period not in self.timing:
                raise ValueError(f"unknown period {period!r}: expected one of {list(self.timing)}")
            if not isinstance(duration, int | float) or duration < dt:
                raise ValueError(
                    f"timing[{period!r}] must be a fixed duration of at least dt={dt} ms, "
                    f"got {duration!r}"
                )
            self.timing[period] = duration
        self.rewards = {"correct": 1.0, "fail": 0.0}

        names = {
            "fixation": 0,
            "colour": list(range(1, 1 + n_cards)),
            "shape": list(range(1 + n_cards, 1 + 2 * n_cards)),
            "reward": 1 + 2 * n_cards,
            "no_reward": 2 + 2 * n_cards,
        }
        self.observation_space = spaces.Box(
            -np.inf, np.inf, shape=(3 + 2 * n_cards,), dtype=np.float32, name=names
        )
        self.action_space = spaces.Discrete(
            1 + n_cards, name={"fixation": 0, "choice": list(range(1, 1 + n_cards))}
        )
        self.seed(seed)
        self.start_session()

    @property
    def trial_steps(self) -> int:
        """Time steps per trial (fixed timing)."""
        return sum(int(d // self.dt) for d in self.timing.values())

    def start_session(self) -> None:
        """Forget the past: the next trial is trial 0 of a session, under the colour rule."""
        self.rule = 0
        self.trial_index = 0
        self.trials_since_switch = -1
        self._observer_rule = 0  # the rule an ideal observer believes in
        self._last_outcome: int | None = None  # outcome of the previous trial (1 / 0)
        self._agent_choice = 0

    def reset(self, seed: int | None = None, options: dict | None = None):
        """neurogym's reset, starting a new session (and reseeding if ``seed`` is given)."""
        if seed is not None:
            self.seed(seed)
        self.start_session()
        return super().reset(seed=seed, options=options)

    def _next_rule(self) -> bool:
        """Switch the rule with probability ``switch_prob`` (never before trial 0)."""
        switched = self.trial_index > 0 and self.rng.rand() < self.switch_prob
        if switched:
            self.rule = 1 - self.rule
            self.trials_since_switch = 0
        elif self.trials_since_switch >= 0:
            self.trials_since_switch += 1
        return switched

    def _draw_card(self) -> tuple[int, int]:
        """Colour ``i`` and shape ``j != i``: the two rules point to different key cards."""
        colour = int(self.rng.randint(self.n_cards))
        shape = (colour + 1 + int(self.rng.randint(self.n_cards - 1))) % self.n_cards
        return colour, shape

    def _new_trial(self, **kwargs: Any) -> dict[str, Any]:
        if kwargs:  # the rule and the card follow from the session; they cannot be forced
            raise ValueError(f"RuleSwitchingTask trials take no overrides, got {sorted(kwargs)}")
        if self.feedback_mode == "agent" and self.trial_index > 0:
            self._last_outcome = int(self._agent_choice == self.trial["ground_truth"])
        switched = self._next_rule()
        colour, shape = self._draw_card()
        trial = {
            "trial_index": self.trial_index,
            "rule": self.rule,
            "switched": switched,
            "trials_since_switch": self.trials_since_switch,
            "colour": colour,
            "shape": shape,
            "ground_truth": 1 + (colour if self.rule == 0 else shape),
            "feedback": self._last_outcome,
        }

        self.add_period(["feedback", "stimulus", "decision"])
        self.add_ob(1.0, period=["feedback", "stimulus"], where="fixation")
        if trial["feedback"] is not None:
            where = "reward" if trial["feedback"] == 1 else "no_reward"
            self.add_ob(1.0, period="feedback", where=where)
        card = np.zeros(self.observation_space.shape, dtype=np.float32)
        card[self.observation_space.name["colour"][colour]] = 1.0
        card[self.observation_space.name["shape"][shape]] = 1.0
        self.add_ob(card, period=["stimulus", "decision"])
        self.set_groundtruth(0, period=["feedback", "stimulus"])
        self.set_groundtruth(trial["ground_truth"], period="decision")

        # The ideal observer sorts this trial by the rule of the previous one; its outcome
        # is the feedback shown at the start of the next trial.
        if self.feedback_mode == "observer":
            self._last_outcome = int(self._observer_rule == self.rule)
            self._observer_rule = self.rule
        self._agent_choice = 0
        self.trial_index += 1
        return trial

    def _step(self, action: int):
        reward = 0.0
        if self.in_period("decision"):
            self._agent_choice = int(action)  # the choice at the end of the decision counts
            last_step = self.t + self.dt >= self.end_t["decision"]
            if last_step:
                correct = self._agent_choice == self.trial["ground_truth"]
                reward = self.rewards["correct"] if correct else self.rewards["fail"]
                self.performance = int(correct)
        return self.ob_now, reward, False, False, {"new_trial": False, "gt": self.gt_now}


# ---------------------------------------------------------------------------------------
# Supervised sessions, accuracy after a switch, and the training demonstration
# ---------------------------------------------------------------------------------------


@dataclass
class SessionBatch(Batch):
    """`Batch` of whole sessions (time first) plus what is needed to score each trial.

    ``decision_steps``: ``(n_trials,)`` last decision step of every trial;
    ``rules`` and ``trials_since_switch``: ``(n_trials, B)``; ``trial_steps``: steps per trial.
    """

    decision_steps: torch.Tensor
    rules: torch.Tensor
    trials_since_switch: torch.Tensor
    trial_steps: int


def make_sessions(env: RuleSwitchingTask, n_sessions: int, n_trials: int) -> SessionBatch:
    """``n_sessions`` sessions of ``n_trials`` trials each from ``env`` (supervised mode)."""
    if n_sessions < 1 or n_trials < 1:
        raise ValueError(
            f"n_sessions and n_trials must be positive integers, got {n_sessions}, {n_trials}"
        )
    inputs, targets, rules, since = [], [], [], []
    for _ in range(n_sessions):
        env.start_session()
        obs, gts, session_rules, session_since = [], [], [], []
        for _ in range(n_trials):
            trial = env.new_trial()  # fills env.ob and env.gt for this trial
            obs.append(env.ob)
            gts.append(env.gt)
            session_rules.append(trial["rule"])
            session_since.append(trial["trials_since_switch"])
        inputs.append(np.concatenate(obs))
        targets.append(np.concatenate(gts))
        rules.append(session_rules)
        since.append(session_since)
    steps = env.trial_steps
    return SessionBatch(
        inputs=torch.as_tensor(np.stack(inputs, axis=1), dtype=torch.float32),
        targets=torch.as_tensor(np.stack(targets, axis=1), dtype=torch.long),
        decision_steps=torch.arange(1, n_trials + 1) * steps - 1,
        rules=torch.tensor(rules).T,
        trials_since_switch=torch.tensor(since).T,
        trial_steps=steps,
    )


def select_sessions(batch: SessionBatch, columns: torch.Tensor) -> SessionBatch:
    """The sessions ``columns`` of a batch (a new batch)."""
    return SessionBatch(
        inputs=batch.inputs[:, columns],
        targets=batch.targets[:, columns],
        decision_steps=batch.decision_steps,
        rules=batch.rules[:, columns],
        trials_since_switch=batch.trials_since_switch[:, columns],
        trial_steps=batch.trial_steps,
    )


class RuleSwitchingDataset:
    """Seeded batches of whole sessions; ``next_batch()`` works with `training.train`.

    With ``pool_size``, that many sessions are made once and each batch draws from them
    (neurogym builds trials in Python, which would otherwise cost more than the training
    step itself); without it every batch is new.
    """

    def __init__(
        self,
        *,
        batch_size: int = 32,
        n_trials: int = 8,
        pool_size: int | None = None,
        seed: int = 0,
        **env_kwargs,
    ):
        if batch_size < 1 or n_trials < 1:
            raise ValueError(
                f"batch_size and n_trials must be positive integers, got {batch_size}, {n_trials}"
            )
        self.env = RuleSwitchingTask(seed=seed, **env_kwargs)
        self.batch_size = batch_size
        self.n_trials = n_trials
        self.n_input = int(self.env.observation_space.shape[0])
        self.n_output = int(self.env.action_space.n)
        self.dt = float(self.env.dt)
        self._pool = None if pool_size is None else make_sessions(self.env, pool_size, n_trials)
        self._draw = make_generator(seed)

    def next_batch(self) -> SessionBatch:
        if self._pool is None:
            return make_sessions(self.env, self.batch_size, self.n_trials)
        n_pool = self._pool.inputs.shape[1]
        return select_sessions(
            self._pool, torch.randint(n_pool, (self.batch_size,), generator=self._draw)
        )


def believed_rule(batch: SessionBatch) -> torch.Tensor:
    """``(T, B)`` the rule the feedback has revealed so far: on trial ``n``, the rule of
    trial ``n - 1`` (colour on trial 0). Liu & Wang 2024 train their "PFC" module to
    report the rule; this is the part of it that can be known."""
    first = torch.zeros_like(batch.rules[:1])
    previous = torch.cat([first, batch.rules[:-1]])
    return previous.repeat_interleave(batch.trial_steps, dim=0)


def trial_choices(outputs: torch.Tensor, batch: SessionBatch) -> torch.Tensor:
    """``(n_trials, B)`` choice of the network at the last step of every decision period."""
    return outputs[batch.decision_steps].argmax(dim=-1)


def trial_correct(outputs: torch.Tensor, batch: SessionBatch) -> torch.Tensor:
    """``(n_trials, B)`` whether each trial's choice is the correct key card."""
    return trial_choices(outputs, batch) == batch.targets[batch.decision_steps]


def accuracy_since_switch(
    outputs: torch.Tensor, batch: SessionBatch, max_lag: int = 5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Accuracy on trials ``0 .. max_lag`` after a rule switch, and how many trials each.

    Lag 0 is the switch trial itself: nothing announces the change, so even a perfect
    player errs there (it learns of the switch from the "no reward" that follows).
    Lags with no trials give NaN. ``outputs``: ``(T, B, n_actions)`` choice scores.
    """
    correct = trial_correct(outputs, batch)
    accuracy, counts = torch.full((max_lag + 1,), math.nan), torch.zeros(max_lag + 1)
    for lag in range(max_lag + 1):
        at_lag = batch.trials_since_switch == lag
        counts[lag] = at_lag.sum()
        if counts[lag] > 0:
            accuracy[lag] = correct[at_lag].float().mean()
    return accuracy, counts


def rule_switching_loss(
    outputs: torch.Tensor, batch: SessionBatch, *, decision_weight: float, rule_weight: float
) -> torch.Tensor:
    """Cross-entropy on the choice (decision steps weighted ``decision_weight``, since most
    steps are fixation) plus ``rule_weight`` x cross-entropy on the believed rule, read out
    from the last two outputs."""
    n_actions = outputs.shape[-1] - len(RULES)
    choice_logits, rule_logits = outputs[..., :n_actions], outputs[..., n_actions:]
    per_step = nn.functional.cross_entropy(
        choice_logits.flatten(0, 1), batch.targets.flatten(), reduction="none"
    )
    weights = 1.0 + (decision_weight - 1.0) * (batch.targets.flatten() != 0).float()
    choice_loss = (per_step * weights).sum() / weights.sum()
    rule_loss = nn.functional.cross_entropy(
        rule_logits.flatten(0, 1), believed_rule(batch).flatten()
    )
    return choice_loss + rule_weight * rule_loss


@dataclass
class RuleSwitchingResult:
    model: nn.Module
    history: History  # loss per step; accuracy (all trials) at eval_steps
    accuracy_by_lag: torch.Tensor  # accuracy on trials 0, 1, 2... after a switch (test set)
    trials_by_lag: torch.Tensor  # how many test trials at each lag
    accuracy_before_switch: float  # test trials before the session's first switch
    seconds: float  # training time


def train_rule_switching(
    *,
    n_steps: int = 1000,
    batch_size: int = 32,
    n_trials: int = 8,
    switch_prob: float = 0.3,
    lr: float = 5e-3,
    decision_weight: float = 5.0,
    rule_weight: float = 1.0,
    max_grad_norm: float = 1.0,
    pool_size: int = 2048,
    max_lag: int = 5,
    eval_every: int = 100,
    seed: int = 0,
    model: nn.Module | None = None,
    progress: bool | None = None,
) -> RuleSwitchingResult:
    """Train a small `CellTypeRNN` on `RuleSwitchingTask`; score it after rule switches.

    The network has one output per action plus two "rule" outputs trained to report the
    rule revealed by the feedback (`believed_rule`, as Liu & Wang's PFC module); a custom
    ``model`` needs the same outputs. Adam with gradient clipping; tested on 256 fresh
    sessions with the same switch rate (with the observer's feedback; see `closed_loop` for
    a test with the network's own feedback). About 5 s of CPU time with the defaults.
    ``progress``: a bar and a closing sentence, by default in a notebook only
    (`course_lib.progress`).
    """
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    start = time.perf_counter()
    data = RuleSwitchingDataset(
        batch_size=batch_size,
        n_trials=n_trials,
        pool_size=pool_size,
        switch_prob=switch_prob,
        seed=seed,
    )
    n_actions = data.n_output
    if model is None:
        # dt = tau (alpha = 1): one step per task period is enough for this task.
        model = CellTypeRNN(
            data.n_input, n_actions + len(RULES), dt=data.dt, tau=data.dt, seed=seed
        )
    test = make_sessions(
        RuleSwitchingTask(switch_prob=switch_prob, seed=seed + 10_000), 256, n_trials
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = History()
    with one_thread():
        for step in progress_.steps(range(1, n_steps + 1), desc="rule switching",
                                    progress=progress):
            batch = data.next_batch()
            outputs, _ = model(batch.inputs)
            loss = rule_switching_loss(
                outputs, batch, decision_weight=decision_weight, rule_weight=rule_weight
            )
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)  # rare large steps
            optimizer.step()
            history.loss.append(loss.item())
            if step % eval_every == 0 or step == n_steps:
                with torch.no_grad():
                    test_outputs = model(test.inputs)[0][..., :n_actions]
                history.accuracy.append(float(trial_correct(test_outputs, test).float().mean()))
                history.eval_steps.append(step)
    accuracy, counts = accuracy_since_switch(test_outputs, test, max_lag)
    before_switch = test.trials_since_switch < 0
    correct = trial_correct(test_outputs, test)
    progress_.report(
        f"After {n_steps} training steps the network chooses correctly on "
        f"{history.accuracy[-1]:.0%} of the test trials"
        + (f", and on {accuracy[1]:.0%} of the trials right after the one where the rule "
           "switched." if max_lag >= 1 else "."),
        progress=progress,
    )
    return RuleSwitchingResult(
        model=model,
        history=history,
        accuracy_by_lag=accuracy,
        trials_by_lag=counts,
        accuracy_before_switch=float(correct[before_switch].float().mean()),
        seconds=time.perf_counter() - start,
    )


# ---------------------------------------------------------------------------------------
# Closed loop: the network hears the outcome of its own choices
# ---------------------------------------------------------------------------------------


def closed_loop(
    model: nn.Module, batch: SessionBatch, task: RuleSwitchingTask
) -> tuple[torch.Tensor, SessionBatch]:
    """Run ``model`` on the sessions of ``batch`` with the feedback its own choices earn.

    ``batch`` comes from `make_sessions` with ``task`` (or a task with the same layout);
    its cards and rules are kept, but the feedback at the start of trial ``n + 1`` becomes
    the outcome of the network's choice on trial ``n`` ("reward" if it chose the correct
    key card, else "no reward"), as ``feedback="agent"`` would give. The cards and rules do
    not depend on the choices, so they are those the agent-mode task draws with the same
    seed. Trial ``n``'s choice is known only after running trials ``0 .. n``, so the model
    is run trial by trial on the growing session (it must be deterministic: no noise).

    Returns the choice scores ``(T, B, n_actions)`` (extra outputs, such as the rule
    outputs, dropped) and the batch with the closed-loop inputs, ready for
    `accuracy_since_switch`.
    """
    if getattr(model, "noise_std", 0.0) != 0.0:
        raise ValueError("closed_loop needs a deterministic model: set noise_std to 0")
    names = task.observation_space.name
    n_actions = int(task.action_space.n)
    feedback_steps = int(task.timing["feedback"] // task.dt)  # feedback opens every trial
    steps, n_trials = batch.trial_steps, len(batch.decision_steps)
    inputs = batch.inputs.clone()
    for trial in range(n_trials):
        with torch.no_grad():
            outputs = model(inputs[: (trial + 1) * steps])[0][..., :n_actions]
        if trial + 1 < n_trials:
            decision = batch.decision_steps[trial]
            correct = (outputs[decision].argmax(dim=-1) == batch.targets[decision]).float()
            feedback = slice((trial + 1) * steps, (trial + 1) * steps + feedback_steps)
            inputs[feedback, :, names["reward"]] = correct
            inputs[feedback, :, names["no_reward"]] = 1.0 - correct
    return outputs, replace(batch, inputs=inputs)


def accuracy_before_switch(outputs: torch.Tensor, batch: SessionBatch) -> float:
    """Accuracy on the trials before a session's first switch (the colour rule, never
    changed yet): how well the task itself is done, switching aside."""
    before = batch.trials_since_switch < 0
    if not bool(before.any()):
        return math.nan
    return float(trial_correct(outputs, batch)[before].float().mean())
