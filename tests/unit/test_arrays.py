"""mediadna.arrays: the sort-based helpers stand in for numpy's own."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from mediadna.arrays import distinct


@given(st.lists(st.integers(-(2**40), 2**40), max_size=200))
def test_distinct_is_np_unique(values):
    x = np.array(values, dtype=np.int64)
    got = distinct(x)
    assert got.dtype == x.dtype and np.array_equal(got, np.unique(x))


def test_distinct_of_floats_and_uint32():
    assert distinct(np.array([2.5, 1.0, 2.5, -0.0])).tolist() == [-0.0, 1.0, 2.5]
    u = np.array([7, 3, 7, 2**32 - 1], np.uint32)
    assert distinct(u).tolist() == [3, 7, 2**32 - 1] and distinct(u).dtype == np.uint32
