"""Helpers of the density study (chapter 01): the summed-evidence observer on hand-made
trials, and the density plot's points against the values it was given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib.analysis import summed_evidence_accuracy  # noqa: E402
from course_lib.sparsity import plot_density_study  # noqa: E402
from course_lib.tasks import Batch, TaskDataset  # noqa: E402


def _trial(stimulus, answer):
    """Rows (fixation, s1, s2) and targets: one fixation step, the stimulus, one decision."""
    rows = [[1.0, 0.0, 0.0]] + [[1.0, a, b] for a, b in stimulus] + [[0.0, 0.0, 0.0]]
    targets = [0] * (1 + len(stimulus)) + [answer]
    return rows, targets


def _batch(*columns):
    """Columns of consecutive trials, padded by a fixation step so every decision ends."""
    inputs, targets = [], []
    for trials in columns:
        rows, target = [], []
        for stimulus, answer in trials:
            r, t = _trial(stimulus, answer)
            rows += r
            target += t
        inputs.append(rows + [[1.0, 0.0, 0.0]])
        targets.append(target + [0])
    steps = max(len(c) for c in inputs)
    assert all(len(c) == steps for c in inputs), "hand-made columns must have one length"
    return Batch(torch.tensor(inputs).transpose(0, 1), torch.tensor(targets).T)


def test_observer_sums_the_whole_stimulus_of_each_trial_only():
    batch = _batch(
        # column 0: sums +1.4 (answer 1), +0.1 although the last step favours 2 (answer 1),
        # -0.2 (answer 2): all three right
        [([(0.9, 0.1), (0.8, 0.2)], 1), ([(0.7, 0.4), (0.3, 0.5)], 1),
         ([(0.4, 0.6)], 2)],
        # column 1: one trial whose summed evidence favours 1 while the answer is 2 (wrong),
        # then one exact tie (half a trial)
        [([(0.6, 0.5), (0.5, 0.4), (0.5, 0.5)], 2), ([(0.5, 0.5)], 1),
         ([(0.2, 0.2)], 2)],
    )
    # correct: 1 + 1 + 1 (column 0), 0 + 0.5 + 0.5 (column 1) out of 6
    assert summed_evidence_accuracy([batch]) == pytest.approx(4 / 6)


def test_observer_ignores_the_previous_trials_stimulus():
    # trial 2's own sum is -0.2 (favours 2, answer 2); with trial 1's +1.4 it would be +1.2
    batch = _batch([([(0.9, 0.2), (0.9, 0.2)], 1), ([(0.4, 0.6)], 2)])
    assert summed_evidence_accuracy([batch]) == pytest.approx(1.0)


def test_observer_on_real_trials_is_far_above_chance_but_not_perfect():
    """Zero-coherence trials cannot be guessed, so no observer reaches 100%."""
    data = TaskDataset("PerceptualDecisionMaking-v0", batch_size=32, seq_len=100, seed=0, dt=100)
    accuracy = summed_evidence_accuracy([data.next_batch() for _ in range(2)])
    assert 0.75 < accuracy < 0.97


def test_observer_needs_complete_trials():
    batch = Batch(torch.zeros(5, 2, 3), torch.zeros(5, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="no complete trial"):
        summed_evidence_accuracy([batch])


def test_density_plot_draws_each_mean_and_sd_with_density_zero_apart():
    accuracy = {0.0: [0.80, 0.82, 0.84], 0.05: [0.85, 0.86, 0.87], 1.0: [0.90, 0.86, 0.88]}
    fig, ax = plt.subplots()
    plot_density_study(accuracy, ax=ax, ceiling=0.9)
    points = {}
    for container in ax.containers:
        line, _, (bar,) = container
        (x,), (y,) = line.get_data()
        segment = bar.get_segments()[0]
        points[float(x)] = (float(y), float(segment[1][1] - segment[0][1]) / 2)
    xs = sorted(points)
    assert xs[1:] == [0.05, 1.0]
    assert 0 < xs[0] < 0.05  # density 0 is drawn left of every positive density
    # hand-computed means and sample SDs: 0.82 ± 0.02, 0.86 ± 0.01, 0.88 ± 0.02
    for x, (mean, sd) in zip(xs, [(0.82, 0.02), (0.86, 0.01), (0.88, 0.02)], strict=True):
        assert points[x] == pytest.approx((mean, sd))
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["0", "0.05", "1"]
    assert any(np.allclose(line.get_ydata(), 0.9) for line in ax.get_lines())  # the ceiling
    plt.close(fig)
