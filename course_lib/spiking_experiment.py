"""Chapter 13's experiments: spiking networks trained by surrogate-gradient BPTT and by
e-prop on a decision task, the price of a spike, and Dale's law and sparsity carried over.

**The task.** neurogym's perceptual decision making (`course_lib.tasks.make_env`, with the
go cue: the fixation input stays on until the answer is due): two noisy evidence inputs
for 600 ms, then the fixation input goes off and the network must answer for 200 ms.
Trials are whole and aligned (`course_lib.learning_rules.miconi.trials_batch`): inputs
``(T, B, 3)`` enter as *currents*; targets ``(T, B, 1)`` are 0 before the go cue, then
+1 for option 1 and -1 for option 2. A trial's choice is the sign of the readout's mean
during the answer (`course_lib.learning_rules.miconi.decision_accuracy`).

**The networks.** `course_lib.spiking.SpikingRNN`: 64 LIF units, steps of ``dt = 20`` ms,
membrane and readout time constants 20 ms. Several seeds (and several penalty strengths)
are trained at once as an *ensemble*: their weights are stacked along a first dimension
and `simulate_ensemble` runs them together, step by step with the library's `lif_step`.
Each member computes exactly what its own `SpikingRNN` computes (the tests check it), and
Adam's update is entry by entry, so each member trains as it would alone; together they
cost little more than one, because the time loop's Python overhead is shared.

**e-prop** (`course_lib.learning_rules.eprop.eprop_trial`) runs one network at a time: it
is online, with no graph to batch. Its settings (`EPROP_LR`, `FEEDBACK_SCALE`) come from a
small search on seeds and trials the chapter does not use (`tune_eprop`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.nn.utils import parametrize

from course_lib._threads import one_thread
from course_lib.connectivity import Mask, random_sparse_mask
from course_lib.dale import DaleWeight, balanced_dale_init, dale_signs, dale_weight
from course_lib.learning_rules.eprop import apply_eprop_gradients, eprop_trial
from course_lib.learning_rules.miconi import decision_accuracy, response_period, trials_batch
from course_lib.spiking import SpikingRNN, lif_step, spikes_per_trial, task_loss
from course_lib.tasks import make_env

Tensor = torch.Tensor

TASK = "PerceptualDecisionMaking-v0"
#: Fixed periods in ms, so that every trial has the same length (50 steps of ``DT``).
TIMING = {"fixation": 200, "stimulus": 600, "decision": 200}
DT = 20.0
#: The network of every experiment (`course_lib.spiking.SpikingRNN`'s arguments). The input
#: gain makes the fixation input alone drive the units to fire (a current of about 3 x the
#: threshold at one standard deviation).
NETWORK = {"n_hidden": 64, "dt": DT, "tau_m": 20.0, "tau_out": 20.0, "input_gain": 3.0}
BPTT_LR = 1e-2
#: e-prop's learning rate, from `tune_eprop` (mean validation accuracy of seeds 100-102
#: after 200 steps: lr 1e-3: 61 %, 2e-3: 71 %, 3e-3: 73 %, 5e-3: 76 %, 1e-2: 72 %).
EPROP_LR = 5e-3
#: The scale of e-prop's random feedback B. Under Adam it hardly matters, since scaling B
#: scales every gradient of W_in and W_rec alike, and Adam divides each step by the gradients' size.
FEEDBACK_SCALE = 1.0
#: Dale's law in the constrained network: 80 % excitatory units (Song et al. 2016), and a
#: sparse recurrent mask with half of the synapses.
EXCITATORY_FRACTION = 0.8
DENSITY = 0.5


# ------------------------------------------------------------------------------- the trials


def decision_batches(
    n_batches: int, batch_size: int = 32, *, seed: int = 0
) -> list[tuple[Tensor, Tensor]]:
    """``n_batches`` batches of whole trials, ``(inputs (T, B, 3), targets (T, B, 1))``, the
    same for the same ``seed`` (use another seed for held-out trials)."""
    env = make_env(TASK, dt=DT, timing=TIMING)
    env.seed(seed)
    return [trials_batch(env, batch_size) for _ in range(n_batches)]


# ---------------------------------------------------------------------------- the ensemble


@dataclass
class Ensemble:
    """Several LIF networks of the same shape, weights stacked along dimension 0.

    ``w_in`` ``(S, N, n_input)``, ``w_rec`` ``(S, N, N)``, ``w_out`` ``(S, n_output, N)``
    are the trained (raw) weights. With ``signs`` (one per presynaptic unit) the recurrent
    weights are ``dale_weight(w_rec, signs, mask)`` (chapter 02), with ``mask`` alone
    ``w_rec * mask`` (chapter 01). ``labels`` name the members (e.g. their seeds).
    """

    w_in: Tensor
    w_rec: Tensor
    w_out: Tensor
    decay: float
    readout_decay: float
    threshold: float
    beta: float
    labels: list = field(default_factory=list)
    signs: Tensor | None = None
    mask: Tensor | None = None

    def recurrent(self) -> Tensor:
        """The effective recurrent weights ``(S, N, N)``, after Dale's law or the mask."""
        if self.signs is not None:
            return torch.vmap(dale_weight, in_dims=(0, None, None))(self.w_rec, self.signs,
                                                                     self.mask)
        return self.w_rec if self.mask is None else self.w_rec * self.mask

    def parameters(self) -> list[Tensor]:
        """The trained tensors, for an optimiser."""
        return [self.w_in, self.w_rec, self.w_out]

    def member(self, index: int) -> SpikingRNN:
        """Member ``index`` as a `SpikingRNN` (with `DaleWeight` or the mask registered as
        a parametrization, as chapters 01-02 do), e.g. for e-prop. Its random feedback
        ``B`` is the one ``SpikingRNN(..., seed=label)`` draws for the member's label."""
        n_output, n_hidden = self.w_out.shape[1:]
        seed = self.labels[index] if self.labels else index
        net = SpikingRNN(self.w_in.shape[2], n_hidden, n_output, **_net_kwargs(), seed=seed)
        net.decay, net.readout_decay = self.decay, self.readout_decay
        net.threshold, net.beta = self.threshold, self.beta
        with torch.no_grad():
            net.input.weight.copy_(self.w_in[index])
            net.recurrent.weight.copy_(self.w_rec[index])
            net.readout.weight.copy_(self.w_out[index])
        if self.signs is not None:
            parametrize.register_parametrization(net.recurrent, "weight",
                                                 DaleWeight(self.signs, self.mask))
        elif self.mask is not None:
            parametrize.register_parametrization(net.recurrent, "weight",
                                                 Mask(self.mask))
        return net


def initial_ensemble(seeds: Sequence[int], n_input: int = 3, n_output: int = 1) -> Ensemble:
    """The networks ``SpikingRNN(..., seed=s)`` for each seed, stacked (the same weights)."""
    nets = [SpikingRNN(n_input, NETWORK["n_hidden"], n_output, **_net_kwargs(), seed=s)
            for s in seeds]
    stack = [torch.stack([getattr(net, layer).weight.detach() for net in nets]).clone()
             for layer in ("input", "recurrent", "readout")]
    first = nets[0]
    return Ensemble(*stack, first.decay, first.readout_decay, first.threshold, first.beta,
                    labels=list(seeds))


def _net_kwargs() -> dict:
    return {key: value for key, value in NETWORK.items() if key != "n_hidden"}


def dale_sparse_ensemble(seeds: Sequence[int], n_input: int = 3, n_output: int = 1) -> Ensemble:
    """The constrained counterpart of `initial_ensemble`: the same input and readout
    weights, and recurrent weights that obey Dale's law (80 % excitatory) on a sparse mask
    (density `DENSITY`), E/I balanced row by row with the spectral radius of the dense
    network's initial weights (chapter 02's `balanced_dale_init`)."""
    dense = initial_ensemble(seeds, n_input, n_output)
    n_hidden = NETWORK["n_hidden"]
    n_exc = round(EXCITATORY_FRACTION * n_hidden)
    signs = dale_signs(n_exc, n_hidden - n_exc)
    mask = random_sparse_mask(n_hidden, n_hidden, DENSITY, seed=0, self_connections=False)
    radius = 1.0  # the dense start, Gaussian with variance 1/N, has radius ~1 (circular law)
    magnitudes = torch.stack([balanced_dale_init(signs, mask, radius, seed=1000 + s)
                              for s in seeds])
    return Ensemble(dense.w_in, magnitudes, dense.w_out, dense.decay, dense.readout_decay,
                    dense.threshold, dense.beta, labels=list(seeds), signs=signs, mask=mask)


def simulate_ensemble(ensemble: Ensemble, inputs: Tensor) -> tuple[Tensor, Tensor]:
    """Run every member on the same ``inputs`` ``(T, B, n_input)`` from rest: outputs
    ``(S, T, B, n_output)`` and spikes ``(S, T, B, N)``. The loop of
    `course_lib.spiking.SpikingRNN.simulate` (no refractoriness), one matrix product per
    layer for all members at once."""
    w_in, w_rec, w_out = ensemble.w_in, ensemble.recurrent(), ensemble.w_out
    members, n_hidden = w_rec.shape[0], w_rec.shape[1]
    batch = inputs.shape[1]
    v = inputs.new_zeros(members, batch, n_hidden)
    z = inputs.new_zeros(members, batch, n_hidden)
    y = inputs.new_zeros(members, batch, w_out.shape[1])
    outputs, spikes = [], []
    for x in inputs:
        current = x @ w_in.mT + z @ w_rec.mT  # (S, B, N); z is still z_{t-1} here
        v, z = lif_step(v, z, current, decay=ensemble.decay, threshold=ensemble.threshold,
                        beta=ensemble.beta)
        y = ensemble.readout_decay * y + z @ w_out.mT  # the leaky readout
        outputs.append(y)
        spikes.append(z)
    return torch.stack(outputs, 1), torch.stack(spikes, 1)


def ensemble_loss(outputs: Tensor, spikes: Tensor, targets: Tensor,
                  penalties: Tensor) -> Tensor:
    """Each member's `task_loss` (mse) plus its own `spike_count_penalty`, summed over
    members (so each member's gradient is its own loss's gradient)."""
    task = 0.5 * ((targets - outputs) ** 2).sum(-1).mean((1, 2))  # (S,): task_loss each
    spike_cost = spikes.sum(1).mean((1, 2))  # (S,): spike_count_penalty with strength 1
    return (task + penalties * spike_cost).sum()


#: Strengths of the spike-count penalty (per spike of a unit, in units of the task loss).
PENALTIES = (0.0, 3e-4, 1e-3, 3e-3, 1e-2)


def sweep_members(seeds: Sequence[int], penalties: Sequence[float]) -> tuple[list, list]:
    """The members of a penalty sweep, penalty by penalty: every seed at every strength.
    Returns (each member's seed, each member's penalty)."""
    return ([s for _ in penalties for s in seeds], [p for p in penalties for _ in seeds])


def by_penalty(values: Sequence[float], n_seeds: int) -> np.ndarray:
    """Per-member values of a sweep as ``(n_penalties, n_seeds)``."""
    return np.asarray(values, dtype=float).reshape(-1, n_seeds)


# ------------------------------------------------------------------------------- training


@dataclass
class Trained:
    """What training left: the ensemble, each member's penalty strength, and the loss
    (summed over members) per step."""

    ensemble: Ensemble
    penalties: Tensor
    losses: list[float]


@one_thread()
def train_bptt(
    ensemble: Ensemble,
    batches: Sequence[tuple[Tensor, Tensor]],
    *,
    penalties: Sequence[float] | None = None,
    steps: int = 200,
    lr: float = BPTT_LR,
) -> Trained:
    """Surrogate-gradient BPTT with Adam for every member at once, ``steps`` steps cycling
    through ``batches``; member ``i`` pays ``penalties[i]`` per spike of a unit (default 0).
    The ensemble is trained in place."""
    members = ensemble.w_rec.shape[0]
    strength = torch.zeros(members) if penalties is None else torch.tensor(
        [float(p) for p in penalties])
    if strength.shape != (members,):
        raise ValueError(f"give one penalty per member ({members}), got {len(strength)}")
    params = ensemble.parameters()
    for p in params:
        p.requires_grad_(True)
    optimiser = torch.optim.Adam(params, lr=lr)
    losses = []
    for step in range(steps):
        inputs, targets = batches[step % len(batches)]
        outputs, spikes = simulate_ensemble(ensemble, inputs)
        loss = ensemble_loss(outputs, spikes, targets, strength)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    for p in params:
        p.requires_grad_(False)
    return Trained(ensemble, strength, losses)


@one_thread()
def train_eprop(
    ensemble: Ensemble,
    batches: Sequence[tuple[Tensor, Tensor]],
    *,
    steps: int = 200,
    lr: float = EPROP_LR,
    feedback_scale: float = FEEDBACK_SCALE,
) -> Ensemble:
    """e-prop (`eprop_trial`, then Adam on its gradients) for each member in turn, from the
    same initial weights and on the same batches as `train_bptt`. Each member's random
    feedback ``B`` is its `SpikingRNN`'s, times ``feedback_scale``. Returns a new ensemble."""
    trained = []
    for index in range(ensemble.w_rec.shape[0]):
        net = ensemble.member(index)
        net.feedback.mul_(feedback_scale)
        optimiser = torch.optim.Adam(net.parameters(), lr=lr)
        for step in range(steps):
            inputs, targets = batches[step % len(batches)]
            optimiser.zero_grad()
            apply_eprop_gradients(net, eprop_trial(net, inputs, targets))
            optimiser.step()
        trained.append(net)
    return _stack(ensemble, trained)


def _stack(template: Ensemble, nets: Sequence[SpikingRNN]) -> Ensemble:
    """An ensemble of trained ``nets`` with ``template``'s constants and constraint."""
    def raw(module):
        if parametrize.is_parametrized(module, "weight"):
            return module.parametrizations.weight.original.detach()
        return module.weight.detach()

    w_in, w_rec, w_out = (torch.stack([raw(getattr(net, name)) for net in nets]).clone()
                          for name in ("input", "recurrent", "readout"))
    return Ensemble(w_in, w_rec, w_out, template.decay, template.readout_decay,
                    template.threshold, template.beta, labels=list(template.labels),
                    signs=template.signs, mask=template.mask)


# ------------------------------------------------------------------------------ measuring


@torch.no_grad()
def evaluate(ensemble: Ensemble, test: tuple[Tensor, Tensor]) -> tuple[list[float], list[float]]:
    """Each member's held-out decision accuracy and its network's spikes per trial."""
    inputs, targets = test
    outputs, spikes = simulate_ensemble(ensemble, inputs)
    response = response_period(inputs)
    accuracy = [decision_accuracy(out, targets, response).item() for out in outputs]
    return accuracy, [spikes_per_trial(member) for member in spikes]


def cosine(a: Tensor, b: Tensor) -> float:
    """The cosine of the angle between two gradients (1: the same direction)."""
    return (a * b).sum().item() / (a.norm() * b.norm()).item()


def count_text(values: Sequence[float]) -> str:
    """``'530 ± 61'``: mean ± SD over seeds of a count, for the text."""
    return f"{np.mean(values):.0f} ± {np.std(values, ddof=1):.0f}"


@one_thread()
def gradient_alignment(
    net: SpikingRNN, batch: tuple[Tensor, Tensor]
) -> dict[str, dict[str, float]]:
    """How close e-prop's gradient is to BPTT's for ``net`` on one batch: the cosine
    between them for the input and recurrent weights, for e-prop with ``B = W_out^T``
    (only the recurrent path is dropped) and with ``net``'s random ``B``. ``net`` is left
    as it was."""
    inputs, targets = batch
    random_feedback = net.feedback.clone()
    net.zero_grad()
    task_loss(net(inputs)[0], targets).backward()
    exact = {"input": net.input.weight.grad.clone(), "recurrent": net.recurrent.weight.grad.clone()}
    result = {}
    for name, feedback in (("B = W_out^T", net.readout.weight.detach().T.clone()),
                           ("random B", net.feedback.clone())):
        net.feedback.copy_(feedback)
        trial = eprop_trial(net, inputs, targets)
        result[name] = {layer: cosine(getattr(trial, layer), exact[layer]) for layer in exact}
    net.feedback.copy_(random_feedback)
    net.zero_grad()
    return result


# ------------------------------------------------------------------------- tuning e-prop


def tune_eprop(
    lrs: Sequence[float] = (1e-3, 2e-3, 3e-3, 5e-3, 1e-2),
    feedback_scales: Sequence[float] = (1.0,),
    seeds: Sequence[int] = (100, 101, 102),
    steps: int = 200,
) -> dict[tuple[float, float], float]:
    """Mean validation accuracy of e-prop for each (learning rate, feedback scale), on
    seeds and trials the chapter does not use (training seed 50, validation seed 51)."""
    batches = decision_batches(40, seed=50)
    validation = decision_batches(1, 256, seed=51)[0]
    start = initial_ensemble(seeds)
    return {(lr, scale): float(np.mean(evaluate(
                train_eprop(start, batches, steps=steps, lr=lr, feedback_scale=scale),
                validation)[0]))
            for lr in lrs for scale in feedback_scales}


# ------------------------------------------------------------------------------ plotting


def plot_raster(spikes: Tensor, outputs: Tensor, inputs: Tensor, targets: Tensor, *,
                trial: int = 0, title: str = "", axes=None):
    """One trial: the evidence inputs, the spike raster (a dot per spike, unit against
    time) and the readout against its target. ``spikes`` ``(T, B, N)``, ``outputs`` and
    ``targets`` ``(T, B, 1)``, ``inputs`` ``(T, B, 3)``. Returns the three axes."""
    if axes is None:
        _, axes = plt.subplots(3, 1, figsize=(6, 5), sharex=True,
                               height_ratios=[1, 2.5, 1.2])
    time = (np.arange(inputs.shape[0]) + 1) * DT
    axes[0].plot(time, inputs[:, trial, 1], color="tab:red", label="evidence 1")
    axes[0].plot(time, inputs[:, trial, 2], color="tab:blue", label="evidence 2")
    axes[0].plot(time, inputs[:, trial, 0], color="0.5", ls="--", label="fixation")
    axes[0].set_ylabel("input")
    axes[0].legend(fontsize="small", ncols=3, loc="lower left", bbox_to_anchor=(0, 1),
                   frameon=False, borderaxespad=0)  # above the panel, off the traces
    step, unit = np.nonzero(spikes[:, trial].numpy())
    axes[1].scatter(time[step], unit, s=6, color="black", marker="|")
    axes[1].set_ylabel("unit")
    axes[1].set_ylim(-1, spikes.shape[2])
    axes[1].set_title(title or f"{int(spikes[:, trial].sum())} spikes in this trial")
    axes[2].plot(time, targets[:, trial, 0], color="0.5", ls=":", label="target")
    axes[2].plot(time, outputs[:, trial, 0], color="tab:green", label="readout")
    axes[2].set_ylabel("output")
    axes[2].set_xlabel("time (ms)")
    axes[2].set_ylim(-1.6, 1.6)
    axes[2].legend(fontsize="small", ncols=2, loc="lower left")
    return axes


def plot_tradeoff(penalties: Sequence[float], accuracy: np.ndarray, spikes: np.ndarray,
                  *, ax=None, chance: float = 0.5):
    """Accuracy against spikes per trial, one point per penalty strength (mean ± SD over
    seeds, in both directions), the seeds as small dots: chapter 04's trade-off curve for
    spikes. ``accuracy`` and ``spikes`` ``(n_penalties, n_seeds)``."""
    ax = plt.gca() if ax is None else ax
    colours = plt.cm.viridis(np.linspace(0, 0.85, len(penalties)))
    for penalty, acc, count, colour in zip(penalties, accuracy, spikes, colours, strict=True):
        ax.scatter(count, 100 * acc, s=10, color=colour, alpha=0.5)
        ax.errorbar(count.mean(), 100 * acc.mean(), xerr=count.std(ddof=1),
                    yerr=100 * acc.std(ddof=1), fmt="o", color=colour, capsize=4,
                    label=f"penalty {penalty:g}")
    ax.plot(spikes.mean(1), 100 * accuracy.mean(1), color="0.6", lw=1, zorder=0)
    ax.axhline(100 * chance, color="grey", ls=":", label="chance")
    if (spikes > 0).all():
        ax.set_xscale("log")
        low, high = spikes.min() / 1.5, spikes.max() * 1.5
        ticks = [v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
                 if low <= v <= high]
        ax.set_xticks(ticks, [str(v) for v in ticks])
        ax.set_xticks([], minor=True)
    else:  # a silent network: linear near zero
        ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("spikes per trial (whole network)")
    ax.set_ylabel("held-out accuracy (%)")
    ax.legend(fontsize="small", loc="upper left")
    return ax


def spike_rate_hz(spikes_in_trial: float) -> float:
    """Mean firing rate (Hz) of a unit, from the network's spikes per trial."""
    seconds = sum(TIMING.values()) / 1000.0
    return spikes_in_trial / NETWORK["n_hidden"] / seconds


__all__ = [
    "DENSITY",
    "DT",
    "EPROP_LR",
    "FEEDBACK_SCALE",
    "NETWORK",
    "PENALTIES",
    "TIMING",
    "Ensemble",
    "Trained",
    "cosine",
    "count_text",
    "dale_sparse_ensemble",
    "decision_batches",
    "by_penalty",
    "ensemble_loss",
    "evaluate",
    "gradient_alignment",
    "initial_ensemble",
    "plot_raster",
    "plot_tradeoff",
    "simulate_ensemble",
    "spike_rate_hz",
    "sweep_members",
    "train_bptt",
    "train_eprop",
    "tune_eprop",
]

