"""RFLO: random-feedback local online learning for recurrent networks.

Murray 2019 (eLife 8:e43299, "Local online learning in recurrent networks with random
feedback"). The network is Murray's eq. 1, a leaky rate RNN in steps of ``dt``::

    u_t   = W_rec h_{t-1} + W_in x_t
    h_t   = (1 - 1/tau) h_{t-1} + (1/tau) phi(u_t)          phi = tanh
    y_t   = W_out h_t,        eps_t = y*_t - y_t,        L = 1/(2T) sum_t |eps_t|^2

``tau`` is counted in time steps, so ``1/tau`` is the library's ``alpha = dt / tau``
(`course_lib.models`): ``tau = 10`` here is ``alpha = 0.1``. (Here the leaky average is
taken of the rate ``phi(u)``; `course_lib.models.RateRNN` averages the current instead.)

The exact gradient (BPTT, or RTRL forward in time) needs ``dh_t/dW``, whose recursion runs
through ``W_rec`` (every synapse depends on every other: non-local) and sends the error
back through ``W_out^T`` (weight transport). RFLO drops the ``W_rec`` term and replaces
``W_out^T`` by a fixed random ``B`` ``(n_hidden, n_output)``. What is left is a local
eligibility trace per synapse, a low-pass filter of pre- times postsynaptic activity::

    p_ab(t) = (1/tau) phi'(u_a(t)) h_b(t-1) + (1 - 1/tau) p_ab(t-1)     (recurrent)
    q_ab(t) = (1/tau) phi'(u_a(t)) x_b(t)   + (1 - 1/tau) q_ab(t-1)     (input)
    dW_rec_ab = eta/T sum_t [B eps_t]_a p_ab(t),   dW_in_ab = eta/T sum_t [B eps_t]_a q_ab(t)
    dW_out    = eta/T sum_t eps_t h_t^T                                  (exact delta rule)

With ``W_rec = 0`` the dropped term is zero, and with ``B = W_out^T`` RFLO *is* the
gradient. The trace forgets at the neuron's own time scale ``tau``: credit for causes
further back than a few ``tau`` is lost. Memory is ``batch * N * (N + n_input)`` numbers,
whatever the trial length; BPTT stores the whole trajectory instead. Here the traces and
the summed updates run online; the weights change at the end of each trial.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from course_lib import progress as progress_
from course_lib._threads import one_thread
from course_lib._validate import check_positive, check_shape, make_generator


def check_tau(tau: float) -> None:
    """RFLO needs a leak: ``tau`` (in time steps) must be more than one step."""
    if not (isinstance(tau, int | float) and float(tau) > 1):
        raise ValueError(
            f"tau must be more than 1 time step (1/tau = alpha = dt/tau below 1), got {tau!r}: "
            "with tau <= 1 there is no leak and the eligibility trace forgets at once"
        )


def phi(u: torch.Tensor) -> torch.Tensor:
    """The units' nonlinearity, ``h = phi(u) = tanh(u)`` (Murray 2019, eq. 1)."""
    return torch.tanh(u)


def phi_prime(u: torch.Tensor) -> torch.Tensor:
    """Its derivative, ``phi'(u) = 1 - tanh(u)**2``, the post-synaptic factor of the trace."""
    return 1 - torch.tanh(u) ** 2


def rflo_trace_step(
    trace: torch.Tensor, phi_prime_u: torch.Tensor, pre: torch.Tensor, tau: float
) -> torch.Tensor:
    """One step of the eligibility trace (Murray 2019, the RFLO trace ``p_ab``).

    ``p_ab(t) = (1/tau) phi'(u_a(t)) pre_b + (1 - 1/tau) p_ab(t-1)``, with ``pre`` =
    ``h(t-1)`` for recurrent synapses or ``x(t)`` for input synapses. Shapes: ``trace``
    ``(..., N, M)``, ``phi_prime_u`` ``(..., N)``, ``pre`` ``(..., M)``; every synapse of
    every trial at once (an outer product), no loop.
    """
    check_tau(tau)
    check_shape("trace", trace, (*phi_prime_u.shape, pre.shape[-1]))
    post, pre = phi_prime_u[..., :, None], pre[..., None, :]  # broadcast to (..., N, M)
    # (1 - 1/tau) p + (1/tau) post * pre, fused into one pass over the synapses
    return torch.addcmul((1 - 1 / tau) * trace, post, pre, value=1 / tau)


def rflo_weight_update(
    error: torch.Tensor, feedback: torch.Tensor, trace: torch.Tensor, lr: float = 1.0
) -> torch.Tensor:
    """``dW_ab = lr [B eps]_a p_ab``, averaged over the batch (Murray 2019, RFLO rule).

    ``error`` ``(batch, n_output)``, ``feedback`` ``B`` ``(N, n_output)``, ``trace``
    ``(batch, N, M)``. Returns ``(N, M)``. The error reaches unit ``a`` only through its
    own random feedback weights ``B[a]``: a third factor on top of the local trace.
    """
    check_shape("error", error, (-1, -1))
    check_shape("feedback", feedback, (trace.shape[-2], error.shape[1]))
    check_shape("trace", trace, (error.shape[0], feedback.shape[0], -1))
    signal = error @ feedback.T  # (batch, N): [B eps]_a for every trial
    return lr * (signal[:, :, None] * trace).mean(0)


def readout_update(error: torch.Tensor, hidden: torch.Tensor, lr: float = 1.0) -> torch.Tensor:
    """The delta rule ``dW_out = lr eps h^T`` (batch mean): exact, and already local."""
    check_shape("hidden", hidden, (error.shape[0], -1))
    return lr * error.T @ hidden / error.shape[0]


class LeakyRNN(nn.Module):
    """Murray's leaky tanh RNN (eq. 1) with a linear readout and a random feedback ``B``.

    ``w_in`` ``(N, n_input)``, ``w_rec`` ``(N, N)``, ``w_out`` ``(n_output, N)`` are
    parameters (so BPTT can train the same network through autograd); ``feedback``
    ``(N, n_output)`` is a buffer, never trained. ``tau`` is in time steps (``1/tau = alpha``).
    Initial weights: ``w_rec`` Gaussian with spectral radius about ``gain``, ``w_in`` of
    unit scale, a small ``w_out`` (as in Murray's example code) and ``B`` Gaussian with
    standard deviation ``1/sqrt(N)``.
    """

    def __init__(
        self,
        n_input: int,
        n_hidden: int,
        n_output: int,
        *,
        tau: float = 5.0,
        gain: float = 1.0,
        seed: int | torch.Generator | None = 0,
    ):
        super().__init__()
        check_tau(tau)
        self.tau = float(tau)
        generator = make_generator(seed)

        def normal(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, generator=generator)

        self.w_in = nn.Parameter(normal(n_hidden, n_input) / math.sqrt(n_input))
        self.w_rec = nn.Parameter(gain * normal(n_hidden, n_hidden) / math.sqrt(n_hidden))
        self.w_out = nn.Parameter(0.1 * normal(n_output, n_hidden) / math.sqrt(n_hidden))
        self.register_buffer("feedback", normal(n_hidden, n_output) / math.sqrt(n_hidden))

    @property
    def alpha(self) -> float:
        """``1 / tau``: the library's ``alpha = dt / tau`` for this network."""
        return 1.0 / self.tau

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run ``inputs`` ``(T, batch, n_input)`` from ``h_0 = 0``.

        Returns ``outputs`` ``(T, batch, n_output)``, ``hidden`` and ``currents`` ``u``
        ``(T, batch, N)``. Differentiable: ``loss.backward()`` on it is BPTT.
        """
        check_shape("inputs", inputs, (-1, -1, self.w_in.shape[1]))
        h = inputs.new_zeros(inputs.shape[1], self.w_rec.shape[0])
        hidden, currents = [], []
        for x in inputs:
            u = h @ self.w_rec.T + x @ self.w_in.T
            h = (1 - 1 / self.tau) * h + (1 / self.tau) * phi(u)  # Murray 2019, eq. 1
            hidden.append(h)
            currents.append(u)
        hidden = torch.stack(hidden)
        return hidden @ self.w_out.T, hidden, torch.stack(currents)


def trial_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``L = 1/(2T) sum_t |y*_t - y_t|^2``, averaged over the batch (Murray 2019)."""
    check_shape("targets", targets, tuple(outputs.shape))
    return 0.5 * ((targets - outputs) ** 2).sum(-1).mean()


@dataclass
class RFLOTrial:
    """One trial run online: its loss and the accumulated RFLO updates (``lr = 1``)."""

    loss: float
    w_in: torch.Tensor
    w_rec: torch.Tensor
    w_out: torch.Tensor


@torch.no_grad()
def rflo_trial(rnn: LeakyRNN, inputs: torch.Tensor, targets: torch.Tensor) -> RFLOTrial:
    """Run one batch of trials forward in time, updating traces and weight changes online.

    Nothing from the past is stored except the traces: memory does not grow with ``T``.
    The weights stay fixed during the trial; the returned updates (learning rate 1) are
    what online application would add up to, to first order in the learning rate.
    """
    losses, d_in, d_rec, d_out = rflo_updates(
        rnn.w_in, rnn.w_rec, rnn.w_out, rnn.feedback, inputs, targets, rnn.tau
    )
    loss = sum(losses.tolist())  # the per-step losses, added in time order
    return RFLOTrial(loss=loss / len(losses), w_in=d_in, w_rec=d_rec, w_out=d_out)


@torch.no_grad()
def rflo_updates(
    w_in: torch.Tensor,
    w_rec: torch.Tensor,
    w_out: torch.Tensor,
    feedback: torch.Tensor,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    tau: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """`rflo_trial` on plain tensors: ``(losses, dW_in, dW_rec, dW_out)``, no Python numbers.

    ``losses`` ``(T,)`` is the loss at each step. Pure tensor code, so ``torch.vmap`` runs it
    for several networks at once (`train_rules_on_seeds`).
    """
    check_shape("inputs", inputs, (-1, -1, w_in.shape[1]))
    check_shape("targets", targets, (inputs.shape[0], inputs.shape[1], w_out.shape[0]))
    steps, batch, n_input = inputs.shape
    n_hidden = w_rec.shape[0]
    check_shape("feedback", feedback, (n_hidden, w_out.shape[0]))
    h = inputs.new_zeros(batch, n_hidden)
    p = inputs.new_zeros(batch, n_hidden, n_hidden)  # recurrent traces
    q = inputs.new_zeros(batch, n_hidden, n_input)  # input traces
    d_in, d_rec, d_out = (torch.zeros_like(w) for w in (w_in, w_rec, w_out))
    losses = []
    for t in range(steps):  # (indexing, not iterating: unbind would make T views at once)
        x, target = inputs[t], targets[t]
        u = h @ w_rec.T + x @ w_in.T
        slope = phi_prime(u)
        p = rflo_trace_step(p, slope, h, tau)  # uses h(t-1): update before h moves on
        q = rflo_trace_step(q, slope, x, tau)
        h = (1 - 1 / tau) * h + (1 / tau) * phi(u)
        error = target - h @ w_out.T
        d_rec += rflo_weight_update(error, feedback, p)
        d_in += rflo_weight_update(error, feedback, q)
        d_out += readout_update(error, h)
        losses.append(0.5 * (error**2).sum(-1).mean())
    return torch.stack(losses), d_in / steps, d_rec / steps, d_out / steps


# ------------------------------------------------------------------- a memory task


def delayed_response_batch(
    batch_size: int,
    *,
    cue_steps: int = 5,
    delay_steps: int = 20,
    response_steps: int = 10,
    seed: int | torch.Generator | None = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A cue of sign ``s = ±1``, a silent delay, then "go": answer ``s`` until the end.

    Inputs ``(T, batch, 3)``: cue ``+``, cue ``-``, go. Target ``(T, batch, 1)``: 0 before
    the go signal, ``s`` after. The cue is gone when the answer is due, so the network
    must hold it through the delay: a task that needs memory beyond ``tau``.
    """
    for name, value in (
        ("cue_steps", cue_steps),
        ("delay_steps", delay_steps),
        ("response_steps", response_steps),
        ("batch_size", batch_size),
    ):
        check_positive(name, value)
    generator = make_generator(seed)
    sign = torch.randint(0, 2, (batch_size,), generator=generator) * 2.0 - 1.0
    steps = cue_steps + delay_steps + response_steps
    go = cue_steps + delay_steps
    inputs = torch.zeros(steps, batch_size, 3)
    inputs[:cue_steps, :, 0] = (sign > 0).float()
    inputs[:cue_steps, :, 1] = (sign < 0).float()
    inputs[go:, :, 2] = 1.0
    targets = torch.zeros(steps, batch_size, 1)
    targets[go:, :, 0] = sign
    return inputs, targets


@dataclass
class RecurrentHistory:
    """Loss per training batch for each rule, on the same trials from the same network."""

    trials: list[int] = field(default_factory=list)
    rflo: list[float] = field(default_factory=list)
    bptt: list[float] = field(default_factory=list)


def train_rflo_vs_bptt(
    *,
    n_batches: int = 300,
    batch_size: int = 32,
    n_hidden: int = 32,
    tau: float = 5.0,
    lr: float = 0.3,
    delay_steps: int = 20,
    seed: int = 0,
    progress: bool | None = None,
) -> tuple[RecurrentHistory, LeakyRNN, LeakyRNN]:
    """Train two copies of one `LeakyRNN` on the delayed-response task, by RFLO and BPTT.

    Both use plain gradient steps ``W <- W + lr dW`` on the same batches. Returns the
    history and the two trained networks ``(rflo_net, bptt_net)``. ``progress``: a bar
    and a closing sentence, by default in a notebook only (`course_lib.progress`).
    """
    check_positive("lr", lr)
    with one_thread():
        rflo_net = LeakyRNN(3, n_hidden, 1, tau=tau, seed=seed)
        bptt_net = copy.deepcopy(rflo_net)
        optimizer = torch.optim.SGD(bptt_net.parameters(), lr=lr)
        data = make_generator(seed + 1)
        history = RecurrentHistory()
        batches = range(1, n_batches + 1)
        for batch in progress_.steps(batches, desc="RFLO and BPTT", progress=progress):
            inputs, targets = delayed_response_batch(batch_size, delay_steps=delay_steps, seed=data)
            trial = rflo_trial(rflo_net, inputs, targets)
            with torch.no_grad():
                for name in ("w_in", "w_rec", "w_out"):
                    getattr(rflo_net, name).add_(lr * getattr(trial, name))
            loss = trial_loss(bptt_net(inputs)[0], targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.trials.append(batch * batch_size)
            history.rflo.append(trial.loss)
            history.bptt.append(loss.item())
    progress_.report(
        f"After {n_batches} batches the mean squared error on the last batch is "
        f"{history.rflo[-1]:.3f} with RFLO and {history.bptt[-1]:.3f} with BPTT.",
        progress=progress,
    )
    return history, rflo_net, bptt_net


# ------------------------------------------- several seeds at once, and a control rule

#: The rules `train_rules_on_seeds` knows. "readout only" is the control: W_in and W_rec stay
#: at their initial values and only W_out learns, by the delta rule (its exact gradient).
RULES = ("RFLO", "BPTT", "readout only")
_WEIGHTS = ("w_in", "w_rec", "w_out")


@dataclass
class SeedsResult:
    """What `train_rules_on_seeds` returns: for each rule, the loss of every training batch
    ``(n_batches, n_seeds)`` and the trained weights, stacked over seeds ``(n_seeds, ...)``."""

    seeds: list[int]
    tau: float
    losses: dict[str, torch.Tensor]
    weights: dict[str, dict[str, torch.Tensor]]
    feedback: torch.Tensor  # B of every seed, (n_seeds, N, n_output)

    def network(self, rule: str, index: int = 0) -> LeakyRNN:
        """The trained network of seed number ``index`` under ``rule``, as a `LeakyRNN`."""
        w_in, w_out = self.weights[rule]["w_in"][index], self.weights[rule]["w_out"][index]
        rnn = LeakyRNN(w_in.shape[1], w_in.shape[0], w_out.shape[0], tau=self.tau)
        with torch.no_grad():
            for name in _WEIGHTS:
                getattr(rnn, name).copy_(self.weights[rule][name][index])
            rnn.feedback.copy_(self.feedback[index])
        return rnn

    @torch.no_grad()
    def test_loss(self, rule: str, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """`trial_loss` of every seed's network on one batch, ``(n_seeds,)``."""
        return torch.stack([trial_loss(self.network(rule, k)(inputs)[0], targets)
                            for k in range(len(self.seeds))])


def rule_updates(rule: str, template: LeakyRNN, weights, feedback, inputs, targets):
    """One batch's per-seed losses ``(S,)`` and updates ``{name: (S, ...)}`` (learning rate
    1) under ``rule`` (one of `RULES`), for ``S`` seeds' ``weights`` stacked along a first
    dimension: the step `train_rules_on_seeds` takes."""
    if rule == "BPTT":  # minus the autograd gradient of the loss, seed by seed

        def loss_and_loss(one_seed):
            loss = trial_loss(torch.func.functional_call(template, one_seed, (inputs,))[0], targets)
            return loss, loss

        gradient, loss = torch.vmap(torch.func.grad(loss_and_loss, has_aux=True))(weights)
        return loss, {name: -g for name, g in gradient.items()}
    losses, *deltas = torch.vmap(rflo_updates, in_dims=(0, 0, 0, 0, None, None, None))(
        weights["w_in"], weights["w_rec"], weights["w_out"], feedback, inputs, targets,
        template.tau,
    )
    updates = dict(zip(_WEIGHTS, deltas, strict=True))
    if rule == "readout only":  # the control: the recurrent network stays as it was built
        updates = {"w_out": updates["w_out"]}
    return losses.mean(-1), updates


def train_rules_on_seeds(
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    *,
    seeds: list[int] | range = range(5),
    rules: tuple[str, ...] = RULES,
    n_hidden: int = 32,
    tau: float = 5.0,
    lr: float = 0.3,
) -> SeedsResult:
    """Train one `LeakyRNN` per seed with each rule, every network on the same ``batches``.

    Seed ``s`` builds ``LeakyRNN(n_input, n_hidden, n_output, tau=tau, seed=s)`` (its initial
    weights and its feedback ``B``); each rule starts from these same networks and takes
    plain gradient steps ``W <- W + lr dW``, as `train_rflo_vs_bptt`. The seeds are trained
    at once, as one batched computation (``torch.vmap``): each seed's numbers are what it
    would get alone. ``batches``: ``(inputs, targets)`` pairs, e.g. from
    `delayed_response_batch`.
    """
    check_positive("lr", lr)
    unknown = set(rules) - set(RULES)
    if unknown:
        raise ValueError(f"rules must be among {RULES}, got {sorted(unknown)}")
    seeds = list(seeds)
    if not seeds or not batches:
        raise ValueError("need at least one seed and one batch")
    n_input, n_output = batches[0][0].shape[-1], batches[0][1].shape[-1]
    nets = [LeakyRNN(n_input, n_hidden, n_output, tau=tau, seed=s) for s in seeds]
    start = {name: torch.stack([getattr(n, name).detach() for n in nets]) for name in _WEIGHTS}
    feedback = torch.stack([n.feedback for n in nets])
    losses, trained = {}, {}
    with one_thread():
        for rule in rules:
            weights = {name: w.clone() for name, w in start.items()}
            per_batch = []
            for inputs, targets in batches:
                loss, updates = rule_updates(rule, nets[0], weights, feedback, inputs, targets)
                for name, delta in updates.items():
                    weights[name] += lr * delta
                per_batch.append(loss)
            losses[rule], trained[rule] = torch.stack(per_batch), weights
    return SeedsResult(seeds, float(tau), losses, trained, feedback)
