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


# The tasks the book uses, with the arguments it uses them with.
BOOK_TASKS = [
    ("PerceptualDecisionMaking-v0", {"dt": 100}),
    ("DelayComparison-v0", {}),
    ("DualDelayMatchSample-v0", {}),
    ("ContextDecisionMaking-v0", {"use_expl_context": True}),
]


@pytest.mark.parametrize("task, env_kwargs", BOOK_TASKS)
def test_go_cue_fixation_is_on_exactly_until_an_answer_is_due(task, env_kwargs):
    """Against neurogym's raw trials (neurogym#279): same seed, same trials; the fixation
    input is 1 at every step whose target is "fixate" and 0 at every step that wants an
    answer; every other input and every target is untouched."""
    kwargs = dict(batch_size=8, seq_len=120, seed=5, **env_kwargs)
    raw = TaskDataset(task, go_cue=False, **kwargs).next_batch()
    cued = TaskDataset(task, **kwargs).next_batch()  # the default
    assert torch.equal(cued.targets, raw.targets)
    assert torch.equal(cued.inputs[..., 1:], raw.inputs[..., 1:])
    expected_fixation = (raw.targets == 0).float()
    assert torch.equal(cued.inputs[..., 0], expected_fixation)
    # neurogym's own trials lack the cue: the fix changes something on every task.
    assert not torch.equal(raw.inputs[..., 0], expected_fixation)


def test_go_cue_survives_neurogyms_copies_of_the_environment():
    """neurogym deep-copies the environment once per batch column: each copy must set
    the fixation input of its own trials, not of the original's."""
    data = TaskDataset("PerceptualDecisionMaking-v0", batch_size=16, seq_len=200, seed=0)
    batch = data.next_batch()
    assert len({id(env) for env in data._dataset.envs}) == 16
    assert torch.equal(batch.inputs[..., 0], (batch.targets == 0).float())


def test_go_cue_applies_to_single_trials_and_steps():
    env = make_env("PerceptualDecisionMaking-v0", dt=100)
    env.new_trial()
    decision = slice(env.start_ind["decision"], env.end_ind["decision"])
    assert env.ob[: decision.start, 0].tolist() == [1.0] * decision.start
    assert env.ob[decision, 0].tolist() == [0.0] * (decision.stop - decision.start)
