"""A coursework study, reproduced at small scale: train light-GRUs on neurogym tasks and
look inside them (chapter *Analysing trained networks*).

The study trained three light-GRUs (plain, ENU and EI, see `course_lib.gated_cells`) on
``DualDelayMatchSample-v0`` and ``ContextDecisionMaking-v0`` and analysed them; only its
EI-light-GRU had an L2 rate penalty. The chapter trains every network with and without
the penalty (giving it to all three is a course choice, not the study's), so ``beta_l2``
is an argument of `train_study`. This
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
- `SeedStack`, `make_seed_stack`, `train_seeds`, `seed_runs`: several seeds of one network
  trained at once as one block-diagonal network, exactly as if trained one by one;
- `run_ablated`, `selectivity_scores`, `ablate`: lesions (silenced units) of the most
  selective units against random ones; `answer_selectivity`; `difference_phrase`, a
  sentence that states a difference between seeds only when it exceeds their spread;
- plotting helpers and `unit_explorer`, the chapter's interactive explorer.
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from course_lib import progress as progress_
from course_lib._validate import check_non_negative, check_positive
from course_lib.analysis import PCA, decision_accuracy, max_activation, selectivity_index
from course_lib.connectivity import apply_mask
from course_lib.gated_cells import EILightGRUCell, GatedRNN, make_gated_rnn
from course_lib.regularisers import l2_rates
from course_lib.seeds import clearly_differ, describe
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


def _study_optimiser(parameters, lr: float, lr_final: float | None, n_steps: int,
                     beta_l2: float):
    """The study's optimiser: Adam at ``lr``, decayed exponentially to ``lr_final`` over
    ``n_steps`` (constant if ``lr_final`` is None). Checks the settings first."""
    check_positive("lr", lr)
    check_non_negative("beta_l2", beta_l2)
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    optimizer = torch.optim.Adam(parameters, lr=lr)
    gamma = 1.0 if lr_final is None else decay_factor(lr, lr_final, n_steps)
    return optimizer, torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)


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
    optimizer, schedule = _study_optimiser(model.parameters(), lr, lr_final, n_steps, beta_l2)
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


def single_trial(
    task: str, *, seed: int = 0, env_kwargs: dict | None = None, **conditions
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exactly one trial of ``task``, ``inputs (T, 1, n_input)`` and ``targets (T, 1)``.

    ``conditions`` fix trial variables (e.g. ``ground_truth=1``); the rest are drawn
    from ``seed``. ``env_kwargs`` configure the task (e.g. ``{"use_expl_context": True}``).
    """
    env = make_env(task, **(env_kwargs or {}))
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
    """Histogram of max ``|s|`` over Monte Carlo runs and active units, one line per model."""
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


# --- several seeds trained as one network ---------------------------------------------------


def _layout(key: str, kind: str) -> tuple[int, bool]:
    """How a tensor of a study model is laid out: ``(row groups, per-seed columns)``.

    Rows always belong to units of one seed; ``[W_z; W_h]`` and its batch norm stack two
    groups of rows (one per gate). Columns belong to one seed (recurrent weights, the
    readout, the ENU's block-diagonal gates) or are shared (the task's input channels).
    """
    module = key.split(".")[1] if key.startswith("cell.") else key.split(".")[0]
    if module in ("input", "norm"):
        return 2, module == "input" and kind == "ENULightGRUCell"
    if module == "dendrites":
        return 1, False
    return 1, True  # recurrent_z, recurrent_h, readout


def _stack(tensors: list[torch.Tensor], groups: int, per_seed_columns: bool) -> torch.Tensor:
    if tensors[0].dim() == 0:  # batch norm's step counter: the same for every seed
        return tensors[0].clone()
    stacked = []
    for group in zip(*(t.chunk(groups, dim=0) for t in tensors), strict=True):
        if group[0].dim() == 2 and per_seed_columns:
            stacked.append(torch.block_diag(*group))
        else:
            stacked.append(torch.cat(group))
    return torch.cat(stacked)


def _unstack(tensor: torch.Tensor, seed: int, n_seeds: int, groups: int,
             per_seed_columns: bool) -> torch.Tensor:
    if tensor.dim() == 0:
        return tensor.clone()
    parts = []
    for group in tensor.chunk(groups, dim=0):
        rows = group.shape[0] // n_seeds
        part = group[seed * rows:(seed + 1) * rows]
        if part.dim() == 2 and per_seed_columns:
            columns = part.shape[1] // n_seeds
            part = part[:, seed * columns:(seed + 1) * columns]
        parts.append(part)
    return torch.cat(parts).clone()


def _enu_feedforward_per_seed(cell, n_seeds: int, inputs: torch.Tensor) -> torch.Tensor:
    """A stacked ENU cell's ``[W_z ĥ; W_h ĥ]``, each seed's gates reading its own dendrites."""
    dendrites = torch.relu(cell.dendrites(inputs)).chunk(n_seeds, dim=-1)
    drives = []
    for gate in cell.input.weight.chunk(2):  # W_z rows, then W_h rows, of every seed
        for s, rows in enumerate(gate.chunk(n_seeds, dim=0)):
            drives.append(dendrites[s] @ rows.chunk(n_seeds, dim=1)[s].T)
    return torch.cat(drives, dim=-1)


class SeedStack(nn.Module):
    """Several seeds of one light-GRU trained at once, as one block-diagonal network.

    Seed ``s``'s units are the ``s``-th block of a network ``n_seeds`` times wider; every
    recurrent and readout weight between blocks is masked to zero, and batch norm
    normalises each feature on its own, so the seeds never interact. With the loss summed
    over seeds (`train_seeds`), each block gets exactly its own gradient, and Adam,
    which acts entry by entry, moves it as if it were trained alone (up to float
    rounding). A CPU steps through time once for all seeds, so ``n`` seeds cost much less
    than ``n`` separate trainings.

    ``forward(inputs)`` returns ``outputs (T, B, n_seeds, n_output)`` and
    ``hidden (T, B, n_seeds, n_hidden)``; `seed` gives back one seed as a `GatedRNN`.
    """

    def __init__(self, models: Sequence[GatedRNN]):
        super().__init__()
        if len(models) < 1 or len({type(m.cell) for m in models}) != 1:
            raise ValueError("SeedStack needs at least one model, all with the same cell type")
        first = models[0]
        self.n_seeds, self.n_hidden = len(models), first.n_hidden
        self.n_output = first.readout.out_features
        self._kind = type(first.cell).__name__
        self._template = copy.deepcopy(first)
        kind = {"LightGRUCell": "light_gru", "EILightGRUCell": "ei_light_gru",
                "ENULightGRUCell": "enu_light_gru"}[self._kind]
        extra = {"n_dendrites": first.cell.n_dendrites} if kind == "enu_light_gru" else {}
        self.network = make_gated_rnn(kind, first.cell.n_input, self.n_seeds * self.n_hidden,
                                      self.n_seeds * self.n_output, **extra)
        states = [m.state_dict() for m in models]
        self.network.load_state_dict(
            {key: _stack([s[key] for s in states], *_layout(key, self._kind)) for key in states[0]}
        )
        # zero the weights between seeds in every forward pass (zero gradient too)
        blocks = torch.block_diag(*[torch.ones(self.n_hidden, self.n_hidden)] * self.n_seeds)
        masked = [self.network.cell.recurrent_z]
        if self._kind != "EILightGRUCell":  # the EI cell's sign mask is block-diagonal already
            masked.append(self.network.cell.recurrent_h)
        for module in masked:
            apply_mask(module, blocks)
        apply_mask(self.network.readout,
                   torch.block_diag(*[torch.ones(self.n_output, self.n_hidden)] * self.n_seeds))
        if self._kind == "ENULightGRUCell":
            # the same drive, computed one seed at a time: the block-diagonal product would
            # multiply n_seeds times more zeros than numbers
            cell = self.network.cell
            cell.feedforward = functools.partial(_enu_feedforward_per_seed, cell, self.n_seeds)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs, hidden = self.network(inputs)
        return (outputs.unflatten(-1, (self.n_seeds, self.n_output)),
                hidden.unflatten(-1, (self.n_seeds, self.n_hidden)))

    def seed(self, index: int) -> GatedRNN:
        """A copy of seed ``index`` as a stand-alone `GatedRNN` (same weights and
        batch-norm statistics, same training/eval mode)."""
        big = self.network.state_dict()
        small = {}
        for key in self._template.state_dict():
            masked_key = key.replace(".weight", ".parametrizations.weight.original")
            big_key = key if key in big else masked_key
            small[key] = _unstack(big[big_key], index, self.n_seeds, *_layout(key, self._kind))
        model = copy.deepcopy(self._template)
        model.load_state_dict(small)
        return model.train(self.training)


def make_seed_stack(kind: str, n_input: int, n_hidden: int, n_output: int, *,
                    seeds: Sequence[int], ei_radius: float = 0.8) -> SeedStack:
    """`make_study_model` for each seed in ``seeds``, stacked into one `SeedStack`."""
    return SeedStack([make_study_model(kind, n_input, n_hidden, n_output, seed=s,
                                       ei_radius=ei_radius) for s in seeds])


def train_seeds(
    stack: SeedStack,
    batches: Sequence[Batch],
    *,
    n_steps: int,
    lr: float = 1e-2,
    lr_final: float | None = None,
    beta_l2: float = 0.0,
    class_weight: torch.Tensor | None = None,
    eval_every: int = 25,
) -> list[History]:
    """`train_study` for every seed of ``stack`` at once; one `History` per seed.

    The loss minimised is the sum over seeds of each seed's `train_study` loss (its
    cross-entropy plus ``l2_rates`` of its own units), so each seed's weights get the
    gradient they would get alone.
    """
    optimizer, schedule = _study_optimiser(stack.parameters(), lr, lr_final, n_steps, beta_l2)
    loss_fn = nn.CrossEntropyLoss(weight=class_weight)
    histories = [History() for _ in range(stack.n_seeds)]
    stack.train()
    for step in range(1, n_steps + 1):
        batch = batches[(step - 1) % len(batches)]
        outputs, hidden = stack(batch.inputs)
        losses = [loss_fn(outputs[:, :, s].flatten(0, 1), batch.targets.flatten())
                  for s in range(stack.n_seeds)]
        if beta_l2 > 0:
            losses = [loss + l2_rates(hidden[:, :, s], beta_l2) for s, loss in enumerate(losses)]
        optimizer.zero_grad()
        torch.stack(losses).sum().backward()
        optimizer.step()
        schedule.step()
        for s, history in enumerate(histories):
            history.loss.append(losses[s].item())
            if step % eval_every == 0 or step == n_steps:
                history.accuracy.append(decision_accuracy(outputs[:, :, s].detach(), batch.targets))
                history.eval_steps.append(step)
    return histories


# --- lesions ---------------------------------------------------------------------------------


@torch.no_grad()
def run_ablated(
    model: GatedRNN, inputs: torch.Tensor, silenced: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` (eval mode) with some units silenced: a lesion.

    ``silenced`` is a boolean ``(n_hidden,)`` mask, or ``(B, n_hidden)`` for a different
    lesion in every batch column. A silenced unit's activity is clamped to 0 at every
    step, so it reaches neither the other units nor the readout. Returns
    ``(outputs, hidden)`` like the model.
    """
    was_training = model.training
    model.eval()
    keep = (~silenced.bool()).to(inputs.dtype)
    cell = model.cell
    drives = cell.input_drive(inputs)
    state = cell.initial_state(inputs.shape[1], inputs)
    hidden = []
    with parametrize.cached():
        for drive in drives:
            h, state = cell(drive, state)
            h = h * keep  # the lesion: a silenced unit's activity is 0
            state = (h, *state[1:])
            hidden.append(h)
    model.train(was_training)
    hidden = torch.stack(hidden)
    return model.readout(hidden), hidden


def seed_runs(stack: SeedStack, inputs: torch.Tensor, targets: torch.Tensor) -> list[Run]:
    """Every seed of ``stack`` on the same held-out inputs at once: one `Run` per seed."""
    was_training = stack.training
    stack.eval()
    with torch.no_grad():
        outputs, hidden = stack(inputs)
    stack.train(was_training)
    return [Run(inputs, targets, outputs[:, :, s], hidden[:, :, s]) for s in range(stack.n_seeds)]


def selectivity_scores(
    stack: SeedStack, batches: Sequence[Batch], *, stimulus_channels: slice | list[int]
) -> torch.Tensor:
    """Each unit's mean ``max |s|`` (the larger of the two `CONTRASTS`) over the test
    batches in which it activated, per seed: ``(n_seeds, n_hidden)``; ``-inf`` for a unit
    that never activated, so that it is never ranked among the most selective."""
    per_batch = []
    for batch in batches:
        runs = seed_runs(stack, batch.inputs, batch.targets)
        scores = []
        for run in runs:
            s = unit_selectivity(run, stimulus_channels)
            best = torch.stack([v.abs() for v in s.values()]).max(dim=0).values
            scores.append(torch.where(max_activation(run.hidden) > 0, best, torch.nan))
        per_batch.append(torch.stack(scores))
    mean = torch.stack(per_batch).nanmean(dim=0)
    return torch.nan_to_num(mean, nan=-torch.inf, posinf=1e9)


@dataclass
class Ablation:
    """Held-out accuracy of every seed after a lesion of ``k`` units.

    ``intact`` ``(n_seeds,)``; ``selective`` ``(n_seeds,)``: the ``k`` most selective units
    silenced; ``random`` ``(n_seeds, n_random)``: ``k`` units drawn at random among the
    active ones, one draw per column.
    """

    k: int
    intact: torch.Tensor
    selective: torch.Tensor
    random: torch.Tensor


def ablate(
    stack: SeedStack,
    batch: Batch,
    scores: torch.Tensor,
    k: int,
    *,
    n_random: int = 10,
    seed: int = 0,
) -> Ablation:
    """Silence each seed's ``k`` highest-``scores`` units, or ``k`` random active units
    (``scores > -inf``; ``n_random`` draws), and measure held-out accuracy on ``batch``.

    All lesions run at once: the batch is repeated once per lesion, each copy with its
    own `run_ablated` mask.
    """
    n_seeds, n_hidden = stack.n_seeds, stack.n_hidden
    if scores.shape != (n_seeds, n_hidden):
        raise ValueError(f"scores must be (n_seeds, n_hidden) = {(n_seeds, n_hidden)}")
    generator = torch.Generator().manual_seed(seed)
    lesions = torch.zeros(2 + n_random, n_seeds, n_hidden, dtype=torch.bool)  # intact first
    for s in range(n_seeds):
        active = torch.nonzero(scores[s] > -torch.inf).flatten()
        if len(active) < k:
            raise ValueError(f"seed {s} has {len(active)} active units, fewer than k = {k}")
        lesions[1, s, scores[s].topk(k).indices] = True
        for draw in range(n_random):
            chosen = active[torch.randperm(len(active), generator=generator)[:k]]
            lesions[2 + draw, s, chosen] = True
    width = batch.inputs.shape[1]
    outputs, _ = run_ablated(
        stack.network,
        batch.inputs.repeat(1, len(lesions), 1),
        lesions.flatten(1).repeat_interleave(width, dim=0),
    )
    outputs = outputs.unflatten(-1, (n_seeds, stack.n_output))
    accuracy = torch.tensor(
        [[decision_accuracy(outputs[:, i * width:(i + 1) * width, s], batch.targets)
          for s in range(n_seeds)] for i in range(len(lesions))]
    )
    return Ablation(k, intact=accuracy[0], selective=accuracy[1], random=accuracy[2:].T)


def difference_phrase(
    a: Sequence[float], b: Sequence[float], label_a: str, label_b: str, *, percent: bool = True
) -> str:
    """A phrase comparing two conditions over seeds, for the text: a difference is stated
    only when `seeds.clearly_differ` (the mean ± SD intervals do not overlap). Values are
    fractions shown as percentages, or (``percent=False``) plain numbers."""
    values = (f"{label_a}: {describe(a, percent=percent)}; "
              f"{label_b}: {describe(b, percent=percent)}")
    if not clearly_differ(a, b):
        return f"{label_a} and {label_b} do not clearly differ ({values})"
    higher = "higher" if np.mean(a) > np.mean(b) else "lower"
    return f"{label_a} is clearly {higher} than {label_b} ({values})"


def answer_selectivity(run: Run) -> torch.Tensor:
    """Each unit's selectivity for *acting*: the steps where an answer is due (target not
    "fixate") against the steps of fixation, ``(n_units,)``."""
    answering = run.targets != 0
    return selectivity_index(run.hidden[answering], run.hidden[~answering])


# --- figures of the seed study and the lesions -----------------------------------------------


def plot_seed_curves(histories: dict[str, list[History]], *, ax=None, smooth: int = 10,
                     colours: dict[str, str] | None = None):
    """Training loss of several seeds per condition: mean (line) ± SD over seeds (band),
    each seed's loss first smoothed by a moving average of ``smooth`` steps."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
    lowest = np.inf
    for k, (label, runs) in enumerate(histories.items()):
        width = min(smooth, len(runs[0].loss))
        curves = np.stack([np.convolve(h.loss, np.ones(width) / width, mode="valid")
                           for h in runs])
        mean, sd = curves.mean(axis=0), curves.std(axis=0, ddof=1)
        step = np.arange(len(mean)) + width
        colour = (colours or {}).get(label, f"C{k}")
        ax.plot(step, mean, color=colour, label=label)
        ax.fill_between(step, mean - sd, mean + sd, color=colour, alpha=0.2, lw=0)
        lowest = min(lowest, float(curves.min()))
    ax.set_xlabel("training step")
    ax.set_ylabel(f"loss (moving average of {smooth})")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.5 * lowest)  # a band below zero would stretch the log axis
    return ax


def plot_selective_units(
    run: Run, units: dict[str, int], *, input_labels: list[str], dt: float, column: int = 0
):
    """The inputs of one batch column (top) and, below, the activity of a few chosen units
    (one row each, labelled by what they were chosen for); decision steps are shaded."""
    fig, axes = plt.subplots(
        1 + len(units), 1, sharex=True, figsize=(8, 1.9 + 1.25 * len(units)),
        height_ratios=[1.6] + [1] * len(units), layout="constrained",
    )
    _plot_inputs(axes[0], run.inputs[:, column], input_labels, dt)
    time = np.arange(run.inputs.shape[0]) * dt + dt / 2
    answer = run.targets[:, column].numpy()
    for ax, (label, unit) in zip(axes[1:], units.items(), strict=True):
        ax.plot(time, run.hidden[:, column, unit].numpy(), color="k")
        for t in np.flatnonzero(answer):
            ax.axvspan(t * dt, (t + 1) * dt, color="C1" if answer[t] == 1 else "C3",
                       alpha=0.3, lw=0)
        ax.set_ylabel(f"unit {unit}\n{label}", fontsize="small")
    axes[-1].set_xlim(0, len(time) * dt)
    axes[-1].set_xlabel("time (ms)  (shaded: answer due, choice 1 orange, choice 2 red)")
    return fig


def plot_ablation(ablations: dict[str, list[Ablation]], *, chance: float | None = None):
    """Accuracy after silencing the k most selective units against k random active units,
    one panel per network: mean ± SD over seeds (for random lesions, of each seed's mean
    over draws); grey dots are single random draws."""
    fig, axes = plt.subplots(1, len(ablations), figsize=(3.3 * len(ablations), 3.1),
                             sharey=True, layout="constrained")
    for k, (ax, (name, results)) in enumerate(zip(np.atleast_1d(axes), ablations.items(),
                                                  strict=True)):
        ks = np.array([r.k for r in results])
        intact = results[0].intact.numpy()
        ax.axhline(intact.mean(), color="k", ls="--", lw=1, label="intact (mean)")
        for r in results:
            draws = r.random.flatten().numpy()
            ax.scatter(r.k + 0.15 + np.linspace(-0.08, 0.08, len(draws)), draws, s=4,
                       color="0.7", zorder=1)
        selective = np.stack([r.selective.numpy() for r in results])
        random = np.stack([r.random.mean(dim=1).numpy() for r in results])
        ax.errorbar(ks - 0.15, selective.mean(axis=1), yerr=selective.std(axis=1, ddof=1),
                    fmt="o-", capsize=4, color=_colour(name, k), label="most selective")
        ax.errorbar(ks + 0.15, random.mean(axis=1), yerr=random.std(axis=1, ddof=1),
                    fmt="s:", capsize=4, color="0.35", label="random active")
        if chance is not None:
            ax.axhline(chance, color="grey", ls=":", lw=1)
        ax.set_xticks(ks)
        ax.set_xlabel("units silenced (k)")
        ax.set_title(name, fontsize=10)
    np.atleast_1d(axes)[0].set_ylabel("held-out decision accuracy")
    np.atleast_1d(axes)[0].legend(fontsize="x-small", loc="lower left")
    return fig
