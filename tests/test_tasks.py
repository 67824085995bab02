"""neurogym datasets: quiet, seeded, validated; accuracy per trial at the decision period."""

from __future__ import annotations

import pytest
import torch

from course_lib.analysis import decision_accuracy, decision_periods
from course_lib.tasks import TaskDataset, make_env

TASK = "PerceptualDecisionMaking-v0"


def test_same_seed_same_batches_other_seed_other_batches():
    a = TaskDataset(TASK, batch_size=4, seq_len=50, seed=3)
    b = TaskDataset(TASK, batch_size=4, seq_len=50, seed=3)
    c = TaskDataset(TASK, batch_size=4, seq_len=50, seed=4)
    for _ in range(3):
        batch_a, batch_b, batch_c = a.next_batch(), b.next_batch(), c.next_batch()
        assert torch.equal(batch_a.inputs, batch_b.inputs)
        assert torch.equal(batch_a.targets, batch_b.targets)
    assert not torch.equal(batch_a.inputs, batch_c.inputs)


def test_a_kept_batch_survives_the_cache_refill():
    """neurogym overwrites its trial cache in place; our batches must be copies."""
    data = TaskDataset(TASK, batch_size=32, seq_len=100, seed=0, dt=100)
    first = data.next_batch()
    inputs, targets = first.inputs.clone(), first.targets.clone()
    for _ in range(12):  # well past one cache length (800 steps here)
        data.next_batch()
    assert torch.equal(first.inputs, inputs)
    assert torch.equal(first.targets, targets)


def test_batches_are_time_first_tensors():
    data = TaskDataset(TASK, batch_size=5, seq_len=40, seed=0, dt=100)
    batch = data.next_batch()
    assert batch.inputs.shape == (40, 5, data.n_input) == (40, 5, 3)
    assert batch.targets.shape == (40, 5)
    assert batch.inputs.dtype == torch.float32 and batch.targets.dtype == torch.long
    assert data.n_output == 3


def test_nothing_is_written_to_stderr(capfd):
    for task in (TASK, "DualDelayMatchSample-v0", "ContextDecisionMaking-v0"):
        data = TaskDataset(task, batch_size=2, seq_len=30, seed=0)
        data.next_batch()
    out, err = capfd.readouterr()
    assert err == ""


def test_unknown_task_names_the_expected_ones():
    with pytest.raises(
        ValueError, match="unknown neurogym task 'PerceptualDecisionMaking-v9'.*Did you mean"
    ):
        make_env("PerceptualDecisionMaking-v9")


def test_bad_sizes_raise_value_error():
    with pytest.raises(ValueError, match="batch_size and seq_len must be positive"):
        TaskDataset(TASK, batch_size=0)


def test_decision_periods_are_complete_runs_of_nonzero_targets():
    targets = torch.tensor([[0, 1, 1, 0, 0, 2, 0, 2]]).T  # one column
    # the run at steps 1-2 and the one at 5 are complete; the one at 7 is cut by the window
    assert decision_periods(targets) == [(0, 1, 2), (0, 5, 5)]


def test_accuracy_is_per_trial_at_the_end_of_the_decision_period():
    targets = torch.tensor([[0, 0, 1, 1, 0, 0, 2, 0]]).T
    choices = torch.tensor([[0, 0, 2, 1, 0, 0, 1, 0]]).T  # right on trial 1, wrong on trial 2
    outputs = torch.nn.functional.one_hot(choices, 3).float()
    assert decision_accuracy(outputs, targets) == 0.5


def test_always_fixating_scores_zero_not_the_fraction_of_fixation_steps():
    data = TaskDataset(TASK, batch_size=8, seq_len=100, seed=0, dt=100)
    batch = data.next_batch()
    fixate = torch.zeros(100, 8, 3)
    fixate[..., 0] = 1.0
    assert decision_accuracy(fixate, batch.targets) == 0.0
    assert (batch.targets == 0).float().mean() > 0.8  # per-step accuracy would be high


def test_no_complete_trial_raises():
    with pytest.raises(ValueError, match="no complete decision period"):
        decision_accuracy(torch.zeros(3, 1, 2), torch.zeros(3, 1, dtype=torch.long))


def test_batch_pool_serves_the_same_batches_in_a_cycle():
    from course_lib.tasks import BatchPool

    pool = BatchPool(TaskDataset(TASK, batch_size=4, seq_len=30, seed=0), n_batches=3)
    fresh = TaskDataset(TASK, batch_size=4, seq_len=30, seed=0)
    served = [pool.next_batch() for _ in range(6)]
    for i in range(3):
        assert torch.equal(served[i].inputs, fresh.next_batch().inputs)
        assert served[i + 3] is served[i]
    with pytest.raises(ValueError, match="n_batches must be a positive integer"):
        BatchPool(fresh, 0)
