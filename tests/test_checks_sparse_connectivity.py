"""The assignment-01 checkers: the reference and correct variants pass at several seeds;
each plausible mistake is rejected with its own message and mistake id, in the student's
terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from catalogue import AlwaysEqual, not_implemented, rejects
from torch import nn
from torch.nn.utils import parametrize

from course_lib import connectivity
from course_lib.checks import sparse_connectivity
from course_lib.checks.sparse_connectivity import check_rate_rnn_step

SEEDS = (0, 20261, 777)


# ------------------------------------------------------------------ part 1: the mask


def check_random_sparse_mask(fn, seed=0):
    """The checker, allowed to see the reference: many cases here are built on it."""
    sparse_connectivity.check_random_sparse_mask(fn, seed, allow_reference=True)


def check_mask_module(cls, seed=0):
    sparse_connectivity.check_mask_module(cls, seed, allow_reference=True)


def check_sparse_linear(fn, seed=0):
    sparse_connectivity.check_sparse_linear(fn, seed, allow_reference=True)


def reference_mask(n_post, n_pre, density, seed=0, self_connections=True):
    return connectivity.random_sparse_mask(
        n_post, n_pre, density, seed=seed, self_connections=self_connections
    )


def test_a_submission_may_not_use_the_reference():
    class Subclassed(connectivity.Mask):
        pass

    def built_on_reference(n_in, n_out, density, seed=0):
        return connectivity.apply_mask(nn.Linear(n_in, n_out),
                                       reference_mask(n_out, n_in, density, seed))

    cases = [
        (sparse_connectivity.check_random_sparse_mask, connectivity.random_sparse_mask),
        (sparse_connectivity.check_random_sparse_mask, reference_mask),  # a wrapper
        (sparse_connectivity.check_mask_module, connectivity.Mask),
        (sparse_connectivity.check_mask_module, Subclassed),
        (sparse_connectivity.check_sparse_linear, built_on_reference),
    ]
    for check, submission in cases:
        rejects(check, submission, "sparse_connectivity.uses_reference", "reference implementation")


def loop_mask(n_post, n_pre, density, seed=0, self_connections=True):
    """A correct student version: shuffle the list of allowed (i, j) pairs."""
    if density <= 0 or density > 1:
        raise ValueError("density must be in (0, 1]")
    pairs = [(i, j) for i in range(n_post) for j in range(n_pre) if self_connections or i != j]
    g = torch.Generator()
    g.manual_seed(seed)
    order = torch.randperm(len(pairs), generator=g)
    mask = torch.zeros(n_post, n_pre)
    for k in order[: round(density * len(pairs))].tolist():
        mask[pairs[k]] = 1
    return mask


def topk_mask(n_post, n_pre, density, seed=0, self_connections=True):
    """A correct student version: the entries with the largest uniform scores."""
    if not 0 < density <= 1:
        raise ValueError("density must be in (0, 1]")
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(n_post, n_pre, generator=g)
    if not self_connections:
        scores.fill_diagonal_(-1.0)
    n_allowed = n_post * n_pre - (0 if self_connections else n_post)
    keep = scores.flatten().topk(round(density * n_allowed)).indices
    mask = torch.zeros(n_post * n_pre)
    mask[keep] = 1.0
    return mask.reshape(n_post, n_pre)


@pytest.mark.parametrize("fn", [reference_mask, loop_mask, topk_mask])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_masks_pass(fn, seed):
    check_random_sparse_mask(fn, seed=seed)


def transposed(n_post, n_pre, density, seed=0, self_connections=True):
    return reference_mask(n_pre, n_post, density, seed=seed, self_connections=self_connections)


def bernoulli(n_post, n_pre, density, seed=0, self_connections=True):
    if not 0 < density <= 1:
        raise ValueError
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(n_post, n_pre, generator=g) < density).float()
    if not self_connections:
        mask.fill_diagonal_(0)
    return mask


def inverted(n_post, n_pre, density, seed=0, self_connections=True):
    if density == 1.0:
        return reference_mask(n_post, n_pre, density, seed, self_connections)
    mask = 1 - reference_mask(n_post, n_pre, density, seed, self_connections)
    if not self_connections:
        mask.fill_diagonal_(0)
    return mask


def keeps_diagonal(n_post, n_pre, density, seed=0, self_connections=True):
    return reference_mask(n_post, n_pre, density, seed=seed, self_connections=True)


def counts_diagonal(n_post, n_pre, density, seed=0, self_connections=True):
    """round(density * n_post * n_pre) ones among the off-diagonal entries."""
    if not 0 < density <= 1:
        raise ValueError
    allowed = torch.ones(n_post, n_pre, dtype=torch.bool)
    if not self_connections:
        allowed.fill_diagonal_(False)
    index = allowed.flatten().nonzero().squeeze(1)
    g = torch.Generator().manual_seed(seed)
    chosen = index[torch.randperm(len(index), generator=g)[: round(density * n_post * n_pre)]]
    mask = torch.zeros(n_post * n_pre)
    mask[chosen] = 1
    return mask.reshape(n_post, n_pre)


def global_seed(n_post, n_pre, density, seed=0, self_connections=True):
    torch.manual_seed(seed)
    return reference_mask(n_post, n_pre, density, seed=seed, self_connections=self_connections)


def global_rng(n_post, n_pre, density, seed=0, self_connections=True):
    return reference_mask(n_post, n_pre, density, seed=int(torch.randint(0, 10**6, (1,))),
                          self_connections=self_connections)


def python_random(n_post, n_pre, density, seed=0, self_connections=True):
    import random

    return reference_mask(n_post, n_pre, density, seed=random.randrange(10**6),
                          self_connections=self_connections)


def numpy_global_seed(n_post, n_pre, density, seed=0, self_connections=True):
    """Reproducible and uniform, but it reseeds numpy's global generator."""
    np.random.seed(seed)  # noqa: NPY002 - the mistake under test
    allowed = [(i, j) for i in range(n_post) for j in range(n_pre) if self_connections or i != j]
    mask = torch.zeros(n_post, n_pre)
    for k in np.random.choice(len(allowed), round(density * len(allowed)), replace=False):  # noqa: NPY002
        mask[allowed[k]] = 1.0
    return mask


def numpy_generator(n_post, n_pre, density, seed=0, self_connections=True):
    """A correct variant: numpy's own seeded Generator, no global state."""
    if not 0 < density <= 1:
        raise ValueError("density must be in (0, 1]")
    rng = np.random.default_rng(seed)
    allowed = [(i, j) for i in range(n_post) for j in range(n_pre) if self_connections or i != j]
    mask = torch.zeros(n_post, n_pre)
    for k in rng.choice(len(allowed), round(density * len(allowed)), replace=False):
        mask[allowed[k]] = 1.0
    return mask


def test_a_mask_from_a_seeded_numpy_generator_passes():
    check_random_sparse_mask(numpy_generator)


def constant_seed(n_post, n_pre, density, seed=0, self_connections=True):
    return reference_mask(n_post, n_pre, density, seed=0, self_connections=self_connections)


def contiguous_block(n_post, n_pre, density, seed=0, self_connections=True):
    """Random, seeded, exact count, but one contiguous run of entries: not uniform."""
    if not 0 < density <= 1:
        raise ValueError
    allowed = torch.ones(n_post, n_pre, dtype=torch.bool)
    if not self_connections:
        allowed.fill_diagonal_(False)
    index = allowed.flatten().nonzero().squeeze(1)
    n_ones = round(density * index.numel())
    g = torch.Generator().manual_seed(seed)
    start = int(torch.randint(0, index.numel() - n_ones + 1, (1,), generator=g))
    mask = torch.zeros(n_post * n_pre)
    mask[index[start : start + n_ones]] = 1
    return mask.reshape(n_post, n_pre)


def _per_line(n_lines, n_other, density, seed, self_connections):
    """Spread the ones as evenly as possible over the lines: shuffled within each line."""
    if not 0 < density <= 1:
        raise ValueError
    n_allowed = n_lines * n_other - (0 if self_connections else n_lines)
    total = round(density * n_allowed)
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(n_lines, n_other)
    line_order = torch.randperm(n_lines, generator=g).tolist()
    for rank, line in enumerate(line_order):
        k = total // n_lines + (1 if rank < total % n_lines else 0)
        candidates = [j for j in range(n_other) if self_connections or j != line]
        picks = torch.randperm(len(candidates), generator=g)[:k].tolist()
        for p in picks:
            mask[line, candidates[p]] = 1
    return mask


def fixed_per_row(n_post, n_pre, density, seed=0, self_connections=True):
    return _per_line(n_post, n_pre, density, seed, self_connections)


def fixed_per_column(n_post, n_pre, density, seed=0, self_connections=True):
    return _per_line(n_pre, n_post, density, seed, self_connections).T.contiguous()


def weighted_not_binary(n_post, n_pre, density, seed=0, self_connections=True):
    g = torch.Generator().manual_seed(seed)
    mask = reference_mask(n_post, n_pre, density, seed, self_connections)
    return mask * torch.rand(n_post, n_pre, generator=g)


def no_validation(n_post, n_pre, density, seed=0, self_connections=True):
    return reference_mask(n_post, n_pre, min(max(density, 0.01), 1.0), seed, self_connections)


def assert_validation(n_post, n_pre, density, seed=0, self_connections=True):
    assert 0 < density <= 1, "density must be in (0, 1]"
    return reference_mask(n_post, n_pre, density, seed, self_connections)


def square_only(n_post, n_pre, density, seed=0, self_connections=True):
    return reference_mask(n_post, n_post, density, seed, self_connections)


MASK_MISTAKES = [
    (lambda *a, **k: reference_mask(*a, **k).numpy(), "common.wrong_type",
     "must return a torch.Tensor, got numpy.ndarray"),
    (lambda *a, **k: reference_mask(*a, **k).tolist(), "common.wrong_type", "got builtins.list"),
    (lambda *a, **k: None, "common.wrong_type", "did you forget `return`"),
    (lambda *a, **k: reference_mask(*a, **k).to_sparse(), "common.sparse", "sparse tensor"),
    (lambda *a, **k: reference_mask(*a, **k).as_subclass(AlwaysEqual), "common.tensor_subclass",
     "subclass"),
    (lambda *a, **k: reference_mask(*a, **k).double(), "common.wrong_dtype", "torch.float64"),
    (lambda *a, **k: reference_mask(*a, **k).half(), "common.wrong_dtype", "torch.float16"),
    (transposed, "sparse_connectivity.mask_transposed",
     r"has shape \(5, 6\) but should be \(n_post, n_pre\) = \(6, 5\)"),
    (square_only, "common.wrong_shape", r"has shape \(6, 6\) but should be"),
    (bernoulli, "sparse_connectivity.wrong_count", r"must have exactly round\(0.5 \* 30\) = 15"),
    (inverted, "sparse_connectivity.mask_inverted", "looks inverted"),
    (keeps_diagonal, "sparse_connectivity.diagonal_not_zero",
     "with self_connections=False the diagonal must be 0"),
    (counts_diagonal, "sparse_connectivity.diagonal_counted", "count only the 30 allowed"),
    (global_seed, "common.global_rng", "used or reseeded a global random generator"),
    (global_rng, "common.global_rng", "used or reseeded a global random generator"),
    (python_random, "common.global_rng", "used or reseeded a global random generator"),
    (numpy_global_seed, "common.global_rng", "used or reseeded a global random generator"),
    (constant_seed, "sparse_connectivity.seed_ignored", "gave the same mask: the seed must decide"),
    (contiguous_block, "sparse_connectivity.not_uniform",
     "choose the connected entries uniformly at random"),
    (fixed_per_row, "sparse_connectivity.fixed_count_per_row", "not a fixed number per row"),
    (fixed_per_column, "sparse_connectivity.fixed_count_per_column",
     "not a fixed number per column"),
    (weighted_not_binary, "sparse_connectivity.mask_not_binary", "only 0s and 1s"),
    (no_validation, "sparse_connectivity.no_value_error", r"density=0.0, .*should raise ValueErr"),
    (assert_validation, "sparse_connectivity.wrong_error", "raised AssertionError; it should"),
    (not_implemented, "common.not_implemented", "is not implemented yet"),
]


@pytest.mark.parametrize(("wrong", "mistake", "message"), MASK_MISTAKES)
def test_wrong_masks_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_random_sparse_mask, wrong, mistake, message)


@pytest.mark.parametrize("dtype", [torch.bool, torch.int64, torch.uint8])
def test_a_boolean_or_integer_mask_passes(dtype):
    """A mask only multiplies weights, and float32 * bool (or int) stays float32: the later
    parts (Mask, sparse_linear, rate_rnn_step) work with it, so it is not a mistake."""
    check_random_sparse_mask(lambda *a, **k: reference_mask(*a, **k).to(dtype))


def test_the_mask_checker_leaves_the_global_random_state_alone():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    check_random_sparse_mask(reference_mask)
    assert torch.equal(torch.get_rng_state(), before)


# ------------------------------------------------------------------ part 2: the Mask module


def _buffered(forward, convert=lambda m: m.clone()):
    class Module(nn.Module):
        def __init__(self, mask):
            super().__init__()
            self.register_buffer("mask", convert(mask))

    Module.forward = forward
    return Module


BoolBuffer = _buffered(lambda self, weight: weight * self.mask, lambda m: m.bool())
WhereForward = _buffered(lambda self, weight: torch.where(self.mask.bool(), weight, 0.0))
MulForward = _buffered(lambda self, weight: torch.mul(self.mask, weight))


@pytest.mark.parametrize("cls", [connectivity.Mask, BoolBuffer, WhereForward, MulForward])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_mask_modules_pass(cls, seed):
    check_mask_module(cls, seed=seed)


class PlainAttribute(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.mask = mask

    def forward(self, weight):
        return weight * self.mask


class TrainableMask(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.mask = nn.Parameter(mask.clone())

    def forward(self, weight):
        return weight * self.mask


class NotAModule:
    def __init__(self, mask):
        self.mask = mask

    def __call__(self, weight):
        return weight * self.mask


class WrongBufferName(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("m", mask.clone())

    def forward(self, weight):
        return weight * self.m


class FixedMaskInPlace(nn.Module):
    """Changes the caller's mask in place while storing it."""

    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask.sub_(1).abs_())

    def forward(self, weight):
        return weight * self.mask


class TransposedBuffer(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask.T.clone())

    def forward(self, weight):
        return weight * self.mask.T


MASK_MODULE_MISTAKES = [
    (TransposedBuffer, "sparse_connectivity.buffer_not_mask", "does not hold the mask"),
    (NotAModule, "sparse_connectivity.mask_not_module", "must be a subclass of torch.nn.Module"),
    (PlainAttribute, "sparse_connectivity.mask_not_buffer", "must be a buffer named 'mask'"),
    (WrongBufferName, "sparse_connectivity.mask_not_buffer", r"buffers are \['m'\]"),
    (TrainableMask, "sparse_connectivity.mask_is_parameter", "must not be a trainable"),
    (_buffered(lambda self, weight: weight), "sparse_connectivity.forward_identity",
     "returned the weight unchanged"),
    (_buffered(lambda self, weight: self.mask), "sparse_connectivity.forward_returns_mask",
     "returned the mask itself"),
    (_buffered(lambda self, weight: weight * (1 - self.mask)),
     "sparse_connectivity.forward_inverted_mask", r"weight \* \(1 - mask\)"),
    (_buffered(lambda self, weight: weight.data.mul_(self.mask)), "common.in_place",
     "changed its argument"),
    (_buffered(lambda self, weight: weight.detach() * self.mask), "common.no_gradient",
     "no gradient can flow"),
    (_buffered(lambda self, weight: weight * self.mask.T), "common.raised", "raised RuntimeError"),
    (_buffered(lambda self, weight: weight * self.mask, lambda m: m.double()),
     "sparse_connectivity.forward_wrong_dtype", "returned dtype torch.float64 for a torch.float32"),
    (_buffered(lambda self, weight: weight * self.mask + 0 * weight.detach() ** 2
               + (weight - weight.detach()) * (1 - self.mask)),
     "sparse_connectivity.wrong_gradient", "should be the mask itself"),
    (_buffered(lambda self, weight: (weight * self.mask).clamp(-3, 3)),
     "sparse_connectivity.forward_not_product", r"should be weight \* mask"),
    (FixedMaskInPlace, "common.in_place", "changed its argument"),
]


@pytest.mark.parametrize(("wrong", "mistake", "message"), MASK_MODULE_MISTAKES)
def test_wrong_mask_modules_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_mask_module, wrong, mistake, message)


# ------------------------------------------------------------------ part 3: sparse layer


def own_mask(n_post, n_pre, density, seed):
    return loop_mask(n_post, n_pre, density, seed=seed)


class OwnMask(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask.clone())

    def forward(self, weight):
        return weight * self.mask


def good_sparse_linear(n_in, n_out, density, seed=0):
    layer = nn.Linear(n_in, n_out)
    mask = own_mask(n_out, n_in, density, seed)
    with torch.no_grad():
        layer.weight.mul_(mask)
    parametrize.register_parametrization(layer, "weight", OwnMask(mask))
    return layer


def not_zeroed_underneath(n_in, n_out, density, seed=0):
    """Registers the mask but keeps the dense values: still correct for training."""
    layer = nn.Linear(n_in, n_out)
    parametrize.register_parametrization(layer, "weight", OwnMask(own_mask(n_out, n_in, density,
                                                                           seed)))
    return layer


@pytest.mark.parametrize("fn", [good_sparse_linear, not_zeroed_underneath])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_sparse_layers_pass(fn, seed):
    sparse_connectivity.check_sparse_linear(fn, seed)  # no reference needed, none allowed


def zeroed_once(n_in, n_out, density, seed=0):
    layer = nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.mul_(own_mask(n_out, n_in, density, seed))
    return layer


def transposed_layer(n_in, n_out, density, seed=0):
    return nn.Linear(n_out, n_in)


def frozen_weights(n_in, n_out, density, seed=0):
    layer = good_sparse_linear(n_in, n_out, density, seed)
    for p in layer.parameters():
        p.requires_grad_(False)
    return layer


def global_rng_layer(n_in, n_out, density, seed=0):
    """The mask's seed drawn from the global generator: the checker moves that generator on
    between two calls with the same seed, so the pattern changes."""
    return good_sparse_linear(n_in, n_out, density, seed=int(torch.randint(10**6, (1,))))


def frozen_weight_only(n_in, n_out, density, seed=0):
    """The bias still learns, the weights do not."""
    layer = good_sparse_linear(n_in, n_out, density, seed)
    layer.parametrizations.weight.original.requires_grad_(False)
    return layer


def unseeded_layer(n_in, n_out, density, seed=0):
    import random

    return good_sparse_linear(n_in, n_out, density, seed=random.randrange(10**6))


def double_layer(n_in, n_out, density, seed=0):
    return good_sparse_linear(n_in, n_out, density, seed).double()


def float64_layer(n_in, n_out, density, seed=0):
    layer = nn.Linear(n_in, n_out)
    parametrize.register_parametrization(layer, "weight",
                                         OwnMask(own_mask(n_out, n_in, density, seed).double()))
    return layer


class MaskOnlyAtFirstCall(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)
        self.calls = 0

    def forward(self, weight):
        self.calls += 1
        return weight * self.mask if self.calls <= 3 else weight


def leaky(n_in, n_out, density, seed=0):
    """A parametrization that forgets the mask during training."""
    layer = nn.Linear(n_in, n_out)
    mask = own_mask(n_out, n_in, density, seed)
    with torch.no_grad():
        layer.weight.mul_(mask)
    parametrize.register_parametrization(layer, "weight", MaskOnlyAtFirstCall(mask))
    return layer


SPARSE_LAYER_MISTAKES = [
    (zeroed_once, "sparse_connectivity.not_parametrized", "is not parametrized: register"),
    (lambda n_in, n_out, d, seed=0: good_sparse_linear(n_in, n_out, 1 - d, seed),
     "sparse_connectivity.layer_wrong_zeros", "should have exactly 90 zeros"),
    (transposed_layer, "sparse_connectivity.layer_shape", r"weight has shape \(12, 10\)"),
    (lambda *a, **k: nn.Sequential(good_sparse_linear(*a, **k)), "sparse_connectivity.not_linear",
     "must return an nn.Linear, got Sequential"),
    (frozen_weights, "sparse_connectivity.training_raised", "with AdamW raised"),
    (lambda n_in, n_out, d, seed=0: good_sparse_linear(n_in, n_out, d, seed=0),
     "sparse_connectivity.layer_seed_ignored", "gave the same sparsity pattern"),
    (global_rng_layer, "sparse_connectivity.layer_not_seeded", "two different sparsity patterns"),
    (unseeded_layer, "sparse_connectivity.layer_not_seeded", "two different sparsity patterns"),
    (float64_layer, "common.raised", "parametrized dtype: torch.float64"),
    (double_layer, "common.wrong_dtype", "torch.float64"),
    (frozen_weight_only, "sparse_connectivity.weights_not_trained", "no connected weight"),
    (leaky, "sparse_connectivity.zeros_leaked", "masked weights .* are no longer zero"),
    (not_implemented, "common.not_implemented", "is not implemented yet"),
]


@pytest.mark.parametrize(("wrong", "mistake", "message"), SPARSE_LAYER_MISTAKES)
def test_wrong_sparse_layers_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_sparse_linear, wrong, mistake, message)


def transposed_mask_layer(n_in, n_out, density, seed=0):
    """The right shape, but the mask of an (in, out) layer, transposed."""
    layer = nn.Linear(n_in, n_out)
    mask = own_mask(n_in, n_out, density, seed).T.contiguous()
    parametrize.register_parametrization(layer, "weight", OwnMask(mask))
    return layer


def no_self_connections_layer(n_in, n_out, density, seed=0):
    layer = nn.Linear(n_in, n_out)
    mask = loop_mask(n_out, n_in, density, seed=seed, self_connections=n_in != n_out)
    parametrize.register_parametrization(layer, "weight", OwnMask(mask))
    return layer


def no_bias_layer(n_in, n_out, density, seed=0):
    layer = nn.Linear(n_in, n_out, bias=False)
    parametrize.register_parametrization(layer, "weight",
                                         OwnMask(own_mask(n_out, n_in, density, seed)))
    return layer


def reseeding_layer(n_in, n_out, density, seed=0):
    torch.manual_seed(seed)
    return good_sparse_linear(n_in, n_out, density, seed)


PATTERN_MISTAKES = [
    (transposed_mask_layer, "sparse_connectivity.layer_wrong_pattern",
     r"are not those of random_sparse_mask\(10, 12, 0.25, seed=0\).*do not transpose"),
    (no_self_connections_layer, "sparse_connectivity.layer_wrong_zeros",
     "self-connections allowed"),
    (no_bias_layer, "sparse_connectivity.layer_no_bias", "has no bias"),
    (reseeding_layer, "sparse_connectivity.layer_reseeds_global_rng",
     "same initial weights from two different states of torch's global random generator"),
]


@pytest.mark.parametrize(("wrong", "mistake", "message"), PATTERN_MISTAKES)
def test_layers_not_built_from_the_students_mask_are_rejected(wrong, mistake, message):
    """As the test cell calls it: with the student's random_sparse_mask to compare with."""
    def check(fn):
        sparse_connectivity.check_sparse_linear(fn, random_sparse_mask=own_mask)

    rejects(check, wrong, mistake, message)


@pytest.mark.parametrize("fn", [good_sparse_linear, not_zeroed_underneath])
def test_correct_layers_match_the_students_mask(fn):
    sparse_connectivity.check_sparse_linear(fn, seed=3, random_sparse_mask=own_mask)


# ------------------------------------------------------------------ part 4: the RNN step


def reference_step(x, u, w_rec, w_in, mask, alpha):
    return (1 - alpha) * x + alpha * (torch.relu(x) @ (w_rec * mask).T + u @ w_in.T)


def einsum_step(x, u, w_rec, w_in, mask, alpha):
    drive = torch.einsum("ij,bj->bi", w_rec * mask, x.clamp(min=0))
    return x + alpha * (-x + drive + torch.einsum("ik,bk->bi", w_in, u))


def loop_step(x, u, w_rec, w_in, mask, alpha):
    rows = []
    for b in range(x.shape[0]):
        r = torch.maximum(x[b], torch.zeros_like(x[b]))
        rows.append((1 - alpha) * x[b] + alpha * ((mask * w_rec) @ r + w_in @ u[b]))
    return torch.stack(rows)


def float32_step(x, u, w_rec, w_in, mask, alpha):
    """Computes in float32 and hands back the input's dtype."""
    out = reference_step(x.float(), u.float(), w_rec.float(), w_in.float(), mask.float(), alpha)
    return out.to(x.dtype)


@pytest.mark.parametrize("fn", [reference_step, einsum_step, loop_step])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_steps_pass(fn, seed):
    check_rate_rnn_step(fn, seed=seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_float32_computation_passes_on_float64_cases(seed):
    """A float64 call computed in float32 is off by ~1e-7: the tolerance (1e-6) accepts it."""
    check_rate_rnn_step(float32_step, seed=seed)


def relu_in_place(x, u, w_rec, w_in, mask, alpha):
    return (1 - alpha) * x + alpha * (x.relu_() @ (w_rec * mask).T + u @ w_in.T)


WRONG_STEPS = [
    (lambda x, u, w, wi, m, a: a * (torch.relu(x) @ (w * m).T + u @ wi.T),
     "sparse_connectivity.step_leak_missing", r"the leak term \(1 - alpha\) \* x is missing"),
    (lambda x, u, w, wi, m, a: x + a * (torch.relu(x) @ (w * m).T + u @ wi.T),
     "sparse_connectivity.step_leak_not_scaled", r"must be multiplied by \(1 - alpha\)"),
    (lambda x, u, w, wi, m, a: a * x + (1 - a) * (torch.relu(x) @ (w * m).T + u @ wi.T),
     "sparse_connectivity.step_alpha_swapped", r"alpha and \(1 - alpha\) are swapped"),
    (lambda x, u, w, wi, m, a: (1 - a) * x + a * (torch.relu(x) @ w.T + u @ wi.T),
     "sparse_connectivity.step_mask_not_applied", "the mask was not applied"),
    (lambda x, u, w, wi, m, a: (1 - a) * x + a * (torch.relu(x) @ (w * m.T).T + u @ wi.T),
     "sparse_connectivity.step_mask_transposed", "the mask was applied transposed"),
    (lambda x, u, w, wi, m, a: (1 - a) * x + a * (x @ (w * m).T + u @ wi.T),
     "sparse_connectivity.step_currents_not_rates", r"must use the rates relu\(x\), not the"),
    (lambda x, u, w, wi, m, a: (1 - a) * x + a * torch.relu(x @ (w * m).T + u @ wi.T),
     "sparse_connectivity.step_relu_on_drive", "not relu of the summed drive"),
    (lambda x, u, w, wi, m, a: (1 - a) * x + a * (torch.relu(x) @ (w * m).T),
     "sparse_connectivity.step_input_missing", "the input term W_in u is missing"),
    (lambda x, u, w, wi, m, a: (1 - a) * x + a * (torch.relu(x) @ (w * m).T) + u @ wi.T,
     "sparse_connectivity.step_input_outside_alpha", r"inside the alpha \(...\) bracket"),
    (lambda x, u, w, wi, m, a: (1 - a) * x + a * (torch.relu(x) @ (w * m) + u @ wi.T),
     "sparse_connectivity.step_weights_not_post_pre", r"weights are \(post, pre\)"),
    (lambda x, u, w, wi, m, a: torch.relu(reference_step(x, u, w, wi, m, a)),
     "sparse_connectivity.step_returns_rate", "return the new current x', not relu"),
    (lambda x, u, w, wi, m, a: reference_step(x, u, w, wi, m, a)[:1],
     "common.wrong_shape", r"returned shape \(1, 6\); it should be \(batch, n\)"),
    (lambda x, u, w, wi, m, a: reference_step(x, u, w, wi, m, a).double(),
     "common.wrong_dtype", "returned dtype torch.float64 for torch.float32 inputs"),
    (lambda x, u, w, wi, m, a: reference_step(x, u, w, wi, m, a) + 0.1,
     "sparse_connectivity.step_wrong_value", r"differs from \(1 - alpha\) x \+ alpha"),
    (lambda x, u, w, wi, m, a: reference_step(x, u, w, wi, m, a).detach(),
     "common.no_gradient", "no gradient flows"),
    (lambda x, u, w, wi, m, a: (1 - a) * x + a * (torch.relu(x.detach()) @ (w * m).T + u @ wi.T),
     "sparse_connectivity.step_wrong_gradient", "wrong gradient with respect to x"),
    (lambda x, u, w, wi, m, a: torch.tensor(reference_step(x, u, w, wi, m, a).tolist(),
                                                       dtype=x.dtype),
     "common.no_gradient", "no gradient flows"),
    (relu_in_place, "common.in_place", "changed its argument x in place"),
    (lambda x, u, w, wi, m, a: reference_step(x, u, w, wi, m, a).numpy(), "common.wrong_type",
     "got numpy.ndarray"),
    (lambda x, u, w, wi, m, a: reference_step(x, u, w, wi, m, a).clamp(-10, 10),
     "sparse_connectivity.step_wrong_value", r"currents of size ~1000 \(no clamp\)"),
    (not_implemented, "common.not_implemented", "is not implemented yet"),
]


@pytest.mark.parametrize(("wrong", "mistake", "message"), WRONG_STEPS)
def test_wrong_steps_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_rate_rnn_step, wrong, mistake, message)


def test_checkers_write_nothing_to_stderr(capfd):
    check_random_sparse_mask(reference_mask)
    check_mask_module(connectivity.Mask)
    sparse_connectivity.check_sparse_linear(good_sparse_linear)
    check_rate_rnn_step(reference_step)
    assert capfd.readouterr().err == ""
