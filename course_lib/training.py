"""A small, explicit supervised training loop for the chapters.

Cross-entropy at every time step against neurogym's targets (fixation included), as in
neurogym's own examples; accuracy is reported per trial (`analysis.decision_accuracy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from course_lib import progress as progress_
from course_lib._threads import one_thread
from course_lib.analysis import decision_accuracy
from course_lib.tasks import TaskDataset


@dataclass
class History:
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)  # per trial, at each evaluation
    eval_steps: list[int] = field(default_factory=list)


@one_thread()  # small networks: one thread is as fast, and never fights other work
def train(
    model: nn.Module,
    data: TaskDataset,
    *,
    n_steps: int,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    penalty: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
    eval_every: int = 25,
    clip_norm: float | None = 1.0,
    progress: bool | None = None,
) -> History:
    """Train ``model`` with AdamW for ``n_steps`` batches of ``data``.

    ``penalty(model, rates)``, if given, is added to the loss (brain-like costs).
    Gradients are clipped to norm ``clip_norm``: recurrent networks occasionally take a
    huge step that silences every ReLU unit for good, and clipping prevents it.
    ``progress`` shows a bar and a closing sentence; by default only in a notebook
    (`course_lib.progress`).
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    history = History()
    model.train()
    for step in progress_.steps(range(1, n_steps + 1), desc="training", progress=progress):
        batch = data.next_batch()
        outputs, rates = model(batch.inputs)
        loss = loss_fn(outputs.flatten(0, 1), batch.targets.flatten())
        if penalty is not None:
            loss = loss + penalty(model, rates)
        optimizer.zero_grad()
        loss.backward()
        if clip_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        history.loss.append(loss.item())
        if step % eval_every == 0 or step == n_steps:
            with torch.no_grad():
                history.accuracy.append(decision_accuracy(outputs, batch.targets))
            history.eval_steps.append(step)
    progress_.report(
        f"After {n_steps} training steps the network chooses correctly on "
        f"{history.accuracy[-1]:.0%} of the trials of its last batch.",
        progress=progress,
    )
    return history


@torch.no_grad()
@one_thread()
def evaluate(model: nn.Module, data: TaskDataset, n_batches: int = 4) -> float:
    """Decision accuracy on ``n_batches`` fresh batches, in eval mode (batch norm, dropout)."""
    model.eval()
    outputs, targets = [], []
    for _ in range(n_batches):
        batch = data.next_batch()
        outputs.append(model(batch.inputs)[0])
        targets.append(batch.targets)
    model.train()
    return decision_accuracy(torch.cat(outputs, dim=1), torch.cat(targets, dim=1))
