"""Brain versus machine: do the course's brain-like constraints help out of distribution?

Chapter 14's experiment. The networks of chapters 00-05 and 09 (unconstrained, sparse,
Dale's law, L1 on weights, L2 on rates, spatially embedded, a subLSTM) are trained on one
distribution of perceptual decisions, on the same batches with the same budget, and then
tested on trials unlike the ones they were trained on (a *distribution shift*):

- a longer delay, or a longer stimulus, than any training trial had;
- lower coherences (harder evidence) than any training trial had;
- extra Gaussian noise on the stimulus inputs;
- a fraction of the units silenced (a lesion: their activity is exactly zero).

The result is each network's accuracy drop from in-distribution to each shift, per seed.
Every network has `N_UNITS` units and no private noise (``noise_std=0``), so the seeds of
one network can train as one batched computation (``torch.vmap``) and a silenced unit
stays exactly silent.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from course_lib._threads import one_thread
from course_lib.analysis import decision_accuracy
from course_lib.connectivity import random_sparse_mask
from course_lib.dale import EIRateRNN
from course_lib.gated_cells import GatedRNN, make_gated_rnn
from course_lib.models import RateRNN, _clip_each_member
from course_lib.regularisers import (
    communicability_penalty,
    distance_matrix,
    grid_positions,
    l1_weights,
    l2_rates,
)
from course_lib.seeds import clearly_differ
from course_lib.tasks import Batch, TaskDataset

TASK, DT, TAU = "PerceptualDecisionMaking-v0", 100, 200
SIDE = 6
N_UNITS = SIDE * SIDE  # every network, so the spatial one fits a 6 x 6 sheet (chapter 5)
# The training distribution: short periods, easy-to-medium evidence.
TRAIN_TIMING = {"fixation": 100, "stimulus": 500, "delay": 200, "decision": 200}
TRAIN_COHERENCES = (12.8, 25.6, 51.2)
STIMULUS_CHANNELS = [1, 2]  # the task's inputs: fixation, then the two stimulus channels


@dataclass(frozen=True)
class Shift:
    """How test trials differ from training trials. The defaults: no difference."""

    timing: dict = field(default_factory=dict)  # periods (ms) that replace TRAIN_TIMING's
    coherences: tuple = TRAIN_COHERENCES
    input_noise: float = 0.0  # SD of Gaussian noise added to every stimulus input
    silenced: float = 0.0  # fraction of hidden units silenced


SHIFTS = {
    "in distribution": Shift(),
    "longer delay": Shift(timing={"delay": 3 * TRAIN_TIMING["delay"]}),
    "longer stimulus": Shift(timing={"stimulus": 3 * TRAIN_TIMING["stimulus"]}),
    "lower coherence": Shift(coherences=(3.2, 6.4)),
    "input noise": Shift(input_noise=0.5),
    "silenced units": Shift(silenced=0.1),
}


def task_kwargs(shift: Shift = Shift()) -> dict:
    """neurogym arguments of `TASK` for ``shift``'s trials (the training ones by default)."""
    return {"dt": DT, "timing": {**TRAIN_TIMING, **shift.timing},
            "cohs": list(shift.coherences)}


def add_input_noise(batch: Batch, channels: Sequence[int], sd: float,
                    generator: torch.Generator) -> Batch:
    """A copy of ``batch`` with N(0, sd²) noise added to the inputs of ``channels`` at
    every time step; the fixation input (the go cue) is left clean."""
    inputs = batch.inputs.clone()
    noise = torch.randn(inputs[..., channels].shape, generator=generator)
    inputs[..., channels] += sd * noise
    return Batch(inputs=inputs, targets=batch.targets)


def _clean_trials(shift: Shift, seed: int, batch_size: int, seq_len: int) -> Batch:
    data = TaskDataset(TASK, batch_size=batch_size, seq_len=seq_len, seed=seed,
                       **task_kwargs(shift))
    return data.next_batch()


def _with_noise(batch: Batch, shift: Shift, seed: int) -> Batch:
    if shift.input_noise == 0:
        return batch
    generator = torch.Generator().manual_seed(seed + 1)
    return add_input_noise(batch, STIMULUS_CHANNELS, shift.input_noise, generator)


def held_out_batch(shift: Shift, *, seed: int = 1234, batch_size: int = 64,
                   seq_len: int = 120) -> Batch:
    """Held-out trials under ``shift`` (silencing acts on the network, not on the trials)."""
    return _with_noise(_clean_trials(shift, seed, batch_size, seq_len), shift, seed)


def held_out_batches(shifts: dict[str, Shift], *, seed: int = 1234, batch_size: int = 64,
                     seq_len: int = 120) -> dict[str, Batch]:
    """`held_out_batch` of every shift; shifts whose trials differ only by added noise or
    silencing share their trials (making trials is slow)."""
    clean, batches = {}, {}
    for name, shift in shifts.items():
        trials = (tuple(sorted(shift.timing.items())), tuple(shift.coherences))
        if trials not in clean:
            clean[trials] = _clean_trials(shift, seed, batch_size, seq_len)
        batches[name] = _with_noise(clean[trials], shift, seed)
    return batches


# --- the networks of chapters 00-05 and 09 -----------------------------------------------


def _rate_rnn(n_input: int, n_output: int, seed: int, **kwargs) -> RateRNN:
    return RateRNN(n_input, N_UNITS, n_output, dt=DT, tau=TAU, seed=seed, **kwargs)


def _no_autapses() -> torch.Tensor:
    return random_sparse_mask(N_UNITS, N_UNITS, 1.0, self_connections=False)


_DISTANCES = distance_matrix(grid_positions((SIDE, SIDE)))


def _build_unconstrained(n_in, n_out, seed):
    return _rate_rnn(n_in, n_out, seed), None


def _build_sparse(n_in, n_out, seed):  # chapter 1: a fixed random mask, 20% of synapses
    mask = random_sparse_mask(N_UNITS, N_UNITS, 0.2, seed=seed, self_connections=False)
    return _rate_rnn(n_in, n_out, seed, mask=mask), None


def _build_dale(n_in, n_out, seed):  # chapter 2: 80% E, 20% I, E/I balanced at the start
    return EIRateRNN(n_in, N_UNITS, n_out, dt=DT, tau=TAU, radius=1.5, seed=seed), None


def _build_l1(n_in, n_out, seed):  # chapter 4: L1 on all three weight matrices
    def penalty(model, rates):
        weights = [model.input.weight, model.recurrent.weight, model.readout.weight]
        return l1_weights(weights, 1e-3)

    return _rate_rnn(n_in, n_out, seed), penalty


def _build_l2(n_in, n_out, seed):  # chapter 4: L2 on the firing rates
    return _rate_rnn(n_in, n_out, seed), lambda model, rates: l2_rates(rates, 1e-2)


def _build_spatial(n_in, n_out, seed):  # chapter 5: seRNN on a 6 x 6 sheet, no autapses
    def penalty(model, rates):
        return communicability_penalty(model.recurrent.weight, _DISTANCES, 6e-3)

    return _rate_rnn(n_in, n_out, seed, mask=_no_autapses()), penalty


def _build_sublstm(n_in, n_out, seed):  # chapter 9: the cortical gated cell
    return make_gated_rnn("sublstm", n_in, N_UNITS, n_out, seed=seed), None


# name -> build(n_input, n_output, seed) -> (network, penalty(model, rates) or None)
NETWORKS: dict[str, Callable] = {
    "unconstrained": _build_unconstrained,
    "sparse": _build_sparse,
    "Dale (E/I)": _build_dale,
    "L1 on weights": _build_l1,
    "L2 on rates": _build_l2,
    "spatial (seRNN)": _build_spatial,
    "subLSTM": _build_sublstm,
}


# --- training several seeds of one network as one batched model -------------------------


class _WithCost(nn.Module):
    """A network and its brain-like cost: ``forward`` returns (outputs, rates, cost), so
    that ``functional_call`` hands the penalty each seed's own weights."""

    def __init__(self, model: nn.Module, penalty: Callable | None):
        super().__init__()
        self.model, self.penalty = model, penalty

    def forward(self, inputs):
        outputs, rates = self.model(inputs)
        cost = outputs.new_zeros(()) if self.penalty is None else self.penalty(self.model, rates)
        return outputs, rates, cost


@one_thread()
def train_stack(models: Sequence[nn.Module], penalty: Callable | None,
                batches: Sequence[Batch], *,
                n_steps: int, lr: float = 1e-2, clip_norm: float = 1.0
                ) -> tuple[list[nn.Module], torch.Tensor]:
    """Train the seeds ``models`` (one architecture) as `course_lib.training.train` trains
    one: AdamW, cross-entropy at every step plus ``penalty``, each seed's gradient clipped
    to ``clip_norm`` on its own, ``batches`` used in order and cycled for ``n_steps``.

    The seeds run as one batched computation: every loss and gradient is a seed's own, so
    each seed ends where it would alone. Returns the trained copies and the losses
    ``(n_steps, n_seeds)``.
    """
    template = _WithCost(copy.deepcopy(models[0]), penalty)
    params, buffers = torch.func.stack_module_state([_WithCost(m, penalty) for m in models])

    def seed_loss(params, buffers, inputs, targets):
        outputs, _, cost = torch.func.functional_call(template, (params, buffers), (inputs,))
        return nn.functional.cross_entropy(outputs.flatten(0, 1), targets.flatten()) + cost

    losses_of_seeds = torch.vmap(seed_loss, in_dims=(0, 0, None, None))
    optimizer = torch.optim.AdamW(params.values(), lr=lr, weight_decay=0.0)  # as train()
    losses = []
    for step in range(n_steps):
        batch = batches[step % len(batches)]
        loss = losses_of_seeds(params, buffers, batch.inputs, batch.targets)
        optimizer.zero_grad()
        loss.sum().backward()  # the sum: each seed's weights get their own gradient
        _clip_each_member(params.values(), clip_norm)
        optimizer.step()
        losses.append(loss.detach())
    trained = []
    for k in range(len(models)):
        model = copy.deepcopy(template)
        model.load_state_dict({name: value[k].detach().clone()
                               for name, value in {**params, **buffers}.items()})
        trained.append(model.model)
    return trained, torch.stack(losses)


# --- silencing units ----------------------------------------------------------------------


def _stored(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """The stored tensor behind ``module.<name>``: the original of a parametrization."""
    if hasattr(module, "parametrizations") and name in module.parametrizations:
        return module.parametrizations[name].original
    return getattr(module, name)


@torch.no_grad()
def silence(model: nn.Module, units: Sequence[int]) -> nn.Module:
    """A copy of ``model`` with ``units`` lesioned: every synapse onto and out of them and
    their biases set to zero. Starting from rest, their activity stays exactly zero (a
    rate unit's current stays 0; a subLSTM unit's gates sit at σ(0) = 1/2, so its cell is
    ``c = c/2 + 1/2 - 1/2 = 0`` and ``h = σ(0) - 1/2 = 0``) and nothing reads them."""
    model = copy.deepcopy(model)
    units = torch.as_tensor(list(units), dtype=torch.long)
    if isinstance(model, GatedRNN):
        cell, n = model.cell, model.n_hidden
        rows = torch.cat([units + gate * n for gate in range(cell.n_gates)])
        tensors_rows = [cell.input.weight, cell.input.bias, cell.recurrent.weight]
        tensors_columns = [cell.recurrent.weight, model.readout.weight]
    else:  # RateRNN and EIRateRNN: the stored weights, under any mask or Dale's signs
        rows = units
        tensors_rows = [_stored(model.input), model.input.bias, _stored(model.recurrent),
                        model.recurrent.bias]
        tensors_columns = [_stored(model.recurrent), _stored(model.readout)]
    for tensor in tensors_rows:
        tensor[rows] = 0.0
    for tensor in tensors_columns:
        tensor[:, units] = 0.0
    return model


def silenced_units(fraction: float, seed: int) -> list[int]:
    """A random ``fraction`` of the `N_UNITS` units, drawn from ``seed`` (each seed its own)."""
    order = torch.randperm(N_UNITS, generator=torch.Generator().manual_seed(10_000 + seed))
    return sorted(order[: round(fraction * N_UNITS)].tolist())


# --- the experiment -----------------------------------------------------------------------


@dataclass
class Result:
    """``accuracy[network][shift]``: held-out accuracy of each seed; ``losses[network]``:
    training losses ``(n_steps, n_seeds)``; ``models[network]``: the trained seeds."""

    seeds: list[int]
    accuracy: dict[str, dict[str, list[float]]]
    losses: dict[str, torch.Tensor]
    models: dict[str, list[nn.Module]] = field(default_factory=dict)

    def drop(self, network: str, shift: str) -> list[float]:
        """In-distribution accuracy minus accuracy under ``shift``, per seed."""
        clean = self.accuracy[network]["in distribution"]
        shifted = self.accuracy[network][shift]
        return [a - b for a, b in zip(clean, shifted, strict=True)]


def compared_with_control(result: Result, network: str, shift: str,
                          control: str = "unconstrained") -> str:
    """``"smaller"`` or ``"larger"`` when ``network``'s drop under ``shift`` differs from the
    control's by more than the spread (`course_lib.seeds.clearly_differ`), else
    ``"within the spread"``."""
    mine, theirs = result.drop(network, shift), result.drop(control, shift)
    if not clearly_differ(mine, theirs):
        return "within the spread"
    return "smaller" if np.mean(mine) < np.mean(theirs) else "larger"


@torch.no_grad()
@one_thread()
def accuracy_under(model: nn.Module, shift: Shift, batch: Batch, seed: int) -> float:
    """Decision accuracy of ``model`` on ``batch`` (already shifted), silenced if asked."""
    if shift.silenced > 0:
        model = silence(model, silenced_units(shift.silenced, seed))
    model.eval()
    outputs, _ = model(batch.inputs)
    return decision_accuracy(outputs, batch.targets)


def brain_vs_machine(seeds: Sequence[int] = range(3), *, n_steps: int = 300,
                     networks: dict | None = None, shifts: dict | None = None,
                     n_batches: int = 100, batch_size: int = 32, seq_len: int = 40) -> Result:
    """Train every network on the same ``n_steps`` batches of the training distribution,
    each seed from its own initial weights, and score it on held-out trials under every
    shift (the same trials for every network)."""
    networks = NETWORKS if networks is None else networks
    shifts = SHIFTS if shifts is None else shifts
    seeds = list(seeds)
    data = TaskDataset(TASK, batch_size=batch_size, seq_len=seq_len, seed=0, **task_kwargs())
    batches = [data.next_batch() for _ in range(n_batches)]
    tests = held_out_batches(shifts)
    accuracy, losses, trained = {}, {}, {}
    for name, build in networks.items():
        built = [build(data.n_input, data.n_output, seed) for seed in seeds]
        models, penalty = [model for model, _ in built], built[0][1]
        trained[name], losses[name] = train_stack(models, penalty, batches, n_steps=n_steps)
        accuracy[name] = {
            shift_name: [accuracy_under(model, shift, tests[shift_name], seed)
                         for model, seed in zip(trained[name], seeds, strict=True)]
            for shift_name, shift in shifts.items()}
    return Result(seeds, accuracy, losses, trained)


def silencing_accuracy(result: Result, fraction: float, batch: Batch) -> dict[str, list[float]]:
    """Accuracy of every trained seed on ``batch`` with ``fraction`` of its units silenced
    (each seed its own `silenced_units`)."""
    shift = Shift(silenced=fraction)
    return {name: [accuracy_under(model, shift, batch, seed)
                   for model, seed in zip(models, result.seeds, strict=True)]
            for name, models in result.models.items()}


# --- figures ------------------------------------------------------------------------------


def plot_drops(result: Result, *, shifts: Sequence[str] | None = None):
    """One panel per shift: each network's accuracy drop (percentage points), one dot
    per seed and the mean ± SD."""
    import matplotlib.pyplot as plt

    shifts = [s for s in SHIFTS if s != "in distribution"] if shifts is None else shifts
    names = list(result.accuracy)
    fig, axes = plt.subplots(len(shifts), 1, figsize=(6.4, 1.9 * len(shifts)), sharex=True)
    rng = np.random.default_rng(0)  # vertical jitter only
    for ax, shift in zip(np.atleast_1d(axes), shifts, strict=True):
        for i, name in enumerate(names):
            drops = 100 * np.array(result.drop(name, shift))
            ax.scatter(drops, i + rng.uniform(-0.15, 0.15, len(drops)), s=12, color="0.55",
                       zorder=2)
            ax.errorbar(drops.mean(), i, xerr=drops.std(ddof=1), fmt="o", color="C0",
                        capsize=4, markersize=6, zorder=3)
        ax.axvline(0, color="grey", ls=":")
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(len(names) - 0.5, -0.5)
        ax.set_title(shift, loc="left")
    np.atleast_1d(axes)[-1].set_xlabel("accuracy drop from in distribution (percentage points)")
    fig.tight_layout()
    return fig


def plot_accuracy(accuracy: dict[str, list[float]], *, title: str = "in distribution"):
    """Held-out accuracy per network (``accuracy[network]``: one value per seed), one dot
    per seed and mean ± SD, in percent, with chance (50%)."""
    import matplotlib.pyplot as plt

    from course_lib.plotting import plot_seeds

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    plot_seeds({name: 100 * np.array(values) for name, values in accuracy.items()},
               ax=ax, ylabel="held-out accuracy (%)", chance=50, title=title)
    ax.set_ylim(-3, 103)
    fig.tight_layout()
    return fig
