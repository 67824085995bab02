"""Miconi's rule: a recurrent network learns a cognitive task from one reward per trial.

Miconi 2017 (eLife 6:e20899, "Biologically plausible learning in recurrent neural networks
reproduces neural dynamics observed during cognitive tasks"), Methods. The network gets no
error vector and no error at each time step: only a scalar reward at the end of each trial.
Three pieces, each local to a synapse or global to the network:

1. **Exploration.** At random times a unit's input gets a random kick: each unit, at each
   step, with probability ``p``, a perturbation drawn uniformly in ``[-A, A]`` (Miconi:
   ``p = 0.003`` per 1 ms step in 1000-step trials, about 3 kicks per unit per trial).
2. **Eligibility trace, accumulated supralinearly** (Miconi 2017, Methods, the trace)::

       e_ij(t) = e_ij(t-1) + S( r_j(t-1) (x_i(t) - x_bar_i(t)) ),      S(y) = y**3

   ``x_i`` is the unit's (leaky) excitation, ``x_bar_i`` a running average of it, so
   ``x_i - x_bar_i`` is the unit's *fluctuation*; ``r_j(t-1)`` is the pre-synaptic rate that
   arrived at that step. The cube keeps the sign and magnifies the rare large fluctuations,
   the kicks, over the many small ones the task drives: the trace ends up close to node
   perturbation's ``sum_t kick_i(t) r_j(t-1)`` (Fiete & Seung 2006) without the synapse
   having to know which part of the fluctuation was a kick.
3. **Reward against expectation, at the end of the trial** (Methods, the weight change)::

       dW_ij = eta e_ij (R - R_bar),     R = -mean |y(t) - y*(t)| over the response period

   ``R_bar`` is a running average of past rewards of the same trial type; ``R - R_bar`` is
   the reward prediction error, the third factor (dopamine). As in Miconi's code, each
   weight change is clipped to ``[-max_dw, max_dw]``.

**On the course's rate network.** The network is `course_lib.learning_rules.rflo.LeakyRNN`
(Murray 2019, eq. 1), the one chapter 08 trains by RFLO and BPTT, so all rules start from
the same weights::

    u_t = W_rec h_{t-1} + W_in x_t + kick_t,     h_t = (1 - 1/tau) h_{t-1} + (1/tau) tanh(u_t)
    y_t = W_out h_t + kick_out_t

What carries over, and what had to change (each change is the smallest that made the rule
work on this network; the reasons are the ones we measured):

- the leak acts on the rate ``h`` here, on the potential ``x`` in Miconi's network, so ``h``
  plays the role of ``x``: a kick on ``u`` moves ``h`` by about ``kick/tau`` and the move
  lasts ``tau`` steps, as a kick moves Miconi's ``x`` by ``A dt/tau``. (The summed input
  ``u`` itself has no leak, grows without bound with ``W_in`` and ``W_rec``, and under the
  cube its fluctuations made the weights diverge.)
- Miconi reads the answer from one unit of the network and keeps the input weights fixed;
  here the linear readout ``W_out`` and ``W_in`` learn by the same rule, so that every rule
  trains the same weights. The output unit is kicked like the others, with kicks of
  ``output_scale * A`` (it has no leak; the search below found half the hidden size best).
- the running averages ``x_bar`` use the rate ``1/tau`` (Miconi's code: 0.95). The output
  has no leak, so a kick on it lasts one step; an average that follows within a step gives
  the kick back with the opposite sign on the next step, and the two cubes cancel (86 %).
- short trials (16 steps of 100 ms instead of 1000 of 1 ms): the kick probability is per
  step, so that each unit still gets a few kicks per trial.
- the reward baseline is kept per trial type as in the paper, with Miconi's rate
  (``R_bar <- 0.75 R_bar + 0.25 R``); the trial type is read from the *inputs* (which
  option the evidence shown favoured, `evidence_side`), never from the target.

Trials come in batches: every trial has its own kicks, its own trace ``e`` and its own
``R - R_bar``; the weight change is the mean over the batch of ``e (R - R_bar)``, i.e. the
sum of the trials' own updates, each divided by the batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from course_lib._threads import one_thread
from course_lib._validate import check_non_negative, check_positive
from course_lib.learning_rules.reward import update_baseline
from course_lib.learning_rules.rflo import LeakyRNN, check_tau, rule_updates
from course_lib.tasks import make_env

Tensor = torch.Tensor
Weights = dict[str, Tensor]
RewardFn = Callable[[Tensor], Tensor]

#: The reward baseline's rate in Miconi's published code (dnms/net.cpp), so that
#: ``R_bar <- 0.75 R_bar + 0.25 R``.
BASELINE_RATE = 0.25

_WEIGHTS = ("w_in", "w_rec", "w_out")


# --------------------------------------------------------------------------- the rule


def supralinear(y: Tensor) -> Tensor:
    """Miconi's ``S(y) = y**3``: sign kept, large fluctuations (the kicks) count most."""
    return y**3


def random_kicks(
    shape: tuple[int, ...], probability: float, amplitude: float, generator: torch.Generator
) -> Tensor:
    """Exploratory perturbations at random times: ``(steps, ...)``, each entry independently
    ``Uniform(-amplitude, amplitude)`` with ``probability``, else 0 (Miconi 2017, Methods).

    No kick at the first step: the running average of the excitation starts there, so a
    kick would have nothing to stand out from.
    """
    if not (isinstance(probability, int | float) and 0.0 <= probability <= 1.0):
        raise ValueError(f"probability must be a number in [0, 1], got {probability!r}")
    check_non_negative("amplitude", amplitude)
    hit = torch.rand(shape, generator=generator) < probability
    size = (2 * torch.rand(shape, generator=generator) - 1) * amplitude
    kicks = torch.where(hit, size, torch.zeros(()))
    kicks[0] = 0.0
    return kicks


def eligibility_increment(fluctuation: Tensor, pre: Tensor) -> Tensor:
    """``S(pre_j * fluctuation_i)`` for every synapse ``(..., post, pre)``: one step of
    Miconi's trace (the outer product of post-synaptic fluctuation and pre-synaptic rate)."""
    return supralinear(fluctuation[..., :, None] * pre[..., None, :])


def miconi_trial(
    w_in: Tensor,
    w_rec: Tensor,
    w_out: Tensor,
    inputs: Tensor,
    kicks: Tensor,
    output_kicks: Tensor,
    tau: float,
    average_rate: float | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Run a batch of trials with the given kicks and accumulate Miconi's traces.

    ``inputs`` ``(T, batch, n_input)``; ``kicks`` ``(T, batch, N)`` added to the hidden
    units' summed input ``u``, ``output_kicks`` ``(T, batch, n_output)`` to the outputs.
    ``average_rate``: of the running averages ``h_bar``, ``y_bar`` (default ``1/tau``).
    Returns ``(outputs, e_in, e_rec, e_out)``: outputs ``(T, batch, n_output)`` and one
    trace per trial and synapse, ``(batch, post, pre)``. The traces are not decayed: they
    sum over the whole trial, as in the paper. Pure tensor code (``torch.vmap`` runs it
    for several networks at once); the weights are not changed.
    """
    rate = 1 / tau if average_rate is None else average_rate
    steps, batch, _ = inputs.shape
    h = inputs.new_zeros(batch, w_rec.shape[0])
    e_in = inputs.new_zeros(batch, *w_in.shape)
    e_rec = inputs.new_zeros(batch, *w_rec.shape)
    e_out = inputs.new_zeros(batch, *w_out.shape)
    h_bar = y_bar = None
    outputs = []
    for t in range(steps):
        x, h_before = inputs[t], h
        u = h_before @ w_rec.T + x @ w_in.T + kicks[t]  # this step's kicks enter the input
        h = (1 - 1 / tau) * h_before + (1 / tau) * torch.tanh(u)  # Murray 2019, eq. 1
        h_bar = h if h_bar is None else h_bar  # the running averages start at step 0
        e_rec = e_rec + eligibility_increment(h - h_bar, h_before)  # pre: r_j(t-1)
        e_in = e_in + eligibility_increment(h - h_bar, x)
        h_bar = h_bar + rate * (h - h_bar)
        y = h @ w_out.T + output_kicks[t]
        y_bar = y if y_bar is None else y_bar
        e_out = e_out + eligibility_increment(y - y_bar, h)  # the output unit; pre: h(t)
        y_bar = y_bar + rate * (y - y_bar)
        outputs.append(y)
    return torch.stack(outputs), e_in, e_rec, e_out


def miconi_update(
    eligibility: Tensor,
    reward: Tensor,
    baseline: Tensor,
    lr: float,
    max_dw: float | None = None,
) -> Tensor:
    """``dW = lr mean_b e_b (R_b - R_bar_b)``, each entry clipped to ``[-max_dw, max_dw]``.

    ``eligibility`` ``(..., batch, post, pre)``, ``reward`` and ``baseline``
    ``(..., batch)`` (each trial's baseline: the expectation it is compared with). A trial
    that did better than expected reinforces what its units did (their fluctuations times
    their inputs); one that did worse, the opposite (Miconi 2017, Methods).
    """
    surprise = (reward - baseline)[..., None, None]  # the reward prediction error
    dw = lr * (eligibility * surprise).mean(-3)
    return dw if max_dw is None else dw.clamp(-max_dw, max_dw)


# ------------------------------------------------------------------ reward and scoring


def response_period(inputs: Tensor) -> Tensor:
    """``(T, batch)`` True where an answer is due: the go cue, the fixation input (input 0,
    `course_lib.tasks` keeps it on until the answer is due) switched off."""
    return inputs[..., 0] == 0


def response_reward(outputs: Tensor, targets: Tensor, response: Tensor) -> Tensor:
    """Miconi's reward: ``R = -mean |y - y*|`` over each trial's response period, ``(..., B)``.

    ``outputs`` and ``targets`` ``(..., T, B, 1)``; ``response`` ``(T, B)`` boolean.
    """
    error = (outputs - targets).abs().squeeze(-1) * response
    return -error.sum(-2) / response.sum(0)


def decision_accuracy(outputs: Tensor, targets: Tensor, response: Tensor) -> Tensor:
    """Fraction of trials whose mean output over the response period has the sign of the
    target, ``(...)`` (the trial's choice is the side the output leans to)."""
    mean_output = (outputs.squeeze(-1) * response).sum(-2) / response.sum(0)
    mean_target = (targets.squeeze(-1) * response).sum(-2) / response.sum(0)
    return (torch.sign(mean_output) == torch.sign(mean_target)).float().mean(-1)


# ----------------------------------------------------------- the task: delayed decision

#: The task is neurogym's perceptual decision with a delayed response (after Inagaki et
#: al. 2019), with noisy evidence for two options, a delay, then the go cue (fixation off) and the
#: answer. Fixed periods (in ms, ``dt = 100``) so that all trials have the same length;
#: ``stim_scale = 2`` doubles neurogym's coherences (0 to 102.4 %), so that a reward-trained
#: network of 32 units learns it within the chapter's budget. A fifth of the trials have
#: coherence 0 and no correct answer to find: the best accuracy is about 90 %.
TASK = "PerceptualDecisionMakingDelayResponse-v0"
TIMING = {"fixation": 100, "stimulus": 500, "delay": 500, "decision": 500}
TASK_KWARGS = {"dt": 100, "stim_scale": 2.0}


def delayed_decision_env(timing: dict | None = None, **env_kwargs):
    """The task's neurogym environment, with the go cue (`course_lib.tasks.make_env`)."""
    return make_env(TASK, timing={**TIMING, **(timing or {})}, **{**TASK_KWARGS, **env_kwargs})


def trials_batch(env, batch_size: int) -> tuple[Tensor, Tensor]:
    """``batch_size`` new trials of ``env``, one per column: ``(inputs, targets)``.

    Inputs ``(T, B, 3)`` (fixation, evidence for option 1, for option 2); targets
    ``(T, B, 1)``: 0 until the go cue, then +1 for option 1 and -1 for option 2, the format
    of `course_lib.learning_rules.rflo.delayed_response_batch`, so that every rule of the
    course trains on them. Trials are made one by one with neurogym's ``new_trial`` rather
    than by `course_lib.tasks.TaskDataset`: its batches are windows cut from a stream of
    trials, while a reward at the end of a trial needs whole trials, aligned.
    """
    check_positive("batch_size", batch_size)
    inputs, targets = [], []
    for _ in range(batch_size):
        env.new_trial()
        inputs.append(torch.tensor(env.ob, dtype=torch.float32))  # a copy: neurogym's own
        choice = torch.tensor(env.gt, dtype=torch.float32)  # arrays; 0 fixate, 1 or 2
        targets.append(torch.where(choice == 2, -1.0, choice))
    return torch.stack(inputs, 1), torch.stack(targets, 1)[..., None]


def delayed_decision_batch(batch_size: int, *, seed: int = 0, **task) -> tuple[Tensor, Tensor]:
    """One batch of ``batch_size`` trials of the delayed decision task, e.g. held-out trials
    (a seed not used for training)."""
    return delayed_decision_batches(1, batch_size, seed=seed, **task)[0]


def delayed_decision_batches(
    n_batches: int, batch_size: int, *, seed: int = 0, **task
) -> list[tuple[Tensor, Tensor]]:
    """``n_batches`` batches of the delayed decision task (`trials_batch`), reproducibly."""
    check_positive("n_batches", n_batches)
    env = delayed_decision_env(**task)
    env.seed(seed)
    return [trials_batch(env, batch_size) for _ in range(n_batches)]


# ------------------------------------------------------- several seeds, several rules


@dataclass
class MiconiSettings:
    """Miconi's rule on our short trials. ``probability``: chance of a kick per unit and
    step (about 3 kicks per unit in a 16-step trial); ``amplitude``: hidden kicks are
    uniform in ``[-amplitude, amplitude]``, output kicks in ``output_scale`` times that;
    ``lr`` the rule's ``eta`` (large, because cubes of fluctuations below 1 are small);
    ``max_dw`` the clip of each weight change (Miconi's code clips too); ``baseline_rate``
    of the running reward average. Chosen by a coarse search (a dozen settings, networks
    of seeds 0-2, trials drawn apart from the chapter's); without the clip, or with ten
    times larger steps, the weights ran away."""

    probability: float = 0.2
    amplitude: float = 3.0
    output_scale: float = 0.5
    lr: float = 30.0
    max_dw: float | None = 5e-4
    baseline_rate: float = BASELINE_RATE


def _kick_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One generator of kicks per seed (so a seed's run does not depend on the others)."""
    return [torch.Generator().manual_seed(10_007 * (s + 1)) for s in seeds]


def _kicks_for(generators, steps, batch, n_hidden, n_output, settings):
    """Each seed's kicks for one batch: hidden ``(S, T, B, N)``, output ``(S, T, B, n_out)``."""
    def draw(units, amplitude):
        return torch.stack([random_kicks((steps, batch, units), settings.probability,
                                         amplitude, g) for g in generators])

    return (draw(n_hidden, settings.amplitude),
            draw(n_output, settings.amplitude * settings.output_scale))


def miconi_learning_step(
    weights: Weights,
    inputs: Tensor,
    reward_of: RewardFn,
    baseline: Tensor | None,
    kicks: Tensor,
    output_kicks: Tensor,
    *,
    trial_types: Tensor | None = None,
    n_types: int = 1,
    tau: float,
    settings: MiconiSettings,
    plastic: Sequence[str] = _WEIGHTS,
) -> tuple[Weights, Tensor, Tensor]:
    """One batch of trials and Miconi's update, for ``S`` networks at once.

    ``weights``: ``{name: (S, ...)}``; ``kicks`` ``(S, T, B, N)`` and ``output_kicks``
    ``(S, T, B, n_output)``. ``reward_of(outputs)`` turns the outputs ``(S, T, B, n_out)``
    into one number per trial ``(S, B)``: the learner sees no target, only these rewards.
    ``trial_types`` ``(B,)`` integers in ``[0, n_types)`` (default: all 0) pick the
    expectation each trial's reward is compared with; ``baseline`` ``(S, n_types)`` holds
    them (None on the first batch: it is then set to the batch's mean rewards and no
    weight changes, Miconi's warm-up). Returns the new weights (new tensors), the rewards
    ``(S, B)`` and the new baseline.
    """
    outputs, *traces = torch.vmap(miconi_trial, in_dims=(0, 0, 0, None, 0, 0, None))(
        weights["w_in"], weights["w_rec"], weights["w_out"], inputs, kicks, output_kicks, tau
    )
    reward = reward_of(outputs)
    types = reward.new_zeros(reward.shape[-1], dtype=torch.long) if trial_types is None \
        else trial_types
    if types.min() < 0 or types.max() >= n_types:
        raise ValueError(f"trial_types must be integers in [0, {n_types}), got {types.tolist()}")
    # each type's mean reward in this batch (a type absent from the batch keeps its baseline)
    one_hot = torch.nn.functional.one_hot(types, n_types).to(reward.dtype)  # (B, n_types)
    count = one_hot.sum(0)
    batch_mean = reward @ one_hot / count.clamp(min=1)
    if baseline is None:
        return dict(weights), reward, torch.where(count > 0, batch_mean, reward.mean(-1, True))
    new = dict(weights)
    for name, trace in zip(_WEIGHTS, traces, strict=True):
        if name in plastic:
            new[name] = weights[name] + miconi_update(trace, reward, baseline[:, types],
                                                      settings.lr, settings.max_dw)
    updated = update_baseline(baseline, batch_mean, settings.baseline_rate)
    return new, reward, torch.where(count > 0, updated, baseline)


def evidence_side(inputs: Tensor) -> Tensor:
    """The trial type, from what the network is shown: 0 where the evidence (inputs 1 and 2)
    favoured option 1 over the whole trial, 1 where it favoured option 2; ``(B,)``."""
    return (inputs[..., 2].sum(0) > inputs[..., 1].sum(0)).long()


#: The rules `compare_rules_on_seeds` trains. "Miconi readout only" is the control: the
#: random recurrent network stays as built (its units are still kicked, to explore), and
#: only the readout learns, by Miconi's rule from the same rewards.
RULES = ("Miconi", "Miconi readout only", "RFLO", "BPTT")
REWARD_RULES = ("Miconi", "Miconi readout only")


@dataclass
class LearningCurves:
    """Held-out accuracy and error of every seed's network as training goes on.

    ``trials[rule]`` ``(n_points,)``: training trials seen at each evaluation;
    ``accuracy[rule]`` and ``error[rule]`` ``(n_points, n_seeds)``. The error is Miconi's
    ``mean |y - y*|`` over the response period (minus his reward), for every rule;
    ``weights[rule]`` holds the trained weights ``{name: (n_seeds, ...)}``.
    """

    seeds: list[int]
    trials: dict[str, Tensor]
    accuracy: dict[str, Tensor]
    error: dict[str, Tensor]
    weights: dict[str, Weights]

    def trials_to_criterion(self, rule: str, criterion: float) -> list[int | None]:
        """For each seed, the number of trials from which its held-out accuracy stays at or
        above ``criterion`` to the end of training (None if it does not end there). Held,
        not first touched: a noisy curve can cross a line once by chance."""
        above = self.accuracy[rule] >= criterion  # (n_points, n_seeds)
        # held from point k on: every later point is above too (a reversed running "and")
        held = above.flip(0).int().cummin(0).values.flip(0).bool()
        return [int(self.trials[rule][col.nonzero()[0, 0]]) if col.any() else None
                for col in held.T]


def _initial_weights(seeds, n_input, n_hidden, n_output, tau):
    nets = [LeakyRNN(n_input, n_hidden, n_output, tau=tau, seed=s) for s in seeds]
    start = {name: torch.stack([getattr(n, name).detach() for n in nets]) for name in _WEIGHTS}
    return nets[0], start, torch.stack([n.feedback for n in nets])


def _evaluate(template: LeakyRNN, weights: Weights, test: tuple[Tensor, Tensor]):
    """Each seed's accuracy and error on the held-out trials, without kicks."""
    inputs, targets = test
    with torch.no_grad():
        outputs = torch.vmap(
            lambda w: torch.func.functional_call(template, w, (inputs,))[0])(weights)
    response = response_period(inputs)
    return (decision_accuracy(outputs, targets, response),
            -response_reward(outputs, targets, response).mean(-1))


def _train_one_rule(rule, batches, test, template, start, feedback, seeds, tau,
                    supervised_lr, settings, eval_every):
    """One rule on all seeds at once: the scores at each evaluation, and the weights."""
    weights, baseline = dict(start), None
    generators = _kick_generators(seeds)
    n_hidden, n_output = start["w_rec"].shape[-1], start["w_out"].shape[-2]
    scores = [_evaluate(template, weights, test)]
    for k, (inputs, targets) in enumerate(batches, start=1):
        if rule in REWARD_RULES:
            kicks = _kicks_for(generators, inputs.shape[0], inputs.shape[1], n_hidden,
                               n_output, settings)
            response = response_period(inputs)

            def reward_of(outputs, targets=targets, response=response):
                return response_reward(outputs, targets, response)  # the environment

            weights, _, baseline = miconi_learning_step(
                weights, inputs, reward_of, baseline, *kicks,
                trial_types=evidence_side(inputs), n_types=2, tau=tau, settings=settings,
                plastic=_WEIGHTS if rule == "Miconi" else ("w_out",))
        else:  # the updates of rflo.train_rules_on_seeds, one batch
            _, updates = rule_updates(rule, template, weights, feedback, inputs, targets)
            weights = {name: weights[name] + supervised_lr * updates[name] for name in _WEIGHTS}
        if k % eval_every == 0:
            scores.append(_evaluate(template, weights, test))
    accuracy, error = (torch.stack(values) for values in zip(*scores, strict=True))
    return accuracy, error, weights


def compare_rules_on_seeds(
    batches: Sequence[tuple[Tensor, Tensor]],
    test: tuple[Tensor, Tensor],
    *,
    seeds: Sequence[int] = range(3),
    rules: Sequence[str] = RULES,
    n_batches: dict[str, int] | None = None,
    n_hidden: int = 32,
    tau: float = 5.0,
    supervised_lr: float = 0.3,
    miconi: MiconiSettings | None = None,
    eval_every: int = 10,
) -> LearningCurves:
    """Train one `LeakyRNN` per seed with each rule, all on the same ``batches`` of trials.

    Seed ``s`` builds ``LeakyRNN(n_input, n_hidden, n_output, tau=tau, seed=s)``, as
    `course_lib.learning_rules.rflo.train_rules_on_seeds` does; every rule starts from these
    same networks. RFLO and BPTT take that function's plain steps
    ``W <- W + supervised_lr dW`` (they see the target at every step); Miconi's rule and its
    readout-only control see one reward per trial (`response_reward`). ``n_batches`` limits
    a rule to the first batches (e.g. ``{"RFLO": 300}``: supervised rules need far fewer
    trials, and the chapter's time budget is small). The seeds run at once (``torch.vmap``);
    each seed's numbers are those it would get alone (its kicks come from its own
    generator). Every ``eval_every`` batches (and before training) each network is scored on
    the held-out ``test`` trials, without kicks.
    """
    unknown = set(rules) - set(RULES)
    if unknown:
        raise ValueError(f"rules must be among {RULES}, got {sorted(unknown)}")
    check_tau(tau)
    check_positive("supervised_lr", supervised_lr)
    check_positive("eval_every", eval_every)
    seeds, settings, n_batches = list(seeds), miconi or MiconiSettings(), n_batches or {}
    if not seeds or not batches:
        raise ValueError("need at least one seed and one batch")
    n_input, n_output = batches[0][0].shape[-1], batches[0][1].shape[-1]
    batch_size = batches[0][0].shape[1]
    curves = LearningCurves(seeds, {}, {}, {}, {})
    with one_thread():
        template, start, feedback = _initial_weights(seeds, n_input, n_hidden, n_output, tau)
        for rule in rules:
            used = batches[: n_batches.get(rule, len(batches))]
            accuracy, error, weights = _train_one_rule(
                rule, used, test, template, start, feedback, seeds, tau, supervised_lr,
                settings, eval_every)
            curves.trials[rule] = torch.arange(len(accuracy)) * eval_every * batch_size
            curves.accuracy[rule], curves.error[rule] = accuracy, error
            curves.weights[rule] = weights
    return curves


def train_miconi_on_seeds(
    batches: Sequence[tuple[Tensor, Tensor]],
    test: tuple[Tensor, Tensor],
    *,
    seeds: Sequence[int] = range(3),
    readout_only: bool = False,
    **kwargs,
) -> LearningCurves:
    """Miconi's rule alone (or its readout-only control), several seeds at once: the
    per-seed learning curves (held-out accuracy and error against trials seen). Keywords as
    `compare_rules_on_seeds`."""
    rule = "Miconi readout only" if readout_only else "Miconi"
    return compare_rules_on_seeds(batches, test, seeds=seeds, rules=(rule,), **kwargs)


def reward_experiment(
    *,
    seeds: Sequence[int] = range(3),
    n_batches: int = 1500,
    supervised_batches: int = 300,
    batch_size: int = 32,
    eval_every: int = 50,
    data_seed: int = 1,
    test_seed: int = 2,
) -> LearningCurves:
    """The chapter's experiment: Miconi's rule, its readout-only control, RFLO and BPTT on
    the delayed decision task, from the same networks (``seeds``) on the same trials.

    The reward rules get ``n_batches`` batches of ``batch_size`` trials, the supervised
    rules the first ``supervised_batches`` of them (they need far fewer, see
    `LearningCurves.trials_to_criterion`); 256 new trials (``test_seed``) score every
    network every ``eval_every`` batches. About 15 s of one CPU core with the defaults.
    """
    batches = delayed_decision_batches(n_batches, batch_size, seed=data_seed)
    test = delayed_decision_batch(256, seed=test_seed)
    supervised = {"RFLO": supervised_batches, "BPTT": supervised_batches}
    return compare_rules_on_seeds(batches, test, seeds=seeds, n_batches=supervised,
                                  eval_every=eval_every)
