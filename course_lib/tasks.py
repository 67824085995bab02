"""neurogym tasks as quiet, seeded, torch-ready datasets.

neurogym makes the trials (nothing is downloaded). Two things are added on top of its
`Dataset`: silence (neurogym logs through loguru and gymnasium warns on stderr, and
nbgrader gives zero to a test cell that writes to stderr) and reproducibility (the same
seed gives the same batches).

One thing is corrected by default: the **go cue**. In the experiments the course cites
(e.g. Mante et al. 2013), the fixation point stays on until the animal must answer, and its
offset is the signal to answer. neurogym 2.3.1 switches the fixation input off at stimulus
onset in some tasks (`PerceptualDecisionMaking-v0`, `ContextDecisionMaking-v0`) and leaves it
on during the answer in others (`DualDelayMatchSample-v0`): the network then has to count
time steps to know when to answer (upstream issue neurogym/neurogym#279).
With ``go_cue=True`` (the default) the fixation input is 1 in every period in which the
target is "fixate" and 0 in every period in which an answer is expected.
"""

from __future__ import annotations

import difflib
import types
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import neurogym as ngym
    from loguru import logger
    from neurogym.envs.registration import all_envs

logger.disable("neurogym")


@contextmanager
def _quiet():
    """Silence gymnasium's UserWarnings raised while neurogym builds or steps a task."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def task_names() -> list[str]:
    """All neurogym task names, e.g. ``'PerceptualDecisionMaking-v0'``."""
    return sorted(all_envs())


def make_env(task: str, *, go_cue: bool = True, **env_kwargs):
    """A neurogym `TrialEnv` by name, unwrapped from gymnasium's checkers, quietly.

    ``go_cue=True`` keeps the fixation input on until the answer is due (`keep_fixation_on`);
    ``go_cue=False`` gives neurogym's trials unchanged.
    """
    names = task_names()
    if task not in names:
        close = difflib.get_close_matches(task, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown neurogym task {task!r}: expected one of {names}.{hint}")
    with _quiet():
        env = ngym.make(task, **env_kwargs).unwrapped
    return keep_fixation_on(env) if go_cue else env


def fixation_until_answer(env) -> None:
    """Set the fixation input of the current trial: 1 in every period whose target is
    "fixate", 0 in every period in which an answer is expected (the go cue)."""
    fixation_input = env.observation_space.name["fixation"]
    fixate = env.action_space.name["fixation"]
    for period, start in env.start_ind.items():
        end = env.end_ind[period]
        answer_due = bool(np.any(env.gt[start:end] != fixate))
        env.ob[start:end, fixation_input] = 0.0 if answer_due else 1.0


def _new_trial_with_go_cue(env, **kwargs):
    trial = type(env).new_trial(env, **kwargs)
    fixation_until_answer(env)
    return trial


def keep_fixation_on(env):
    """Give ``env`` the go cue of the experiments (neurogym#279): after each new trial the
    fixation input is set by `fixation_until_answer`. Tasks without a fixation input or
    without a "fixate" action are returned unchanged."""
    has_fixation = "fixation" in (getattr(env.observation_space, "name", None) or {})
    can_fixate = "fixation" in (getattr(env.action_space, "name", None) or {})
    if has_fixation and can_fixate:
        # A method of this one object, so that neurogym's per-column copies
        # (copy.deepcopy) get their own bound copy of it.
        env.new_trial = types.MethodType(_new_trial_with_go_cue, env)
    return env


@dataclass
class Batch:
    """One batch, time first: inputs ``(T, B, n_input)`` float, targets ``(T, B)`` long."""

    inputs: torch.Tensor
    targets: torch.Tensor


class TaskDataset:
    """Seeded batches of a neurogym task, as torch tensors, time first.

    >>> data = TaskDataset("PerceptualDecisionMaking-v0", batch_size=16, seq_len=100, seed=0)
    >>> batch = data.next_batch()          # batch.inputs: (100, 16, 3), batch.targets: (100, 16)

    Each batch column is a continuous stream of trials cut into windows of ``seq_len``
    steps (neurogym's `Dataset`). Target 0 is "fixate"; the other actions are choices.
    The fixation input stays on until an answer is due (``go_cue=True``, see the module's
    docstring); ``go_cue=False`` gives neurogym's raw trials.
    """

    def __init__(
        self,
        task: str,
        *,
        batch_size: int = 32,
        seq_len: int = 100,
        seed: int = 0,
        go_cue: bool = True,
        **env_kwargs,
    ):
        if batch_size < 1 or seq_len < 1:
            raise ValueError(
                f"batch_size and seq_len must be positive integers, got {batch_size}, {seq_len}"
            )
        self.task = task
        self.env = make_env(task, go_cue=go_cue, **env_kwargs)
        with _quiet():
            self._dataset = ngym.Dataset(self.env, batch_size=batch_size, seq_len=seq_len)
            # neurogym's Dataset fills its trial cache before it can be seeded: seed every
            # environment, then refill the cache so that the first batch is seeded too.
            self._dataset.seed(seed)
            self._dataset._cache()
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.n_input = int(np.prod(self.env.observation_space.shape))
        self.n_output = int(self.env.action_space.n)
        self.dt = float(self.env.dt)

    def next_batch(self) -> Batch:
        with _quiet():
            inputs, targets = self._dataset()
        # neurogym returns views into its trial cache, which it overwrites when it refills:
        # copy, or a batch kept from earlier would silently change under our feet.
        return Batch(
            inputs=torch.tensor(np.array(inputs), dtype=torch.float32),
            targets=torch.tensor(np.array(targets), dtype=torch.long),
        )

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        return self.next_batch()


class BatchPool:
    """A fixed set of batches from a `TaskDataset`, served in a cycle.

    Making trials costs about as much as a training step of a small network, so when
    several networks are compared, make the batches once: every network then also sees
    exactly the same data, which makes the comparison fairer.
    """

    def __init__(self, data: TaskDataset, n_batches: int):
        if n_batches < 1:
            raise ValueError(f"n_batches must be a positive integer, got {n_batches}")
        self.batches = [data.next_batch() for _ in range(n_batches)]
        self.n_input, self.n_output, self.dt = data.n_input, data.n_output, data.dt
        self._next = 0

    def next_batch(self) -> Batch:
        batch = self.batches[self._next % len(self.batches)]
        self._next += 1
        return batch

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        return self.next_batch()
