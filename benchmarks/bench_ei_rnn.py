"""Training-step time of the E/I (Dale's law) RNN against the unconstrained RateRNN.

One step = forward over the sequence, cross-entropy, backward, Adam step. The Dale
constraint is a `torch.nn.utils.parametrize` on the recurrent, input and readout weights:
it is computed once per forward pass, not once per time step, so it should cost little.
Goal: EIRateRNN at most 1.3x the RateRNN step time. Run from the repository root:

    .venv/bin/python benchmarks/bench_ei_rnn.py

Timing uses one torch thread (these matrices are small; on a shared 2-core machine extra
threads only add noise) and alternates the two models every few steps (see `compare`).
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from course_lib.dale import EIRateRNN
from course_lib.models import RateRNN

SIZES = (64, 128)
BATCH, SEQ_LEN, N_INPUT, N_OUTPUT = 32, 50, 3, 3
STEPS, BLOCK, WARMUP = 100, 5, 5  # 100 timed steps per model, in interleaved blocks of 5
GOAL = 1.3


def make_step(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        outputs, _ = model(inputs)
        loss = loss_fn(outputs.flatten(0, 1), targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def block_seconds(step) -> float:
    start = time.perf_counter()
    for _ in range(BLOCK):
        step()
    return (time.perf_counter() - start) / BLOCK


def compare(n_hidden: int, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, ...]:
    """Median seconds per step of each model, and the median of the block-by-block ratios.

    The two models alternate every few steps, so a load spike from another process hits
    both alike, and the median ignores the blocks it spoiled."""
    plain_step = make_step(RateRNN(N_INPUT, n_hidden, N_OUTPUT, seed=0), inputs, targets)
    dale_step = make_step(EIRateRNN(N_INPUT, n_hidden, N_OUTPUT, seed=0), inputs, targets)
    for _ in range(WARMUP):
        plain_step()
        dale_step()
    plain, dale = [], []
    for _ in range(STEPS // BLOCK):
        plain.append(block_seconds(plain_step))
        dale.append(block_seconds(dale_step))
    ratios = [d / p for d, p in zip(dale, plain, strict=True)]
    return statistics.median(plain), statistics.median(dale), statistics.median(ratios)


def main() -> None:
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(SEQ_LEN, BATCH, N_INPUT, generator=generator)
    targets = torch.randint(N_OUTPUT, (SEQ_LEN, BATCH), generator=generator)
    print(f"batch {BATCH}, sequence {SEQ_LEN} steps, {STEPS} training steps per model, 1 thread")
    print(f"{'N':>5} {'RateRNN ms/step':>16} {'EIRateRNN ms/step':>18} {'ratio':>7}")
    worst = 0.0
    for n_hidden in SIZES:
        plain, dale, ratio = compare(n_hidden, inputs, targets)
        worst = max(worst, ratio)
        print(f"{n_hidden:>5} {1e3 * plain:>16.2f} {1e3 * dale:>18.2f} {ratio:>6.2f}x")
    verdict = "meets" if worst <= GOAL else "MISSES"
    print(f"worst ratio {worst:.2f}x: {verdict} the goal of at most {GOAL}x")


if __name__ == "__main__":
    main()
