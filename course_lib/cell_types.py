"""Cell types and structured connectivity (Liu & Wang 2024, Nat Commun 15:6497).

Cortex has one excitatory cell class and several inhibitory ones that target different
places: PV cells inhibit the soma, SST cells inhibit the dendrites, VIP cells inhibit SST
cells (disinhibition). Liu & Wang give each excitatory neuron a soma and two dendrites and
constrain which type may synapse onto which. Their recurrent weight is (Methods)::

    W_rec = (M ⊙ |W_plastic| + W_fixed) D

- ``M``: 0/1 mask from a type-to-type table (``M[i, j] = 1`` if type(j) may synapse onto
  type(i));
- ``|W_plastic|``: trained magnitudes (the absolute value keeps them non-negative);
- ``W_fixed``: fixed, non-negative dendrite-to-soma coupling (each dendrite drives its own
  soma only, and this coupling is not learned);
- ``D = diag(s)``: Dale's sign of the presynaptic type (``+1`` E soma and E dendrite,
  ``-1`` PV, SST, VIP), acting on columns because weights are ``(post, pre)``.

Simplification: a dendrite here is a leaky ReLU rate unit like the others (Liu & Wang use
a dendritic nonlinearity whose gain depends on its inhibition). The network keeps the
`course_lib.models.RateRNN` dynamics; only the weights are structured.

Lesions of a trained network (copies; the original is untouched): `silence_units` clamps
chosen units to a rate of 0 (e.g. every SST cell); `scale_synapses` weakens (or, with
`cut_synapses`, removes) the plastic synapses between chosen types (e.g. all inhibition
onto the dendrites); `scale_random_synapses` does the same to as many random synapses.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from course_lib._validate import check_positive, check_shape, make_generator
from course_lib.connectivity import Mask, apply_mask
from course_lib.dale import NonNegative, scale_to_spectral_radius
from course_lib.models import RateRNN

CELL_TYPES: tuple[str, ...] = ("E_soma", "E_dend", "PV", "SST", "VIP")

# Dale's sign of each type as a *presynaptic* unit.
TYPE_SIGNS: dict[str, float] = {"E_soma": 1.0, "E_dend": 1.0, "PV": -1.0, "SST": -1.0, "VIP": -1.0}

# Plastic type-to-type synapses as (pre, post) pairs, after Liu & Wang 2024 (Fig. 1b),
# who follow the inhibitory wiring measured by Pfeffer et al. 2013:
# E excites everyone; PV inhibits somata and PV; SST inhibits dendrites, PV and VIP
# (not SST); VIP inhibits SST. The dendrite -> own soma coupling is fixed, not listed here.
DEFAULT_CONNECTIONS: tuple[tuple[str, str], ...] = (
    ("E_soma", "E_soma"),
    ("E_soma", "E_dend"),
    ("E_soma", "PV"),
    ("E_soma", "SST"),
    ("E_soma", "VIP"),
    ("PV", "E_soma"),
    ("PV", "PV"),
    ("SST", "E_dend"),
    ("SST", "PV"),
    ("SST", "VIP"),
    ("VIP", "SST"),
)

# External inputs reach the dendrites (sensory input) and the interneurons, not the soma
# directly: the soma hears the world through its dendrites.
DEFAULT_INPUT_TARGETS: tuple[str, ...] = ("E_dend", "PV", "SST", "VIP")

DEFAULT_COUNTS: dict[str, int] = {"E_soma": 24, "PV": 6, "SST": 6, "VIP": 6}


def check_cell_type(name: str) -> None:
    """Raise ValueError unless ``name`` is one of `CELL_TYPES`."""
    if name not in CELL_TYPES:
        raise ValueError(f"unknown cell type {name!r}: expected one of {list(CELL_TYPES)}")


@dataclass(frozen=True)
class CellTypeLayout:
    """Which unit is which type. Units are ordered E somata, E dendrites, PV, SST, VIP;
    dendrite ``k`` of soma ``i`` is unit ``n_soma + i * dendrites_per_soma + k``."""

    counts: dict[str, int]
    dendrites_per_soma: int

    @property
    def types(self) -> list[str]:
        """The type of every unit, in order."""
        return [name for name in CELL_TYPES for _ in range(self.counts[name])]

    @property
    def n_units(self) -> int:
        return sum(self.counts.values())

    def indices(self, cell_type: str) -> torch.Tensor:
        """Indices of the units of one type."""
        check_cell_type(cell_type)
        start = sum(self.counts[name] for name in CELL_TYPES[: CELL_TYPES.index(cell_type)])
        return torch.arange(start, start + self.counts[cell_type])

    def is_type(self, cell_type: str) -> torch.Tensor:
        """Boolean vector: which units are of ``cell_type``."""
        check_cell_type(cell_type)
        return torch.tensor([t == cell_type for t in self.types])


def cell_type_layout(counts: Mapping[str, int], dendrites_per_soma: int = 2) -> CellTypeLayout:
    """A layout from the number of E somata, PV, SST and VIP cells; each soma gets
    ``dendrites_per_soma`` dendrite units (Liu & Wang 2024 use two)."""
    for name in counts:
        check_cell_type(name)
        if name == "E_dend":
            raise ValueError(
                "do not count E_dend directly: set dendrites_per_soma, the number of dendrites "
                "of each E soma"
            )
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"counts[{name!r}] must be a non-negative integer, got {value!r}")
    if counts.get("E_soma", 0) < 1:
        raise ValueError("counts must include at least one 'E_soma' (the readout needs it)")
    if not isinstance(dendrites_per_soma, int) or dendrites_per_soma < 0:
        raise ValueError(
            f"dendrites_per_soma must be a non-negative integer, got {dendrites_per_soma!r}"
        )
    full = {name: int(counts.get(name, 0)) for name in CELL_TYPES}
    full["E_dend"] = full["E_soma"] * dendrites_per_soma
    return CellTypeLayout(counts=full, dendrites_per_soma=dendrites_per_soma)


def type_signs(types: list[str]) -> torch.Tensor:
    """Dale's sign of every unit from its type (``+1`` excitatory, ``-1`` inhibitory)."""
    for name in types:
        check_cell_type(name)
    return torch.tensor([TYPE_SIGNS[name] for name in types])


def type_mask(types: list[str], connections: Iterable[tuple[str, str]]) -> torch.Tensor:
    """The ``(post, pre)`` 0/1 mask ``M`` of Liu & Wang 2024: ``M[i, j] = 1`` when
    ``(types[j], types[i])`` is an allowed (pre, post) pair; no self-connections."""
    allowed = set()
    for pair in connections:
        if len(pair) != 2:
            raise ValueError(f"connections must be (pre, post) pairs of cell types, got {pair!r}")
        pre, post = pair
        check_cell_type(pre)
        check_cell_type(post)
        allowed.add((pre, post))
    mask = torch.tensor([[float((pre, post) in allowed) for pre in types] for post in types])
    mask.fill_diagonal_(0.0)
    return mask


def dendrite_to_soma(layout: CellTypeLayout, weight: float = 1.0) -> torch.Tensor:
    """``W_fixed`` (post, pre): each dendrite drives its own soma with ``weight``; all other
    entries are zero (Liu & Wang 2024, fixed dendrite-to-soma coupling)."""
    check_positive("weight", weight)
    fixed = torch.zeros(layout.n_units, layout.n_units)
    somata = layout.indices("E_soma")
    dendrites = layout.indices("E_dend").reshape(len(somata), layout.dendrites_per_soma)
    for soma, own_dendrites in zip(somata.tolist(), dendrites.tolist(), strict=True):
        fixed[soma, own_dendrites] = weight
    return fixed


def cell_type_weight(
    w_plastic: torch.Tensor, mask: torch.Tensor, w_fixed: torch.Tensor, signs: torch.Tensor
) -> torch.Tensor:
    """``W = (M ⊙ |W_plastic| + W_fixed) D`` (Liu & Wang 2024, Methods); D signs columns."""
    n = signs.shape[0]
    for name, tensor in (("w_plastic", w_plastic), ("mask", mask), ("w_fixed", w_fixed)):
        check_shape(name, tensor, (n, n))
    return (mask * w_plastic.abs() + w_fixed) * signs  # `* signs` == `@ diag(signs)`


def balance_with_fixed(
    plastic: torch.Tensor, fixed: torch.Tensor, signs: torch.Tensor
) -> torch.Tensor:
    """Rescale each unit's inhibitory plastic inputs so that they cancel its excitatory
    inputs, plastic *and* fixed (as `course_lib.dale.balance_ei`, with ``W_fixed`` counted).

    The balance holds for the matrices passed in. Scaling ``plastic`` afterwards without
    ``fixed`` (as `CellTypeRNN` does) keeps the balance of the plastic inputs only.
    Units without any inhibitory input are left as they are (a connection table may
    leave a type without inhibition, e.g. to model silenced SST cells).
    """
    is_exc = signs > 0
    exc_sum = (plastic + fixed)[:, is_exc].sum(dim=1)
    inh_sum = plastic[:, ~is_exc].sum(dim=1)
    scale = torch.where(inh_sum > 0, exc_sum / inh_sum.clamp_min(1e-30), 1.0)
    balanced = plastic.clone()
    balanced[:, ~is_exc] *= scale[:, None]
    return balanced


class CellTypeWeight(nn.Module):
    """Parametrization ``W_plastic -> (M ⊙ |W_plastic| + W_fixed) D``.

    ``mask``, ``fixed`` and ``signs`` are buffers: never trained, saved in ``state_dict``.
    """

    def __init__(self, mask: torch.Tensor, fixed: torch.Tensor, signs: torch.Tensor):
        super().__init__()
        n = signs.shape[0]
        check_shape("mask", mask, (n, n))
        check_shape("fixed", fixed, (n, n))
        if bool((fixed < 0).any()):
            raise ValueError("fixed weights must be non-negative magnitudes (D gives the sign)")
        if bool(((mask != 0) & (fixed != 0)).any()):
            raise ValueError("a synapse cannot be both plastic (mask = 1) and fixed (fixed != 0)")
        self.register_buffer("mask", mask.detach().clone().float())
        self.register_buffer("fixed", fixed.detach().clone().float())
        self.register_buffer("signs", signs.detach().clone().float())

    def forward(self, w_plastic: torch.Tensor) -> torch.Tensor:
        return cell_type_weight(w_plastic, self.mask, self.fixed, self.signs)


class CellTypeRNN(RateRNN):
    """A `RateRNN` whose units are E somata, E dendrites, PV, SST and VIP cells.

    - recurrent weights ``(M ⊙ |W_plastic| + W_fixed) D`` (`CellTypeWeight`), with ``M``
      from ``connections`` ((pre, post) type pairs) and ``W_fixed`` the dendrite-to-soma
      coupling of strength ``dendrite_weight`` (default ``1 / dendrites_per_soma``);
    - input weights non-negative and only onto the ``input_targets`` types;
    - the readout sees E somata only.

    ``layout`` tells which unit is which type; ``forward`` is `RateRNN.forward`.

    Initialisation: random magnitudes are balanced with `balance_with_fixed`, then the
    *plastic* part of the signed matrix is scaled to spectral radius ``radius``; the fixed
    dendrite-to-soma coupling is not scaled. So only the plastic part starts E/I balanced:
    dendrites and interneurons (no fixed input) receive equal excitation and inhibition,
    but each soma keeps its dendrites' fixed drive on top of a balanced plastic input
    (with the default layout, seeds 0-4: a soma's total excitation is 1.9-2.1 on average
    over somata, its inhibition 0.9-1.2), and the whole matrix, fixed part included, has
    a spectral radius that differs from ``radius`` (0.97-1.13 for ``radius=1``).
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        *,
        counts: Mapping[str, int] | None = None,
        dendrites_per_soma: int = 2,
        connections: Iterable[tuple[str, str]] = DEFAULT_CONNECTIONS,
        input_targets: Iterable[str] = DEFAULT_INPUT_TARGETS,
        dendrite_weight: float | None = None,
        dt: float = 20.0,
        tau: float = 100.0,
        noise_std: float = 0.0,
        radius: float = 1.0,
        seed: int = 0,
    ):
        layout = cell_type_layout(DEFAULT_COUNTS if counts is None else counts, dendrites_per_soma)
        if dendrite_weight is None:  # the soma sums its dendrites' average
            dendrite_weight = 1.0 / max(dendrites_per_soma, 1)
        input_targets = tuple(input_targets)
        for name in input_targets:
            check_cell_type(name)
        check_positive("radius", radius)
        n_hidden = layout.n_units
        super().__init__(
            n_input, n_hidden, n_output, dt=dt, tau=tau, noise_std=noise_std, seed=seed
        )
        self.layout = layout
        signs = type_signs(layout.types)
        mask = type_mask(layout.types, connections)
        fixed = dendrite_to_soma(layout, dendrite_weight)
        self.register_buffer("signs", signs)

        generator = make_generator(seed)
        with torch.no_grad():
            magnitudes = torch.randn(n_hidden, n_hidden, generator=generator).abs() * mask
            magnitudes = balance_with_fixed(magnitudes, fixed, signs)
            if bool(magnitudes.any()):  # scales the plastic part only, not W_fixed
                magnitudes = scale_to_spectral_radius(magnitudes * signs, radius).abs()
            self.recurrent.weight.copy_(magnitudes)
            self.input.weight.normal_(0.0, 1.0 / math.sqrt(n_input), generator=generator)
            self.input.weight.abs_()
        parametrize.register_parametrization(
            self.recurrent, "weight", CellTypeWeight(mask, fixed, signs)
        )
        targeted = torch.zeros(n_hidden)
        for name in input_targets:
            targeted[layout.indices(name)] = 1.0
        apply_mask(self.input, targeted[:, None].repeat(1, n_input))
        parametrize.register_parametrization(self.input, "weight", NonNegative())
        apply_mask(self.readout, layout.is_type("E_soma").float().repeat(n_output, 1))

    @property
    def recurrent_mask(self) -> torch.Tensor:
        """The type-to-type mask ``M`` (post, pre) of plastic synapses."""
        return self.recurrent.parametrizations.weight[0].mask

    @property
    def fixed_weight(self) -> torch.Tensor:
        """``W_fixed`` (post, pre): the dendrite-to-soma magnitudes, never trained."""
        return self.recurrent.parametrizations.weight[0].fixed


def _parametrization(module: nn.Module, kind: type) -> nn.Module:
    """The parametrization of ``module.weight`` of class ``kind`` (its buffers hold masks)."""
    return next(p for p in module.parametrizations.weight if isinstance(p, kind))


def silence_units(model: CellTypeRNN, units: torch.Tensor) -> CellTypeRNN:
    """A copy of ``model`` in which ``units`` (indices) are silent: rate 0 at every step.

    Their recurrent and input synapses and biases are removed, so they stay at 0 (noise
    aside), and so are their outgoing synapses (plastic, fixed and readout), so the other
    units run exactly as if those rates were clamped to 0.
    """
    units = torch.as_tensor(units, dtype=torch.long)
    lesioned = copy.deepcopy(model)
    recurrent = _parametrization(lesioned.recurrent, CellTypeWeight)
    with torch.no_grad():
        for matrix in (recurrent.mask, recurrent.fixed):
            matrix[units, :] = 0.0  # nothing reaches them
            matrix[:, units] = 0.0  # nothing leaves them
        _parametrization(lesioned.input, Mask).mask[units, :] = 0.0
        _parametrization(lesioned.readout, Mask).mask[:, units] = 0.0
        lesioned.input.bias[units] = 0.0
        lesioned.recurrent.bias[units] = 0.0
    return lesioned


def scale_synapses(
    model: CellTypeRNN, pairs: Iterable[tuple[str, str]], factor: float
) -> CellTypeRNN:
    """A copy of ``model`` whose plastic synapses from type ``pre`` onto type ``post``, for
    every ``(pre, post)`` in ``pairs``, are multiplied by ``factor`` (0 removes them; e.g.
    ``[("SST", "E_dend")]``: dendritic inhibition, the SST cells' other targets kept)."""
    lesioned = copy.deepcopy(model)
    mask = _parametrization(lesioned.recurrent, CellTypeWeight).mask
    layout = model.layout
    with torch.no_grad():
        for pre, post in pairs:
            mask[layout.indices(post)[:, None], layout.indices(pre)] *= factor
    return lesioned


def cut_synapses(model: CellTypeRNN, pairs: Iterable[tuple[str, str]]) -> CellTypeRNN:
    """A copy of ``model`` without its plastic synapses between the ``(pre, post)`` type
    ``pairs`` (`scale_synapses` with factor 0)."""
    return scale_synapses(model, pairs, 0.0)


def scale_random_synapses(
    model: CellTypeRNN, n_synapses: int, factor: float, seed: int = 0
) -> CellTypeRNN:
    """A copy of ``model`` with ``n_synapses`` plastic synapses, drawn at random among all
    of them, multiplied by ``factor``: the control of equal size for `scale_synapses`."""
    lesioned = copy.deepcopy(model)
    mask = _parametrization(lesioned.recurrent, CellTypeWeight).mask
    plastic = mask.flatten().nonzero().flatten()
    if not 0 <= n_synapses <= len(plastic):
        raise ValueError(f"n_synapses must be in [0, {len(plastic)}], got {n_synapses}")
    chosen = plastic[torch.randperm(len(plastic), generator=make_generator(seed))[:n_synapses]]
    with torch.no_grad():
        mask.view(-1)[chosen] *= factor
    return lesioned
