"""The dendritic error microcircuit: errors live in apical dendrites.

Sacramento, Ponte Costa, Bengio & Senn 2018 (NeurIPS, "Dendritic cortical microcircuits
approximate the backpropagation algorithm"). Every hidden layer ``k`` has pyramidal
neurons with three compartments, and interneurons, as many as the pyramids of layer
``k + 1``. Rates are ``r = phi(u)``, with a soft rectifier ``phi`` (softplus here).
Dendrites follow their inputs instantly; somas are leaky integrators::

    basal dendrite       v_B,k = W_k r_{k-1}                      (bottom-up, "forward")
    apical dendrite      v_A,k = B_k r_{k+1} + W^PI_k r^I_k       (top-down - lateral)
    pyramidal soma       du_k/dt = -g_lk u_k + g_B (v_B,k - u_k) + g_A (v_A,k - u_k)
    interneuron dendrite v^I_k = W^IP_k r_k
    interneuron soma     du^I_k/dt = -g_lk u^I_k + g_D (v^I_k - u^I_k) + g_som (u_{k+1} - u^I_k)
    output soma          du_N/dt = -g_lk u_N + g_B (v_B,N - u_N) [+ g_som (u_target - u_N)]

The top-down weights ``B_k`` are fixed and random. When the interneurons predict the
layer above (the *self-predicting state*) the apical input cancels, ``v_A = 0``, and the
network computes a plain feedforward pass. A target nudges the output somas; the
interneurons cannot predict the nudge, so the apical dendrites now carry the error sent
down through ``B`` -- backprop's error, held in a dendrite, with no separate phase.

Plasticity is local: each synapse compares a soma with a dendrite's prediction of it::

    dW_k/dt    = eta (phi(u_k) - phi(v^_B,k)) r_{k-1}^T      v^_B,k = g_B v_B,k / (g_lk + g_B + g_A)
                                                          (output layer: g_B v_B / (g_lk + g_B))
    dW^IP_k/dt = eta (phi(u^I_k) - phi(v^_I,k)) r_k^T       v^_I,k = g_D v^I_k / (g_lk + g_D)
    dW^PI_k/dt = eta (0 - v_A,k) (r^I_k)^T                  (silences the apical dendrite)

Weights are ``(post, pre)``; voltages and rates are ``(batch, units)``. Layer indices
``k = 1 .. N`` are stored from 0: ``pyramidal[0]`` is the first hidden layer,
``pyramidal[-1]`` the output layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from course_lib import progress as progress_
from course_lib._threads import one_thread
from course_lib._validate import check_positive, check_shape, make_generator
from course_lib.learning_rules.feedback_alignment import alignment_angle


def rate(u: torch.Tensor) -> torch.Tensor:
    """The rate: a soft rectifier, ``phi(u) = log(1 + exp(u))`` (softplus)."""
    return F.softplus(u)


@dataclass(frozen=True)
class Conductances:
    """Leak, coupling and nudging conductances (the values of Sacramento et al.'s simulations)."""

    leak: float = 0.1  # g_lk
    basal: float = 1.0  # g_B: basal dendrite -> pyramidal soma
    apical: float = 0.8  # g_A: apical dendrite -> pyramidal soma
    dendritic: float = 1.0  # g_D: interneuron dendrite -> interneuron soma
    somatic: float = 0.8  # g_som: nudging (target -> output, pyramids above -> interneurons)

    def __post_init__(self):
        for name in ("leak", "basal", "apical", "dendritic", "somatic"):
            check_positive(f"conductance {name}", getattr(self, name))


# ------------------------------------------------------------- compartments (pure functions)


def basal_voltage(forward_weight: torch.Tensor, rate_below: torch.Tensor) -> torch.Tensor:
    """``v_B,k = W_k r_{k-1}``: the bottom-up drive of a pyramidal neuron."""
    check_shape("rate_below", rate_below, (-1, forward_weight.shape[1]))
    return rate_below @ forward_weight.T


def apical_voltage(
    rate_above: torch.Tensor,
    rate_interneuron: torch.Tensor,
    top_down: torch.Tensor,
    pyramid_from_interneuron: torch.Tensor,
) -> torch.Tensor:
    """``v_A,k = B_k r_{k+1} + W^PI_k r^I_k``: top-down input minus lateral inhibition.

    ``top_down`` and ``pyramid_from_interneuron`` are ``(n_k, n_{k+1})``; the two rates
    are ``(batch, n_{k+1})``. It is zero when the interneurons copy the layer above and
    ``W^PI = -B``.
    """
    check_shape("rate_above", rate_above, (-1, top_down.shape[1]))
    check_shape("rate_interneuron", rate_interneuron, tuple(rate_above.shape))
    check_shape("pyramid_from_interneuron", pyramid_from_interneuron, tuple(top_down.shape))
    return rate_above @ top_down.T + rate_interneuron @ pyramid_from_interneuron.T


def basal_prediction(v_basal: torch.Tensor | float, g: Conductances, *, output: bool):
    """``v^_B``: the soma voltage the basal dendrite predicts when nothing else drives it.

    Hidden somas also leak into the (silent) apical compartment, so the attenuation is
    ``g_B / (g_lk + g_B + g_A)``; output somas have no apical dendrite: ``g_B / (g_lk + g_B)``.
    """
    other = 0.0 if output else g.apical
    return g.basal / (g.leak + g.basal + other) * v_basal


def interneuron_prediction(v_dendrite: torch.Tensor, g: Conductances) -> torch.Tensor:
    """``v^_I = g_D / (g_lk + g_D) v^I``: the interneuron soma its dendrite predicts."""
    return g.dendritic / (g.leak + g.dendritic) * v_dendrite


def dendritic_prediction_update(
    u_soma: torch.Tensor, v_predicted: torch.Tensor, rate_pre: torch.Tensor
) -> torch.Tensor:
    """``(phi(u) - phi(v^)) r_pre^T``, averaged over the batch (Urbanczik & Senn 2014 form).

    The rule of the forward weights (``u`` = pyramidal soma, ``v^`` = basal prediction) and
    of the pyramid-to-interneuron weights (``u`` = interneuron soma). It vanishes when the
    dendrite predicts the soma, and otherwise moves the dendrite towards the soma.
    """
    check_shape("v_predicted", v_predicted, tuple(u_soma.shape))
    check_shape("rate_pre", rate_pre, (u_soma.shape[0], -1))
    return (rate(u_soma) - rate(v_predicted)).T @ rate_pre / u_soma.shape[0]


def apical_silencing_update(v_apical: torch.Tensor, rate_interneuron: torch.Tensor) -> torch.Tensor:
    """``(0 - v_A) (r^I)^T`` averaged over the batch: interneurons learn to cancel ``v_A``."""
    check_shape("rate_interneuron", rate_interneuron, (v_apical.shape[0], -1))
    return -v_apical.T @ rate_interneuron / v_apical.shape[0]


# ------------------------------------------------------------------------- the circuit


@dataclass
class MicrocircuitState:
    """Somatic voltages (the dynamic variables) and the dendrites they imply.

    ``pyramidal[k]``: ``(batch, n_{k+1})`` for hidden layers and the output (last);
    ``interneuron[k]``: ``(batch, n_{k+2})``, one population per hidden layer;
    ``basal``, ``apical``, ``interneuron_dendrite``: the matching dendritic voltages.
    """

    pyramidal: list[torch.Tensor]
    interneuron: list[torch.Tensor]
    basal: list[torch.Tensor] = field(default_factory=list)
    apical: list[torch.Tensor] = field(default_factory=list)
    interneuron_dendrite: list[torch.Tensor] = field(default_factory=list)


class DendriticMicrocircuit:
    """Pyramidal and interneuron populations of ``sizes = (n_in, hidden..., n_out)``.

    Weights (all ``(post, pre)``, plain tensors trained by the local rules, never autograd):

    - ``forward[k]``: ``W_k``, basal input of layer ``k`` from layer ``k - 1``;
    - ``top_down[k]``: ``B_k`` ``(n_k, n_{k+1})``, fixed random apical input;
    - ``interneuron_from_pyramid[k]``: ``W^IP_k`` ``(n_{k+1}, n_k)``;
    - ``pyramid_from_interneuron[k]``: ``W^PI_k`` ``(n_k, n_{k+1})``.

    Lateral weights start random; `make_self_predicting` sets them to the state the
    plasticity rules converge to. The same seed gives the same circuit.
    """

    def __init__(
        self,
        sizes: tuple[int, ...],
        *,
        conductances: Conductances | None = None,
        weight_scale: float = 1.0,
        seed: int | torch.Generator | None = 0,
        dtype: torch.dtype = torch.float64,
    ):
        if len(sizes) < 3 or any(int(s) < 1 for s in sizes):
            raise ValueError(
                f"sizes must be (n_in, hidden..., n_out) with at least one hidden layer, "
                f"got {sizes}"
            )
        check_positive("weight_scale", weight_scale)
        self.sizes = tuple(int(s) for s in sizes)
        self.g = conductances or Conductances()
        generator = make_generator(seed)

        def draw(n_post: int, n_pre: int) -> torch.Tensor:
            std = weight_scale / math.sqrt(n_pre)
            return torch.randn(n_post, n_pre, generator=generator, dtype=dtype) * std

        pairs = list(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        self.forward = [draw(n_out, n_in) for n_in, n_out in pairs]
        hidden = self.sizes[1:-1]
        above = self.sizes[2:]
        self.top_down = [draw(n, m) for n, m in zip(hidden, above, strict=True)]
        self.interneuron_from_pyramid = [draw(m, n) for n, m in zip(hidden, above, strict=True)]
        self.pyramid_from_interneuron = [draw(n, m) for n, m in zip(hidden, above, strict=True)]

    @property
    def n_hidden_layers(self) -> int:
        return len(self.sizes) - 2

    def _check_input(self, x: torch.Tensor, target: torch.Tensor | None) -> None:
        check_shape("x", x, (-1, self.sizes[0]))
        if target is not None:
            check_shape("target", target, (x.shape[0], self.sizes[-1]))

    # ------------------------------------------------------------------ self-prediction

    def attenuation(self, layer: int) -> float:
        """Soma / basal voltage of layer ``layer`` (0-based) when its apical input is 0."""
        output = layer == len(self.forward) - 1
        return basal_prediction(1.0, self.g, output=output)

    def make_self_predicting(self) -> None:
        """Set the lateral weights to the self-predicting state.

        ``W^IP_k = (c_{k+1} / c_I) W_{k+1}`` makes interneuron ``k`` reproduce the soma of
        layer ``k + 1`` (``c`` are the soma / dendrite attenuations), and
        ``W^PI_k = -B_k`` then cancels the top-down input exactly.
        """
        c_interneuron = self.g.dendritic / (self.g.leak + self.g.dendritic)
        for k in range(self.n_hidden_layers):
            c_above = self.attenuation(k + 1)
            self.interneuron_from_pyramid[k] = c_above / c_interneuron * self.forward[k + 1].clone()
            self.pyramid_from_interneuron[k] = -self.top_down[k].clone()

    # ---------------------------------------------------------------------- dynamics

    def compartments(self, state: MicrocircuitState, x: torch.Tensor) -> MicrocircuitState:
        """Fill in the dendritic voltages implied by the somatic voltages of ``state``."""
        rates_below = [x] + [rate(u) for u in state.pyramidal[:-1]]
        state.basal = [basal_voltage(w, r) for w, r in zip(self.forward, rates_below, strict=True)]
        state.apical, state.interneuron_dendrite = [], []
        for k in range(self.n_hidden_layers):
            state.apical.append(
                apical_voltage(
                    rate(state.pyramidal[k + 1]),
                    rate(state.interneuron[k]),
                    self.top_down[k],
                    self.pyramid_from_interneuron[k],
                )
            )
            state.interneuron_dendrite.append(
                rate(state.pyramidal[k]) @ self.interneuron_from_pyramid[k].T
            )
        return state

    def _soma_drive(
        self, state: MicrocircuitState, target: torch.Tensor | None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Right-hand sides ``du/dt`` of every soma (dendrites already filled in)."""
        g = self.g
        du_pyr = []
        for k, u in enumerate(state.pyramidal):
            drive = -g.leak * u + g.basal * (state.basal[k] - u)
            if k < self.n_hidden_layers:
                drive = drive + g.apical * (state.apical[k] - u)
            elif target is not None:
                drive = drive + g.somatic * (target - u)  # nudging by the teacher
            du_pyr.append(drive)
        du_int = [
            -g.leak * u_i + g.dendritic * (v_i - u_i) + g.somatic * (u_above - u_i)
            for u_i, v_i, u_above in zip(
                state.interneuron, state.interneuron_dendrite, state.pyramidal[1:], strict=True
            )
        ]
        return du_pyr, du_int

    def euler_step(
        self,
        state: MicrocircuitState,
        x: torch.Tensor,
        target: torch.Tensor | None = None,
        *,
        dt: float = 0.1,
    ) -> MicrocircuitState:
        """One Euler step ``u <- u + dt du/dt`` of every soma (the dynamics in the docstring)."""
        self._check_input(x, target)
        check_positive("dt", dt)
        self.compartments(state, x)
        du_pyr, du_int = self._soma_drive(state, target)
        new = MicrocircuitState(
            pyramidal=[u + dt * du for u, du in zip(state.pyramidal, du_pyr, strict=True)],
            interneuron=[u + dt * du for u, du in zip(state.interneuron, du_int, strict=True)],
        )
        return self.compartments(new, x)

    def resting_state(self, x: torch.Tensor) -> MicrocircuitState:
        """All somas at 0 mV (the resting potential): the start of a simulation."""
        batch = x.shape[0]
        pyramidal = [torch.zeros(batch, n, dtype=x.dtype) for n in self.sizes[1:]]
        interneuron = [torch.zeros(batch, n, dtype=x.dtype) for n in self.sizes[2:]]
        return self.compartments(MicrocircuitState(pyramidal, interneuron), x)

    def simulate(
        self,
        x: torch.Tensor,
        target: torch.Tensor | None = None,
        *,
        dt: float = 0.1,
        n_steps: int = 500,
        state: MicrocircuitState | None = None,
    ) -> MicrocircuitState:
        """The full dynamics: ``n_steps`` Euler steps from ``state`` (rest if None)."""
        self._check_input(x, target)
        state = self.resting_state(x) if state is None else state
        for _ in range(n_steps):
            state = self.euler_step(state, x, target, dt=dt)
        return state

    def steady_state(
        self,
        x: torch.Tensor,
        target: torch.Tensor | None = None,
        *,
        max_iter: int = 200,
        tol: float = 1e-10,
    ) -> MicrocircuitState:
        """The fixed point of the dynamics, without simulating time.

        Setting ``du/dt = 0`` gives each soma as a conductance-weighted average of its
        inputs, e.g. ``u_k = (g_B v_B,k + g_A v_A,k) / (g_lk + g_B + g_A)``. The layers
        depend on each other (apical input comes from above), so the averages are
        iterated, sweeping upwards from the input, until nothing moves by more than ``tol``.
        The first sweep, with the apical and interneuron terms taken as silent, is the
        feedforward pass of the self-predicting network. After ``max_iter`` sweeps the
        last one is returned as it is (`simulate` is the check when in doubt).
        """
        self._check_input(x, target)
        g = self.g
        n_hidden = self.n_hidden_layers
        pyramidal: list[torch.Tensor] = []
        r = x
        for k, w in enumerate(self.forward):  # first sweep: apical silent
            pyramidal.append(basal_prediction(basal_voltage(w, r), g, output=k == n_hidden))
            r = rate(pyramidal[-1])
        interneuron = [u.clone() for u in pyramidal[1:]]
        state = self.compartments(MicrocircuitState(pyramidal, interneuron), x)
        for _ in range(max_iter):
            previous = [u.clone() for u in state.pyramidal + state.interneuron]
            r = x
            for k in range(n_hidden + 1):  # Gauss-Seidel: use the freshest values below
                v_b = basal_voltage(self.forward[k], r)
                if k < n_hidden:
                    v_a = apical_voltage(
                        rate(state.pyramidal[k + 1]),
                        rate(state.interneuron[k]),
                        self.top_down[k],
                        self.pyramid_from_interneuron[k],
                    )
                    u = (g.basal * v_b + g.apical * v_a) / (g.leak + g.basal + g.apical)
                elif target is None:
                    u = g.basal * v_b / (g.leak + g.basal)
                else:
                    u = (g.basal * v_b + g.somatic * target) / (g.leak + g.basal + g.somatic)
                state.pyramidal[k] = u
                r = rate(u)
                if k > 0:  # the interneurons of layer k-1 follow layer k
                    v_i = rate(state.pyramidal[k - 1]) @ self.interneuron_from_pyramid[k - 1].T
                    state.interneuron[k - 1] = (g.dendritic * v_i + g.somatic * u) / (
                        g.leak + g.dendritic + g.somatic
                    )
            change = max(
                (a - b).abs().max().item()
                for a, b in zip(state.pyramidal + state.interneuron, previous, strict=True)
            )
            if change < tol:
                break
        return self.compartments(state, x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The output somas at the steady state without a target."""
        return self.steady_state(x).pyramidal[-1]

    # ---------------------------------------------------------------------- plasticity

    def weight_updates(self, state: MicrocircuitState, x: torch.Tensor) -> dict[str, list]:
        """The three plasticity rules at ``state`` (batch averages, learning rate 1)."""
        updates = {"forward": [], "interneuron_from_pyramid": [], "pyramid_from_interneuron": []}
        rate_below = x
        for k, u in enumerate(state.pyramidal):  # forward weights: soma vs basal prediction
            is_output = k == self.n_hidden_layers
            v_hat = basal_prediction(state.basal[k], self.g, output=is_output)
            updates["forward"].append(dendritic_prediction_update(u, v_hat, rate_below))
            rate_below = rate(u)
        for k, u_i in enumerate(state.interneuron):  # lateral weights
            v_hat = interneuron_prediction(state.interneuron_dendrite[k], self.g)
            rate_pyramid = rate(state.pyramidal[k])
            updates["interneuron_from_pyramid"].append(
                dendritic_prediction_update(u_i, v_hat, rate_pyramid)
            )
            updates["pyramid_from_interneuron"].append(
                apical_silencing_update(state.apical[k], rate(u_i))
            )
        return updates

    def apply_updates(
        self,
        updates: dict[str, list],
        *,
        lr_forward: float | list[float] = 0.0,
        lr_interneuron: float = 0.0,
        lr_apical: float = 0.0,
    ) -> None:
        """``W <- W + eta dW`` for each group; a learning rate of 0 freezes that group."""
        n_forward = len(self.forward)
        rates = lr_forward if isinstance(lr_forward, list) else [lr_forward] * n_forward
        if len(rates) != n_forward:
            raise ValueError(f"lr_forward must have {n_forward} entries, got {len(rates)}")
        for k in range(n_forward):
            self.forward[k] = self.forward[k] + rates[k] * updates["forward"][k]
        for k in range(self.n_hidden_layers):
            self.interneuron_from_pyramid[k] = (
                self.interneuron_from_pyramid[k]
                + lr_interneuron * updates["interneuron_from_pyramid"][k]
            )
            self.pyramid_from_interneuron[k] = (
                self.pyramid_from_interneuron[k]
                + lr_apical * updates["pyramid_from_interneuron"][k]
            )


# ------------------------------------------------------------------- demonstrations


def learn_self_prediction(
    circuit: DendriticMicrocircuit,
    *,
    n_steps: int = 400,
    batch_size: int = 32,
    lr_interneuron: float = 1.0,
    lr_apical: float = 0.2,
    seed: int = 0,
) -> list[float]:
    """Train only the lateral weights on random inputs, without a target.

    Returns the mean ``|v_A|`` of the apical dendrites before each step: it falls towards
    0 as the interneurons learn to predict the layer above (the self-predicting state).
    """
    generator = make_generator(seed)
    dtype = circuit.forward[0].dtype
    apical = []
    with one_thread():
        for _ in range(n_steps):
            x = torch.rand(batch_size, circuit.sizes[0], generator=generator, dtype=dtype)
            state = circuit.steady_state(x)
            apical.append(torch.cat([v.abs().flatten() for v in state.apical]).mean().item())
            circuit.apply_updates(
                circuit.weight_updates(state, x),
                lr_interneuron=lr_interneuron,
                lr_apical=lr_apical,
            )
    return apical


def backprop_updates(
    circuit: DendriticMicrocircuit, x: torch.Tensor, target: torch.Tensor
) -> list[torch.Tensor]:
    """``-dL/dW_k`` of the equivalent feedforward network, by autograd.

    The network is the self-predicting circuit without a target,
    ``u_k = c_k W_k phi(u_{k-1})``, and ``L = 1/2 |u_target - u_N|^2`` (batch mean).
    """
    weights = [w.detach().clone().requires_grad_(True) for w in circuit.forward]
    r = x
    for k, w in enumerate(weights):
        u = circuit.attenuation(k) * (r @ w.T)
        r = rate(u)
    loss = 0.5 * ((target - u) ** 2).sum(1).mean()
    return [-g for g in torch.autograd.grad(loss, weights)]


@dataclass
class RegressionHistory:
    """Mean squared output error on held-out inputs, and update angles to backprop."""

    steps: list[int] = field(default_factory=list)
    test_error: list[float] = field(default_factory=list)
    angle_hidden: list[float] = field(default_factory=list)  # first hidden layer, degrees
    angle_output: list[float] = field(default_factory=list)


def teacher_regression_data(
    sizes: tuple[int, ...],
    n_samples: int,
    *,
    seed: int | torch.Generator | None = 0,
    teacher_seed: int = 1234,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs uniform in [0, 1] and the outputs of a fixed random teacher circuit."""
    teacher = DendriticMicrocircuit(sizes, seed=teacher_seed, weight_scale=2.0)
    teacher.make_self_predicting()
    x = torch.rand(n_samples, sizes[0], generator=make_generator(seed), dtype=torch.float64)
    return x, teacher.predict(x)


def train_microcircuit_regression(
    sizes: tuple[int, ...] = (8, 16, 4),
    *,
    n_steps: int = 1000,
    batch_size: int = 32,
    lr_forward: tuple[float, ...] | None = None,
    lr_interneuron: float = 0.2,
    lr_apical: float = 0.2,
    eval_every: int = 100,
    seed: int = 0,
    progress: bool | None = None,
) -> tuple[DendriticMicrocircuit, RegressionHistory]:
    """Learn a teacher network's nonlinear map with the microcircuit's local rules.

    The student starts in the self-predicting state with random forward weights and a
    fixed random top-down ``B``; all three rules stay on while it learns from the nudged
    steady states. ``lr_forward`` defaults to 1.0 for hidden layers and 0.2 for the output
    (the apical error reaching a hidden layer is attenuated by the conductance ratios).
    About 2 s on 2 CPUs. ``progress``: a bar and a closing sentence, by default in a
    notebook only (`course_lib.progress`).
    """
    n_layers = len(sizes) - 1
    lr = list(lr_forward) if lr_forward is not None else [1.0] * (n_layers - 1) + [0.2]
    if len(lr) != n_layers:
        raise ValueError(f"lr_forward must have {n_layers} entries (one per layer), got {lr}")
    circuit = DendriticMicrocircuit(sizes, seed=seed)
    circuit.make_self_predicting()
    x_test, y_test = teacher_regression_data(sizes, 256, seed=seed + 1)
    generator = make_generator(seed + 2)
    history = RegressionHistory()

    def record(step: int) -> None:
        error = ((circuit.predict(x_test) - y_test) ** 2).mean().item()
        nudged = circuit.steady_state(x_test, y_test)
        local = circuit.weight_updates(nudged, x_test)["forward"]
        exact = backprop_updates(circuit, x_test, y_test)
        history.steps.append(step)
        history.test_error.append(error)
        history.angle_hidden.append(alignment_angle(local[0], exact[0]))
        history.angle_output.append(alignment_angle(local[-1], exact[-1]))

    with one_thread():
        record(0)
        for step in progress_.steps(range(1, n_steps + 1), desc="microcircuit",
                                    progress=progress):
            x, y = teacher_regression_data(sizes, batch_size, seed=generator)
            state = circuit.steady_state(x, y)
            circuit.apply_updates(
                circuit.weight_updates(state, x),
                lr_forward=lr,
                lr_interneuron=lr_interneuron,
                lr_apical=lr_apical,
            )
            if step % eval_every == 0 or step == n_steps:
                record(step)
    progress_.report(
        f"After {n_steps} steps the test error fell from {history.test_error[0]:.3f} "
        f"to {history.test_error[-1]:.3f}.",
        progress=progress,
    )
    return circuit, history
