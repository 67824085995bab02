"""What e-prop costs against surrogate-gradient BPTT: time and memory per trial.

One trial (forward and gradients, no optimiser step) of the LIF network of
`course_lib.spiking`, batch 32, 3 inputs, at N = 64 and 256 units and T = 100 and 400 time
steps: e-prop (`course_lib.learning_rules.eprop.eprop_trial`) against BPTT (autograd
through the surrogate spike). e-prop carries filtered eligibility traces of
``batch * N * (N + inputs)`` numbers through time, whatever ``T``; BPTT keeps the whole
trajectory for its backward pass, so its memory grows with ``T``, but its cost per step is
a few ``(batch, N) x (N, N)`` products where e-prop updates every synapse's trace,
``batch * N^2`` numbers, at every step.

Time is the best of a few rounds; peak memory is measured as chapter 08's benchmark
measures it (`bench_learning_rules.peak_trial_memory`: the most the C heap holds above its
starting level during one trial, sampled after every tensor operation). One thread.

Run from the repository root (a minute or two)::

    .venv/bin/python benchmarks/bench_spiking.py
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_learning_rules import best_time, peak_trial_memory  # noqa: E402

from course_lib.learning_rules.eprop import eprop_trial  # noqa: E402
from course_lib.spiking import SpikingRNN, task_loss  # noqa: E402

BATCH, N_INPUT = 32, 3


def trial_runner(method: str, n_hidden: int, steps: int) -> Callable[[], None]:
    net = SpikingRNN(N_INPUT, n_hidden, 1, input_gain=3.0, seed=0)
    generator = torch.Generator().manual_seed(1)
    inputs = 1.5 * torch.rand(steps, BATCH, N_INPUT, generator=generator)
    targets = torch.randn(steps, BATCH, 1, generator=generator)

    def run_eprop() -> None:
        eprop_trial(net, inputs, targets)

    def run_bptt() -> None:
        net.zero_grad()
        task_loss(net(inputs)[0], targets).backward()

    return run_eprop if method == "eprop" else run_bptt


def firing_rate(n_hidden: int, steps: int) -> float:
    """Mean spikes per unit and step of the benchmarked network (a sanity check: it fires)."""
    net = SpikingRNN(N_INPUT, n_hidden, 1, input_gain=3.0, seed=0)
    inputs = 1.5 * torch.rand(steps, BATCH, N_INPUT, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return net(inputs)[1].mean().item()


def bench_eprop() -> None:
    print(f"One trial, batch {BATCH}, {N_INPUT} inputs; traces = B*N*(N+inputs) float32")
    print(
        f"{'N':>4} {'T':>4} {'rate':>5} {'traces (MiB)':>13} {'e-prop (ms)':>12} "
        f"{'BPTT (ms)':>10} {'ratio':>6} {'e-prop peak (MiB)':>18} {'BPTT peak (MiB)':>16} "
        f"{'ratio':>6}"
    )
    for n_hidden in (64, 256):
        for steps in (100, 400):
            trace_mib = BATCH * n_hidden * (n_hidden + N_INPUT) * 4 / 2**20
            repeats = 3 if n_hidden * steps <= 64 * 400 else 1
            t_eprop = best_time(trial_runner("eprop", n_hidden, steps), repeats, rounds=3)
            t_bptt = best_time(trial_runner("bptt", n_hidden, steps), repeats, rounds=3)
            m_eprop = peak_trial_memory(trial_runner("eprop", n_hidden, steps)) / 2**20
            m_bptt = peak_trial_memory(trial_runner("bptt", n_hidden, steps)) / 2**20
            print(
                f"{n_hidden:>4} {steps:>4} {firing_rate(n_hidden, steps):>5.2f} "
                f"{trace_mib:>13.2f} {t_eprop * 1e3:>12.1f} {t_bptt * 1e3:>10.1f} "
                f"{t_eprop / t_bptt:>6.2f} {m_eprop:>18.2f} {m_bptt:>16.2f} "
                f"{m_eprop / m_bptt:>6.2f}"
            )


if __name__ == "__main__":
    torch.set_num_threads(1)
    bench_eprop()
