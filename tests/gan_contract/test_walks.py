"""Latent walks: key frames are visited in order, slerp keeps Gaussian norms, classes switch
half-way along a leg."""

from __future__ import annotations

import numpy as np
import pytest

from gan_contract.walks import lerp, schedule, slerp, walk

Z_DIM = 64


def _keys(count: int) -> np.ndarray:
    return np.random.RandomState(0).randn(count, Z_DIM)


def test_an_open_walk_starts_and_ends_on_its_keys_and_passes_the_middle_one():
    keys = _keys(3)
    z, _ = walk(keys, frames=9, loop=False)
    assert z.shape == (9, Z_DIM) and z.dtype == np.float32
    # 9 frames over 2 legs: positions 0, 0.25, ..., 2, so frame 4 is key 1. Tolerance: the
    # float32 rounding of values of magnitude ~4 (plus slerp's few float64 operations).
    for frame, key in ((0, 0), (4, 1), (8, 2)):
        np.testing.assert_allclose(z[frame], keys[key], rtol=0, atol=1e-5)


def test_a_loop_returns_toward_the_first_key_without_repeating_it():
    keys = _keys(2)
    z, _ = walk(keys, frames=8, loop=True)
    np.testing.assert_allclose(z[0], keys[0], atol=1e-5)
    np.testing.assert_allclose(z[4], keys[1], atol=1e-5)  # 8 frames, 2 legs: half-way
    # Frames 1 and 7 are one step from the first key on either side.
    assert not np.allclose(z[7], keys[0], atol=1e-3)
    d_first = np.linalg.norm(z[1] - z[0])
    d_last = np.linalg.norm(z[7] - z[0])
    # Equal steps around the circle; the tolerance covers float32 rounding of the frames.
    assert d_last == pytest.approx(d_first, rel=1e-4)


def test_schedule_spends_equal_frames_on_each_leg():
    leg, t = schedule(keys=3, frames=12, loop=True)
    assert np.bincount(leg).tolist() == [4, 4, 4]
    assert np.all((t >= 0) & (t < 1))
    leg, t = schedule(keys=2, frames=5, loop=False)
    assert leg.tolist() == [0, 0, 0, 0, 0]
    assert t.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_slerp_keeps_the_norm_that_lerp_loses():
    a, b = _keys(2)
    b = b * (np.linalg.norm(a) / np.linalg.norm(b))  # equal norms: slerp stays on one sphere
    t = np.linspace(0, 1, 11)
    rows_a, rows_b = np.tile(a, (11, 1)), np.tile(b, (11, 1))
    norms = np.linalg.norm(slerp(rows_a, rows_b, t), axis=1)
    # float64 throughout: the norm holds to a few ulps of ~8.
    np.testing.assert_allclose(norms, np.linalg.norm(a), rtol=1e-12)
    middle = lerp(rows_a, rows_b, t)[5]
    # Two independent 64-d Gaussians are nearly orthogonal: the chord's middle has ~0.71 the norm.
    assert np.linalg.norm(middle) < 0.85 * np.linalg.norm(a)


def test_slerp_midpoint_is_equidistant_and_parallel_keys_fall_back_to_lerp():
    a, b = _keys(2)
    b = b * (np.linalg.norm(a) / np.linalg.norm(b))  # equal norms: the arc's middle is central
    middle = slerp(a[None], b[None], np.array([0.5]))[0]
    assert np.linalg.norm(middle - a) == pytest.approx(np.linalg.norm(middle - b), rel=1e-9)
    same = slerp(a[None], (2 * a)[None], np.array([0.5]))[0]  # parallel: no great circle
    np.testing.assert_allclose(same, 1.5 * a, rtol=1e-12)
    zero = slerp(np.zeros((1, Z_DIM)), b[None], np.array([0.25]))[0]
    np.testing.assert_allclose(zero, 0.25 * b, rtol=1e-12)


def test_the_class_changes_half_way_along_a_leg():
    _, labels = walk(_keys(2), frames=8, loop=True, labels=[3, 5])
    # Positions 0, .25, ..., 1.75 legs: nearer key 0 for t < .5, key 1 until 1.5, then key 0.
    assert labels.tolist() == [3, 3, 5, 5, 5, 5, 3, 3]
    _, labels = walk(_keys(2), frames=4, loop=False)
    assert labels.tolist() == [0, 0, 0, 0]


def test_lerp_walks_in_a_straight_line():
    keys = _keys(2)
    z, _ = walk(keys, frames=3, loop=False, interpolation="lerp")
    np.testing.assert_allclose(z[1], (keys[0] + keys[1]) / 2, atol=1e-5)


@pytest.mark.parametrize(
    ("keys", "frames", "labels", "message"),
    [
        (1, 10, None, "at least 2 keys"),
        (2, 1, None, "at least 2 frames"),
        (3, 10, [1, 2], "one per key"),
    ],
)
def test_bad_walks_are_refused_with_a_reason(keys, frames, labels, message):
    with pytest.raises(ValueError, match=message):
        walk(_keys(keys), frames, labels=labels)
