"""Checkers for assignment 01_sparse_connectivity.

The references are `course_lib.connectivity.random_sparse_mask`, the `Mask`
parametrization (Song, Yang & Wang 2016, eq. 5: W ⊙ M) and one Euler step of the rate RNN
(Song et al. 2016, eq. 1 with alpha = dt / tau)::

    x' = (1 - alpha) x + alpha ((W_rec ⊙ M) relu(x) + W_in u)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from course_lib import connectivity
from course_lib._validate import make_generator
from course_lib.checks._common import (
    as_tensor,
    call,
    close,
    fail,
    single_threaded,
    worst_entry,
)
from course_lib.grading.reference_guard import forbid_reference

# ---------------------------------------------------------------- part 1: the mask


def _expected_ones(n_post: int, n_pre: int, density: float, self_connections: bool) -> int:
    allowed = n_post * n_pre - (0 if self_connections else n_post)
    return round(density * allowed)


def _check_one_mask(fn, n_post, n_pre, density, seed, self_connections) -> torch.Tensor:
    what = (
        f"random_sparse_mask({n_post}, {n_pre}, density={density}, seed={seed}, "
        f"self_connections={self_connections})"
    )
    mask = as_tensor(
        call(fn, n_post, n_pre, density, seed=seed, self_connections=self_connections, what=what),
        what,
    )
    if tuple(mask.shape) != (n_post, n_pre):
        fail(
            f"{what} has shape {tuple(mask.shape)} but should be (n_post, n_pre) = "
            f"({n_post}, {n_pre}): rows are postsynaptic units, columns presynaptic units."
        )
    values = mask.detach().double()
    bad = (values != 0) & (values != 1)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        fail(
            f"a mask must contain only 0s and 1s; {what} has {values[index].item():.3g} at {index}."
        )
    if not self_connections:
        diagonal = torch.diagonal(values)
        if diagonal.any():
            unit = int(diagonal.nonzero()[0])
            fail(
                f"with self_connections=False the diagonal must be 0 (a unit does not connect "
                f"to itself), but {what} has mask[{unit}, {unit}] = 1."
            )
    expected = _expected_ones(n_post, n_pre, density, self_connections)
    ones = int(values.sum())
    if ones != expected:
        allowed = n_post * n_pre - (0 if self_connections else n_post)
        hint = ""
        if ones == allowed - expected:
            hint = " It looks inverted: density is the fraction of connections that are kept."
        elif not self_connections and ones == round(density * n_post * n_pre):
            hint = " Count only the allowed (off-diagonal) entries."
        fail(
            f"{what} must have exactly round({density} * {allowed}) = {expected} ones "
            f"(density times the number of allowed entries), but it has {ones}.{hint}"
        )
    return values


@single_threaded
def check_random_sparse_mask(
    random_sparse_mask, seed: int = 0, *, allow_reference: bool = False
) -> None:
    """Check shape, values, exact density, diagonal, seeding, randomness and ValueErrors.

    ``allow_reference=True`` lets the course's own tests check implementations built on
    the reference; a student's submission may not call it.
    """
    random_sparse_mask = forbid_reference(
        random_sparse_mask,
        connectivity.random_sparse_mask,
        what="random_sparse_mask",
        allow=allow_reference,
    )
    rng = make_generator(seed)
    cases = [(6, 5, 0.5, True), (10, 10, 0.3, False), (7, 7, 1.0, False)]
    for _ in range(3):
        n_post = int(torch.randint(3, 13, (1,), generator=rng))
        n_pre = int(torch.randint(3, 13, (1,), generator=rng))
        density = round(float(torch.rand(1, generator=rng)) * 0.8 + 0.1, 2)
        cases.append((n_post, n_pre, density, True))
        cases.append((n_post, n_post, density, False))
    for n_post, n_pre, density, self_connections in cases:
        _check_one_mask(
            fn=random_sparse_mask,
            n_post=n_post,
            n_pre=n_pre,
            density=density,
            seed=seed,
            self_connections=self_connections,
        )

    first = _check_one_mask(random_sparse_mask, 9, 9, 0.4, seed + 3, False)
    again = _check_one_mask(random_sparse_mask, 9, 9, 0.4, seed + 3, False)
    if not torch.equal(first, again):
        fail(
            f"calling random_sparse_mask twice with seed={seed + 3} gave two different masks: "
            "create a torch.Generator, seed it with `seed`, and pass it to the random function."
        )
    other = _check_one_mask(random_sparse_mask, 9, 9, 0.4, seed + 4, False)
    if torch.equal(first, other):
        fail(
            f"seeds {seed + 3} and {seed + 4} gave the same mask: the seed must decide which "
            "entries are connected."
        )

    # Each allowed entry must be connected in about `density` of the seeds.
    n, density, trials = 8, 0.3, 200
    counts = torch.zeros(n, n, dtype=torch.float64)
    for s in range(trials):
        counts += _check_one_mask(random_sparse_mask, n, n, density, 1000 * seed + s, True)
    frequency = counts / trials
    worst = (frequency - density).abs()
    index = tuple(int(i) for i in torch.unravel_index(worst.argmax(), worst.shape))
    if worst[index] > 0.15:
        fail(
            f"entry {index} was connected in {frequency[index]:.0%} of {trials} seeds but should "
            f"be connected in about {density:.0%}: choose the connected entries uniformly at "
            "random among the allowed ones (e.g. with torch.randperm)."
        )

    for bad_density in (0.0, -0.2, 1.5):
        try:
            random_sparse_mask(5, 5, bad_density, seed=seed, self_connections=True)
        except ValueError:
            continue
        except Exception as error:  # noqa: BLE001
            fail(
                f"random_sparse_mask(5, 5, density={bad_density}) raised {type(error).__name__}; "
                "it should raise ValueError saying that density must be in (0, 1]."
            )
        fail(
            f"random_sparse_mask(5, 5, density={bad_density}) should raise ValueError: "
            "density must be in (0, 1]."
        )


# ---------------------------------------------------------------- part 2: the Mask module


def _random_mask(shape, generator) -> torch.Tensor:
    return (torch.rand(shape, generator=generator) < 0.5).float()


@single_threaded
def check_mask_module(  # noqa: N803 - the student's class name
    Mask, seed: int = 0, *, allow_reference: bool = False
) -> None:
    """Check that Mask stores its mask as a buffer and returns weight ⊙ mask with its gradient."""
    # Raises if Mask is (a subclass of) the reference, or builds one when constructed.
    Mask = forbid_reference(Mask, connectivity.Mask, what="Mask", allow=allow_reference)  # noqa: N806
    rng = make_generator(seed)
    mask = _random_mask((4, 6), rng)
    module = call(Mask, mask, what="Mask(mask)")
    if not isinstance(module, nn.Module):
        fail("Mask must be a subclass of torch.nn.Module (class Mask(nn.Module): ...).")
    if any(p.shape == mask.shape for p in module.parameters()):
        fail(
            "the mask must not be a trainable nn.Parameter (the optimiser would change it): "
            "register it with self.register_buffer('mask', mask)."
        )
    state = module.state_dict()
    if "mask" not in state:
        fail(
            "the mask must be a buffer named 'mask' (self.register_buffer('mask', mask)) so "
            f"it is saved in state_dict and moves with .to(); state_dict has {sorted(state)}."
        )
    if not torch.equal(state["mask"].float(), mask):
        fail("the buffer 'mask' does not hold the mask that was passed to Mask(mask).")
    if module.to(torch.float64).mask.dtype != torch.float64:
        fail("the mask did not move with .to(torch.float64): register it as a buffer.")
    module = Mask(mask)

    weight = torch.randn(4, 6, generator=rng, requires_grad=True)
    before = weight.detach().clone()
    out = as_tensor(call(module, weight, what="Mask.forward(weight)"), "Mask.forward")
    if not torch.equal(weight.detach(), before):
        fail("Mask.forward changed the weight in place: return a new tensor, weight * self.mask.")
    expected = before * mask
    if tuple(out.shape) != tuple(expected.shape):
        fail(f"Mask.forward returned shape {tuple(out.shape)} for a weight of shape (4, 6).")
    if not close(out, expected):
        if close(out, before):
            fail("Mask.forward returned the weight unchanged: multiply it elementwise by the mask.")
        if close(out, mask):
            fail("Mask.forward returned the mask itself: return weight * mask.")
        fail(
            "Mask.forward(weight) should be weight * mask (elementwise); "
            f"{worst_entry(out, expected)}."
        )
    if not out.requires_grad:
        fail("no gradient can flow through Mask.forward: do not detach the weight or use no_grad.")
    out.sum().backward()
    if weight.grad is None or not torch.equal(weight.grad, mask):
        fail(
            "the gradient of sum(Mask(W)) with respect to W should be the mask itself "
            "(1 where connected, exactly 0 where masked)."
        )


# ---------------------------------------------------------------- part 3: a sparse layer


@single_threaded
def check_sparse_linear(sparse_linear, seed: int = 0) -> None:
    """Check that the layer is masked by a parametrization whose zeros survive AdamW."""
    n_in, n_out, density = 12, 10, 0.25
    what = f"sparse_linear({n_in}, {n_out}, density={density}, seed={seed})"
    layer = call(sparse_linear, n_in, n_out, density, seed=seed, what=what)
    if not isinstance(layer, nn.Linear):
        fail(f"{what} must return an nn.Linear, got {type(layer).__name__}.")
    if tuple(layer.weight.shape) != (n_out, n_in):
        fail(
            f"{what}.weight has shape {tuple(layer.weight.shape)}; an nn.Linear({n_in}, {n_out}) "
            f"weight is (out, in) = ({n_out}, {n_in})."
        )
    if not parametrize.is_parametrized(layer, "weight"):
        fail(
            f"{what}.weight is not parametrized: register your Mask with "
            "torch.nn.utils.parametrize.register_parametrization(layer, 'weight', Mask(mask)), "
            "so the mask is applied every time the weight is used."
        )
    zeros = layer.weight.detach() == 0
    expected = round((1 - density) * n_in * n_out)
    if int(zeros.sum()) != expected:
        fail(
            f"{what}.weight should have exactly {expected} zeros (density {density} of "
            f"{n_in * n_out} entries connected), but it has {int(zeros.sum())}."
        )

    # 200 AdamW steps with weight decay on a regression problem.
    rng = make_generator(seed + 7)
    inputs = torch.randn(64, n_in, generator=rng)
    targets = torch.randn(64, n_out, generator=rng)
    try:
        optimizer = torch.optim.AdamW(layer.parameters(), lr=0.05, weight_decay=0.1)
        losses = []
        for _ in range(200):
            loss = ((layer(inputs) - targets) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    except Exception as error:  # noqa: BLE001 - any error becomes feedback
        fail(f"training {what} with AdamW raised {type(error).__name__}: {error}")
    weight = layer.weight.detach()
    leaked = weight[zeros] != 0
    if leaked.any():
        fail(
            f"after 200 AdamW steps, {int(leaked.sum())} masked weights are no longer zero "
            f"(largest {weight[zeros].abs().max().item():.3g}): the mask must be applied in "
            "the forward pass, not once at initialisation."
        )
    if not losses[-1] < losses[0]:
        fail(
            "the layer did not learn at all in 200 AdamW steps: are the unmasked weights trainable?"
        )


# ---------------------------------------------------------------- part 4: one RNN step


def reference_rate_rnn_step(x, u, w_rec, w_in, mask, alpha):
    """Song et al. 2016, eq. 1 (Euler, alpha = dt / tau), weights (post, pre), no noise."""
    rates = torch.relu(x)
    return (1 - alpha) * x + alpha * (rates @ (w_rec * mask).T + u @ w_in.T)


def _plausible_mistakes(x, u, w_rec, w_in, mask, alpha):
    r = torch.relu(x)
    recurrent = r @ (w_rec * mask).T
    inputs = u @ w_in.T
    return [
        ("the leak term (1 - alpha) * x is missing", alpha * (recurrent + inputs)),
        (
            "the old state must be multiplied by (1 - alpha): x' = (1 - alpha) x + alpha (...)",
            x + alpha * (recurrent + inputs),
        ),
        (
            "the mask was not applied: use (w_rec * mask)",
            (1 - alpha) * x + alpha * (r @ w_rec.T + inputs),
        ),
        (
            "the mask was applied transposed: mask and w_rec are both (post, pre), multiply them "
            "elementwise as they are",
            (1 - alpha) * x + alpha * (r @ (w_rec * mask.T).T + inputs),
        ),
        (
            "the recurrent input must use the rates relu(x), not the currents x",
            (1 - alpha) * x + alpha * (x @ (w_rec * mask).T + inputs),
        ),
        ("the input term W_in u is missing", (1 - alpha) * x + alpha * recurrent),
        (
            "weights are (post, pre): the drive to unit i is sum_j W[i, j] r[j], i.e. "
            "r @ (w_rec * mask).T for a batch of row vectors",
            (1 - alpha) * x + alpha * (r @ (w_rec * mask) + inputs),
        ),
        (
            "return the new current x', not relu(x'): the rate is computed at the next step",
            torch.relu(reference_rate_rnn_step(x, u, w_rec, w_in, mask, alpha)),
        ),
    ]


@single_threaded
def check_rate_rnn_step(rate_rnn_step, seed: int = 0) -> None:
    """Compare one step with the reference on seeded random cases; name the likely mistake."""
    rng = make_generator(seed)
    for _ in range(3):
        batch, n, n_in = 3, 6, 2
        x = torch.randn(batch, n, generator=rng, dtype=torch.float64)
        u = torch.randn(batch, n_in, generator=rng, dtype=torch.float64)
        w_rec = torch.randn(n, n, generator=rng, dtype=torch.float64)
        w_in = torch.randn(n, n_in, generator=rng, dtype=torch.float64)
        mask = _random_mask((n, n), rng).double()
        alpha = float(torch.rand(1, generator=rng)) * 0.5 + 0.1
        what = "rate_rnn_step(x, u, w_rec, w_in, mask, alpha)"
        args = (x.clone(), u.clone(), w_rec.clone(), w_in.clone(), mask.clone(), alpha)
        out = as_tensor(call(rate_rnn_step, *args, what=what), what)
        expected = reference_rate_rnn_step(x, u, w_rec, w_in, mask, alpha)
        if tuple(out.shape) != tuple(expected.shape):
            fail(
                f"{what} returned shape {tuple(out.shape)}; "
                f"it should be (batch, n) = {tuple(x.shape)}."
            )
        if close(out, expected):
            continue
        for message, wrong in _plausible_mistakes(x, u, w_rec, w_in, mask, alpha):
            if close(out, wrong):
                fail(f"{what}: {message}.")
        fail(
            f"{what} differs from (1 - alpha) x + alpha ((w_rec ⊙ mask) relu(x) + w_in u): "
            f"{worst_entry(out, expected)}."
        )
