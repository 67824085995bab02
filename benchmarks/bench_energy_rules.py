"""What learning by relaxation costs: time and inference steps per update, against backprop.

Predictive coding and equilibrium propagation compute their update from a network that
has settled: each update needs many inference steps, each about as costly as a forward
pass. Backprop needs one forward and one backward pass. On one network (the digits
shape of chapter 06: 64 inputs, two hidden layers, 10 outputs; the same weights for every
rule), this times one update of:

- backprop (autograd forward + backward of the tanh MLP, loss ``||y - y_hat||^2 / 2``);
- Z-IL (predictive coding with Song et al.'s schedule: ``L - 1`` inference steps);
- predictive coding (Whittington & Bogacz: inference to equilibrium, step 0.2);
- equilibrium propagation, one-sided (``beta = 0.1``) and symmetric (``±beta``), and
  contrastive Hebbian learning (free phase, then the output clamped to the target);
  their energy network has the same layer sizes and weights, used symmetrically.

The relaxations stop when no state moves more than ``tol`` per unit step. Times are the
best of several interleaved rounds, on one thread, in float32 and float64 (float32 cannot
settle below about 1e-6). Run from the repository root (about 30 s)::

    .venv/bin/python benchmarks/bench_energy_rules.py
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_learning_rules import best_time  # noqa: E402

from course_lib._threads import one_thread  # noqa: E402
from course_lib.learning_rules import equilibrium_propagation as ep  # noqa: E402
from course_lib.learning_rules import predictive_coding as pc  # noqa: E402

SIZES, BATCH = (64, 64, 32, 10), 32
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-8}


def rules(dtype: torch.dtype) -> dict[str, Callable[[], int]]:
    """Each rule's update as a function returning its number of inference steps."""
    weights = pc.init_weights(SIZES, seed=0, dtype=dtype)
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(BATCH, SIZES[0], generator=generator, dtype=dtype)
    y = torch.rand(BATCH, SIZES[-1], generator=generator, dtype=dtype)
    tol = TOLERANCE[dtype]

    def backprop() -> int:
        params = [w.clone().requires_grad_(True) for w in weights]
        h = x
        for w in params:
            h = torch.tanh(h) @ w.T
        loss = 0.5 * ((y - h) ** 2).sum(1).mean()
        torch.autograd.grad(loss, params)
        return 0

    def zil() -> int:
        pc.zil_update(x, y, weights)
        return len(weights) - 1

    def predictive_coding() -> int:
        return pc.pc_update(x, y, weights, step_size=0.2, max_steps=5000, tol=tol)[1]

    def eqprop(symmetric: bool) -> Callable[[], int]:
        def run() -> int:
            options = {"step_size": 0.5, "max_steps": 5000, "tol": tol}
            return ep.eqprop_gradient(x, y, weights, beta=0.1, symmetric=symmetric, **options)[1]

        return run

    def chl() -> int:
        options = {"step_size": 0.5, "max_steps": 5000, "tol": tol}
        free, steps = ep.free_phase(x, weights, **options)
        clamped, more = ep.clamped_phase(free, weights, y, **options)
        ep.chl_update(free, clamped)
        return steps + more

    return {
        "backprop": backprop,
        "Z-IL": zil,
        "predictive coding": predictive_coding,
        "EqProp (one-sided)": eqprop(symmetric=False),
        "EqProp (symmetric)": eqprop(symmetric=True),
        "CHL": chl,
    }


def bench(dtype: torch.dtype, rounds: int = 7) -> None:
    steps = {name: rule() for name, rule in rules(dtype).items()}
    times = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):  # interleave the rules so that a busy moment hits all of them
        for name, rule in rules(dtype).items():
            repeats = 50 if steps[name] < 10 else 3
            times[name] = min(times[name], best_time(rule, repeats, rounds=1))
    print(f"\n{dtype}, network {SIZES}, batch {BATCH}, relaxation tolerance {TOLERANCE[dtype]:g}")
    print(
        f"{'rule':>20} {'time (ms)':>10} {'x backprop':>11} {'inference steps':>16} "
        f"{'ms per step':>12}"
    )
    for name in steps:
        per_step = f"{times[name] * 1e3 / steps[name]:.3f}" if steps[name] else "-"
        print(
            f"{name:>20} {times[name] * 1e3:>10.3f} {times[name] / times['backprop']:>11.1f} "
            f"{steps[name]:>16} {per_step:>12}"
        )


if __name__ == "__main__":
    with one_thread():
        for dtype in (torch.float32, torch.float64):
            bench(dtype)
