"""What a model call costs at each batch size, learned from the calls themselves, and which batch
makes the most images a second.

Usage (the batcher does this in its model thread)::

    costs = CallCosts()
    costs.observe(8, 0.74)                 # a batch at padded size 8 took 0.74 s
    costs.rate(rows=7, padded=8)           # rows a second of such a batch, None while unknown

Why: the batcher pads a batch up to the next allowed size (:class:`~service.engine.batcher.
BatchConfig`). For a small model that is free: its call costs about the same at 24 or 32 rows.
For a compute-heavy one (a 128x128 colour generator) every row costs about the same, so 17 rows
padded to 24 waste 7 rows of arithmetic, 30% of the call. Knowing what each size costs, the
batcher can take 16 of the 17 instead and leave one for the next batch, whichever makes more
images a second (:meth:`CallCosts.rate`).

A size's cost is an exponential moving average of the model thread's wall time per batch of
that size (the call, and the packing and hand-off around it, which a small model pays as much
as its call and a smaller batch pays as often), so it follows a host whose speed drifts. A size
not called yet is estimated from the two nearest sizes that were (a call's time is close to
affine in its rows: a fixed part and a part per row); with fewer than two sizes known nothing
is estimated, and the batcher pads as it always did.
"""

from __future__ import annotations

import bisect

#: Weight of the newest call in a size's moving average: about the last eight calls count.
SMOOTHING = 0.25


class CallCosts:
    """Seconds per model call by padded batch size. Not thread-safe: one model thread owns it."""

    def __init__(self) -> None:
        self._seconds: dict[int, float] = {}
        self._sizes: list[int] = []  # the sizes observed, ascending

    def observe(self, size: int, seconds: float) -> None:
        """Count a call of ``size`` rows (padding included) that took ``seconds``."""
        if seconds <= 0:
            return
        old = self._seconds.get(size)
        if old is None:
            bisect.insort(self._sizes, size)
            self._seconds[size] = seconds
        else:
            self._seconds[size] = old + SMOOTHING * (seconds - old)

    def seconds(self, size: int) -> float | None:
        """The expected seconds of a call at ``size`` rows; None while fewer than two sizes are
        known and ``size`` is not one of them."""
        known = self._seconds.get(size)
        if known is not None:
            return known
        if len(self._sizes) < 2:
            return None
        # The two known sizes around `size` (or the two nearest, outside the known range).
        index = min(max(bisect.bisect_left(self._sizes, size), 1), len(self._sizes) - 1)
        low, high = self._sizes[index - 1], self._sizes[index]
        t_low, t_high = self._seconds[low], self._seconds[high]
        estimate = t_low + (t_high - t_low) * (size - low) / (high - low)
        # Extrapolated below the smallest known size, a noisy slope could go negative; a call
        # never costs less than a part of the cheapest one known.
        return max(estimate, min(t_low, t_high) * min(size / low, 1.0))

    def cheapest(self) -> float | None:
        """The seconds of the cheapest size called so far (None before any call): one slow call
        at one size (the first after a pause, a collection) never makes a cheap model look
        costly, as long as another size was called at its usual speed."""
        return min(self._seconds.values()) if self._seconds else None

    def rate(self, rows: int, padded: int) -> float | None:
        """Rows a second of a batch of ``rows`` real rows padded to ``padded``; None if the cost
        of ``padded`` is unknown."""
        seconds = self.seconds(padded)
        return None if seconds is None else rows / seconds
