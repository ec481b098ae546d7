"""Small array helpers the hot paths share."""

from __future__ import annotations

import numpy as np


def distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values of a 1-D array: ``np.unique(values)``, by sorting.

    NumPy 2.3+ answers a bare ``np.unique`` of integers with a hash table,
    which is 10-40x slower than a sort for the 10^4-10^6 values a query
    handles (72 ms against 2 ms for 300,000 int64 here).
    """
    v = np.sort(np.asarray(values).ravel())
    if len(v) < 2:
        return v
    keep = np.empty(len(v), bool)
    keep[0] = True
    np.not_equal(v[1:], v[:-1], out=keep[1:])
    return v[keep]
