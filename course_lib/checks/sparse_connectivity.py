"""Checkers for assignment 01_sparse_connectivity.

The references are `course_lib.connectivity.random_sparse_mask`, the `Mask`
parametrization (Song, Yang & Wang 2016, eq. 5: W ⊙ M) and one Euler step of the rate RNN
(Song et al. 2016, eq. 1 with alpha = dt / tau)::

    x' = (1 - alpha) x + alpha ((W_rec ⊙ M) relu(x) + W_in u)

The expected values are computed here, with private references to the torch functions
taken at import (an answer cell that patches ``torch.relu`` changes nothing here).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from course_lib import connectivity
from course_lib.checks._common import (
    call,
    close,
    fail,
    finite_gradient,
    single_threaded,
    tensor,
    worst_entry,
)
from course_lib.checks._common import (
    generator as _generator,
)
from course_lib.grading.reference_guard import ReferenceWatch, is_reference

# Private references (see the module docstring).
_rand = torch.rand
_randn = torch.randn
_randint = torch.randint
_relu = torch.relu
_zeros = torch.zeros
_equal = torch.equal
_diagonal = torch.diagonal
_grad = torch.autograd.grad
_get_rng_state = torch.get_rng_state
_set_rng_state = torch.set_rng_state
_tensor = torch.tensor
_AdamW = torch.optim.AdamW
_is_parametrized = parametrize.is_parametrized
_Module = nn.Module
# unbound, so that a class cannot answer for itself (e.g. a state_dict that lies)
_parameters = nn.Module.parameters
_named_buffers = nn.Module.named_buffers
_state_dict = nn.Module.state_dict
_module_to = nn.Module.to
_Linear = nn.Linear
_float32 = torch.float32
_float64 = torch.float64
_isinstance = isinstance
_type = type

_REFERENCES = (connectivity.random_sparse_mask, connectivity.Mask, connectivity.apply_mask)


def _own_code(fn, *args, what: str, allow_reference: bool, **kwargs):
    """`call`, and fail if the course's reference code ran inside the student's code."""
    if allow_reference:
        return call(fn, *args, what=what, **kwargs)
    message = (f"{what} uses the course's reference implementation (course_lib.connectivity) "
               "instead of your own code: write it yourself; the reference is there to check "
               "your work, not to be submitted.")
    if is_reference(fn, *_REFERENCES):
        fail("sparse_connectivity.uses_reference", message)
    with ReferenceWatch(*_REFERENCES) as watch:
        result = call(fn, *args, what=what, **kwargs)
    if watch.called:
        fail("sparse_connectivity.uses_reference", message)
    return result


# ---------------------------------------------------------------- part 1: the mask


def _mask_dtype_ok(dtype) -> bool:
    """A mask only multiplies weights: float32, bool or integer keep float32 weights float32
    (type promotion); another float dtype (float64) would change the weights' dtype."""
    return dtype == _float32 or not (dtype.is_floating_point or dtype.is_complex)


def _n_allowed(n_post: int, n_pre: int, self_connections: bool) -> int:
    return n_post * n_pre - (0 if self_connections else n_post)


def _check_one_mask(fn, n_post, n_pre, density, seed, self_connections,
                    allow_reference=False) -> torch.Tensor:
    what = (f"random_sparse_mask({n_post}, {n_pre}, density={density}, seed={seed}, "
            f"self_connections={self_connections})")
    result = _own_code(fn, n_post, n_pre, density, seed=seed,
                       self_connections=self_connections, what=what,
                       allow_reference=allow_reference, all_generators=True)
    mask = tensor(result, what)
    shape = tuple(mask.shape)
    if shape != (n_post, n_pre):
        if shape == (n_pre, n_post):
            fail("sparse_connectivity.mask_transposed",
                 f"{what} has shape {shape} but should be (n_post, n_pre) = ({n_post}, "
                 f"{n_pre}): rows are postsynaptic units, columns presynaptic units.")
        fail("common.wrong_shape", f"{what} has shape {shape} but should be (n_post, n_pre) "
             f"= ({n_post}, {n_pre}).")
    values = mask.to(_float64)
    bad = (values != 0) & (values != 1)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        fail("sparse_connectivity.mask_not_binary",
             f"a mask must contain only 0s and 1s; {what} has {values[index].item():.3g} at "
             f"{index}.")
    if not _mask_dtype_ok(mask.dtype):
        fail("common.wrong_dtype",
             f"{what} has dtype {mask.dtype} but should be torch.float32 (torch.zeros' "
             "default) or bool: the mask multiplies float32 weights, and a float64 mask would "
             "turn them into float64.")
    if not self_connections and _diagonal(values).any():
        unit = int(_diagonal(values).nonzero()[0])
        fail("sparse_connectivity.diagonal_not_zero",
             f"with self_connections=False the diagonal must be 0 (a unit does not connect to "
             f"itself), but {what} has mask[{unit}, {unit}] = 1.")
    allowed = _n_allowed(n_post, n_pre, self_connections)
    expected = round(density * allowed)
    ones = int(values.sum())
    if ones != expected:
        if ones == allowed - expected and ones != expected:
            fail("sparse_connectivity.mask_inverted",
                 f"{what} has {ones} ones but should have round({density} * {allowed}) = "
                 f"{expected}: it looks inverted, density is the fraction of connections "
                 "that are kept (1 = connected).")
        if not self_connections and ones == round(density * n_post * n_pre):
            fail("sparse_connectivity.diagonal_counted",
                 f"{what} has {ones} ones but should have round({density} * {allowed}) = "
                 f"{expected}: with self_connections=False count only the {allowed} allowed "
                 "(off-diagonal) entries.")
        fail("sparse_connectivity.wrong_count",
             f"{what} must have exactly round({density} * {allowed}) = {expected} ones "
             f"(density times the number of allowed entries), but it has {ones}.")
    return values


def _check_uniform(fn, seed, allow_reference) -> None:
    """Each allowed entry connected in about `density` of the seeds, and the number of
    ones per row and per column as variable as for a uniform draw (hypergeometric)."""
    trials = 200
    for n_post, n_pre, density, self_connections in ((8, 8, 0.3, False), (10, 6, 0.5, True)):
        masks = [
            _check_one_mask(fn, n_post, n_pre, density, 1000 * seed + s, self_connections,
                            allow_reference)
            for s in range(trials)
        ]
        frequency = sum(masks) / trials
        allowed = _zeros(n_post, n_pre, dtype=_float64) + 1
        if not self_connections:
            allowed.fill_diagonal_(0)
        p = round(density * int(allowed.sum())) / int(allowed.sum())
        worst = ((frequency - p).abs() * allowed)
        index = tuple(int(i) for i in (worst == worst.max()).nonzero()[0])
        if worst[index] > 0.15:
            fail("sparse_connectivity.not_uniform",
                 f"over {trials} seeds, random_sparse_mask({n_post}, {n_pre}, density="
                 f"{density}, self_connections={self_connections}) connected entry {index} "
                 f"in {float(frequency[index]):.0%} of the masks, but every allowed entry "
                 f"should be connected in about {p:.0%}: choose the connected entries "
                 "uniformly at random among all the allowed ones (e.g. torch.randperm).")
        n_all, k = int(allowed.sum()), round(density * int(allowed.sum()))
        for axis, name, draws, mistake in (
            (1, "row", n_pre, "sparse_connectivity.fixed_count_per_row"),
            (0, "column", n_post, "sparse_connectivity.fixed_count_per_column"),
        ):
            if not self_connections:
                draws -= 1
            # variance of a hypergeometric count: `draws` entries out of n_all, k of them ones
            expected = draws * (k / n_all) * (1 - k / n_all) * (n_all - draws) / (n_all - 1)
            counts = [m.sum(axis) for m in masks]
            mean = sum(c.sum() for c in counts) / (trials * len(counts[0]))
            variance = float(sum(((c - mean) ** 2).sum() for c in counts)
                             / (trials * len(counts[0])))
            if not 0.5 * expected <= variance <= 2 * expected:
                fail(mistake,
                     f"over {trials} seeds, the number of ones per {name} of random_sparse_mask"
                     f"({n_post}, {n_pre}, density={density}) varies with variance "
                     f"{variance:.3g}, but for ones placed uniformly at random it varies with "
                     f"variance {expected:.3g}: draw the positions among all allowed entries "
                     f"of the matrix at once, not a fixed number per {name}.")


def _check_density_errors(fn, seed) -> None:
    """A density outside (0, 1] raises ValueError (and only ValueError)."""
    for bad in (0.0, -0.2, 1.5):
        what = f"random_sparse_mask(5, 5, density={bad}, seed={seed})"
        state = _get_rng_state()
        try:
            fn(5, 5, bad, seed=seed, self_connections=True)
        except ValueError:
            continue
        except Exception as error:  # noqa: BLE001 - any error becomes feedback
            fail("sparse_connectivity.wrong_error",
                 f"{what} raised {_type(error).__name__}; it should raise ValueError saying "
                 "that density must be in (0, 1].")
        finally:
            _set_rng_state(state)
        fail("sparse_connectivity.no_value_error",
             f"{what} should raise ValueError: density must be in (0, 1].")


@single_threaded
def check_random_sparse_mask(
    random_sparse_mask, seed: int = 0, *, allow_reference: bool = False
) -> None:
    """Check shape, values, dtype, exact density, diagonal, seeding, uniform placement
    and ValueErrors.

    ``allow_reference=True`` lets the course's own tests check implementations built on
    the reference; a student's submission may not call it.
    """
    fn, allow = random_sparse_mask, allow_reference
    rng = _generator(seed)
    # the visible example first, then shapes of every kind (non-square, one row, one
    # column, densities that round to zero ones and to all of them)
    cases = [(6, 6, 0.5, False), (6, 5, 0.5, True), (10, 10, 0.3, False), (7, 7, 1.0, False),
             (1, 7, 0.6, True), (9, 1, 0.4, True), (3, 3, 0.01, True), (4, 4, 0.99, False)]
    for _ in range(3):
        n_post = int(_randint(2, 13, (1,), generator=rng))
        n_pre = int(_randint(2, 13, (1,), generator=rng))
        density = round(float(_rand(1, generator=rng)) * 0.8 + 0.1, 2)
        cases.append((n_post, n_pre, density, True))
        cases.append((n_post, n_post, density, False))
    for n_post, n_pre, density, self_connections in cases:
        _check_one_mask(fn, n_post, n_pre, density, seed, self_connections, allow)

    first = _check_one_mask(fn, 9, 9, 0.4, seed + 3, False, allow)
    again = _check_one_mask(fn, 9, 9, 0.4, seed + 3, False, allow)
    if not _equal(first, again):
        fail("sparse_connectivity.seed_not_reproducible",
             f"calling random_sparse_mask twice with seed={seed + 3} gave two different masks: "
             "create a torch.Generator, seed it with `seed`, and pass it to the random function.")
    other = _check_one_mask(fn, 9, 9, 0.4, seed + 4, False, allow)
    if _equal(first, other):
        fail("sparse_connectivity.seed_ignored",
             f"seeds {seed + 3} and {seed + 4} gave the same mask: the seed must decide which "
             "entries are connected.")
    _check_uniform(fn, seed, allow)
    _check_density_errors(fn, seed)


# ---------------------------------------------------------------- part 2: the Mask module


def _random_mask(shape, generator) -> torch.Tensor:
    return (_rand(shape, generator=generator) < 0.5).to(_float32)


def _check_forward(module, mask, weight, what) -> None:
    """forward(weight) == weight * mask, in weight's dtype, with gradient upstream * mask."""
    leaf = weight.clone().requires_grad_(True)
    out = tensor(call(module, leaf, what=what), what, keep_graph=True)
    if tuple(out.shape) != tuple(weight.shape):
        fail("common.wrong_shape", f"{what} returned shape {tuple(out.shape)} for a weight of "
             f"shape {tuple(weight.shape)}: return weight * mask, the shape of the weight.")
    if out.dtype != weight.dtype:
        fail("sparse_connectivity.forward_wrong_dtype",
             f"{what} returned dtype {out.dtype} for a {weight.dtype} weight: the layer "
             "would then compute in another dtype than its input; do not convert the mask "
             "to a fixed dtype such as float64 (a float or boolean buffer follows .to()).")
    value = out.detach()
    expected = weight * mask
    if not close(value, expected):
        if close(value, weight):
            fail("sparse_connectivity.forward_identity",
                 f"{what} returned the weight unchanged: multiply it elementwise by the mask.")
        if close(value, mask.to(weight.dtype)):
            fail("sparse_connectivity.forward_returns_mask",
                 f"{what} returned the mask itself: return weight * mask.")
        if close(value, weight * (1 - mask)):
            fail("sparse_connectivity.forward_inverted_mask",
                 f"{what} returned weight * (1 - mask): the mask holds 1 where a synapse "
                 "exists, so return weight * mask.")
        fail("sparse_connectivity.forward_not_product",
             f"{what} should be weight * mask (elementwise); {worst_entry(value, expected)}.")
    if not out.requires_grad:
        fail("common.no_gradient", f"no gradient can flow through {what}: do not detach the "
             "weight, use .data or torch.no_grad in forward.")
    upstream = _randn(weight.shape, generator=_generator(7), dtype=weight.dtype)
    (gradient,) = _grad(out, leaf, upstream, allow_unused=True)
    gradient = finite_gradient(gradient, what)
    if not close(gradient, upstream * mask):
        fail("sparse_connectivity.wrong_gradient",
             f"the gradient of {what} with respect to the weight should be the mask itself "
             "(1 where connected, exactly 0 where masked): return weight * self.mask.")


@single_threaded
def check_mask_module(  # noqa: N803 - the student's class name
    Mask, seed: int = 0, *, allow_reference: bool = False
) -> None:
    """Check that Mask stores its mask as a buffer and returns weight ⊙ mask with its gradient."""
    rng = _generator(seed)
    for shape in ((4, 6), (5, 5), (1, 3)):
        mask = _random_mask(shape, rng)
        mask[0, 0] = 0.0  # both values present
        mask[-1, -1] = 1.0
        what = f"Mask(mask) with a mask of shape {shape}"
        module = _own_code(Mask, mask, what=what, allow_reference=allow_reference)
        if not _isinstance(module, _Module):
            fail("sparse_connectivity.mask_not_module",
                 "Mask must be a subclass of torch.nn.Module (class Mask(nn.Module): ...).")
        if any(p.shape == mask.shape for p in _parameters(module)):
            fail("sparse_connectivity.mask_is_parameter",
                 "the mask must not be a trainable nn.Parameter (the optimiser would change "
                 "it): register it with self.register_buffer('mask', mask).")
        buffers = dict(_named_buffers(module))
        state = _state_dict(module)
        if "mask" not in buffers or "mask" not in state:
            fail("sparse_connectivity.mask_not_buffer",
                 "the mask must be a buffer named 'mask' (self.register_buffer('mask', mask)) "
                 "so it is saved in state_dict and moves with .to(); the module's buffers are "
                 f"{sorted(buffers)}.")
        stored = tensor(buffers["mask"], "the buffer 'mask'")
        if tuple(stored.shape) != shape or not _equal(stored.to(_float32), mask):
            fail("sparse_connectivity.buffer_not_mask",
                 "the buffer 'mask' does not hold the mask that was passed to Mask(mask).")
        weight = _randn(shape, generator=rng)
        _check_forward(module, mask, weight, f"Mask.forward(weight) for a {shape} weight")
        module = _module_to(module, _float64)
        _check_forward(module, mask.to(_float64), weight.to(_float64),
                       "Mask.forward(weight) after .to(torch.float64), for a float64 weight")


# ---------------------------------------------------------------- part 3: a sparse layer


def _sparse_layer(fn, n_in, n_out, density, seed, what, allow_reference):
    # nn.Linear draws its initial weights from the global generator: allowed here
    layer = _own_code(fn, n_in, n_out, density, seed=seed, what=what,
                      allow_reference=allow_reference, uses_global_rng=True)
    if not _isinstance(layer, _Linear):
        fail("sparse_connectivity.not_linear",
             f"{what} must return an nn.Linear, got {_type(layer).__name__}.")
    if layer.bias is None:
        fail("sparse_connectivity.layer_no_bias",
             f"{what} has no bias: return nn.Linear(n_in, n_out) as it is (with its bias); "
             "only the weight is masked.")
    shape = tuple(layer.weight.shape)
    if shape != (n_out, n_in):
        fail("sparse_connectivity.layer_shape",
             f"{what}.weight has shape {shape}; an nn.Linear({n_in}, {n_out}) weight is "
             f"(out, in) = ({n_out}, {n_in}), and the mask must have that shape too.")
    if not _is_parametrized(layer, "weight"):
        fail("sparse_connectivity.not_parametrized",
             f"{what}.weight is not parametrized: register your Mask with "
             "torch.nn.utils.parametrize.register_parametrization(layer, 'weight', Mask(mask)), "
             "so the mask is applied every time the weight is used.")
    weight = tensor(layer.weight, f"{what}.weight", dtype=_float32)
    zeros = weight == 0
    expected = n_in * n_out - round(density * n_in * n_out)
    if int(zeros.sum()) != expected:
        fail("sparse_connectivity.layer_wrong_zeros",
             f"{what}.weight should have exactly {expected} zeros (density {density} of the "
             f"{n_in * n_out} entries connected, self-connections allowed), but it has "
             f"{int(zeros.sum())}.")
    return layer, zeros


def _train(layer, zeros, seed, what) -> None:
    """200 AdamW steps with weight decay on a regression problem: no zero may come back."""
    rng = _generator(seed + 7)
    n_out, n_in = zeros.shape
    inputs = _randn(64, n_in, generator=rng)
    targets = _randn(64, n_out, generator=rng)
    before = tensor(layer.weight, f"{what}.weight")
    try:
        optimizer = _AdamW(layer.parameters(), lr=0.05, weight_decay=0.1)
        for _ in range(200):
            loss = ((layer(inputs) - targets) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    except Exception as error:  # noqa: BLE001 - any error becomes feedback
        fail("sparse_connectivity.training_raised",
             f"training {what} with AdamW raised {_type(error).__name__}: {error}")
    weight = tensor(layer.weight, f"{what}.weight after training")
    leaked = weight[zeros] != 0
    if leaked.any():
        fail("sparse_connectivity.zeros_leaked",
             f"after 200 AdamW steps, {int(leaked.sum())} masked weights of {what} are no "
             f"longer zero (largest {weight[zeros].abs().max().item():.3g}): the mask must be "
             "applied in the forward pass, not once at initialisation.")
    trained = ~zeros
    if _equal(weight[trained], before[trained]):
        fail("sparse_connectivity.weights_not_trained",
             f"after 200 AdamW steps, no connected weight of {what} has changed: the "
             "unmasked weights must stay trainable (do not freeze the layer's parameters).")


def _layer_from_another_global_state(fn, n_in, n_out, density, seed, what, allow_reference):
    """The layer again, the global generator first moved on: nn.Linear then draws other
    initial weights, unless the student's code reseeds the global generator."""
    saved = _get_rng_state()
    try:
        _rand(1)
        return _sparse_layer(fn, n_in, n_out, density, seed, what, allow_reference)
    finally:
        _set_rng_state(saved)


def _check_pattern(random_sparse_mask, zeros, n_in, n_out, density, seed, what,
                   allow_reference) -> None:
    """The layer's zeros are those of random_sparse_mask(n_out, n_in, density, seed)."""
    mask_what = f"random_sparse_mask({n_out}, {n_in}, {density}, seed={seed})"
    mask = tensor(_own_code(random_sparse_mask, n_out, n_in, density, seed=seed,
                            what=mask_what, allow_reference=allow_reference), mask_what)
    if tuple(mask.shape) != (n_out, n_in):
        return  # part 1's checker explains a wrong mask; here only the layer is judged
    if _equal(zeros, mask == 0):
        return
    fail("sparse_connectivity.layer_wrong_pattern",
         f"the zeros of {what}.weight are not those of {mask_what}: build the mask with "
         "random_sparse_mask(n_out, n_in, density, seed=seed), (post, pre) = (out, in), "
         "and do not transpose it.")


@single_threaded
def check_sparse_linear(sparse_linear, seed: int = 0, *, random_sparse_mask=None,
                        allow_reference: bool = False) -> None:
    """Check that the layer is masked by a seeded parametrization whose zeros survive AdamW,
    and, given the student's random_sparse_mask, that its zeros are that mask's."""
    allow = allow_reference
    for n_in, n_out, density in ((12, 10, 0.25), (5, 9, 0.6), (8, 8, 0.5)):
        what = f"sparse_linear({n_in}, {n_out}, density={density}, seed={seed})"
        layer, zeros = _sparse_layer(sparse_linear, n_in, n_out, density, seed, what, allow)
        if random_sparse_mask is not None:
            _check_pattern(random_sparse_mask, zeros, n_in, n_out, density, seed, what, allow)
        again, zeros_again = _layer_from_another_global_state(sparse_linear, n_in, n_out,
                                                              density, seed, what, allow)
        first_weight = tensor(layer.weight, what)
        if first_weight.any() and _equal(first_weight, tensor(again.weight, what)):
            fail("sparse_connectivity.layer_reseeds_global_rng",
                 f"{what} gave the same initial weights from two different states of torch's "
                 "global random generator: it reseeds it (torch.manual_seed). Do not: the "
                 "seed only chooses the mask, and reseeding would reset the random numbers of "
                 "the code that calls sparse_linear.")
        if not _equal(zeros, zeros_again):
            fail("sparse_connectivity.layer_not_seeded",
                 f"calling {what} twice gave two different sparsity patterns: build the mask "
                 "with random_sparse_mask(n_out, n_in, density, seed=seed).")
        other = f"sparse_linear({n_in}, {n_out}, density={density}, seed={seed + 1})"
        _other, zeros_other = _sparse_layer(sparse_linear, n_in, n_out, density, seed + 1, other,
                                             allow)
        if _equal(zeros, zeros_other):
            fail("sparse_connectivity.layer_seed_ignored",
                 f"seeds {seed} and {seed + 1} gave the same sparsity pattern: pass `seed` on "
                 "to random_sparse_mask.")
        _train(layer, zeros, seed, what)


# ---------------------------------------------------------------- part 4: one RNN step


def reference_rate_rnn_step(x, u, w_rec, w_in, mask, alpha):
    """Song et al. 2016, eq. 1 (Euler, alpha = dt / tau), weights (post, pre), no noise."""
    rates = _relu(x)
    return (1 - alpha) * x + alpha * (rates @ (w_rec * mask).T + u @ w_in.T)


def _step_mistakes(x, u, w_rec, w_in, mask, alpha):
    """(id, message, wrong value) for the plausible mistakes, in float64."""
    r = _relu(x)
    recurrent = r @ (w_rec * mask).T
    inputs = u @ w_in.T
    return [
        ("sparse_connectivity.step_leak_missing", "the leak term (1 - alpha) * x is missing",
         alpha * (recurrent + inputs)),
        ("sparse_connectivity.step_leak_not_scaled",
         "the old state must be multiplied by (1 - alpha): x' = (1 - alpha) x + alpha (...)",
         x + alpha * (recurrent + inputs)),
        ("sparse_connectivity.step_alpha_swapped",
         "alpha and (1 - alpha) are swapped: the old state keeps (1 - alpha) of itself and "
         "the new drive enters with alpha = dt / tau",
         alpha * x + (1 - alpha) * (recurrent + inputs)),
        ("sparse_connectivity.step_mask_not_applied",
         "the mask was not applied: use (w_rec * mask)",
         (1 - alpha) * x + alpha * (r @ w_rec.T + inputs)),
        ("sparse_connectivity.step_mask_transposed",
         "the mask was applied transposed: mask and w_rec are both (post, pre), multiply them "
         "elementwise as they are",
         (1 - alpha) * x + alpha * (r @ (w_rec * mask.T).T + inputs)),
        ("sparse_connectivity.step_currents_not_rates",
         "the recurrent input must use the rates relu(x), not the currents x",
         (1 - alpha) * x + alpha * (x @ (w_rec * mask).T + inputs)),
        ("sparse_connectivity.step_relu_on_drive",
         "relu belongs on the presynaptic currents, relu(x), before the weights: "
         "(w_rec ⊙ mask) relu(x), not relu of the summed drive",
         (1 - alpha) * x + alpha * _relu(x @ (w_rec * mask).T + inputs)),
        ("sparse_connectivity.step_input_missing", "the input term W_in u is missing",
         (1 - alpha) * x + alpha * recurrent),
        ("sparse_connectivity.step_input_outside_alpha",
         "the input term W_in u must be inside the alpha (...) bracket, like the recurrent "
         "term",
         (1 - alpha) * x + alpha * recurrent + inputs),
        ("sparse_connectivity.step_weights_not_post_pre",
         "weights are (post, pre): the drive to unit i is sum_j W[i, j] r[j], i.e. "
         "r @ (w_rec * mask).T for a batch of row vectors",
         (1 - alpha) * x + alpha * (r @ (w_rec * mask) + inputs)),
        ("sparse_connectivity.step_returns_rate",
         "return the new current x', not relu(x'): the rate is computed at the next step",
         _relu(reference_rate_rnn_step(x, u, w_rec, w_in, mask, alpha))),
    ]


def _step_case(rng, batch, n, n_in, alpha, dtype, *, negative=False, scale=1.0):
    x = scale * _randn(batch, n, generator=rng, dtype=_float64)
    if negative:
        x = -x.abs()  # all units silent: relu(x) = 0
    u = _randn(batch, n_in, generator=rng, dtype=_float64)
    w_rec = _randn(n, n, generator=rng, dtype=_float64)
    w_in = _randn(n, n_in, generator=rng, dtype=_float64)
    mask = _random_mask((n, n), rng).to(_float64)
    return tuple(t.to(dtype) for t in (x, u, w_rec, w_in, mask)), alpha


def _tolerance(dtype) -> float:
    return 1e-6 if dtype == _float64 else 2e-5  # float32: a few ulps of sums of ~10 terms


def _check_step_value(fn, args, alpha, what) -> None:
    dtype = args[0].dtype
    tol = _tolerance(dtype)
    out = tensor(call(fn, *(a.clone() for a in args), alpha, what=what), what)
    if tuple(out.shape) != tuple(args[0].shape):
        fail("common.wrong_shape", f"{what} returned shape {tuple(out.shape)}; it should be "
             f"(batch, n) = {tuple(args[0].shape)}, the shape of x.")
    if out.dtype != dtype:
        fail("common.wrong_dtype", f"{what} returned dtype {out.dtype} for {dtype} inputs: "
             "keep the dtype of x (the next step multiplies it with the same weights).")
    exact = [a.to(_float64) for a in args]
    expected = reference_rate_rnn_step(*exact, alpha)
    if not close(out, expected, tol):
        for mistake, message, wrong in _step_mistakes(*exact, alpha):
            if close(out, wrong, tol):
                fail(mistake, f"{what}: {message}.")
        fail("sparse_connectivity.step_wrong_value",
             f"{what} differs from (1 - alpha) x + alpha ((w_rec ⊙ mask) relu(x) + w_in u): "
             f"{worst_entry(out, expected)}.")


def _check_step_gradient(fn, args, alpha, what) -> None:
    """The network is trained through this step: its gradients must be the formula's."""
    dtype = args[0].dtype
    leaves = [a.clone().requires_grad_(True) for a in args[:4]]
    out = tensor(call(fn, *leaves, args[4].clone(), alpha, what=what), what, keep_graph=True)
    if not out.requires_grad:
        fail("common.no_gradient", f"no gradient flows through {what}: do not detach, use "
             ".data, numpy or torch.no_grad; the network is trained through this step.")
    upstream = _randn(out.shape, generator=_generator(11), dtype=_float64)
    gradients = _grad(out, leaves, upstream.to(dtype), allow_unused=True)
    exact = [a.to(_float64).requires_grad_(True) for a in args[:4]]
    expected = _grad(reference_rate_rnn_step(*exact, args[4].to(_float64), alpha), exact,
                     upstream)
    for name, gradient, expected_gradient in zip(("x", "u", "w_rec", "w_in"), gradients,
                                                 expected, strict=True):
        if gradient is None:
            fail("common.no_gradient", f"{what}: no gradient flows back to {name}; do not "
                 "detach it or compute with .data or numpy.")
        gradient = finite_gradient(gradient, f"{what}, gradient with respect to {name}")
        if not close(gradient, expected_gradient, _tolerance(dtype)):
            fail("sparse_connectivity.step_wrong_gradient",
                 f"{what} has the right value but the wrong gradient with respect to {name} "
                 f"({worst_entry(gradient, expected_gradient)}): compute the step with "
                 "differentiable torch operations only.")


def _visible_example():
    x = _tensor([[1.0, -1.0]])
    u = _tensor([[0.5]])
    w_rec = _tensor([[0.0, 2.0], [3.0, 0.0]])
    w_in = _tensor([[1.0], [1.0]])
    mask = _tensor([[0.0, 1.0], [1.0, 0.0]])
    return (x, u, w_rec, w_in, mask), 0.5


@single_threaded
def check_rate_rnn_step(rate_rnn_step, seed: int = 0) -> None:
    """Compare one step, and its gradients, with the reference on the visible example and on
    seeded random cases of several shapes and both float dtypes; name the likely mistake."""
    rng = _generator(seed)
    args, alpha = _visible_example()
    cases = [(args, alpha, "rate_rnn_step on the example above (expected [[0.75, 1.25]])")]
    shapes = [  # (batch, n, n_in, alpha, dtype, all units silent, size of x)
        (3, 6, 2, None, _float64, False, 1.0),
        (1, 5, 1, None, _float64, False, 1.0),
        (4, 7, 3, None, _float32, False, 1.0),
        (2, 4, 3, 1.0, _float64, False, 1.0),
        (5, 3, 2, None, _float64, True, 1.0),
        (2, 5, 2, None, _float64, False, 1000.0),  # no clamp or saturation is asked for
    ]
    for batch, n, n_in, alpha, dtype, negative, scale in shapes:
        if alpha is None:
            alpha = round(float(_rand(1, generator=rng)) * 0.5 + 0.1, 3)
        args, alpha = _step_case(rng, batch, n, n_in, alpha, dtype, negative=negative,
                                 scale=scale)
        what = (f"rate_rnn_step(x, u, w_rec, w_in, mask, alpha={alpha}) with batch {batch}, "
                f"n = {n}, n_in = {n_in}, {str(dtype).replace('torch.', '')}")
        what += ", all x < 0" if negative else ""
        what += f", currents of size ~{scale:g} (no clamp)" if scale != 1.0 else ""
        cases.append((args, alpha, what))
    for args, alpha, what in cases:  # values first: they name the mistake best
        _check_step_value(rate_rnn_step, args, alpha, what)
    for args, alpha, what in cases:
        _check_step_gradient(rate_rnn_step, args, alpha, what)
