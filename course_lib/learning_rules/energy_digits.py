"""Errors as activity on the digits: predictive coding, Z-IL and equilibrium propagation
against backprop and feedback alignment, from several seeds on the same batches.

Chapter 12's experiment. Every rule trains the same network shape on chapter 06's digits
(`course_lib.learning_rules.feedback_alignment.load_digits_split`, the same split and the
same batch order per seed), from the same initial weights, with the squared error
``||y - y_hat||^2 / 2`` to the one-hot label (the energy's output term) and plain SGD:

- ``"bp"``: backprop through the network of `predictive_coding`,
  ``y_hat = W_2 tanh(W_1 tanh(W_0 tanh(x)))`` (the errors of chapter 06's
  `hidden_errors`, with ``W^T``);
- ``"fa"``: the same network, the error sent down through fixed random ``B``
  (`hidden_errors` with ``"fa"``);
- ``"zil"``: predictive coding on Song et al.'s schedule (`predictive_coding.zil_update`):
  the same updates as backprop, computed by error nodes and inference steps;
- ``"pc"``: Whittington & Bogacz's predictive coding: output clamped to the label (unit
  variances), inference to equilibrium, the local Hebbian update
  (`predictive_coding.pc_update`);
- ``"eqprop"``: equilibrium propagation (`equilibrium_propagation`): a network whose
  state settles in an energy with the same weights used both ways; free phase, then a
  phase nudged toward the label with ``beta``, and the difference of two Hebbian terms.

A constant input unit (the 65th pixel, always 1) gives every first-layer unit a bias. The
seeds train together: every weight has a leading seed dimension and the library's
single-network functions run under ``torch.vmap``; relaxations stop when every seed and
example has settled (`_relaxation.settle`). Seed ``s``'s network starts from
``predictive_coding.init_weights(sizes, seed=s)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.ticker import MaxNLocator

from course_lib._threads import one_thread
from course_lib._validate import check_positive, make_generator
from course_lib.learning_rules import equilibrium_propagation as ep
from course_lib.learning_rules import predictive_coding as pc
from course_lib.learning_rules._relaxation import settle
from course_lib.learning_rules.feedback_alignment import (
    hidden_errors,
    load_digits_split,
    random_feedback,
)

Tensors = list[torch.Tensor]

RULES = ("bp", "fa", "zil", "pc", "eqprop")
NAMES = {
    "bp": "backprop",
    "fa": "feedback alignment",
    "zil": "Z-IL",
    "pc": "predictive coding",
    "eqprop": "equilibrium propagation",
}
COLOURS = {"bp": "black", "fa": "tab:blue", "zil": "tab:green", "pc": "tab:orange",
           "eqprop": "tab:purple"}
HIDDEN = (64,)
N_PIXELS, N_CLASSES = 64, 10

#: The inference settings for training in float32 are Euler steps of 0.2 for predictive
#: coding and 0.5 for EqProp (as in `benchmarks/bench_energy_rules.py`), until no state moves more
#: than ``1e-3`` per unit of time.
PC_RELAX = {"step_size": 0.2, "max_steps": 300, "tol": 1e-3}
EP_RELAX = {"step_size": 0.5, "max_steps": 300, "tol": 1e-3}

#: The SGD learning rate of every rule, from a coarse search on seeds 0-4 (0.1, 0.2, 0.3,
#: 0.5): at 0.5 backprop did worse and FA diverged; at 0.3 and above EqProp's accuracy
#: collapsed to chance and back on some seeds during training.
LEARNING_RATE = 0.2
#: EqProp's nudge while training is Scellier & Bengio's beta = 1, which learned faster
#: than 0.5 in the same search.
BETA = 1.0


# ------------------------------------------------------------------- data and weights


def with_bias_unit(x: torch.Tensor) -> torch.Tensor:
    """The pixels with a constant unit appended (always 1): a bias for the first layer."""
    return torch.cat([x, x.new_ones(*x.shape[:-1], 1)], -1)


@dataclass
class SeedData:
    """Chapter 06's split of the digits for every seed, stacked: ``(seeds, examples, ...)``."""

    x_train: torch.Tensor
    y_train: torch.Tensor  # one-hot
    x_test: torch.Tensor
    labels_test: torch.Tensor


def digits_for_seeds(seeds: Sequence[int]) -> SeedData:
    """Each seed's split (`load_digits_split`, the one of chapter 06), with the bias unit."""
    splits = [load_digits_split(seed=int(s)) for s in seeds]
    x_train, labels_train, x_test, labels_test = (
        torch.stack(parts) for parts in zip(*splits, strict=True))
    return SeedData(with_bias_unit(x_train), F.one_hot(labels_train, N_CLASSES).float(),
                    with_bias_unit(x_test), labels_test)


def network_sizes(hidden: Sequence[int] = HIDDEN) -> tuple[int, ...]:
    """Layer widths from input to output: the 64 pixels and a constant bias unit, ``hidden``,
    the 10 classes."""
    return (N_PIXELS + 1, *hidden, N_CLASSES)


def initial_weights(seeds: Sequence[int], hidden: Sequence[int] = HIDDEN, *,
                    scale: float = 1.0) -> Tensors:
    """``scale * init_weights(sizes, seed=s)`` of every seed, stacked: ``(seeds, post, pre)``."""
    nets = [[scale * w for w in pc.init_weights(network_sizes(hidden), seed=int(s),
                                                dtype=torch.float32)] for s in seeds]
    return [torch.stack(layer) for layer in zip(*nets, strict=True)]


def feedback_matrices(seeds: Sequence[int], hidden: Sequence[int] = HIDDEN) -> Tensors:
    """FA's fixed random ``B`` for every weight above the first, shaped like ``W^T``."""
    sizes = network_sizes(hidden)
    return [torch.stack([random_feedback(sizes[k], sizes[k + 1], seed=10_000 * (int(s) + 1) + k)
                         for s in seeds]) for k in range(1, len(sizes) - 1)]


# ------------------------------------------------------------- one update of each rule


def _mlp_updates(rule: str, x, y, weights: Tensors, feedback: Tensors | None) -> Tensors:
    """Backprop's (``"bp"``) or FA's (``"fa"``) update, every seed at once.

    ``x`` ``(seeds, batch, in)``, ``y`` ``(seeds, batch, out)``; the update is minus the
    gradient of the mean over the batch of ``||y - y_hat||^2 / 2``.
    """
    values = [x]
    for w in weights:
        values.append(torch.tanh(values[-1]) @ w.mT)
    error = (values[-1] - y) / y.shape[1]  # dL/dy_hat of the batch mean
    slopes = [1 - torch.tanh(v) ** 2 for v in values[1:-1]]
    deltas = hidden_errors(rule, error, weights, feedback or [], slopes) + [error]
    return [-(delta.mT @ torch.tanh(v)) for delta, v in zip(deltas, values[:-1], strict=True)]


def _vmapped(function, **options):
    """``function(states, weights, **options)`` for every seed (leading dimension) at once."""
    return torch.vmap(lambda states, weights: function(states, weights, **options))


def pc_updates(x, y, weights: Tensors, *, variances=None, **relax) -> tuple[Tensors, int]:
    """`predictive_coding.pc_update` for every seed: clamp, relax, Hebbian update.

    Returns the updates ``(seeds, post, pre)`` and the inference steps the batch took.
    """
    relax = {**PC_RELAX, **relax}
    values = torch.vmap(pc.feedforward)(x, weights)
    values[-1] = y
    step = _vmapped(pc.inference_step, step_size=relax["step_size"], variances=variances)
    values, steps = settle(lambda v: step(v, weights), values, **relax)
    errors = torch.vmap(lambda v, w: pc.error_nodes(v, w, variances))(values, weights)
    return torch.vmap(pc.hebbian_update)(values, errors), steps


def eqprop_free(x, weights: Tensors, **relax) -> tuple[Tensors, int]:
    """The free fixed point of every seed (`equilibrium_propagation.free_phase`, batched)."""
    relax = {**EP_RELAX, **relax}
    states = [x] + [x.new_zeros(*x.shape[:2], w.shape[1]) for w in weights]
    step = _vmapped(ep.eqprop_step, step_size=relax["step_size"])
    return settle(lambda s: step(s, weights), states, **relax)


def eqprop_updates(x, y, weights: Tensors, *, beta: float = BETA, **relax) -> tuple[Tensors, int]:
    """Free phase, nudged phase, `equilibrium_propagation.eqprop_update`, for every seed
    (`equilibrium_propagation.eqprop_gradient`, batched)."""
    relax = {**EP_RELAX, **relax}
    free, steps = eqprop_free(x, weights, **relax)
    nudge = torch.vmap(lambda s, w, target: ep.eqprop_step(
        s, w, step_size=relax["step_size"], beta=beta, target=target))
    nudged, more = settle(lambda s: nudge(s, weights, y), free, **relax)
    update = torch.vmap(lambda f, n: ep.eqprop_update(f, n, beta))(free, nudged)
    return update, steps + more


def rule_updates(rule: str, x, y, weights: Tensors, feedback: Tensors | None = None,
                 *, beta: float = BETA) -> tuple[Tensors, int]:
    """One update of ``rule`` for every seed, and the inference steps it took."""
    if rule in ("bp", "fa"):
        return _mlp_updates(rule, x, y, weights, feedback if rule == "fa" else None), 0
    if rule == "zil":
        return torch.vmap(pc.zil_update)(x, y, weights), len(weights) - 1
    if rule == "pc":
        return pc_updates(x, y, weights)
    if rule == "eqprop":
        return eqprop_updates(x, y, weights, beta=beta)
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


def predict(rule: str, x, weights: Tensors) -> torch.Tensor:
    """The network's output: the feedforward pass, or EqProp's free fixed point."""
    if rule == "eqprop":
        return eqprop_free(x, weights)[0][-1]
    return torch.vmap(pc.feedforward)(x, weights)[-1]


# ---------------------------------------------------------- what backprop would do


def fixed_point_gradient(x, y, weights: Sequence[torch.Tensor], *, steps: int = 200,
                         **relax) -> Tensors:
    """Minus the gradient of ``mean ||y - s_L||^2 / 2`` at EqProp's free fixed point, for one
    network: recurrent backprop (Almeida-Pineda), the update backprop would give it.

    The free fixed point ``s*`` is found, then ``steps`` more steps of the dynamics are run
    from it (detached) and differentiated by autograd: the dependence of ``s*`` on ``W``
    through ``k`` steps is summed for ``k < steps``, which converges geometrically to the
    implicit derivative of the fixed point when the dynamics contract.
    """
    relax = {**EP_RELAX, **relax}
    free, _ = ep.free_phase(x, weights, **relax)
    params = [w.detach().clone().requires_grad_(True) for w in weights]
    states = [s.detach() for s in free]
    for _ in range(steps):
        states = ep.eqprop_step(states, params, step_size=relax["step_size"])
    loss = ep.cost(states, y).mean()
    return [-g for g in torch.autograd.grad(loss, params)]


def backprop_update(x, y, weights: Sequence[torch.Tensor]) -> Tensors:
    """Minus autograd's gradient of ``mean ||y - y_hat||^2 / 2`` for one network."""
    params = [w.detach().clone().requires_grad_(True) for w in weights]
    loss = 0.5 * ((y - pc.feedforward(x, params)[-1]) ** 2).sum(1).mean()
    return [-g for g in torch.autograd.grad(loss, params)]


def angle(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    """Angle in degrees between two lists of tensors, seen as one long vector each."""
    u = torch.cat([t.detach().flatten().double() for t in a])
    v = torch.cat([t.detach().flatten().double() for t in b])
    cosine = (u @ v / (u.norm() * v.norm())).clamp(-1, 1).item()
    return math.degrees(math.acos(cosine))


def angle_to_backprop(rule: str, x, y, weights: Tensors, feedback: Tensors | None = None,
                      *, beta: float = BETA) -> list[float]:
    """For every seed, the angle between ``rule``'s update and backprop's on its weights.

    Backprop's update is the gradient of the same loss for the same network: the
    feedforward network for BP, FA, Z-IL and PC, the loss at the free fixed point
    (`fixed_point_gradient`) for EqProp's energy network.
    """
    updates, _ = rule_updates(rule, x, y, weights, feedback, beta=beta)
    angles = []
    for m in range(x.shape[0]):
        w = [layer[m].double() for layer in weights]
        xs, ys = x[m].double(), y[m].double()
        truth = fixed_point_gradient(xs, ys, w) if rule == "eqprop" else backprop_update(xs, ys, w)
        angles.append(angle([u[m] for u in updates], truth))
    return angles


# --------------------------------------------------------------------- training


@dataclass
class EnergyRun:
    """What `train_energy_rules` measured; arrays are ``(n_seeds, n_epochs + 1)`` per rule
    (epoch 0 first) unless said otherwise."""

    seeds: tuple[int, ...]
    epochs: list[int]
    test_accuracy: dict[str, np.ndarray]
    angle: dict[str, np.ndarray]  # to backprop's update, degrees, on a fixed training batch
    steps: dict[str, float]  # inference steps per update, mean over training's batches
    weights: dict[str, Tensors]

    def final_accuracy(self, rule: str) -> np.ndarray:
        """Test accuracy of every seed after the last epoch."""
        return self.test_accuracy[rule][:, -1]


def train_energy_rules(
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    *,
    rules: Sequence[str] = RULES,
    epochs: int = 4,
    lr: float = LEARNING_RATE,
    batch_size: int = 32,
    beta: float = BETA,
    hidden: Sequence[int] = HIDDEN,
    n_train: int | None = None,
) -> EnergyRun:
    """Train every rule from every seed, on the same batches, from the same weights.

    Seed ``s`` gets chapter 06's split and batch order (a generator seeded ``s + 1``);
    within a step every rule sees the same examples. ``lr``: the learning rate of every
    rule; ``beta`` is EqProp's nudge; ``n_train``: train on only
    the first ``n_train`` training examples of every seed (default: all). Test
    accuracy is measured after every epoch; the angle of each rule's update to
    backprop's (`angle_to_backprop`) on the first training batch, every epoch.
    """
    check_positive("lr", lr)
    for rule in rules:
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    seeds = tuple(int(s) for s in seeds)
    data = digits_for_seeds(seeds)
    if n_train is not None:
        check_positive("n_train", n_train)
        data.x_train, data.y_train = data.x_train[:, :n_train], data.y_train[:, :n_train]
    feedback = feedback_matrices(seeds, hidden)
    weights = {rule: [w.clone() for w in initial_weights(seeds, hidden)] for rule in rules}
    orders = [make_generator(s + 1) for s in seeds]
    members = torch.arange(len(seeds))[:, None]
    probe_x, probe_y = data.x_train[:, :batch_size], data.y_train[:, :batch_size]
    accuracy = {rule: [] for rule in rules}
    angles = {rule: [] for rule in rules}
    steps = {rule: [] for rule in rules}

    def record():
        for rule in rules:
            guess = predict(rule, data.x_test, weights[rule]).argmax(-1)
            accuracy[rule].append((guess == data.labels_test).double().mean(1).numpy())
            angles[rule].append(angle_to_backprop(rule, probe_x, probe_y, weights[rule],
                                                  feedback, beta=beta))

    with one_thread(), torch.no_grad():
        with torch.enable_grad():
            record()
        for _ in range(epochs):
            order = torch.stack([torch.randperm(data.x_train.shape[1], generator=g)
                                 for g in orders])
            for batch in order.split(batch_size, dim=1):
                x, y = data.x_train[members, batch], data.y_train[members, batch]
                for rule in rules:
                    update, used = rule_updates(rule, x, y, weights[rule], feedback, beta=beta)
                    weights[rule] = [w + lr * u for w, u in zip(weights[rule], update,
                                                                 strict=True)]
                    steps[rule].append(used)
            with torch.enable_grad():
                record()
    return EnergyRun(
        seeds=seeds,
        epochs=list(range(epochs + 1)),
        test_accuracy={rule: np.array(accuracy[rule]).T for rule in rules},
        angle={rule: np.array(angles[rule]).T for rule in rules},
        steps={rule: float(np.mean(steps[rule])) if steps[rule] else 0.0 for rule in rules},
        weights=weights,
    )


# ------------------------------------------------------ how close, and at what cost


def angle_against_nudge(
    seeds: Sequence[int],
    nudges: Sequence[float],
    *,
    batch_size: int = 32,
    hidden: Sequence[int] = HIDDEN,
    init_scale: float = 1.0,
) -> dict[str, np.ndarray]:
    """Angle (degrees) of each rule's update to backprop's as the nudge shrinks,
    ``(n_seeds, n_nudges)`` per rule, on every seed's initial network and first batch.

    ``"pc"``: predictive coding with output variance ``1 / nudge`` (unit variances
    below), whose update over ``nudge`` tends to backprop's; ``"eqprop"``: EqProp with
    ``beta = nudge``, against `fixed_point_gradient`; ``"zil"``: Z-IL, no nudge (one
    angle, repeated). In float64, relaxed to ``tol = 1e-9``.
    """
    data = digits_for_seeds(seeds)
    weights = [w.double() for w in initial_weights(seeds, hidden, scale=init_scale)]
    x, y = data.x_train[:, :batch_size].double(), data.y_train[:, :batch_size].double()
    tight = {"max_steps": 20_000, "tol": 1e-9}
    result = {"pc": [], "eqprop": [], "zil": []}
    for m in range(len(seeds)):
        w, xs, ys = [layer[m] for layer in weights], x[m], y[m]
        truth = backprop_update(xs, ys, w)
        free_truth = fixed_point_gradient(xs, ys, w, steps=400, **tight)
        pc_row, ep_row = [], []
        for nudge in nudges:
            variances = [1.0] * (len(w)) + [1.0 / nudge]
            update, _ = pc.pc_update(xs, ys, w, variances=variances, step_size=0.2, **tight)
            pc_row.append(angle(update, truth))
            update, _ = ep.eqprop_gradient(xs, ys, w, beta=nudge, step_size=0.5, **tight)
            ep_row.append(angle(update, free_truth))
        result["pc"].append(pc_row)
        result["eqprop"].append(ep_row)
        result["zil"].append([angle(pc.zil_update(xs, ys, w), truth)] * len(nudges))
    return {rule: np.array(rows) for rule, rows in result.items()}


def inference_steps(rule: str, x, y, weights: Sequence[torch.Tensor], **relax) -> int:
    """Inference steps one update of ``rule`` takes on one network (the library's own
    count: `predictive_coding.pc_update`, `equilibrium_propagation.eqprop_gradient`)."""
    if rule in ("bp", "fa"):
        return 0
    if rule == "zil":
        return len(weights) - 1
    if rule == "pc":
        return pc.pc_update(x, y, weights, **{**PC_RELAX, **relax})[1]
    if rule == "eqprop":
        return ep.eqprop_gradient(x, y, weights, beta=relax.pop("beta", BETA),
                                  **{**EP_RELAX, **relax})[1]
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


# ------------------------------------------------------------- relaxation, step by step


def pc_energy_trace(x, y, weights: Sequence[torch.Tensor], *, steps: int = 60,
                    step_size: float = 0.2) -> np.ndarray:
    """Predictive coding's energy ``F`` of every example at every inference step,
    ``(steps + 1, batch)``: values start at the feedforward pass, output clamped to ``y``."""
    values = pc.feedforward(x, weights)
    values[-1] = y
    energies = [pc.energy(values, weights)]
    for _ in range(steps):
        values = pc.inference_step(values, weights, step_size=step_size)
        energies.append(pc.energy(values, weights))
    return torch.stack(energies).numpy()


@dataclass
class PhaseTrace:
    """EqProp's states step by step: free phase from zero, then the nudged phase from the
    free fixed point. ``output`` ``(steps + 1, n_out)`` of one example; ``energy`` the
    total ``E + beta C`` (``beta = 0`` in the free phase) of that example."""

    free_output: np.ndarray
    free_energy: np.ndarray
    nudged_output: np.ndarray
    nudged_energy: np.ndarray


def eqprop_phase_trace(x, y, weights: Sequence[torch.Tensor], *, beta: float = BETA,
                       steps: int = 60, step_size: float = 0.5) -> PhaseTrace:
    """Run the two phases of one example (``x`` ``(1, in)``) step by step, recording them."""
    def run(states, nudge):
        outputs, energies = [states[-1][0]], []
        for k in range(steps + 1):
            energies.append((ep.energy(states, weights) + nudge * ep.cost(states, y))[0])
            if k < steps:
                states = ep.eqprop_step(states, weights, step_size=step_size, beta=nudge,
                                        target=y)
                outputs.append(states[-1][0])
        return states, torch.stack(outputs).numpy(), torch.stack(energies).numpy()

    start = [x] + [x.new_zeros(1, w.shape[0]) for w in weights]
    free, free_out, free_energy = run(start, 0.0)
    _, nudged_out, nudged_energy = run(free, beta)
    return PhaseTrace(free_out, free_energy, nudged_out, nudged_energy)


# ------------------------------------------------------------------------ figures


def _band(ax, xs, rows, colour, label):
    mean, sd = rows.mean(0), rows.std(0, ddof=1)
    ax.plot(xs, mean, color=colour, label=label)
    ax.fill_between(xs, mean - sd, mean + sd, color=colour, alpha=0.2, lw=0)


def plot_accuracy(run: EnergyRun, *, axes=None):
    """Left: test accuracy per epoch (mean ± SD over seeds); right: after the last epoch,
    one dot per seed (`course_lib.plotting.plot_seeds`). Returns the figure."""
    from course_lib.plotting import plot_seeds

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), width_ratios=[1.4, 1])
    fig = axes[0].figure
    rules = list(run.test_accuracy)
    for rule in rules:
        _band(axes[0], run.epochs, 100 * run.test_accuracy[rule], COLOURS[rule], NAMES[rule])
    axes[0].axhline(10, color="grey", ls=":", label="chance")
    axes[0].set_xlabel("epoch")
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_title("Learning the digits")
    axes[0].legend(fontsize="small")
    short = {"bp": "BP", "fa": "FA", "zil": "Z-IL", "pc": "PC", "eqprop": "EqProp"}
    plot_seeds({short[r]: 100 * run.final_accuracy(r) for r in rules}, ax=axes[1],
               ylabel="test accuracy (%)", chance=10, title=f"after {run.epochs[-1]} epochs")
    fig.tight_layout()
    return fig


def plot_angles(run: EnergyRun, sweep: dict[str, np.ndarray], nudges: Sequence[float], *,
                axes=None):
    """Left: each rule's angle to backprop's update during training (mean ± SD over
    seeds); right: the angle against the nudge on the initial networks (log-log), with
    Z-IL's at machine precision. Returns the figure."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    fig = axes[0].figure
    for rule in run.angle:
        if rule != "bp":
            _band(axes[0], run.epochs, run.angle[rule], COLOURS[rule], NAMES[rule])
    axes[0].axhline(90, color="grey", ls=":", label="unrelated (90°)")
    axes[0].set_xlabel("epoch")
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("angle to backprop's update (°)")
    axes[0].set_title("During training")
    axes[0].set_ylim(-3, 130)  # room for the legend above the 90° line
    axes[0].set_yticks(range(0, 91, 15))
    axes[0].legend(fontsize="small", loc="upper center", ncol=2)
    for rule in ("pc", "eqprop"):
        rows = sweep[rule]
        axes[1].plot(nudges, rows.T, color=COLOURS[rule], alpha=0.35, lw=1)
        axes[1].plot(nudges, rows.mean(0), "o-", color=COLOURS[rule],
                     label=f"{NAMES[rule]} (mean of {rows.shape[0]} seeds)")
    floor = max(float(sweep["zil"].max()), 1e-8)
    axes[1].axhline(floor, color=COLOURS["zil"], ls="--",
                    label=f"Z-IL: {float(sweep['zil'].max()):.0e}° (rounding)")
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("nudge (PC: 1/output variance; EqProp: β)")
    axes[1].set_ylabel("angle to backprop's update (°)")
    axes[1].set_title("As the nudge shrinks")
    axes[1].legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_relaxation(energies: np.ndarray, trace: PhaseTrace, label: int, *, axes=None):
    """Left: predictive coding's energy falling during inference, one line per example;
    right: EqProp's output states relaxing, free phase then nudged phase, the unit of the
    example's ``label`` drawn thick. Returns the figure."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    fig = axes[0].figure
    steps = np.arange(len(energies))
    axes[0].plot(steps, energies, color=COLOURS["pc"], alpha=0.5, lw=1)
    axes[0].plot(steps, energies.mean(1), color="black", lw=2, label="mean over examples")
    axes[0].set_xlabel("inference step")
    axes[0].set_ylabel("energy F")
    axes[0].set_title("Predictive coding: inference descends F")
    axes[0].legend(fontsize="small")
    n_free = len(trace.free_output)
    free_steps = np.arange(n_free)
    nudged_steps = np.arange(n_free - 1, n_free - 1 + len(trace.nudged_output))
    for unit in range(trace.free_output.shape[1]):
        style = ({"color": COLOURS["eqprop"], "lw": 2.5, "label": "unit of the label"}
                 if unit == label else {"color": "grey", "lw": 1, "alpha": 0.7,
                                        "label": "other units" if unit == (label + 1) % 10
                                        else None})
        axes[1].plot(free_steps, trace.free_output[:, unit], **style)
        axes[1].plot(nudged_steps, trace.nudged_output[:, unit], **{**style, "label": None})
    axes[1].axvline(n_free - 1, color="black", ls=":")
    axes[1].set_xlabel(f"relaxation step (free phase: 0-{n_free - 1}, then nudged)")
    axes[1].set_ylabel("output state")
    axes[1].set_title("EqProp: free, then nudged toward the label")
    axes[1].legend(fontsize="small")
    fig.tight_layout()
    return fig
