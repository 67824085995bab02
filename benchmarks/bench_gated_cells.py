"""What do brain-like constraints cost? Training-step time of each gated cell against an
unconstrained baseline of the same size.

    .venv/bin/python benchmarks/bench_gated_cells.py

One training step = forward over a (T, B, n_input) batch, cross-entropy at every step,
backward, AdamW step. Pairs (cell vs baseline):

- subLSTM vs the reference LSTM (same code path, only the step differs);
- EI-light-GRU and ENU-light-GRU vs the plain light-GRU;
- ENU-light-GRU vs the same ENU without its block-diagonal mask: the mask's own cost (an
  ENU also does more work than a light-GRU: ``n_dendrites`` subunits per unit);
- the reference LSTM vs torch.nn.LSTM (fused C++ loop), for scale: not a constraint.

The goal for a constraint is at most 1.3x. Timing uses one thread (these recurrent steps
are small and sequential; a second OpenMP thread mostly waits on a shared machine) and
interleaves the models round by round; the fastest round of each model is reported, as
``timeit`` advises (the fastest round is the one least disturbed by other processes).
"""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.nn.utils import parametrize

from course_lib.gated_cells import make_gated_rnn

N_INPUT, N_HIDDEN, N_OUTPUT = 3, 64, 3  # hidden size of the coursework study
STEPS, BATCH = 100, 32
WARMUP, ROUNDS, STEPS_PER_ROUND = 2, 25, 1
GOAL = 1.3


class TorchLSTM(nn.Module):
    """torch.nn.LSTM with the same readout: the fastest unconstrained LSTM on CPU."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(N_INPUT, N_HIDDEN)
        self.readout = nn.Linear(N_HIDDEN, N_OUTPUT)

    def forward(self, inputs):
        hidden, _ = self.lstm(inputs)
        return self.readout(hidden), hidden


def make_models() -> dict[str, nn.Module]:
    models = {"torch.nn.LSTM": TorchLSTM()}
    for kind in ("lstm", "sublstm", "light_gru", "ei_light_gru", "enu_light_gru"):
        models[kind] = make_gated_rnn(kind, N_INPUT, N_HIDDEN, N_OUTPUT, seed=0)
    unmasked = make_gated_rnn("enu_light_gru", N_INPUT, N_HIDDEN, N_OUTPUT, seed=0)
    parametrize.remove_parametrizations(unmasked.cell.input, "weight")  # dense, same size
    models["enu (no mask)"] = unmasked
    return models


def training_step(model, optimizer, inputs, targets) -> None:
    outputs, _ = model(inputs)
    loss = nn.functional.cross_entropy(outputs.flatten(0, 1), targets.flatten())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def time_models(models: dict[str, nn.Module]) -> dict[str, float]:
    """Seconds per training step of each model, in its fastest round."""
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(STEPS, BATCH, N_INPUT, generator=g)
    targets = torch.randint(0, N_OUTPUT, (STEPS, BATCH), generator=g)
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, m in models.items()}
    for name, model in models.items():
        for _ in range(WARMUP):
            training_step(model, optimizers[name], inputs, targets)
    rounds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(ROUNDS):
        for name, model in models.items():
            start = time.perf_counter()
            for _ in range(STEPS_PER_ROUND):
                training_step(model, optimizers[name], inputs, targets)
            rounds[name].append((time.perf_counter() - start) / STEPS_PER_ROUND)
    return {name: min(times) for name, times in rounds.items()}


PAIRS = [  # (cell, its unconstrained baseline, is it a brain-like constraint?)
    ("sublstm", "lstm", True),
    ("ei_light_gru", "light_gru", True),
    ("enu_light_gru", "light_gru", True),
    ("enu_light_gru", "enu (no mask)", True),
    ("lstm", "torch.nn.LSTM", False),
]


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    seconds = time_models(make_models())
    print(f"training step, hidden {N_HIDDEN}, T={STEPS}, batch {BATCH}, 1 thread (fastest round)")
    print(f"{'cell':<15}{'baseline':<15}{'ms/step':>9}{'base ms':>9}{'ratio':>8}  goal <= {GOAL}")
    for cell, baseline, constrained in PAIRS:
        ratio = seconds[cell] / seconds[baseline]
        verdict = ("ok" if ratio <= GOAL else "OVER") if constrained else "(for scale)"
        print(
            f"{cell:<15}{baseline:<15}{1e3 * seconds[cell]:>9.1f}"
            f"{1e3 * seconds[baseline]:>9.1f}{ratio:>7.2f}x  {verdict}"
        )
    print(
        "enu_light_gru vs light_gru includes the ENU's extra dendritic layer (4 subunits per "
        "unit);\nthe mask's own cost is the 'no mask' row."
    )
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
