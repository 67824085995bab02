"""Feedback alignment (FA) and direct feedback alignment (DFA).

Backprop sends the error down through the *transposes* of the forward weights. A brain
would need the feedback synapses to copy the forward ones ("weight transport").
Lillicrap et al. 2016 (Nat Commun 7:13276, "Random synaptic feedback weights support error
backpropagation for deep learning", Fig. 1) replace ``W^T`` by a fixed random matrix ``B``;
Nøkland 2016 (NeurIPS, "Direct feedback alignment provides learning in deep neural
networks", Fig. 1) sends the *output* error straight to every hidden layer::

    backprop:  delta_{l-1} = (W_l^T delta_l) ⊙ phi'(a_{l-1})
    FA:        delta_{l-1} = (B_l   delta_l) ⊙ phi'(a_{l-1})
    DFA:       delta_l     = (B_l   e)       ⊙ phi'(a_l)        for every hidden layer l

The weight update keeps its local form ``dW_l = delta_l h_{l-1}^T`` in all three. The
forward weights then come to *align* with ``B^T``, so the random feedback becomes useful.

Shapes: a feedback matrix is a ``(post, pre)`` weight of the *feedback* pathway, which runs
from a layer's ``n_out`` units back to its ``n_in`` units. So ``B`` has shape
``(n_in, n_out)``, the shape of ``W^T``, and ``B = W^T`` turns FA back into backprop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import progress as progress_
from course_lib._threads import one_thread
from course_lib._validate import check_positive, check_shape, make_generator

RULES = ("bp", "fa", "dfa")


def fa_backward(delta: torch.Tensor, feedback: torch.Tensor) -> torch.Tensor:
    """Error sent to the layer below: ``B delta`` (Lillicrap et al. 2016, Fig. 1).

    ``delta``: ``(batch, n_out)`` error at a layer's output; ``feedback``: ``(n_in, n_out)``.
    Returns ``(batch, n_in)``. Backprop is the special case ``feedback = W^T``.
    """
    check_shape("delta", delta, (-1, -1))
    check_shape("feedback", feedback, (-1, delta.shape[1]))
    return delta @ feedback.T  # rows are samples: (B delta)^T = delta^T B^T


def alignment_angle(a: torch.Tensor, b: torch.Tensor) -> float:
    """Angle in degrees between two tensors of one shape, seen as flat vectors.

    0 means parallel, 90 orthogonal. Lillicrap et al. 2016 follow it between
    ``W_out^T`` and ``B`` and between the FA and backprop hidden updates.
    """
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"b must have the shape of a, {tuple(a.shape)}, got {tuple(b.shape)}")
    a, b = a.detach().flatten().double(), b.detach().flatten().double()
    norms = a.norm() * b.norm()
    if norms == 0:
        raise ValueError("the angle of a zero tensor is undefined: both must be non-zero")
    cosine = torch.clamp(a @ b / norms, -1.0, 1.0)
    return math.degrees(math.acos(cosine.item()))


def random_feedback(
    n_in: int, n_out: int, *, seed: int | torch.Generator | None = 0
) -> torch.Tensor:
    """A fixed random ``(n_in, n_out)`` feedback matrix, uniform in ``±1/sqrt(n_out)``."""
    bound = 1.0 / math.sqrt(n_out)
    generator = make_generator(seed)
    return (torch.rand(n_in, n_out, generator=generator) * 2 - 1) * bound


class FeedbackAlignmentFunction(torch.autograd.Function):
    """``y = x W^T + b`` forward; backward sends ``delta B^T`` down instead of ``delta W``."""

    @staticmethod
    def forward(ctx, x, weight, bias, feedback):
        ctx.save_for_backward(x, feedback)
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, delta):
        x, feedback = ctx.saved_tensors
        grad_x = fa_backward(delta, feedback) if ctx.needs_input_grad[0] else None
        grad_weight = delta.T @ x  # the usual local rule: error (post) times input (pre)
        grad_bias = delta.sum(0)
        return grad_x, grad_weight, grad_bias, None  # B is never trained


class FALinear(nn.Module):
    """A linear layer trained with feedback alignment.

    ``weight`` ``(out, in)`` and ``bias`` are parameters; ``feedback`` ``(in, out)`` is a
    buffer: it moves with ``.to()``, is saved in ``state_dict`` and never gets a gradient.
    """

    def __init__(self, in_features: int, out_features: int, *, seed: int = 0):
        super().__init__()
        generator = make_generator(seed)
        bound = 1.0 / math.sqrt(in_features)  # the scale of nn.Linear's default init
        self.weight = nn.Parameter(
            (torch.rand(out_features, in_features, generator=generator) * 2 - 1) * bound
        )
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.register_buffer("feedback", random_feedback(in_features, out_features, seed=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_out, n_in = self.weight.shape
        check_shape("x", x, (-1, n_in))
        check_shape("feedback", self.feedback, (n_in, n_out))  # the shape of W^T
        return FeedbackAlignmentFunction.apply(x, self.weight, self.bias, self.feedback)


class DirectFeedbackFunction(torch.autograd.Function):
    """Identity on the network output; backward hands ``B_l e`` to every hidden layer.

    ``forward(output, feedbacks, *hidden)`` returns ``output``. In the backward pass the
    output error ``e`` passes through unchanged and hidden activation ``l`` receives
    ``e B_l^T`` (Nøkland 2016, Fig. 1). The hidden layers are cut from each other in the
    forward pass (their inputs are detached), so no error travels through ``W``.
    """

    @staticmethod
    def forward(ctx, output, feedbacks, *hidden):
        ctx.feedbacks = feedbacks
        return output.clone()

    @staticmethod
    def backward(ctx, error):
        to_hidden = [fa_backward(error, feedback) for feedback in ctx.feedbacks]
        return (error, None, *to_hidden)


class FeedbackMLP(nn.Module):
    """A multilayer perceptron trained by backprop (``"bp"``), FA (``"fa"``) or DFA (``"dfa"``).

    ``sizes = (n_in, hidden..., n_out)``; hidden layers use ``tanh``, the output is linear.
    Every layer is an `FALinear`, so one set of weights can be trained by any rule:
    ``"bp"`` ignores the feedback buffers, ``"fa"`` uses each layer's ``feedback`` and
    ``"dfa"`` uses ``direct_feedback[l]`` ``(n_hidden_l, n_out)``, one per hidden layer.
    """

    def __init__(self, sizes: tuple[int, ...], *, rule: str = "fa", seed: int = 0):
        super().__init__()
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"sizes must be (n_in, hidden..., n_out) positive ints, got {sizes}")
        self.rule = rule
        generator = make_generator(seed)
        pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
        layer_seeds = torch.randint(0, 2**31 - 1, (len(pairs),), generator=generator).tolist()
        self.layers = nn.ModuleList(
            FALinear(n_in, n_out, seed=s)
            for (n_in, n_out), s in zip(pairs, layer_seeds, strict=True)
        )
        n_out = sizes[-1]
        for k, n_hidden in enumerate(sizes[1:-1]):
            self.register_buffer(
                f"direct_feedback_{k}", random_feedback(n_hidden, n_out, seed=generator)
            )

    @property
    def direct_feedback(self) -> list[torch.Tensor]:
        return [getattr(self, f"direct_feedback_{k}") for k in range(len(self.layers) - 1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = []
        h = x
        for layer in self.layers[:-1]:
            h = torch.tanh(self._linear(layer, h))
            hidden.append(h)
        output = self._linear(self.layers[-1], h)
        if self.rule == "dfa":  # hand the output error straight to every hidden layer
            for k, (feedback, h) in enumerate(zip(self.direct_feedback, hidden, strict=True)):
                check_shape(f"direct_feedback_{k}", feedback, (h.shape[1], output.shape[1]))
            output = DirectFeedbackFunction.apply(output, tuple(self.direct_feedback), *hidden)
        return output

    def _linear(self, layer: FALinear, h: torch.Tensor) -> torch.Tensor:
        if self.rule == "fa":
            return layer(h)  # backward through the layer's B
        if self.rule == "dfa":
            h = h.detach()  # cut the layers apart: no error travels down through W
        return F.linear(h, layer.weight, layer.bias)

    def output_alignment(self) -> float:
        """Angle (degrees) between ``W_out^T`` and the feedback the last hidden layer gets."""
        w_out_t = self.layers[-1].weight.T
        if self.rule == "dfa" and len(self.layers) > 1:
            return alignment_angle(w_out_t, self.direct_feedback[-1])
        return alignment_angle(w_out_t, self.layers[-1].feedback)


# ---------------------------------------------------------------- digits demonstration


@dataclass
class DigitsHistory:
    """What `train_digits_mlp` measured, once before training and after every epoch."""

    rule: str
    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)  # mean over the epoch (nan at 0)
    test_accuracy: list[float] = field(default_factory=list)
    angle: list[float] = field(default_factory=list)  # W_out^T vs B, degrees (nan for bp)


def load_digits_split(
    *, test_fraction: float = 0.25, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8x8 digits (no download), scaled to [0, 1], split by class.

    Returns ``x_train, y_train, x_test, y_test``; the same seed gives the same split.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x / 16.0, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    images = [torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in (x_tr, x_te)]
    labels = [torch.as_tensor(np.asarray(a), dtype=torch.long) for a in (y_tr, y_te)]
    return images[0], labels[0], images[1], labels[1]


def train_digits_mlp(
    rule: str = "fa",
    *,
    hidden: tuple[int, ...] = (100, 100),
    epochs: int = 30,
    lr: float = 0.05,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool | None = None,
) -> DigitsHistory:
    """Train a `FeedbackMLP` on digits with plain SGD; about a second per rule on 2 CPUs.
    ``progress``: a bar and a closing sentence, by default in a notebook only
    (`course_lib.progress`).

    The same seed gives the same data split, initial weights, feedback and batch order
    for every rule, so BP, FA and DFA start from identical networks.
    """
    check_positive("lr", lr)
    x_train, y_train, x_test, y_test = load_digits_split(seed=seed)
    model = FeedbackMLP((x_train.shape[1], *hidden, 10), rule=rule, seed=seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    order = make_generator(seed + 1)
    history = DigitsHistory(rule=rule)

    def record(epoch: int, loss: float) -> None:
        with torch.no_grad():
            accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
        history.epochs.append(epoch)
        history.train_loss.append(loss)
        history.test_accuracy.append(accuracy)
        history.angle.append(float("nan") if rule == "bp" else model.output_alignment())

    with one_thread():
        record(0, float("nan"))
        for epoch in progress_.steps(range(1, epochs + 1), desc=rule, progress=progress):
            losses = []
            for batch in torch.randperm(len(x_train), generator=order).split(batch_size):
                loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            record(epoch, float(np.mean(losses)))
    progress_.report(
        f"After {epochs} epochs of {rule.upper()} the network classifies "
        f"{history.test_accuracy[-1]:.1%} of the held-out digits correctly.",
        progress=progress,
    )
    return history


# ------------------------------------------------- several seeds at once, with controls

CONTROLS = ("readout", "shuffled")
SEED_RULES = RULES + CONTROLS
"""Rules of `train_digits_seeds`: BP, FA, DFA and two controls that isolate FA's hidden
learning. ``"readout"``: the hidden layers keep their random initial weights and only the
output layer learns (a random-features network). ``"shuffled"``: FA whose feedback
matrices have their entries permuted anew at every step, so the hidden layers receive an
error of FA's size through feedback with no fixed direction to align to."""


def shuffle_entries(feedback: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each member's matrix ``feedback[m]`` with its entries in a fresh random order.

    ``feedback`` is ``(members, rows, cols)``. The values (hence the norm and the
    distribution) stay those of ``feedback[m]``; only their places change.
    """
    members, rows, cols = feedback.shape
    flat = feedback.reshape(members, rows * cols)
    order = torch.stack([torch.randperm(rows * cols, generator=generator) for _ in range(members)])
    return flat.gather(1, order).reshape(members, rows, cols)


def hidden_errors(
    rule: str,
    error: torch.Tensor,
    weights: list[torch.Tensor],
    feedback: list[torch.Tensor],
    slopes: list[torch.Tensor],
) -> list[torch.Tensor]:
    """The error ``delta_l`` of every hidden layer, from the output error ``e`` down.

    ``error``: ``(members, batch, n_out)``, ``dL/da`` at the output. ``weights[l]``:
    ``(members, out, in)`` of layer ``l``. ``feedback[l]``: the matrix that carries the
    error to hidden layer ``l``: ``B_{l+1}`` ``(n_l, n_{l+1})`` for FA (already shuffled
    for ``"shuffled"``), ``B_l`` ``(n_l, n_out)`` for DFA. ``slopes[l]``: ``phi'(a_l)``.
    """
    deltas = []
    delta = error
    for layer in reversed(range(len(slopes))):
        if rule == "bp":  # backprop: down through the forward weights, W^T delta
            sent = delta @ weights[layer + 1]
        elif rule in ("fa", "shuffled"):  # FA: down through a random B, B delta
            sent = delta @ feedback[layer].mT
        elif rule == "dfa":  # DFA: the output error straight to this layer, B_l e
            sent = error @ feedback[layer].mT
        elif rule == "readout":  # hidden layers frozen: they receive no error at all
            sent = torch.zeros_like(slopes[layer])
        else:
            raise ValueError(f"rule must be one of {SEED_RULES}, got {rule!r}")
        delta = sent * slopes[layer]
        deltas.insert(0, delta)
    return deltas


@dataclass
class DigitsSeeds:
    """What `train_digits_seeds` measured: one row per seed, one column per epoch (0 first)."""

    rule: str
    seeds: tuple[int, ...]
    epochs: list[int]
    train_loss: np.ndarray  # (n_seeds, n_epochs + 1), nan at epoch 0
    test_accuracy: np.ndarray
    angle: np.ndarray  # W_out^T vs the feedback to the last hidden layer; nan for bp, readout

    @property
    def final_accuracy(self) -> np.ndarray:
        """Test accuracy of every seed after the last epoch."""
        return self.test_accuracy[:, -1]


def _stacked_networks(sizes, rule, seeds, feedback_scale):
    """Initial weights, biases and feedback of `FeedbackMLP` (one per seed), stacked."""
    nets = [FeedbackMLP(sizes, rule="fa", seed=s) for s in seeds]

    def stacked(get, n):  # ``get(net, k)`` of every net, stacked, for k = 0 .. n - 1
        return [torch.stack([get(net, k).detach() for net in nets]) for k in range(n)]

    n_layers = len(sizes) - 1
    weights = stacked(lambda net, k: net.layers[k].weight, n_layers)
    biases = stacked(lambda net, k: net.layers[k].bias, n_layers)
    if rule == "dfa":  # DFA: B_l from the output to hidden layer l
        feedback = stacked(lambda net, k: net.direct_feedback[k], n_layers - 1)
    else:  # FA: B_{l+1}, the feedback of the layer above hidden layer l
        feedback = stacked(lambda net, k: net.layers[k + 1].feedback, n_layers - 1)
    return weights, biases, [feedback_scale * b for b in feedback]


def train_digits_seeds(
    rule: str = "fa",
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
    *,
    hidden: tuple[int, ...] = (100, 100),
    epochs: int = 30,
    lr: float = 0.05,
    batch_size: int = 32,
    feedback_scale: float = 1.0,
) -> DigitsSeeds:
    """`train_digits_mlp` for several seeds at once, as one batched model, with controls.

    Seed ``s`` gets exactly what ``train_digits_mlp(rule, seed=s)`` gets (data split, initial
    weights, feedback, batch order), so every rule sees the same data; the gradients are
    written out (`hidden_errors`) instead of taken by autograd, with a leading seed
    dimension. ``rule`` is one of `SEED_RULES`; ``feedback_scale`` multiplies every
    feedback matrix (FA, DFA, shuffled). The permutations of ``"shuffled"`` come from one
    generator seeded by the first seed, so that control's runs depend on the whole tuple.
    About 1 s for 5 seeds of 30 epochs (2 s for ``"shuffled"``) on one CPU.
    """
    if rule not in SEED_RULES:
        raise ValueError(f"rule must be one of {SEED_RULES}, got {rule!r}")
    check_positive("lr", lr)
    seeds = tuple(int(s) for s in seeds)
    splits = [load_digits_split(seed=s) for s in seeds]
    x_train, y_train, x_test, y_test = (torch.stack(parts) for parts in zip(*splits, strict=True))
    sizes = (x_train.shape[2], *hidden, 10)
    weights, biases, feedback = _stacked_networks(sizes, rule, seeds, feedback_scale)
    orders = [make_generator(s + 1) for s in seeds]  # the batch order of train_digits_mlp
    shuffler = make_generator(seeds[0] + 2)
    members = torch.arange(len(seeds))[:, None]

    def forward(x):
        activities = [x]
        for w, b in zip(weights[:-1], biases[:-1], strict=True):
            activities.append(torch.tanh(activities[-1] @ w.mT + b[:, None, :]))
        return activities, activities[-1] @ weights[-1].mT + biases[-1][:, None, :]

    def record(losses):
        _, logits = forward(x_test)
        accuracy = (logits.argmax(2) == y_test).double().mean(1)
        if rule in ("bp", "readout") or feedback_scale == 0:
            angle = [math.nan] * len(seeds)
        else:
            angle = [alignment_angle(weights[-1][m].T, feedback[-1][m]) for m in range(len(seeds))]
        history["loss"].append(np.mean(losses, axis=0) if losses else [math.nan] * len(seeds))
        history["accuracy"].append(accuracy.numpy())
        history["angle"].append(angle)

    history = {"loss": [], "accuracy": [], "angle": []}
    with one_thread(), torch.no_grad():
        record([])
        for _ in range(epochs):
            losses = []
            order = torch.stack([torch.randperm(x_train.shape[1], generator=g) for g in orders])
            for batch in order.split(batch_size, dim=1):
                x, y = x_train[members, batch], y_train[members, batch]
                activities, logits = forward(x)
                losses.append(F.cross_entropy(logits.mT, y, reduction="none").mean(1).numpy())
                error = (logits.softmax(2) - F.one_hot(y, 10)) / y.shape[1]  # dL/da, mean CE
                sent = feedback
                if rule == "shuffled":  # a fresh order of B's entries at every step
                    sent = [shuffle_entries(b, shuffler) for b in feedback]
                slopes = [1 - h**2 for h in activities[1:]]  # tanh'
                deltas = hidden_errors(rule, error, weights, sent, slopes) + [error]
                for k, (delta, h) in enumerate(zip(deltas, activities, strict=True)):
                    weights[k] -= lr * delta.mT @ h  # local: error (post) times input (pre)
                    biases[k] -= lr * delta.sum(1)
            record(losses)
    return DigitsSeeds(
        rule=rule,
        seeds=seeds,
        epochs=list(range(epochs + 1)),
        train_loss=np.array(history["loss"]).T,
        test_accuracy=np.array(history["accuracy"]).T,
        angle=np.array(history["angle"]).T,
    )
