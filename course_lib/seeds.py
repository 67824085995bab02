"""Results over several seeds: mean, spread, and when a difference may be stated.

A comparison in the book is made from several seeds (at least 3). The spread is the
sample standard deviation over seeds (``ddof=1``). A difference between two conditions is
stated only when it is larger than the spread: when the intervals mean ± SD of the two
conditions do not overlap (`clearly_differ`). With 3-5 seeds this is a reading guide, not a
significance test, and the book says so where it matters.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) over seeds; needs at least 2 values."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"need a 1-D sequence of at least 2 values, got shape {values.shape}")
    return float(values.mean()), float(values.std(ddof=1))


def describe(values: Sequence[float], *, percent: bool = True, digits: int = 0) -> str:
    """``'87% ± 3%'`` (percent) or ``'0.87 ± 0.03'``: mean ± SD over seeds, for the text."""
    mean, sd = mean_sd(values)
    if percent:
        return f"{100 * mean:.{digits}f}% ± {100 * sd:.{digits}f}%"
    return f"{mean:.{max(digits, 2)}f} ± {sd:.{max(digits, 2)}f}"


def clearly_differ(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when the mean ± SD intervals of ``a`` and ``b`` do not overlap."""
    mean_a, sd_a = mean_sd(a)
    mean_b, sd_b = mean_sd(b)
    return abs(mean_a - mean_b) > sd_a + sd_b
