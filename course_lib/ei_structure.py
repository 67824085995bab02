"""Is a trained E/I network wired like the decision circuits it is compared with?

Wang's (2002) hand-built spiking model of a two-choice decision has two pools of
excitatory neurons, one selective for each choice, with strong recurrent excitation
*within* a pool, and one shared pool of inhibitory neurons that inhibits both pools alike
(broad, non-selective inhibition). This module measures whether a *trained* E/I network
(`course_lib.dale.EIRateRNN`) has that structure, in three steps:

1. `trial_stimulus_rates`: on held-out trials, each unit's mean rate during each trial's
   stimulus period, with the trial's correct choice;
2. `preferred_choice`: each unit's preferred choice, the one whose trials drive it more;
3. `same_other_weights`: the mean weight between units that prefer the *same* choice and
   between units that prefer *different* choices, for a chosen pair of populations
   (E -> E, I -> E, ...).

Weights are ``(post, pre)`` as everywhere in `course_lib`: ``W[i, j]`` is the synapse
from unit ``j`` onto unit ``i``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_lib._validate import check_shape
from course_lib.analysis import decision_periods
from course_lib.training import History

NO_PREFERENCE = 0


def trial_stimulus_rates(
    rates: torch.Tensor,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    stimulus_channels: Sequence[int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean rate of every unit during each complete trial's stimulus period.

    ``rates`` ``(T, B, n_units)``, ``inputs`` ``(T, B, n_input)`` and ``targets``
    ``(T, B)`` are a stream of trials per batch column (as `course_lib.tasks.TaskDataset`
    gives them). A trial is complete when the window holds the end of the previous
    trial's decision period and the whole of its own: its stimulus period is then every
    step in between in which a stimulus channel is non-zero.

    Returns ``(trial_rates, choices)``: ``(n_trials, n_units)`` mean rates and
    ``(n_trials,)`` the correct choice of each trial (its target in the decision period).
    """
    check_shape("rates", rates, (targets.shape[0], targets.shape[1], -1))
    check_shape("inputs", inputs, (targets.shape[0], targets.shape[1], -1))
    stimulus_on = (inputs[..., list(stimulus_channels)] != 0).any(dim=-1)
    trial_rates, choices = [], []
    previous_end: dict[int, int] = {}  # column -> last step of its latest decision period
    for column, first, last in decision_periods(targets):
        if column in previous_end:  # the trial started inside the window
            steps = torch.arange(previous_end[column] + 1, first)
            steps = steps[stimulus_on[steps, column]]
            if len(steps) > 0:
                trial_rates.append(rates[steps, column].mean(dim=0))
                choices.append(targets[last, column])
        previous_end[column] = last
    if not trial_rates:
        raise ValueError("no complete trial in the window: use a longer seq_len")
    return torch.stack(trial_rates), torch.stack(choices)


def preferred_choice(
    trial_rates: torch.Tensor, choices: torch.Tensor, choice_a: int = 1, choice_b: int = 2
) -> torch.Tensor:
    """Each unit's preferred choice: ``choice_a`` if its mean rate is higher on the trials
    whose correct choice is ``choice_a`` than on those of ``choice_b``, ``choice_b`` if
    lower, `NO_PREFERENCE` (0) if equal (e.g. a unit that never fires)."""
    check_shape("trial_rates", trial_rates, (choices.shape[0], -1))
    on_a, on_b = choices == choice_a, choices == choice_b
    if not bool(on_a.any()) or not bool(on_b.any()):
        raise ValueError(f"need trials of both choices {choice_a} and {choice_b}")
    difference = trial_rates[on_a].mean(dim=0) - trial_rates[on_b].mean(dim=0)
    preference = torch.full(difference.shape, NO_PREFERENCE, dtype=torch.long)
    preference[difference > 0] = choice_a
    preference[difference < 0] = choice_b
    return preference


def same_other_weights(
    weight: torch.Tensor,
    preference: torch.Tensor,
    pre_units: torch.Tensor,
    post_units: torch.Tensor,
) -> tuple[float, float]:
    """Mean weight from ``pre_units`` onto ``post_units`` (boolean masks over units),
    between units with the **same** preferred choice and with **different** ones.

    Units without a preference are left out, and so are self-connections (``i == j``).
    Silent synapses (weight 0) count: they are part of the wiring.
    """
    n = preference.shape[0]
    check_shape("weight", weight, (n, n))
    has_preference = preference != NO_PREFERENCE
    post = (post_units & has_preference)[:, None]
    pre = (pre_units & has_preference)[None, :]
    pairs = post & pre & ~torch.eye(n, dtype=torch.bool)
    same = preference[:, None] == preference[None, :]
    if not bool((pairs & same).any()) or not bool((pairs & ~same).any()):
        raise ValueError("need pairs of units with the same and with different preferences")
    weight = weight.detach().double()
    return float(weight[pairs & same].mean()), float(weight[pairs & ~same].mean())


def order_by_preference(preference: torch.Tensor, is_excitatory: torch.Tensor) -> torch.Tensor:
    """A permutation of the units for plotting: E units first, then I units; within each,
    those preferring choice 1, then choice 2, then those without a preference."""
    rank = {1: 0, 2: 1, NO_PREFERENCE: 2}
    keys = [(0 if bool(e) else 1, rank.get(int(p), 2), i)
            for i, (p, e) in enumerate(zip(preference, is_excitatory, strict=True))]
    return torch.tensor([key[-1] for key in sorted(keys)])


def plot_learning_bands(histories: dict[str, list[History]], *, axes=None, chance=None):
    """Training loss (left) and accuracy on the training batches (right) over seeds, one
    line and shaded band per condition.

    Accuracy: mean ± SD over seeds. Loss, on a log scale that spans orders of magnitude:
    geometric mean, band ×/÷ one geometric SD (mean ± SD of ``log10(loss)``), so that
    the band is symmetric on the plot and never below zero.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.3))
    for i, (label, runs) in enumerate(histories.items()):
        colour, name = f"C{i}", f"{label} ({len(runs)} seeds)"
        log_loss = np.log10(np.asarray([run.loss for run in runs], dtype=float))
        steps = np.arange(1, log_loss.shape[1] + 1)
        mean, sd = log_loss.mean(axis=0), log_loss.std(axis=0, ddof=1)
        axes[0].plot(steps, 10**mean, color=colour, lw=1, label=name)
        axes[0].fill_between(steps, 10 ** (mean - sd), 10 ** (mean + sd), color=colour,
                             alpha=0.25, lw=0)
        accuracy = np.asarray([run.accuracy for run in runs], dtype=float)
        mean, sd = accuracy.mean(axis=0), accuracy.std(axis=0, ddof=1)
        eval_steps = np.asarray(runs[0].eval_steps)
        axes[1].plot(eval_steps, mean, color=colour, label=name)
        axes[1].fill_between(eval_steps, mean - sd, mean + sd, color=colour, alpha=0.25, lw=0)
    axes[0].set(yscale="log", xlabel="training step", ylabel="loss",
                title="training loss (geometric mean, ×/÷ SD)")
    axes[1].set(xlabel="training step", ylabel="accuracy", ylim=(0, 1),
                title="accuracy on the training batches (mean ± SD)")
    if chance is not None:
        axes[1].axhline(chance, color="grey", ls=":", label="chance")
    axes[1].legend(fontsize="small")
    return axes


__all__ = [
    "NO_PREFERENCE",
    "order_by_preference",
    "plot_learning_bands",
    "preferred_choice",
    "same_other_weights",
    "trial_stimulus_rates",
]
