"""What learning from a scalar costs: seconds per update, and trials to reach a loss.

1. One node-perturbation (NP) update against one backprop (BP) step on the same tanh MLP
   and batch: NP runs two forward passes (clean and perturbed, every unit jiggled) and one
   outer product per layer; BP one forward and one backward pass. Seconds per update.
2. Trials (examples, each with its own scalar loss) each rule needs to bring a student MLP
   to the same loss on a random-teacher regression task, ``8 -> H -> 2``, H = 8, 32, 128.
   The targets are fractions (10%, 3%, 1%) of the initial loss on a fixed evaluation set;
   each rule gets, per target, the learning rate of its grid with the lowest median over
   3 seeds. NP's gradient estimate carries a variance that grows with the number of units
   it jiggles (Werfel, Xie & Seung 2005), so it needs more trials, the more so the closer
   to the minimum one asks it to go. A median NP run that never reached the target gives
   a lower bound (">").

Everything runs on one thread. Run from the repository root (about 1 minute of CPU)::

    .venv/bin/python benchmarks/bench_reward.py
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_learning_rules import best_time  # noqa: E402

from course_lib.learning_rules.reward import (  # noqa: E402
    backprop_mlp_gradients,
    mlp_forward,
    node_perturbation_mlp_gradients,
    squared_errors,
)

SIGMA = 0.01
BATCH = 32
TARGETS = (0.1, 0.03, 0.01)  # fractions of the initial loss on a fixed evaluation set
MAX_UPDATES = 4000
LEARNING_RATES = {"bp": (0.1, 0.2, 0.4, 0.8, 1.6), "np": (0.03, 0.06, 0.12, 0.24, 0.48)}
HIDDEN = (8, 32, 128)
SEEDS = (0, 1, 2)


def random_mlp(sizes: tuple[int, ...], generator: torch.Generator) -> list[torch.Tensor]:
    return [
        torch.randn(n_out, n_in, generator=generator) / math.sqrt(n_in)
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]


def gradients(rule: str, weights, x, target, generator) -> list[torch.Tensor]:
    if rule == "bp":
        return backprop_mlp_gradients(weights, x, target)
    return node_perturbation_mlp_gradients(weights, x, target, SIGMA, generator)


# ------------------------------------------------------------------ seconds per update


def update_step(rule: str, sizes: tuple[int, ...], batch: int) -> Callable[[], None]:
    generator = torch.Generator().manual_seed(0)
    weights = random_mlp(sizes, generator)
    x = torch.randn(batch, sizes[0], generator=generator)
    target = torch.randn(batch, sizes[-1], generator=generator)

    def step() -> None:
        nonlocal weights
        grads = gradients(rule, weights, x, target, generator)
        weights = [w - 1e-3 * g for w, g in zip(weights, grads, strict=True)]

    return step


def bench_cost(rounds: int = 8) -> None:
    print(f"One update (gradient estimate + SGD step): best of {rounds} interleaved rounds")
    print(f"{'network':>22} {'batch':>6} {'BP (us)':>9} {'NP (us)':>9} {'NP/BP':>6}")
    for sizes, batch, repeats in (
        ((8, 32, 2), 32, 100),
        ((64, 256, 10), 128, 30),
        ((784, 512, 512, 10), 128, 5),
    ):
        steps = {rule: update_step(rule, sizes, batch) for rule in ("bp", "np")}
        times = {rule: float("inf") for rule in steps}
        for _ in range(rounds):  # alternate so that a busy moment hits both rules
            for rule, step in steps.items():
                times[rule] = min(times[rule], best_time(step, repeats, rounds=1))
        print(
            f"{str(sizes):>22} {batch:>6} {times['bp'] * 1e6:>9.0f} {times['np'] * 1e6:>9.0f} "
            f"{times['np'] / times['bp']:>6.2f}"
        )


# ------------------------------------------------------------- trials to the same loss


def updates_to_targets(rule: str, hidden: int, lr: float, seed: int) -> dict[float, int]:
    """Updates until the loss on a fixed evaluation set first falls below each fraction of
    its initial value (checked every 2 updates); MAX_UPDATES if never (or diverged)."""
    sizes = (8, hidden, 2)
    generator = torch.Generator().manual_seed(seed)
    teacher, weights = random_mlp(sizes, generator), random_mlp(sizes, generator)
    x_eval = torch.randn(512, sizes[0], generator=generator)
    target_eval = mlp_forward(teacher, x_eval)[0]

    def eval_loss() -> float:
        return squared_errors(mlp_forward(weights, x_eval)[0], target_eval).mean().item()

    initial = eval_loss()
    reached = dict.fromkeys(TARGETS, MAX_UPDATES)
    noise = torch.Generator().manual_seed(seed + 1000)
    for update in range(MAX_UPDATES):
        if update % 2 == 0:
            loss = eval_loss()
            if not loss < 1e3 * initial:  # diverged (or NaN)
                break
            for fraction in TARGETS:
                if loss < fraction * initial:
                    reached[fraction] = min(reached[fraction], update)
            if reached[min(TARGETS)] < MAX_UPDATES:
                break
        x = torch.randn(BATCH, sizes[0], generator=generator)
        target = mlp_forward(teacher, x)[0]
        grads = gradients(rule, weights, x, target, noise)
        weights = [w - lr * g for w, g in zip(weights, grads, strict=True)]
    return reached


def bench_trials() -> None:
    print(
        f"\nTrials (examples, one scalar loss each) to reach a fraction of the initial loss;"
        f" 8 -> H -> 2 teacher regression, batch {BATCH}, sigma {SIGMA}; per rule and target"
        f" the learning rate with the lowest median over seeds {SEEDS}"
    )
    print(
        f"{'H':>4} {'target':>7} {'BP lr':>6} {'BP trials':>20} {'NP lr':>6} {'NP trials':>22} "
        f"{'NP/BP':>6}"
    )
    for hidden in HIDDEN:
        runs = {
            (rule, lr): [updates_to_targets(rule, hidden, lr, seed) for seed in SEEDS]
            for rule, rates in LEARNING_RATES.items()
            for lr in rates
        }
        for fraction in TARGETS:
            best = {}
            for rule, rates in LEARNING_RATES.items():
                trials = {lr: [r[fraction] * BATCH for r in runs[rule, lr]] for lr in rates}
                lr = min(rates, key=lambda rate, t=trials: statistics.median(t[rate]))
                best[rule] = (lr, trials[lr])
            (bp_lr, bp), (np_lr, np_) = best["bp"], best["np"]
            ratio = f"{statistics.median(np_) / statistics.median(bp):.1f}"
            if statistics.median(np_) == MAX_UPDATES * BATCH:
                ratio = ">" + ratio  # NP's median run never got there: a lower bound
            print(
                f"{hidden:>4} {fraction:>7} {bp_lr:>6} {str(bp):>20} {np_lr:>6} {str(np_):>22} "
                f"{ratio:>6}"
            )
    print(f"(trials = updates x {BATCH}; {MAX_UPDATES * BATCH} = not reached in {MAX_UPDATES})")


if __name__ == "__main__":
    torch.set_num_threads(1)
    bench_cost()
    bench_trials()
