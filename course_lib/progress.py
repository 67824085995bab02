"""Progress bars and a closing sentence for readers who run the training loops themselves.

In a Jupyter notebook a training loop shows a progress bar (an ipywidgets bar, which is
display output, never stderr) and ends with one sentence saying how well the network does.
Everywhere else it stays silent: in tests and scripts (a text bar would go to stderr),
under nbgrader (which sets ``NBGRADER_EXECUTION`` in the kernel it grades or validates
in, `course autograde` included), and wherever ``COURSE_PROGRESS=0`` (the Makefile sets
it for the book build, so the rendered book shows no stale bars).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator

ENV_SWITCH = "COURSE_PROGRESS"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not plain Python, not a terminal IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def wanted(progress: bool | None) -> bool:
    """Resolve a loop's ``progress`` argument: None means "in a notebook, unless nbgrader
    runs it or COURSE_PROGRESS=0"."""
    if progress is not None:
        return progress
    if os.environ.get("NBGRADER_EXECUTION") or os.environ.get(ENV_SWITCH, "1") == "0":
        return False
    return in_notebook()


def steps(iterable: Collection, *, desc: str, progress: bool | None) -> Iterator:
    """``iterable`` (a range, say), wrapped in a notebook progress bar when `wanted`."""
    if not wanted(progress):
        return iter(iterable)
    from tqdm.auto import tqdm

    return iter(tqdm(iterable, desc=desc, leave=False))  # tqdm reads the total from len()


def report(sentence: str, *, progress: bool | None) -> None:
    """Print the loop's closing sentence when `wanted` (stdout, never stderr)."""
    if wanted(progress):
        print(sentence)
