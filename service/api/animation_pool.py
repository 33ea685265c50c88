"""Where ``POST /animate`` encodes its animations: a thread of its own, and a bound on walks.

Usage (the app's lifespan makes one as ``app.state.animation_pool``; the route uses it)::

    pool = AnimationPool(settings.max_concurrent_walks, settings.retry_after_s, metrics)
    with pool.admit() as walk:          # 503 + Retry-After at once past the bound
        frames = ...                    # the walk's frames, computed while it holds its place
        data = await walk.encode(encode_animation, frames, "webp", fps=15.0)
    pool.shutdown()                     # when the app stops

Why a place of its own: a walk of a hundred frames takes a good fraction of a second to encode
(more at a large ``scale``). In the codec pool it would hold up the /score decoding and the grids
queued behind it; in the event loop's default executor (its queue unbounded) it would hold up
what else runs there: hot reload's discovery, model loading, warm-up and the batchers' ``stop``.
So walks get one thread, and at most ``max_walks`` walks are admitted at once, from before their
frames are computed until their file is encoded: the next one is refused with a 503 before it
costs anything, and a walk waits for the encoder at most ``max_walks - 1`` encodings. The
``gan_walks_in_progress`` gauge counts the admitted walks and ``gan_walk_encode_seconds`` times
each encoding.

The count lives on the event loop (``admit`` and the release of a place run there only); a walk
whose client leaves while its file is being encoded keeps its place until the encoder's thread
has finished with it, so the bound holds for the thread's work too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from service.errors import Unavailable
from service.metrics import Metrics


class AnimationPool:
    """One encoding thread for animations, and at most ``max_walks`` walks admitted at once."""

    def __init__(self, max_walks: int, retry_after_s: int, metrics: Metrics | None = None) -> None:
        self.max_walks = max_walks
        self.retry_after_s = retry_after_s
        # One thread: walks are a small share of the traffic, and a second one would take a
        # core from the model and the event loop on a small machine.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="animate")
        self._walks = 0  # admitted and not yet released (event loop only)
        self._gauge = metrics.walks_in_progress if metrics is not None else None
        self._seconds = metrics.walk_encode_seconds if metrics is not None else None

    @property
    def walks(self) -> int:
        """Walks admitted and not yet done (computing frames, waiting for the encoder or being
        encoded)."""
        return self._walks

    @contextlib.contextmanager
    def admit(self) -> Iterator[WalkPlace]:
        """A place for one walk while inside, or :class:`Unavailable` (503) at once when
        ``max_walks`` walks hold theirs."""
        if self._walks >= self.max_walks:
            raise Unavailable(
                f"{self._walks} walks are being made, the most this service makes at once; "
                "retry shortly",
                self.retry_after_s,
            )
        self._walks += 1
        self._report()
        place = WalkPlace(self)
        try:
            yield place
        finally:
            place.leave()

    def _release(self) -> None:
        self._walks -= 1
        self._report()

    def _report(self) -> None:
        if self._gauge is not None:
            self._gauge.set(self._walks)

    def _timed(self, fn: Callable[..., bytes], *args: Any, **kwargs: Any) -> bytes:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            if self._seconds is not None:
                self._seconds.observe(time.perf_counter() - start)

    def shutdown(self) -> None:
        """Finish the encodings under way and stop the thread."""
        self._executor.shutdown(wait=True)


class WalkPlace:
    """One admitted walk (see :meth:`AnimationPool.admit`)."""

    def __init__(self, pool: AnimationPool) -> None:
        self._pool = pool
        self._job: Future[bytes] | None = None
        self._left = False

    async def encode(self, fn: Callable[..., bytes], *args: Any, **kwargs: Any) -> bytes:
        """``fn(*args, **kwargs)`` in the pool's thread: the walk's file."""
        try:
            self._job = self._pool._executor.submit(self._pool._timed, fn, *args, **kwargs)
        except RuntimeError:  # shut down: the service is stopping
            raise Unavailable("the service is shutting down", self._pool.retry_after_s) from None
        return await asyncio.wrap_future(self._job)

    def leave(self) -> None:
        """Give the place back: now, or when the encoder's thread is done with the walk."""
        if self._left:
            return
        self._left = True
        job = self._job
        if job is None or job.done():
            self._pool._release()
            return
        # The client left while its file is being encoded: the thread is still busy with it.
        loop = asyncio.get_running_loop()

        def released(_: Future[bytes]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: no one counts any more
                loop.call_soon_threadsafe(self._pool._release)

        job.add_done_callback(released)
