"""The survival tables are read as linear interpolation between their nodes."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gateway.market import pricing

DISTANCES = arrays(
    np.float64,
    st.integers(1, 64),
    elements=st.one_of(
        st.floats(0.0, 80.0, allow_nan=False),
        st.sampled_from([0.0, pricing._STEP, 8.0, 1e6, math.inf]),
    ),
)


def _interpolated(d: pricing.Floats, steps: int) -> pricing.Floats:
    """The reference: np.interp over the table's nodes, 1 past the last one."""
    if steps <= pricing.EXACT_STEPS:
        g = pricing._survival(steps)
        return np.interp(d, np.arange(g.size) * pricing._STEP, g, right=1.0)
    erf = pricing._erf_table()
    u = np.arange(erf.size) * pricing._ERF_STEP
    return np.interp((d + pricing.BETA) / math.sqrt(steps), u, erf, right=1.0)


@settings(max_examples=200, deadline=None)
@given(d=DISTANCES, steps=st.sampled_from([1, 2, 19, 80, 81, 240, 5000]))
def test_a_walk_stays_below_with_the_interpolated_probability(
    d: pricing.Floats, steps: int
) -> None:
    """_stays reads its table as np.interp would, past the last node included."""
    np.testing.assert_allclose(
        pricing._stays(d, steps), _interpolated(d, steps), rtol=0, atol=1e-15
    )
