"""What a model call costs by batch size, learned from the calls."""

from __future__ import annotations

import pytest

from service.engine.call_costs import SMOOTHING, CallCosts


def test_nothing_is_estimated_until_two_sizes_are_known():
    costs = CallCosts()
    assert costs.seconds(8) is None
    costs.observe(4, 0.4)
    assert costs.seconds(4) == 0.4
    assert costs.seconds(8) is None
    assert costs.rate(3, 8) is None
    assert costs.rate(3, 4) == pytest.approx(3 / 0.4)


def test_a_size_follows_its_calls_as_a_moving_average():
    costs = CallCosts()
    costs.observe(8, 1.0)
    costs.observe(8, 2.0)
    # One step of the average toward the newest call: exact in binary for these values.
    assert costs.seconds(8) == pytest.approx(1.0 + SMOOTHING * (2.0 - 1.0))
    costs.observe(8, 0.0)  # a clock that did not move is no measurement
    assert costs.seconds(8) == pytest.approx(1.0 + SMOOTHING)


def test_unknown_sizes_are_interpolated_and_extrapolated_from_the_nearest_known():
    costs = CallCosts()
    costs.observe(4, 0.5)  # a fixed 0.1 s and 0.1 s a row
    costs.observe(8, 0.9)
    assert costs.seconds(6) == pytest.approx(0.7)
    assert costs.seconds(16) == pytest.approx(1.7)
    assert costs.seconds(2) == pytest.approx(0.3)
    # Below the known range a steep slope would go negative: it stops at a part of the
    # cheapest call, in proportion to the rows.
    steep = CallCosts()
    steep.observe(8, 0.1)
    steep.observe(16, 1.0)
    assert steep.seconds(2) == pytest.approx(0.1 * 2 / 8)


def test_the_cheapest_call_is_the_cheapest_size_whatever_one_slow_call_took():
    costs = CallCosts()
    assert costs.cheapest() is None
    costs.observe(1, 0.05)  # one slow call (the first after a pause)
    costs.observe(8, 0.002)
    assert costs.cheapest() == 0.002
