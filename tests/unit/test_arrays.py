"""mediadna.arrays: the sort-based helpers stand in for numpy's own."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from mediadna.arrays import distinct, runs, value_counts


@given(st.lists(st.integers(-(2**40), 2**40), max_size=200))
def test_distinct_is_np_unique(values):
    x = np.array(values, dtype=np.int64)
    got = distinct(x)
    assert got.dtype == x.dtype and np.array_equal(got, np.unique(x))


@given(st.lists(st.integers(0, 300), max_size=200))
def test_distinct_of_small_non_negative_ints_is_np_unique(values):
    for dtype in (np.int64, np.uint32, np.uint8 if max(values, default=0) < 256 else np.uint16):
        x = np.array(values, dtype=dtype)
        got = distinct(x)
        assert got.dtype == x.dtype and np.array_equal(got, np.unique(x))


def test_distinct_of_floats_and_uint32():
    assert distinct(np.array([2.5, 1.0, 2.5, -0.0])).tolist() == [-0.0, 1.0, 2.5]
    u = np.array([7, 3, 7, 2**32 - 1], np.uint32)
    assert distinct(u).tolist() == [3, 7, 2**32 - 1] and distinct(u).dtype == np.uint32


@given(st.lists(st.integers(-50, 50), max_size=200))
def test_value_counts_and_runs_are_np_unique_with_counts(values):
    x = np.array(values, dtype=np.int64)
    want_values, want_counts = np.unique(x, return_counts=True)
    for got_values, got_counts in (value_counts(x), runs(np.sort(x))):
        assert np.array_equal(got_values, want_values) and np.array_equal(got_counts, want_counts)
