"""A coursework study, reproduced at small scale: train light-GRUs on neurogym tasks and
look inside them (chapter *Analysing trained networks*).

The study trained three light-GRUs (plain, ENU and EI, see `course_lib.gated_cells`) on
``DualDelayMatchSample-v0`` and ``ContextDecisionMaking-v0`` and analysed them; only its
EI-light-GRU had an L2 rate penalty. The chapter gives the penalty to all three (a
course choice, not the study's), so ``beta_l2`` is an argument of `train_study`. This
module holds what the chapter needs beyond `course_lib.training` and
`course_lib.analysis`:

- `make_study_model`: a seeded gated network, with the EI cell's recurrent candidate
  weights rescaled to a chosen spectral radius at initialisation;
- `train_study`: Adam with an exponentially decaying learning rate, an optional
  class-weighted cross-entropy (`class_weights`) and an L2 rate penalty, on a
  `TaskDataset` or on `fixed_batches` shared by several models;
- `run_model`, `held_out_run`, `single_trial`: activity on held-out data, in eval mode;
- `unit_selectivity`, `monte_carlo_selectivity`: per-unit selectivity for two contrasts,
  "stimulus on vs off" and "accept vs reject" (target action 1 vs action 2), on one
  test batch or on many (`MonteCarloSelectivity`);
- plotting helpers and `unit_explorer`, the chapter's interactive explorer.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from course_lib import progress as progress_
from course_lib._validate import check_non_negative, check_positive
from course_lib.analysis import PCA, decision_accuracy, max_activation, selectivity_index
from course_lib.gated_cells import EILightGRUCell, GatedRNN, make_gated_rnn
from course_lib.regularisers import l2_rates
from course_lib.tasks import Batch, TaskDataset, make_env
from course_lib.training import History

CONTRASTS = ("stimulus on vs off", "accept vs reject")

# --- models ------------------------------------------------------------------------------


def spectral_radius(weight: torch.Tensor) -> float:
    """Largest eigenvalue modulus of a square matrix."""
    return float(torch.linalg.eigvals(weight.detach().double()).abs().max())


def set_recurrent_radius(model: GatedRNN, radius: float) -> float:
    """Rescale an EI cell's recurrent candidate weights ``U_h ⊙ U_rec`` to ``radius``.

    The magnitudes are trained under a rectification (``relu(U_h) ⊙ U_rec``), so scaling
    the stored magnitudes by a positive factor scales the effective matrix by the same
    factor and keeps every sign. With 80% excitatory units and inhibitory columns made
    stronger to balance them, the random part of the matrix can start with a spectral
    radius well above 1, and non-negative ReLU activity then grows along the trial;
    starting below 1 lets the network learn. Returns the radius before rescaling.
    """
    check_positive("radius", radius)
    cell = model.cell
    if not isinstance(cell, EILightGRUCell):
        raise ValueError(f"set_recurrent_radius needs an EI light-GRU, got {type(cell).__name__}")
    before = spectral_radius(cell.recurrent_h.weight)
    with torch.no_grad():
        cell.recurrent_h.parametrizations.weight.original.mul_(radius / before)
    return before


def make_study_model(
    kind: str,
    n_input: int,
    n_hidden: int,
    n_output: int,
    *,
    seed: int = 0,
    ei_radius: float = 0.8,
) -> GatedRNN:
    """A seeded `GatedRNN` (``"light_gru"``, ``"enu_light_gru"``, ``"ei_light_gru"``, ...);
    an EI cell starts with its recurrent candidate weights at spectral radius ``ei_radius``."""
    model = make_gated_rnn(kind, n_input, n_hidden, n_output, seed=seed)
    if isinstance(model.cell, EILightGRUCell):
        set_recurrent_radius(model, ei_radius)
    return model


# --- training ----------------------------------------------------------------------------


def class_weights(targets: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Balanced class weights ``N / (n_classes * count_c)`` from a tensor of targets.

    In ``ContextDecisionMaking-v0`` the answer takes one step per trial and the network
    fixates on all the others: unweighted, a network that always fixates is right on
    ~95% of the steps. Weighting each class by its inverse frequency gives every class the
    same total weight ``N / n_classes``: the steps of each choice count as much, in total,
    as all the fixation steps, so with two choices the decision steps together count twice
    as much as the fixation steps. A class that never occurs gets weight 0.
    """
    counts = torch.bincount(targets.flatten(), minlength=n_classes).double()
    weights = torch.where(counts > 0, counts.sum() / (n_classes * counts.clamp_min(1)), 0.0)
    return weights.float()


def fixed_batches(data: TaskDataset, n_batches: int) -> list[Batch]:
    """``n_batches`` batches drawn once from ``data``: train several models on exactly the
    same trials (a fair comparison, and neurogym builds the trials only once)."""
    return [data.next_batch() for _ in range(n_batches)]


def decay_factor(lr: float, lr_final: float, n_steps: int) -> float:
    """Per-step factor ``gamma`` of an exponential decay from ``lr`` to ``lr_final`` in
    ``n_steps`` steps: ``lr * gamma ** n_steps == lr_final``."""
    check_positive("lr", lr)
    check_positive("lr_final", lr_final)
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    return (lr_final / lr) ** (1 / n_steps)


def train_study(
    model: nn.Module,
    data: TaskDataset | Sequence[Batch],
    *,
    n_steps: int,
    lr: float = 1e-2,
    lr_final: float | None = None,
    beta_l2: float = 0.0,
    class_weight: torch.Tensor | None = None,
    eval_every: int = 25,
    progress: bool | None = None,
) -> History:
    """Train with Adam as in the study: cross-entropy at every step (optionally weighted
    per class), plus ``l2_rates(hidden, beta_l2)``; the learning rate decays exponentially
    from ``lr`` to ``lr_final`` over ``n_steps`` (constant if ``lr_final`` is None).

    ``data`` is a `TaskDataset` or a sequence of batches (see `fixed_batches`), used in
    order and cycled if ``n_steps`` is longer. Returns a `History` like
    `course_lib.training.train` (loss includes the penalty; accuracy per trial on the
    training batch, every ``eval_every`` steps). ``progress``: see `course_lib.progress`.
    """
    check_positive("lr", lr)
    check_non_negative("beta_l2", beta_l2)
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    gamma = 1.0 if lr_final is None else decay_factor(lr, lr_final, n_steps)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
    loss_fn = nn.CrossEntropyLoss(weight=class_weight)
    history = History()
    model.train()
    for step in progress_.steps(range(1, n_steps + 1), desc="training", progress=progress):
        if isinstance(data, TaskDataset):
            batch = data.next_batch()
        else:
            batch = data[(step - 1) % len(data)]
        outputs, hidden = model(batch.inputs)
        loss = loss_fn(outputs.flatten(0, 1), batch.targets.flatten())
        if beta_l2 > 0:
            loss = loss + l2_rates(hidden, beta_l2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        history.loss.append(loss.item())
        if step % eval_every == 0 or step == n_steps:
            history.accuracy.append(decision_accuracy(outputs.detach(), batch.targets))
            history.eval_steps.append(step)
    progress_.report(
        f"After {n_steps} training steps the network chooses correctly on "
        f"{history.accuracy[-1]:.0%} of the trials of its last batch.",
        progress=progress,
    )
    return history


# --- activity on held-out data -------------------------------------------------------------


@dataclass
class Run:
    """A model's activity on held-out inputs, time first: inputs ``(T, B, n_input)``,
    targets ``(T, B)``, outputs ``(T, B, n_output)``, hidden ``(T, B, n_hidden)``."""

    inputs: torch.Tensor
    targets: torch.Tensor
    outputs: torch.Tensor
    hidden: torch.Tensor

    @property
    def choices(self) -> torch.Tensor:
        """The network's action at every step, ``(T, B)``."""
        return self.outputs.argmax(dim=-1)

    def accuracy(self) -> float:
        return decision_accuracy(self.outputs, self.targets)


@torch.no_grad()
def run_model(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> Run:
    """Run ``model`` in eval mode (batch norm uses its running statistics) from rest."""
    was_training = model.training
    model.eval()
    outputs, hidden = model(inputs)
    model.train(was_training)
    return Run(inputs, targets, outputs, hidden)


def held_out_run(
    model: nn.Module, task: str, *, batch_size: int = 32, seq_len: int = 80, seed: int = 1234
) -> Run:
    """One held-out batch of ``task`` (seeded, different from the training seeds)."""
    batch = TaskDataset(task, batch_size=batch_size, seq_len=seq_len, seed=seed).next_batch()
    return run_model(model, batch.inputs, batch.targets)


def single_trial(task: str, *, seed: int = 0, **conditions) -> tuple[torch.Tensor, torch.Tensor]:
    """Exactly one trial of ``task``, ``inputs (T, 1, n_input)`` and ``targets (T, 1)``.

    ``conditions`` fix trial variables (e.g. ``ground_truth=1``); the rest are drawn
    from ``seed``.
    """
    env = make_env(task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env.seed(seed)
        env.new_trial(**conditions)
    inputs = torch.as_tensor(np.asarray(env.ob), dtype=torch.float32)[:, None, :]
    targets = torch.as_tensor(np.asarray(env.gt), dtype=torch.long)[:, None]
    return inputs, targets


# --- single units ------------------------------------------------------------------------


def condition_masks(
    inputs: torch.Tensor, targets: torch.Tensor, stimulus_channels: slice | list[int]
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Boolean ``(T, B)`` masks of the two conditions of each contrast in `CONTRASTS`:
    a stimulus channel is non-zero vs all are zero; target 1 ("accept": match, or
    choice 1) vs target 2 ("reject": non-match, or choice 2)."""
    stimulus = (inputs[..., stimulus_channels] != 0).any(dim=-1)
    return {
        CONTRASTS[0]: (stimulus, ~stimulus),
        CONTRASTS[1]: (targets == 1, targets == 2),
    }


def unit_selectivity(run: Run, stimulus_channels: slice | list[int]) -> dict[str, torch.Tensor]:
    """Each unit's selectivity index (`analysis.selectivity_index`) for each contrast."""
    masks = condition_masks(run.inputs, run.targets, stimulus_channels)
    return {name: selectivity_index(run.hidden[a], run.hidden[b]) for name, (a, b) in masks.items()}


@dataclass
class MonteCarloSelectivity:
    """Selectivity of every unit on several test runs (Monte Carlo).

    ``abs_s[contrast]`` is ``|s|`` per run and unit, ``(n_runs, n_units)``; ``active`` is
    whether the unit activated at all (``max_activation > 0``) in that run. Inactive units
    have ``s = 0`` by convention, not by measurement: drop them before counting.
    """

    abs_s: dict[str, torch.Tensor]
    active: torch.Tensor

    @property
    def max_abs(self) -> torch.Tensor:
        """``max(|s|)`` over the contrasts, ``(n_runs, n_units)``."""
        return torch.stack(list(self.abs_s.values())).max(dim=0).values

    def fraction_above(self, threshold: float = 1.0, contrast: str | None = None) -> float:
        """Share of (run, active unit) pairs whose ``|s|`` exceeds ``threshold``, for one
        contrast or (``None``) for the maximum over contrasts."""
        values = self.max_abs if contrast is None else self.abs_s[contrast]
        return float((values[self.active] > threshold).double().mean())

    def most_selective_unit(self) -> int:
        """The unit with the largest mean ``max |s|`` over the runs in which it was active."""
        score = torch.where(self.active, self.max_abs, torch.nan).nanmean(dim=0)
        return int(torch.nan_to_num(score, nan=-1.0, posinf=1e9).argmax())

    def least_selective_unit(self) -> int:
        """The active unit with the smallest mean ``max |s|``."""
        score = torch.where(self.active, self.max_abs, torch.nan).nanmean(dim=0)
        return int(torch.nan_to_num(score, nan=float("inf")).argmin())


def monte_carlo_selectivity(
    model: nn.Module, batches: Sequence[Batch], *, stimulus_channels: slice | list[int]
) -> MonteCarloSelectivity:
    """`unit_selectivity` of ``model`` on each test batch, one batch per Monte Carlo run."""
    abs_s: dict[str, list[torch.Tensor]] = {name: [] for name in CONTRASTS}
    active = []
    for batch in batches:
        run = run_model(model, batch.inputs, batch.targets)
        for name, values in unit_selectivity(run, stimulus_channels).items():
            abs_s[name].append(values.abs())
        active.append(max_activation(run.hidden) > 0)
    return MonteCarloSelectivity(
        abs_s={name: torch.stack(values) for name, values in abs_s.items()},
        active=torch.stack(active),
    )


# --- figures -------------------------------------------------------------------------------

COLOURS = {"light-GRU": "C0", "ENU-light-GRU": "C1", "EI-light-GRU": "C2"}


def _colour(name: str, index: int) -> str:
    return COLOURS.get(name, f"C{index}")


def _plot_inputs(ax, inputs: torch.Tensor, labels: list[str], dt: float) -> None:
    """``(T, n_input)`` inputs as an image, one row per channel, time in ms."""
    x = inputs.numpy().T
    limit = max(float(np.abs(x).max()), 1e-6)
    ax.imshow(
        x,
        aspect="auto",
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
        extent=(0, x.shape[1] * dt, len(labels) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(labels)), labels, fontsize="small")
    ax.set_ylabel("input")


def plot_predictions(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    runs: dict[str, Run],
    *,
    input_labels: list[str],
    action_labels: list[str],
    dt: float,
    column: int = 0,
):
    """One trial: the inputs (top), then the target and each model's choice over time."""
    fig, axes = plt.subplots(
        2, 1, sharex=True, figsize=(8, 4.6), height_ratios=[1.2, 1], layout="constrained"
    )
    _plot_inputs(axes[0], inputs[:, column], input_labels, dt)
    time = np.arange(inputs.shape[0] + 1) * dt
    target = targets[:, column].numpy()
    axes[1].stairs(target, time, color="k", lw=4, alpha=0.25, label="target", baseline=None)
    for k, (name, run) in enumerate(runs.items()):
        offset = 0.08 * (k - (len(runs) - 1) / 2)
        axes[1].stairs(
            run.choices[:, column].numpy() + offset,
            time,
            lw=1.3,
            color=_colour(name, k),
            label=name,
            baseline=None,
        )
    axes[1].set_yticks(range(len(action_labels)), action_labels)
    axes[1].set_ylabel("action")
    axes[1].set_xlabel("time (ms)")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return fig


def plot_learning_curves(histories: dict[str, History], *, title: str = "", smooth: int = 10):
    """Training loss (moving average) and per-trial accuracy of several models."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    for k, (name, history) in enumerate(histories.items()):
        loss = np.asarray(history.loss)
        width = min(smooth, len(loss))
        axes[0].plot(
            np.convolve(loss, np.ones(width) / width, mode="valid"),
            color=_colour(name, k),
            label=name,
        )
        axes[1].plot(
            history.eval_steps, history.accuracy, "o-", ms=3, color=_colour(name, k), label=name
        )
    axes[0].set_xlabel("training step")
    axes[0].set_ylabel(f"loss (moving average of {smooth})")
    axes[0].set_yscale("log")
    axes[1].set_xlabel("training step")
    axes[1].set_ylabel("decision accuracy (training batch)")
    axes[1].set_ylim(0, 1.02)
    axes[1].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def plot_max_activation(maxima: dict[str, torch.Tensor]):
    """Stem plot of each unit's maximum activation, one panel per model."""
    fig, axes = plt.subplots(
        1, len(maxima), figsize=(3.2 * len(maxima), 2.8), sharey=True, layout="constrained"
    )
    for k, (ax, (name, values)) in enumerate(zip(np.atleast_1d(axes), maxima.items(), strict=True)):
        ax.stem(
            np.arange(len(values)),
            values.numpy(),
            linefmt=_colour(name, k),
            markerfmt="o",
            basefmt="k-",
        )
        silent = int((values <= 0).sum())
        ax.set_title(f"{name}\n{silent} silent unit{'s' if silent != 1 else ''}", fontsize=10)
        ax.set_xlabel("unit")
    np.atleast_1d(axes)[0].set_ylabel("maximum activation")
    return fig


def plot_selectivity(selectivities: dict[str, dict[str, torch.Tensor]]):
    """Per-unit selectivity for each contrast (rows) and model (columns)."""
    models = list(selectivities)
    fig, axes = plt.subplots(
        len(CONTRASTS),
        len(models),
        figsize=(3.2 * len(models), 4.8),
        sharey="row",
        squeeze=False,
        layout="constrained",
    )
    for j, name in enumerate(models):
        for i, contrast in enumerate(CONTRASTS):
            values = selectivities[name][contrast].numpy()
            ax = axes[i, j]
            ax.bar(np.arange(len(values)), np.clip(values, -10, 10), color=_colour(name, j))
            ax.axhline(0, color="k", lw=0.6)
            if i == 0:
                ax.set_title(name, fontsize=10)
            if j == 0:
                ax.set_ylabel(f"s: {contrast}", fontsize=9)
        axes[-1, j].set_xlabel("unit")
    return fig


def plot_selectivity_histogram(
    monte_carlo: dict[str, MonteCarloSelectivity], *, threshold: float = 1.0
):
    """Histogram of max |s| over Monte Carlo runs and active units, one line per model."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
    values = {name: mc.max_abs[mc.active].clamp(max=10).numpy() for name, mc in monte_carlo.items()}
    top = max((float(v.max()) for v in values.values() if len(v)), default=1.0)
    bins = np.linspace(0, max(top, threshold) * 1.02, 25)
    for k, (name, v) in enumerate(values.items()):
        ax.hist(
            v,
            bins=bins,
            histtype="step",
            lw=1.8,
            density=True,
            color=_colour(name, k),
            label=f"{name} ({(v < threshold).mean():.0%} below {threshold:g})",
        )
    ax.axvline(threshold, color="grey", ls=":")
    ax.set_xlabel("maximum |selectivity| of an active unit in one test run (clipped at 10)")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    return fig


def plot_unit_activity(
    run: Run,
    unit: int,
    *,
    input_labels: list[str],
    dt: float,
    column: int = 0,
    title: str = "",
    axes=None,
):
    """One unit's activity over a trial (bottom) under the inputs (top); the steps where
    the answer is action 1 or action 2 are shaded."""
    if axes is None:
        _, axes = plt.subplots(
            2, 1, sharex=True, figsize=(8, 3.8), height_ratios=[1, 1], layout="constrained"
        )
    _plot_inputs(axes[0], run.inputs[:, column], input_labels, dt)
    time = np.arange(run.inputs.shape[0]) * dt + dt / 2  # activity at the middle of a step
    activity = run.hidden[:, column, unit].numpy()
    axes[1].plot(time, activity, color="k")
    answer = run.targets[:, column].numpy()
    for t in np.flatnonzero(answer):
        axes[1].axvspan(
            t * dt, (t + 1) * dt, color="C1" if answer[t] == 1 else "C3", alpha=0.15, lw=0
        )
    axes[1].set_xlim(0, len(activity) * dt)
    axes[1].set_ylabel(f"unit {unit}")
    axes[1].set_xlabel("time (ms)  (shaded: answer is action 1 orange, action 2 red)")
    if title:
        axes[0].set_title(title)
    return axes


def plot_pca_trajectories(
    pca: PCA, trials: list[tuple[torch.Tensor, str]], *, title: str = "", ax=None
):
    """Single-trial trajectories ``(T, n_units)`` in the fitted PCA axes (2-D or 3-D), one
    colour per label; a circle marks the start of each trial, a cross its end."""
    k = pca.components.shape[0]
    if k not in (2, 3):
        raise ValueError(f"plot 2 or 3 components, got {k}")
    if ax is None:
        fig = plt.figure(figsize=(5.2, 4.4), layout="constrained")
        ax = fig.add_subplot(projection="3d" if k == 3 else None)
    colours: dict[str, str] = {}
    for hidden, label in trials:
        xyz = pca.project(hidden).numpy()
        first = label not in colours
        colour = colours.setdefault(label, f"C{len(colours)}")
        ax.plot(*xyz.T, color=colour, lw=1.2, alpha=0.8, label=label if first else None)
        ax.scatter(*xyz[0], color=colour, marker="o", s=18)
        ax.scatter(*xyz[-1], color=colour, marker="x", s=28)
    ratio = pca.explained_variance_ratio.numpy()
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%})")
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%})")
    if k == 3:
        ax.set_zlabel(f"PC3 ({ratio[2]:.0%})")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


# --- the chapter's explorer ------------------------------------------------------------------


def draw_unit_view(
    run: Run,
    selectivity: dict[str, torch.Tensor],
    unit: int,
    *,
    input_labels: list[str],
    dt: float,
    column: int = 0,
    model_name: str = "",
):
    """One unit on one trial (under the inputs), titled with its selectivity indices."""
    values = ", ".join(f"{name}: s = {float(selectivity[name][unit]):.2f}" for name in CONTRASTS)
    fig, axes = plt.subplots(
        2, 1, sharex=True, figsize=(8, 3.8), height_ratios=[1, 1], layout="constrained"
    )
    plot_unit_activity(run, unit, input_labels=input_labels, dt=dt, column=column, axes=axes)
    axes[0].set_title(f"{model_name} unit {unit}   ({values})", fontsize=10)
    return fig


def unit_explorer(
    runs: dict[str, Run],
    selectivities: dict[str, dict[str, torch.Tensor]],
    *,
    input_labels: list[str],
    dt: float,
):
    """Choose a model, a unit and a trial: its activity against the input and its
    selectivity indices (ipywidgets)."""
    import ipywidgets as widgets

    first = next(iter(runs.values()))

    def show(model: str, unit: int = 0, trial: int = 0):
        run = runs[model]
        draw_unit_view(
            run,
            selectivities[model],
            min(unit, run.hidden.shape[-1] - 1),
            input_labels=input_labels,
            dt=dt,
            column=min(trial, run.hidden.shape[1] - 1),
            model_name=model,
        )
        plt.show()

    return widgets.interactive(
        show,
        model=widgets.Dropdown(options=list(runs), description="model"),
        unit=widgets.IntSlider(value=0, min=0, max=first.hidden.shape[-1] - 1, description="unit"),
        trial=widgets.IntSlider(value=0, min=0, max=first.hidden.shape[1] - 1, description="trial"),
    )
