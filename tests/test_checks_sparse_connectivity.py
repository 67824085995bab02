"""The assignment-01 checkers: the reference passes; each plausible mistake is rejected
with its own message, in the student's terms."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from course_lib import connectivity
from course_lib.checks import sparse_connectivity
from course_lib.checks.sparse_connectivity import (
    check_rate_rnn_step,
    check_sparse_linear,
)

# ------------------------------------------------------------------ part 1: the mask


def check_random_sparse_mask(fn, seed=0):
    """The checker, allowed to see the reference: many cases here are built on it."""
    sparse_connectivity.check_random_sparse_mask(fn, seed, allow_reference=True)


def check_mask_module(cls, seed=0):
    sparse_connectivity.check_mask_module(cls, seed, allow_reference=True)


def test_a_submission_may_not_use_the_reference():
    with pytest.raises(AssertionError, match="reference implementation"):
        sparse_connectivity.check_random_sparse_mask(connectivity.random_sparse_mask)
    with pytest.raises(AssertionError, match="reference implementation"):
        sparse_connectivity.check_random_sparse_mask(reference_mask)  # a wrapper
    with pytest.raises(AssertionError, match="reference implementation"):
        sparse_connectivity.check_mask_module(connectivity.Mask)

    class Subclassed(connectivity.Mask):
        pass

    with pytest.raises(AssertionError, match="reference implementation"):
        sparse_connectivity.check_mask_module(Subclassed)


def reference_mask(n_post, n_pre, density, seed=0, self_connections=True):
    return connectivity.random_sparse_mask(
        n_post, n_pre, density, seed=seed, self_connections=self_connections
    )


def as_numpy(*args, **kwargs):
    return reference_mask(*args, **kwargs).numpy()


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


def ignores_seed(n_post, n_pre, density, seed=0, self_connections=True):
    return reference_mask(
        n_post,
        n_pre,
        density,
        seed=int(torch.randint(0, 10**6, (1,))),
        self_connections=self_connections,
    )


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


def weighted_not_binary(n_post, n_pre, density, seed=0, self_connections=True):
    g = torch.Generator().manual_seed(seed)
    mask = reference_mask(n_post, n_pre, density, seed, self_connections)
    return mask * torch.rand(n_post, n_pre, generator=g)


def no_validation(n_post, n_pre, density, seed=0, self_connections=True):
    return reference_mask(n_post, n_pre, min(max(density, 0.01), 1.0), seed, self_connections)


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


def test_reference_mask_passes():
    check_random_sparse_mask(reference_mask)
    check_random_sparse_mask(reference_mask, seed=20261)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (as_numpy, "must return a torch.Tensor, got numpy.ndarray"),
        (transposed, r"has shape \(5, 6\) but should be \(n_post, n_pre\) = \(6, 5\)"),
        (bernoulli, r"must have exactly round\(0.5 \* 30\) = 15 ones"),
        (inverted, "It looks inverted"),
        (keeps_diagonal, "with self_connections=False the diagonal must be 0"),
        (ignores_seed, "gave two different masks: create a torch.Generator"),
        (constant_seed, "gave the same mask: the seed must decide"),
        (contiguous_block, "choose the connected entries uniformly at random"),
        (weighted_not_binary, "a mask must contain only 0s and 1s"),
        (no_validation, r"density=0.0\) should raise ValueError"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_masks_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_random_sparse_mask(wrong)


# ------------------------------------------------------------------ part 2: the Mask module


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


def _buffered(forward):
    class Wrong(nn.Module):
        def __init__(self, mask):
            super().__init__()
            self.register_buffer("mask", mask.clone())

    Wrong.forward = forward
    return Wrong


Identity = _buffered(lambda self, weight: weight)
ReturnsMask = _buffered(lambda self, weight: self.mask)
InPlace = _buffered(lambda self, weight: weight.data.mul_(self.mask))
Detached = _buffered(lambda self, weight: weight.detach() * self.mask)
Transposed = _buffered(lambda self, weight: weight * self.mask.T)
Inverted = _buffered(lambda self, weight: weight * (1 - self.mask))


class WrongBufferName(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("m", mask.clone())

    def forward(self, weight):
        return weight * self.m


def test_reference_mask_module_passes():
    check_mask_module(connectivity.Mask)
    check_mask_module(connectivity.Mask, seed=4096)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (NotAModule, "must be a subclass of torch.nn.Module"),
        (PlainAttribute, "must be a buffer named 'mask'"),
        (WrongBufferName, r"must be a buffer named 'mask'.*state_dict has \['m'\]"),
        (TrainableMask, "must not be a trainable nn.Parameter"),
        (Identity, "returned the weight unchanged"),
        (ReturnsMask, "returned the mask itself"),
        (InPlace, "changed the weight in place"),
        (Detached, "no gradient can flow through Mask.forward"),
        (Transposed, "Mask.forward\\(weight\\) raised RuntimeError"),
        (Inverted, r"should be weight \* mask \(elementwise\); entry"),
    ],
)
def test_wrong_mask_modules_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_mask_module(wrong)


# ------------------------------------------------------------------ part 3: sparse layer


def reference_sparse_linear(n_in, n_out, density, seed=0):
    mask = connectivity.random_sparse_mask(n_out, n_in, density, seed=seed)
    return connectivity.apply_mask(nn.Linear(n_in, n_out), mask)


def zeroed_once(n_in, n_out, density, seed=0):
    layer = nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.mul_(connectivity.random_sparse_mask(n_out, n_in, density, seed=seed))
    return layer


def wrong_density(n_in, n_out, density, seed=0):
    return reference_sparse_linear(n_in, n_out, 1 - density, seed)


def transposed_layer(n_in, n_out, density, seed=0):
    return nn.Linear(n_out, n_in)


def returns_module_list(n_in, n_out, density, seed=0):
    return nn.Sequential(reference_sparse_linear(n_in, n_out, density, seed))


def frozen_weights(n_in, n_out, density, seed=0):
    layer = reference_sparse_linear(n_in, n_out, density, seed)
    for p in layer.parameters():
        p.requires_grad_(False)
    layer.bias.requires_grad_(False)
    return layer


def not_zeroed_underneath(n_in, n_out, density, seed=0):
    """Registers the mask but keeps the dense values: still correct for training."""
    mask = connectivity.random_sparse_mask(n_out, n_in, density, seed=seed)
    layer = nn.Linear(n_in, n_out)
    parametrize.register_parametrization(layer, "weight", connectivity.Mask(mask))
    return layer


def test_reference_sparse_linear_passes():
    check_sparse_linear(reference_sparse_linear)
    check_sparse_linear(not_zeroed_underneath)  # an acceptable variant


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (zeroed_once, "is not parametrized: register your Mask"),
        (wrong_density, "should have exactly 90 zeros"),
        (transposed_layer, r"weight has shape \(12, 10\)"),
        (returns_module_list, "must return an nn.Linear, got Sequential"),
        (frozen_weights, "training sparse_linear.* with AdamW raised"),
    ],
)
def test_wrong_sparse_layers_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_sparse_linear(wrong)


def test_a_layer_whose_zeros_leak_is_caught():
    """A parametrization that forgets the mask during training must fail the training check."""

    class MaskOnlyAtFirstCall(nn.Module):
        def __init__(self, mask):
            super().__init__()
            self.register_buffer("mask", mask)
            self.calls = 0

        def forward(self, weight):
            self.calls += 1
            return weight * self.mask if self.calls <= 1 else weight

    def leaky(n_in, n_out, density, seed=0):
        layer = nn.Linear(n_in, n_out)
        mask = connectivity.random_sparse_mask(n_out, n_in, density, seed=seed)
        with torch.no_grad():
            layer.weight.mul_(mask)
        parametrize.register_parametrization(layer, "weight", MaskOnlyAtFirstCall(mask))
        return layer

    with pytest.raises(AssertionError, match="masked weights are no longer zero"):
        check_sparse_linear(leaky)


# ------------------------------------------------------------------ part 4: the RNN step


def reference_step(x, u, w_rec, w_in, mask, alpha):
    return (1 - alpha) * x + alpha * (torch.relu(x) @ (w_rec * mask).T + u @ w_in.T)


WRONG_STEPS = [
    (
        lambda x, u, w, wi, m, a: a * (torch.relu(x) @ (w * m).T + u @ wi.T),
        "the leak term \\(1 - alpha\\) \\* x is missing",
    ),
    (
        lambda x, u, w, wi, m, a: x + a * (torch.relu(x) @ (w * m).T + u @ wi.T),
        "must be multiplied by \\(1 - alpha\\)",
    ),
    (
        lambda x, u, w, wi, m, a: (1 - a) * x + a * (torch.relu(x) @ w.T + u @ wi.T),
        "the mask was not applied",
    ),
    (
        lambda x, u, w, wi, m, a: (1 - a) * x + a * (torch.relu(x) @ (w * m.T).T + u @ wi.T),
        "the mask was applied transposed",
    ),
    (
        lambda x, u, w, wi, m, a: (1 - a) * x + a * (x @ (w * m).T + u @ wi.T),
        "must use the rates relu\\(x\\), not the currents x",
    ),
    (
        lambda x, u, w, wi, m, a: (1 - a) * x + a * (torch.relu(x) @ (w * m).T),
        "the input term W_in u is missing",
    ),
    (
        lambda x, u, w, wi, m, a: (1 - a) * x + a * (torch.relu(x) @ (w * m) + u @ wi.T),
        "weights are \\(post, pre\\)",
    ),
    (
        lambda x, u, w, wi, m, a: torch.relu(reference_step(x, u, w, wi, m, a)),
        "return the new current x', not relu",
    ),
    (
        lambda x, u, w, wi, m, a: reference_step(x, u, w, wi, m, a)[:1],
        "returned shape \\(1, 6\\); it should be \\(batch, n\\) = \\(3, 6\\)",
    ),
    (
        lambda x, u, w, wi, m, a: reference_step(x, u, w, wi, m, a) + 0.1,
        "differs from \\(1 - alpha\\) x \\+ alpha",
    ),
]


def test_reference_step_passes():
    check_rate_rnn_step(reference_step)
    check_rate_rnn_step(reference_step, seed=2718)


@pytest.mark.parametrize(("wrong", "message"), WRONG_STEPS)
def test_wrong_steps_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_rate_rnn_step(wrong)


def test_checkers_write_nothing_to_stderr(capfd):
    check_random_sparse_mask(reference_mask)
    check_mask_module(connectivity.Mask)
    check_sparse_linear(reference_sparse_linear)
    check_rate_rnn_step(reference_step)
    assert capfd.readouterr().err == ""
