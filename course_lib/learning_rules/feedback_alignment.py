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
