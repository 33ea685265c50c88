"""Whether a batch size fits in memory: warm-up's check before it runs each size.

Usage (warm-up does this, sizes ascending)::

    guard = BatchMemory()                  # the memory this process may grow to, from now
    for size in sizes:
        guard.check(size)                  # BatchTooLarge when its projected peak would not fit
        ...                                # run the size
        guard.record(size)                 # the peak resident memory while it ran

Why: on a CPU host a model call that needs more memory than there is does not fail with an
error the service could catch; Linux lets the allocations through and its OOM killer ends the
process, at request time. Warm-up runs every allowed batch size anyway, smallest first, so it
can measure what each one costs: the process's peak resident memory (``VmHWM``, reset before
each size) while it runs, and from the last two sizes the memory one more row of a batch
takes. A size whose projected peak exceeds :data:`SHARE` of the memory the process may grow
to (its resident memory when warm-up starts plus the memory available then, the smaller of the
host's ``MemAvailable`` and a cgroup's ``memory.max`` headroom) raises :class:`BatchTooLarge` before
it runs, and warm-up drops the size with a warning as it drops any size whose warm-up fails:
requests are then split into the largest size that fits. A GPU or a TensorFlow allocator that
does raise on a failed allocation is covered by the same drop.

The projection is linear in the batch size, the way activations grow; it needs two measured
sizes, so the first two sizes are never refused by it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

MIB = 1024 * 1024
# Of the memory this process may grow to, the share a batch's projected peak may take: the rest
# is room for the requests' own buffers, encoding, and the projection's error.
SHARE = 0.9


class BatchTooLarge(MemoryError):
    """A batch size whose projected memory would not fit; the message says how much."""


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (0 where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def resident_bytes() -> int:
    """This process's resident memory now (VmRSS)."""
    return _status_kib("VmRSS") * 1024


def peak_resident_bytes() -> int:
    """This process's peak resident memory so far (VmHWM)."""
    return _status_kib("VmHWM") * 1024


def reset_peak() -> None:
    """Start a new peak (VmHWM) from the resident memory now, so that the next reading is the
    peak of what runs in between (Linux 4.0+; elsewhere the peak stays that of the whole
    process, which can only overstate a size's need)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def available_bytes() -> int | None:
    """Memory this process could still take: the host's ``MemAvailable``, capped by the
    headroom of a cgroup v2 limit (``memory.max`` - ``memory.current``); None if unknown."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        current = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit != "max":
            found.append(max(0, int(limit) - int(current)))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


class BatchMemory:
    """The memory check of one model's warm-up (see the module docstring)."""

    def __init__(self) -> None:
        available = available_bytes()
        # What the process may grow to; None: unknown (no /proc), and nothing is refused.
        self.limit = None if available is None else resident_bytes() + available
        self.peaks: dict[int, int] = {}  # batch size -> peak resident bytes after it ran

    def projected(self, size: int) -> int | None:
        """The peak resident memory ``size`` is projected to need, from the last two sizes
        measured (None before two are)."""
        if len(self.peaks) < 2:
            return None
        (small, low), (large, high) = sorted(self.peaks.items())[-2:]
        per_row = max(0.0, (high - low) / (large - small))
        return int(high + per_row * max(0, size - large))

    def check(self, size: int) -> None:
        """Raise :class:`BatchTooLarge` if ``size``'s projected peak exceeds :data:`SHARE` of
        the limit; otherwise start measuring its peak."""
        reset_peak()
        need = self.projected(size)
        if need is None or self.limit is None or need <= SHARE * self.limit:
            return
        raise BatchTooLarge(
            f"batch size {size} would need about {need / MIB:.0f} MiB of memory, more than "
            f"{SHARE:.0%} of the {self.limit / MIB:.0f} MiB this process may use (projected "
            f"from the sizes {sorted(self.peaks)[-2:]}); lower GAN_MAX_BATCH_SIZE or give the "
            "process more memory"
        )

    def record(self, size: int) -> None:
        """Note the peak resident memory while ``size`` ran."""
        self.peaks[size] = peak_resident_bytes()
