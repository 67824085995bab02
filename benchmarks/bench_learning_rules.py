"""What the brain-like learning rules cost: time per step and memory per trial.

1. One training step of a feedback-alignment MLP against one backprop step on the same
   network (goal: FA at most 1.2x BP). FA's backward pass is a Python
   `torch.autograd.Function`; its fixed overhead per layer shows on small networks.
2. One trial of RFLO against one trial of BPTT at N = 64 units, batch 32, 3 inputs and
   200 time steps, then at 400 steps, then at batch 64: wall time and peak memory. RFLO
   carries eligibility traces of ``batch * N * (N + inputs)`` numbers and nothing else
   through time; BPTT keeps the whole trajectory for its backward pass, so its memory
   grows with the trial length.

Peak memory is the most the C heap holds above its starting level during one trial
(glibc's ``mallinfo2``, where torch allocates CPU tensors), sampled after every tensor
operation, backward included, through a `TorchDispatchMode`; Linux with glibc only.
Timing and memory are measured in separate runs; everything runs on one thread.

Run from the repository root (about 30 s)::

    .venv/bin/python benchmarks/bench_learning_rules.py
"""

from __future__ import annotations

import ctypes
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.learning_rules.feedback_alignment import FeedbackMLP  # noqa: E402
from course_lib.learning_rules.rflo import LeakyRNN, rflo_trial, trial_loss  # noqa: E402

N_HIDDEN, BATCH, N_INPUT = 64, 32, 3


def best_time(step: Callable[[], None], repeats: int, rounds: int = 5) -> float:
    """Seconds per call: the best of ``rounds`` rounds of ``repeats`` calls (least disturbed)."""
    step()  # warm-up
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


# ------------------------------------------------------------------ FA against BP


def mlp_step(rule: str, sizes: tuple[int, ...], batch: int) -> Callable[[], None]:
    model = FeedbackMLP(sizes, rule=rule, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, sizes[0], generator=generator)
    y = torch.randint(0, sizes[-1], (batch,), generator=generator)

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def bench_feedback_alignment(rounds: int = 12) -> None:
    print(f"One training step (forward, backward, SGD): best of {rounds} interleaved rounds")
    print(
        f"{'network':>26} {'batch':>6} {'BP (us)':>9} {'FA (us)':>9} {'DFA (us)':>9} "
        f"{'FA/BP':>6} {'DFA/BP':>7}"
    )
    for sizes, batch, repeats in (
        ((64, 100, 100, 10), 32, 50),
        ((64, 256, 256, 10), 128, 20),
        ((784, 512, 512, 10), 128, 5),
    ):
        steps = {rule: mlp_step(rule, sizes, batch) for rule in ("bp", "fa", "dfa")}
        times = {rule: float("inf") for rule in steps}
        for _ in range(rounds):  # alternate the rules so that a busy moment hits all of them
            for rule, step in steps.items():
                times[rule] = min(times[rule], best_time(step, repeats, rounds=1))
        print(
            f"{str(sizes):>26} {batch:>6} {times['bp'] * 1e6:>9.0f} {times['fa'] * 1e6:>9.0f} "
            f"{times['dfa'] * 1e6:>9.0f} {times['fa'] / times['bp']:>6.2f} "
            f"{times['dfa'] / times['bp']:>7.2f}"
        )


# ---------------------------------------------------------------- RFLO against BPTT


def trial_runner(method: str, steps: int, batch: int = BATCH) -> Callable[[], None]:
    rnn = LeakyRNN(N_INPUT, N_HIDDEN, 1, tau=5.0, seed=0)
    generator = torch.Generator().manual_seed(2)
    inputs = torch.randn(steps, batch, N_INPUT, generator=generator)
    targets = torch.randn(steps, batch, 1, generator=generator)

    def run_rflo() -> None:
        rflo_trial(rnn, inputs, targets)

    def run_bptt() -> None:
        rnn.zero_grad()
        trial_loss(rnn(inputs)[0], targets).backward()

    return run_rflo if method == "rflo" else run_bptt


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


_LIBC = ctypes.CDLL("libc.so.6")
_LIBC.mallinfo2.restype = _MallInfo2


def heap_in_use() -> int:
    """Bytes the C heap has handed out and not taken back (glibc ``mallinfo2``).

    torch's CPU tensors are allocated there: heap blocks plus large mmap-ed blocks.
    """
    info = _LIBC.mallinfo2()
    return info.uordblks + info.hblkhd


class PeakHeap(TorchDispatchMode):
    """Samples `heap_in_use` after every tensor operation, backward pass included."""

    def __init__(self):
        super().__init__()
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, heap_in_use())
        return out


def peak_trial_memory(run: Callable[[], None]) -> int:
    """Bytes above the starting heap at the fullest moment of one trial (best of 2 runs)."""
    peaks = []
    for _ in range(2):  # the first run also fills the dispatcher's own caches
        gc.collect()
        start = heap_in_use()
        with PeakHeap() as tracker:
            run()
        peaks.append(tracker.peak - start)
    return min(peaks)


def bench_rflo() -> None:
    torch.set_num_threads(1)
    print(f"\nOne trial, N = {N_HIDDEN}, {N_INPUT} inputs; traces = B*N*(N+inputs) float32")
    print(
        f"{'T':>5} {'B':>4} {'traces (MiB)':>13} {'RFLO (ms)':>10} {'BPTT (ms)':>10} "
        f"{'ratio':>6} {'RFLO peak (MiB)':>16} {'BPTT peak (MiB)':>16} {'ratio':>6}"
    )
    for steps, batch in ((200, BATCH), (400, BATCH), (200, 2 * BATCH)):
        trace_mib = batch * N_HIDDEN * (N_HIDDEN + N_INPUT) * 4 / 2**20
        t_rflo = best_time(trial_runner("rflo", steps, batch), repeats=3, rounds=3)
        t_bptt = best_time(trial_runner("bptt", steps, batch), repeats=3, rounds=3)
        m_rflo = peak_trial_memory(trial_runner("rflo", steps, batch)) / 2**20
        m_bptt = peak_trial_memory(trial_runner("bptt", steps, batch)) / 2**20
        print(
            f"{steps:>5} {batch:>4} {trace_mib:>13.2f} {t_rflo * 1e3:>10.1f} "
            f"{t_bptt * 1e3:>10.1f} {t_rflo / t_bptt:>6.2f} {m_rflo:>16.2f} {m_bptt:>16.2f} "
            f"{m_rflo / m_bptt:>6.2f}"
        )


if __name__ == "__main__":
    torch.set_num_threads(1)
    bench_feedback_alignment()
    bench_rflo()
