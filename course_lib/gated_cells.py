"""Gated recurrent cells: LSTM, the cortical subLSTM, and the light-GRU family.

A gate is a multiplicative (LSTM) or subtractive (subLSTM) switch on what a unit stores
or passes on: delayed addition needs an integrator (the cell state ``c``) and a gate.

Each cell's single step is a small pure function (``lstm_step``, ``sublstm_step``,
``light_gru_step``) that the cell modules call; the assignments ask students to write
the same steps and compare them with these. A step receives the *feedforward drive*
``W x_t (+ b)`` already computed: the input does not depend on the past, so the wrapper
computes it for all time steps at once (and the light-GRU batch-normalises it there).

Weights are ``(post, pre) = (out, in)``. Gate blocks are stacked along the rows, in the
order given in each step's docstring. `GatedRNN` runs any cell over a time-first neurogym
batch ``(T, B, n_input)`` and returns ``(outputs, hidden)`` like `models.RateRNN`, so
`course_lib.training.train` trains it unchanged.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from course_lib._validate import check_fraction, check_shape, make_generator
from course_lib.analysis import decision_accuracy
from course_lib.connectivity import apply_mask

State = tuple[torch.Tensor, ...]  # (h,) or (h, c); h always first

# --- one step of each cell (pure functions) ---------------------------------------------


def lstm_step(
    drive: torch.Tensor, h: torch.Tensor, c: torch.Tensor, weight_hh: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step (Hochreiter & Schmidhuber 1997, with the forget gate of Gers 2000).

    ``drive = W x_t + b`` is ``(B, 4H)`` with gate blocks ``(i, f, g, o)`` (torch's order);
    ``weight_hh`` is ``R``, ``(4H, H)``::

        [i, f, o] = σ(W x + R h + b),  g = tanh(W x + R h + b)
        c' = f ⊙ c + i ⊙ g              (multiplicative gating)
        h' = o ⊙ tanh(c')
    """
    i, f, g, o = (drive + h @ weight_hh.T).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def sublstm_step(
    drive: torch.Tensor, h: torch.Tensor, c: torch.Tensor, weight_hh: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One subLSTM step (Costa et al. 2017, "Cortical microcircuits as gated-recurrent
    neural networks"), gate blocks ``(i, f, z, o)`` in ``drive = W x_t + b``::

        [i, f, z, o] = σ(W x + R h + b)     (all sigmoid, even the candidate z)
        c' = f ⊙ c + z − i                  (input gate subtracts: inhibition-like)
        h' = σ(c') − o                      (output gate subtracts too)

    Both ``σ(c')`` and ``o`` lie in (0, 1), so ``h'`` lies in (-1, 1).
    """
    i, f, z, o = torch.sigmoid(drive + h @ weight_hh.T).chunk(4, dim=-1)
    c = f * c + z - i
    return torch.sigmoid(c) - o, c


def light_gru_step(
    drive_z: torch.Tensor,
    drive_h: torch.Tensor,
    h: torch.Tensor,
    weight_z: torch.Tensor,
    weight_h: torch.Tensor,
) -> torch.Tensor:
    """One light-GRU step (Ravanelli et al. 2018, "Light gated recurrent units for speech
    recognition"); ``drive_z = BN(W_z x_t)``, ``drive_h = BN(W_h x_t)`` are ``(B, H)``::

        z  = σ(BN(W_z x) + U_z h)           (update gate; there is no reset gate)
        h̃ = ReLU(BN(W_h x) + U_h h)         (ReLU candidate)
        h' = z ⊙ h + (1 − z) ⊙ h̃

    ``weight_z = U_z`` and ``weight_h = U_h`` are ``(H, H)``.
    """
    z = torch.sigmoid(drive_z + h @ weight_z.T)
    candidate = torch.relu(drive_h + h @ weight_h.T)
    return z * h + (1 - z) * candidate


# --- cell modules: parameters + input drive + one step ----------------------------------


def _uniform_(tensor: torch.Tensor, bound: float, generator: torch.Generator) -> None:
    with torch.no_grad():
        tensor.uniform_(-bound, bound, generator=generator)


class LSTMCell(nn.Module):
    """LSTM cell; ``forward(drive_t, (h, c)) -> (h, (h, c))`` with ``drive = input_drive(x)``.

    Initialised like `torch.nn.LSTMCell` (uniform in ``±1/sqrt(H)``), from ``seed``.
    A single bias (torch's ``bias_ih + bias_hh``) lives in ``input``.
    """

    step = staticmethod(lstm_step)
    n_gates = 4

    def __init__(self, n_input: int, n_hidden: int, *, seed: int | torch.Generator = 0):
        super().__init__()
        if n_input < 1 or n_hidden < 1:
            raise ValueError(f"n_input and n_hidden must be >= 1, got {n_input}, {n_hidden}")
        self.n_input, self.n_hidden = n_input, n_hidden
        self.input = nn.Linear(n_input, self.n_gates * n_hidden)  # W, b
        self.recurrent = nn.Linear(n_hidden, self.n_gates * n_hidden, bias=False)  # R
        generator = make_generator(seed)
        for tensor in (self.input.weight, self.input.bias, self.recurrent.weight):
            _uniform_(tensor, 1 / math.sqrt(n_hidden), generator)

    def input_drive(self, inputs: torch.Tensor) -> torch.Tensor:
        """``W x_t + b`` for every step of ``(T, B, n_input)`` at once."""
        return self.input(inputs)

    def initial_state(self, batch: int, like: torch.Tensor) -> State:
        zeros = like.new_zeros(batch, self.n_hidden)
        return zeros, zeros

    def forward(self, drive: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h, c = self.step(drive, state[0], state[1], self.recurrent.weight)
        return h, (h, c)


class SubLSTMCell(LSTMCell):
    """subLSTM cell (Costa et al. 2017): the LSTM with subtractive gates, see `sublstm_step`."""

    step = staticmethod(sublstm_step)


class LightGRUCell(nn.Module):
    """Light-GRU cell (Ravanelli et al. 2018); ``forward(drive_t, (h,)) -> (h, (h,))``.

    The feedforward drives ``[W_z x; W_h x]`` are batch-normalised over all ``T * B``
    samples of a sequence (as in the authors' pytorch-kaldi code); they have no bias since
    batch norm has its own shift. Feedforward weights: Glorot; recurrent: orthogonal.
    """

    def __init__(self, n_input: int, n_hidden: int, *, seed: int | torch.Generator = 0):
        super().__init__()
        if n_input < 1 or n_hidden < 1:
            raise ValueError(f"n_input and n_hidden must be >= 1, got {n_input}, {n_hidden}")
        self.n_input, self.n_hidden = n_input, n_hidden
        self.input = nn.Linear(n_input, 2 * n_hidden, bias=False)  # [W_z; W_h]
        self.norm = nn.BatchNorm1d(2 * n_hidden)  # per feature: BN(W_z x) and BN(W_h x)
        self.recurrent_z = nn.Linear(n_hidden, n_hidden, bias=False)  # U_z
        self.recurrent_h = nn.Linear(n_hidden, n_hidden, bias=False)  # U_h
        generator = make_generator(seed)
        nn.init.xavier_uniform_(self.input.weight, generator=generator)
        nn.init.orthogonal_(self.recurrent_z.weight, generator=generator)
        nn.init.orthogonal_(self.recurrent_h.weight, generator=generator)

    def feedforward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[W_z x_t; W_h x_t]`` before batch norm, ``(T, B, 2H)``."""
        return self.input(inputs)

    def input_drive(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[BN(W_z x_t); BN(W_h x_t)]`` for every step of ``(T, B, n_input)`` at once."""
        drive = self.feedforward(inputs)
        return self.norm(drive.flatten(0, 1)).view(drive.shape)

    def initial_state(self, batch: int, like: torch.Tensor) -> State:
        return (like.new_zeros(batch, self.n_hidden),)

    def forward(self, drive: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        drive_z, drive_h = drive.chunk(2, dim=-1)
        h = light_gru_step(
            drive_z, drive_h, state[0], self.recurrent_z.weight, self.recurrent_h.weight
        )
        return h, (h,)


# --- brain-like light-GRUs ---------------------------------------------------------------


def ei_sign_mask(n_hidden: int, frac_excitatory: float = 0.8) -> torch.Tensor:
    """Fixed ``(n_hidden, n_hidden)`` sign mask ``U_rec`` for Dale's law.

    The first ``round(frac_excitatory * n_hidden)`` units are excitatory, the rest
    inhibitory. The sign belongs to the presynaptic unit, so it fills **columns**: +1
    under excitatory units, -1 under inhibitory ones; the diagonal is 0 (no autapses).
    """
    check_fraction("frac_excitatory", frac_excitatory)
    if n_hidden < 2:
        raise ValueError(f"n_hidden must be >= 2 for an E/I network, got {n_hidden}")
    n_excitatory = round(frac_excitatory * n_hidden)
    if n_excitatory < 1:
        raise ValueError(
            f"frac_excitatory * n_hidden must round to at least 1 excitatory unit, got "
            f"{frac_excitatory} * {n_hidden}"
        )
    signs = torch.ones(n_hidden)
    signs[n_excitatory:] = -1.0
    mask = signs.expand(n_hidden, n_hidden).clone()  # row i, column j: sign of unit j
    mask.fill_diagonal_(0.0)
    return mask


class RectifiedSign(nn.Module):
    """Parametrization ``W -> relu(W) ⊙ M``: magnitudes are trained, signs are fixed by M.

    Rectifying first (Song et al. 2016, "Dale's principle") means an optimiser step can shrink a
    synapse to zero but never flip its sign; M's zeros stay zero with zero gradient.
    """

    def __init__(self, sign_mask: torch.Tensor):
        super().__init__()
        self.register_buffer("sign_mask", sign_mask.detach().clone().float())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return torch.relu(weight) * self.sign_mask


class EILightGRUCell(LightGRUCell):
    """Light-GRU whose recurrent candidate weights obey Dale's law: ``U_h ⊙ U_rec``.

    ``U_h`` is trained through `RectifiedSign` with the fixed `ei_sign_mask`. Activity is
    non-negative (ReLU candidate, ``h_0 = 0``, convex mix), so a positive column really
    excites. Inhibitory columns start ``n_E / n_I`` times stronger so that excitation and
    inhibition balance on average. Train it with an L2 rate penalty
    (`course_lib.regularisers.l2_rates`), as in the coursework study.
    """

    def __init__(
        self,
        n_input: int,
        n_hidden: int,
        *,
        frac_excitatory: float = 0.8,
        seed: int | torch.Generator = 0,
    ):
        generator = make_generator(seed)
        super().__init__(n_input, n_hidden, seed=generator)
        mask = ei_sign_mask(n_hidden, frac_excitatory)
        n_excitatory = int((mask.sum(dim=0) > 0).sum())  # columns of positive sign
        n_inhibitory = n_hidden - n_excitatory
        with torch.no_grad():  # non-negative magnitudes, ~ |N(0, 1/H)|
            magnitude = self.recurrent_h.weight
            magnitude.normal_(0.0, 1 / math.sqrt(n_hidden), generator=generator).abs_()
            if n_inhibitory:
                magnitude[:, n_excitatory:] *= n_excitatory / n_inhibitory
        parametrize.register_parametrization(self.recurrent_h, "weight", RectifiedSign(mask))
        self.n_excitatory = n_excitatory

    @property
    def sign_mask(self) -> torch.Tensor:
        return self.recurrent_h.parametrizations.weight[0].sign_mask


def block_diagonal_mask(n_hidden: int, n_dendrites: int) -> torch.Tensor:
    """``(n_hidden, n_hidden * n_dendrites)`` mask: unit k sees only its own dendrites.

    Row ``k`` has ones in columns ``k * n_dendrites`` to ``(k + 1) * n_dendrites - 1``.
    """
    if n_hidden < 1 or n_dendrites < 1:
        raise ValueError(f"n_hidden and n_dendrites must be >= 1, got {n_hidden}, {n_dendrites}")
    return torch.kron(torch.eye(n_hidden), torch.ones(1, n_dendrites))


class ENULightGRUCell(LightGRUCell):
    """Light-GRU whose units are small networks ("ENU"), after Poirazi, Brannon & Mel 2003:
    a pyramidal neuron's rate is well predicted by a two-layer network of dendritic
    subunits summed at the soma.

    Every unit owns ``n_dendrites`` ReLU subunits of the input, ``ĥ = ReLU(W x + b)``
    (``(H * n_dendrites, n_input)``); the gates read them through a block-diagonal masked
    matrix, so unit k's ``BN(W_z ĥ)`` and ``BN(W_h ĥ)`` sum only unit k's own subunits.
    The mask is an `apply_mask` parametrization: its zeros never train.
    """

    def __init__(
        self,
        n_input: int,
        n_hidden: int,
        *,
        n_dendrites: int = 4,
        seed: int | torch.Generator = 0,
    ):
        if n_input < 1:
            raise ValueError(f"n_input must be >= 1, got {n_input}")
        generator = make_generator(seed)
        mask = block_diagonal_mask(n_hidden, n_dendrites)
        super().__init__(n_hidden * n_dendrites, n_hidden, seed=generator)
        self.n_input, self.n_dendrites = n_input, n_dendrites
        self.dendrites = nn.Linear(n_input, n_hidden * n_dendrites)  # W, b of ĥ
        _uniform_(self.dendrites.weight, 1 / math.sqrt(n_input), generator)
        _uniform_(self.dendrites.bias, 1 / math.sqrt(n_input), generator)
        apply_mask(self.input, torch.cat([mask, mask]))  # for W_z and for W_h

    def feedforward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[W_z ĥ; W_h ĥ]`` with ``ĥ = ReLU(W x + b)``, ``(T, B, 2H)``; ``self.input``
        is block-diagonal, so unit k's two drives sum only its own subunits."""
        return self.input(torch.relu(self.dendrites(inputs)))


# --- the network: any cell + a linear readout --------------------------------------------

CELLS: dict[str, type[nn.Module]] = {
    "lstm": LSTMCell,
    "sublstm": SubLSTMCell,
    "light_gru": LightGRUCell,
    "ei_light_gru": EILightGRUCell,
    "enu_light_gru": ENULightGRUCell,
}


class GatedRNN(nn.Module):
    """A gated cell run over time, with a linear readout ``z_t = W_out h_t + b_out``.

    ``forward(inputs)`` takes ``(T, B, n_input)`` and returns ``(outputs, hidden)`` with
    shapes ``(T, B, n_output)`` and ``(T, B, n_hidden)``, like `models.RateRNN`.
    """

    def __init__(self, cell: nn.Module, n_output: int, *, seed: int | torch.Generator = 0):
        super().__init__()
        if n_output < 1:
            raise ValueError(f"n_output must be >= 1, got {n_output}")
        self.cell = cell
        self.n_hidden = cell.n_hidden
        self.readout = nn.Linear(cell.n_hidden, n_output)
        with torch.no_grad():
            std = 1 / math.sqrt(cell.n_hidden)
            self.readout.weight.normal_(0.0, std, generator=make_generator(seed))
            self.readout.bias.zero_()

    def forward(
        self, inputs: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        check_shape("inputs", inputs, (-1, -1, self.cell.n_input))
        drives = self.cell.input_drive(inputs)  # all time steps at once
        if state is None:
            state = self.cell.initial_state(inputs.shape[1], inputs)
        hidden = []
        # cached(): a constrained weight (mask, Dale) is computed once per sequence
        with parametrize.cached():
            for drive in drives:
                h, state = self.cell(drive, state)
                hidden.append(h)
        hidden = torch.stack(hidden)
        return self.readout(hidden), hidden


def make_gated_rnn(
    kind: str, n_input: int, n_hidden: int, n_output: int, *, seed: int = 0, **cell_kwargs
) -> GatedRNN:
    """A seeded `GatedRNN` with a cell named in `CELLS`, e.g. ``"ei_light_gru"``.

    Extra keyword arguments go to the cell (``frac_excitatory``, ``n_dendrites``).
    """
    if kind not in CELLS:
        raise ValueError(f"kind must be one of {sorted(CELLS)}, got {kind!r}")
    generator = make_generator(seed)
    cell = CELLS[kind](n_input, n_hidden, seed=generator, **cell_kwargs)
    return GatedRNN(cell, n_output, seed=generator)


# --- fair comparisons: parameter counts, and several seeds trained at once -----------------


def count_free_parameters(model: nn.Module) -> int:
    """The number of weights training can change.

    Every entry of every parameter counts, except the entries a parametrization pins at
    zero: an `apply_mask` zero (the ENU's block-diagonal gates) or a zero of Dale's sign
    mask (the EI-light-GRU's diagonal). They are found by passing a tensor of ones through
    the parametrization: what comes out as zero can never be anything else.
    """
    total = 0
    for name, parameter in model.named_parameters():
        if ".parametrizations." not in name:
            total += parameter.numel()
    for module in model.modules():
        if parametrize.is_parametrized(module):
            for chain in module.parametrizations.values():
                with torch.no_grad():
                    weight = torch.ones_like(chain.original)
                    for parametrization in chain:
                        weight = parametrization(weight)
                total += int((weight != 0).sum())
    return total


def hidden_size_for(
    kind: str, n_params: int, n_input: int, n_output: int, **cell_kwargs
) -> int:
    """The hidden size at which a `make_gated_rnn` network of ``kind`` has the number of
    free parameters (`count_free_parameters`) closest to ``n_params``; ties go to the
    smaller network."""
    if n_params < 1:
        raise ValueError(f"n_params must be >= 1, got {n_params}")

    def count(n_hidden: int) -> int:
        return count_free_parameters(
            make_gated_rnn(kind, n_input, n_hidden, n_output, **cell_kwargs))

    smallest = 2 if kind == "ei_light_gru" else 1  # an E/I network needs two units
    n_hidden, previous = smallest, None
    while (current := count(n_hidden)) < n_params:  # counts grow with the hidden size
        n_hidden, previous = n_hidden + 1, current
    if previous is not None and n_params - previous <= current - n_params:
        return n_hidden - 1
    return n_hidden


class SeedEnsemble:
    """Several seeds of one `GatedRNN` run as one batched computation (``torch.vmap``).

    Each seed keeps its own weights and batch-norm statistics, stacked along a first
    dimension of size ``n_seeds`` (`torch.func.stack_module_state`); one pass through time
    serves them all, so on a CPU ``n`` seeds cost far less than ``n`` runs. ``forward``
    returns ``outputs (n_seeds, T, B, n_output)`` and ``hidden (n_seeds, T, B, n_hidden)``;
    `seed` gives one seed back as a stand-alone `GatedRNN`.
    """

    def __init__(self, models: list[GatedRNN]):
        if not models or len({type(m.cell) for m in models}) != 1:
            raise ValueError("SeedEnsemble needs at least one model, all of one cell type")
        self.n_seeds = len(models)
        self.params, self.buffers = torch.func.stack_module_state(models)
        self._template = copy.deepcopy(models[0])

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def train(self, mode: bool = True) -> SeedEnsemble:
        """Training mode: batch norm uses the batch's statistics and updates its running
        ones; eval mode (``train(False)``): it uses the running statistics."""
        self._template.train(mode)
        return self

    def eval(self) -> SeedEnsemble:
        return self.train(False)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        def one_seed(params, buffers):
            return torch.func.functional_call(self._template, (params, buffers), (inputs,))

        return torch.vmap(one_seed)(self.params, self.buffers)

    __call__ = forward

    def seed(self, index: int) -> GatedRNN:
        """A copy of seed number ``index`` (its weights and batch-norm statistics)."""
        model = copy.deepcopy(self._template)
        state = {name: value[index] for name, value in {**self.params, **self.buffers}.items()}
        model.load_state_dict({name: value.detach().clone() for name, value in state.items()})
        return model


@dataclass
class EnsembleHistory:
    """Training loss at every step ``(n_steps, n_seeds)``; decision accuracy on the
    training batch every ``eval_every`` steps ``(n_evals, n_seeds)``, at ``eval_steps``."""

    loss: torch.Tensor
    accuracy: torch.Tensor
    eval_steps: list[int]


def train_ensemble(
    ensemble: SeedEnsemble,
    batches: list,
    *,
    n_steps: int,
    lr: float = 1e-2,
    eval_every: int = 25,
) -> EnsembleHistory:
    """Adam on the cross-entropy at every step, every seed on the same ``batches`` (used in
    order, cycled): each seed trains exactly as alone (`course_lib.coursework.train_study`
    without its options). The loss minimised is the sum of the seeds' losses, so each seed's
    weights get their own gradient, and Adam acts entry by entry."""
    if n_steps < 1 or not batches:
        raise ValueError(f"need n_steps >= 1 and some batches, got {n_steps}, {len(batches)}")
    optimizer = torch.optim.Adam(ensemble.parameters(), lr=lr)
    losses, accuracy, eval_steps = [], [], []
    ensemble.train()
    for step in range(1, n_steps + 1):
        batch = batches[(step - 1) % len(batches)]
        outputs, _ = ensemble(batch.inputs)
        per_seed = torch.stack([
            nn.functional.cross_entropy(out.flatten(0, 1), batch.targets.flatten())
            for out in outputs
        ])
        optimizer.zero_grad()
        per_seed.sum().backward()
        optimizer.step()
        losses.append(per_seed.detach())
        if step % eval_every == 0 or step == n_steps:
            accuracy.append(torch.tensor([decision_accuracy(out.detach(), batch.targets)
                                          for out in outputs]))
            eval_steps.append(step)
    return EnsembleHistory(torch.stack(losses), torch.stack(accuracy), eval_steps)
