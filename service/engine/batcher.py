"""Dynamic batching: many concurrent requests, one model call.

Usage::

    batcher = Batcher(model_fn, BatchConfig(max_batch_size=32, batch_timeout_s=0.002))
    batcher.start()                                   # inside the running event loop
    out = await batcher.submit({"z": z, "labels": labels}, shared={"truncation_psi": 1.0})
    await batcher.stop()

``model_fn(rows, shared)`` gets a dict of arrays whose dimension 0 is the (padded) batch and the
shared scalar arguments, and returns a dict of arrays with the same dimension 0. It runs in the
batcher's own thread, never on the event loop. An optional ``postprocess(outputs, rows)`` (PNG
encoding) runs per batch in ``post_executor`` while the next batch is computed; its dict of
sequences (one item per row) joins the outputs, so a request's result needs no thread hand-off
of its own.

The semantics follow TensorFlow Serving's batcher:

- a batch fires as soon as it holds ``max_batch_size`` rows, or when its oldest request has
  waited ``batch_timeout_s`` (0, the default: as soon as the model's thread is free, with what
  queued while it was busy; a model whose one-row call takes 10 ms or more also waits, a few
  milliseconds at most, until the clients the last batch answered are back: ``GATHER_SHARE``);
  an *idle* queue fires at once. The queue is idle when the previous
  batch held a single row (the traffic is sequential, waiting would only add latency) or ended
  at least ``batch_timeout_s`` before the oldest request arrived;
- only requests with equal ``shared`` arguments share a batch (``truncation_psi`` is a scalar of
  the signature); the oldest request's group goes first, so no group starves;
- ``max_enqueued`` bounds the rows waiting: beyond it ``submit`` raises :class:`Unavailable`
  (503 + Retry-After) at once;
- batches are padded with zero rows up to the next of ``allowed_batch_sizes``, so that the model
  only ever sees shapes that were traced and warmed up; when the calls' measured costs say that
  a smaller allowed size makes more rows a second than the padding (a compute-heavy model, whose
  every row costs the same), the batch takes that many rows and leaves the rest, the oldest
  request always included, for the next batch (:mod:`service.engine.call_costs`);
- a request still queued at its deadline fails with :class:`DeadlineExceeded` (504);
- a request larger than ``max_batch_size`` is split across batches and reassembled;
- a failed model call, or one whose outputs do not have one row per input row, fails every
  request of that batch;
- ``stop()`` fails the queued requests with :class:`Unavailable`, lets the running batch finish,
  and leaves no future unresolved.

Post-processing is bounded too: at most ``max_postprocessing`` batches wait for it (the model's
thread takes no new batch meanwhile, so the rest waits in the queue, under its deadline), and
their rows count against ``max_enqueued`` until they are done. An error outside the model call
(padding, metrics) fails its batch and the thread goes on; if the thread itself stops (an
internal error) the requests it held fail with :class:`Unavailable`, the batcher refuses new
ones at once, and ``on_broken()`` is called on the event loop (the engine has the process
restarted: :mod:`service.server.draining`).

Threads: the queue is shared by the event loop (``submit``, deadlines, ``stop``) and the batcher's
thread, which waits for a batch to fire, takes it, calls the model, hands the outputs to
``post_executor`` and goes straight on to the next batch. The event loop only ever queues
requests and resolves their futures (one callback per batch, from the thread that finished
it). Why: with the loop choosing each batch, every batch waited for the loop twice (to learn
that the previous call had ended, and to be handed to the thread), and a loop busy answering
requests made the model wait, a millisecond a batch at 32 clients on 2 cores.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.engine.call_costs import CallCosts
from service.errors import DeadlineExceeded, ModelError, ServiceError, Unavailable
from service.metrics import Metrics

logger = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]

# How many more rows a second a smaller batch must make than padding up before the batcher
# takes it: below that the difference is within the calls' noise, and the work per batch
# outside the call (packing, the hand-off, the answers) favours fewer batches. A model whose
# rows cost the same each gains 20-50% (a 128x128 SN-ResNet: 17 rows as 16 instead of 24).
SPLIT_GAIN = 1.15
# A padded batch cheaper than this is never split: the work per request outside the model's
# thread (the event loop's) is then of the same order, and timings this short are within the
# scheduler's noise. A small model (the bundled one's batches take 1-3 ms) keeps its padding.
MIN_SPLIT_SECONDS = 0.01
# A model whose cheapest call (its one-row call) takes at least MIN_SPLIT_SECONDS waits for the
# requests of the clients its last batch answered, until as many rows came back as that batch
# held, or for this share of that call (at most GATHER_MAX_S) after the batch's end, whichever
# comes first: their next requests come back a few milliseconds after the answers (2 ms for 8
# clients, 5 for 32, on 2 cores). Without the wait the first of them would go alone and the
# rest a whole call later (8 clients of a 128x128 SN-ResNet: a 1-row call of 105 ms, then 7 rows
# in one of 8), and two cohorts of clients, one answered while the other computes, would stay
# apart for good (28 rows padded to 32, then 4, at 32 clients: 13% fewer images/s than 32 at
# a time). Sequential traffic never waits (the idle rule below), nor does a cheap model; in a
# closed loop the wait ends when the last client is back, so the bound only costs clients who
# do not come back.
GATHER_SHARE = 0.05
GATHER_MAX_S = 0.02
ModelFn = Callable[[Arrays, Mapping[str, Any]], Arrays]
PostFn = Callable[[Arrays, int], Mapping[str, Any]]


@dataclass(frozen=True)
class BatchConfig:
    """Batching knobs (see the module docstring for their meaning)."""

    max_batch_size: int = 32
    batch_timeout_s: float = 0.0
    max_enqueued: int = 1024
    allowed_batch_sizes: tuple[int, ...] = ()
    timeout_s: float = 10.0
    retry_after_s: int = 1
    # Batches computed and waiting for post-processing (PNG encoding) at most, so that memory
    # stays bounded when encoding falls behind. Four, not two: encoding comes in bursts (its
    # threads wait for the interpreter lock), and with two the model's thread stood idle for
    # them about 7% of the time at 32 clients on 2 cores (2% more images/s with four).
    max_postprocessing: int = 4
    # Post-processing of a batch beside the next model call (in ``post_executor``). False: in
    # the model's thread, after the call, for a model whose call keeps every core busy, where
    # an encoder beside it only slows it (service.repository.threads.fills_the_cpus).
    overlap_postprocessing: bool = True

    def padded_size(self, rows: int) -> int:
        """The allowed batch size ``rows`` is padded up to."""
        sizes = self.allowed_batch_sizes or (self.max_batch_size,)
        index = bisect.bisect_left(sizes, rows)
        return sizes[min(index, len(sizes) - 1)] if sizes[-1] >= rows else rows


@dataclass(eq=False)
class _Entry:
    rows: Arrays
    size: int
    key: Hashable
    shared: Mapping[str, Any]
    future: asyncio.Future[Arrays]
    enqueued_at: float
    # True while in the queue; changed only under the batcher's lock.
    queued: bool = True
    deadline: asyncio.TimerHandle | None = field(default=None, repr=False)


class Batcher:
    """One queue and one model thread for one model version and signature."""

    def __init__(
        self,
        fn: ModelFn,
        config: BatchConfig,
        *,
        labels: tuple[str, str, str] = ("model", "0", "signature"),
        metrics: Metrics | None = None,
        postprocess: PostFn | None = None,
        post_executor: Executor | None = None,
        on_broken: Callable[[], None] | None = None,
    ) -> None:
        self._fn = fn
        self._on_broken = on_broken  # called once, on the event loop, if the thread stops
        self._postprocess = postprocess
        self._post_executor = post_executor
        self.config = config
        self._labels = labels
        self._metrics = metrics
        # This batcher's label children, looked up once (`.labels()` locks and hashes per call).
        self._depth = metrics.queue_depth.labels(*labels) if metrics is not None else None
        if metrics is not None:
            self._queue_wait = metrics.queue_wait.labels(*labels)
            self._batch_size = metrics.batch_size.labels(*labels)
            self._padded_size = metrics.padded_batch_size.labels(*labels)
            self._model_seconds = metrics.model_seconds.labels(*labels)
        # Everything below this lock is shared by the event loop and the model's thread; it is
        # notified when the queue, the post-processing count or the stop flag changes.
        self._changed = threading.Condition()
        self._queue: deque[_Entry] = deque()
        self._rows_by_key: dict[Hashable, int] = {}
        self._queued_rows = 0
        self._postprocessing = 0  # batches computed and waiting for post-processing
        self._postprocessing_rows = 0
        self._stopping = False
        self._broken = False  # the model's thread stopped on its own: refuse at once
        # The model's thread alone reads and writes these.
        self._costs = CallCosts()
        self._last_batch_rows = 0
        self._last_batch_end = -float("inf")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._post_jobs: set[Any] = set()  # concurrent futures of post-processing, for stop()
        self._wake_pending = False  # a wake-up of the model's thread is scheduled on the loop

    @property
    def broken(self) -> bool:
        """True once the model's thread stopped on its own (an internal error): the batcher
        refuses every request from then on, and the process needs a restart (see /healthz)."""
        return self._broken

    def start(self) -> None:
        """Start the model's thread; call it inside the running event loop, which resolves the
        requests' futures."""
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(
                target=self._work, name=f"batch-{self._labels[0]}", daemon=True
            )
            self._thread.start()

    def check_room(self, size: int) -> None:
        """Raise :class:`Unavailable` (503) now if ``size`` more rows would overflow the queue.

        Routes call this before their costlier preparation (seeds to noise, image decoding), so
        that under overload a refusal costs as little of the event loop as possible: the loop's
        time is what the accepted requests' batches need.
        """
        if self._stopping or self._thread is None or self._broken:
            raise Unavailable("the model is not accepting requests", self.config.retry_after_s)
        if self._queued_rows + self._postprocessing_rows + size > self.config.max_enqueued:
            raise Unavailable(
                f"the queue of {self._labels[0]} is full ({self._queued_rows} images waiting); "
                "retry later",
                self.config.retry_after_s,
            )

    async def submit(
        self,
        rows: Arrays,
        shared: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Arrays:
        """Queue ``rows`` (arrays with the same dimension 0) and return the model's outputs."""
        if self._stopping or self._thread is None or self._broken:
            raise Unavailable("the model is not accepting requests", self.config.retry_after_s)
        sizes = {len(array) for array in rows.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise ValueError("every input needs the same, non-zero number of rows")
        size = sizes.pop()
        self.check_room(size)
        shared = dict(shared or {})
        key = tuple(sorted(shared.items()))
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        deadline = loop.time() + (self.config.timeout_s if timeout_s is None else timeout_s)
        step = self.config.max_batch_size
        entries = []
        for start in range(0, size, step):
            # Most requests fit one batch: their rows are queued as given, without slicing.
            chunk = rows if size <= step else {n: a[start : start + step] for n, a in rows.items()}
            entry = _Entry(chunk, min(step, size - start), key, shared, loop.create_future(), now)
            entry.deadline = loop.call_at(deadline, self._expire, entry)
            entries.append(entry)
        with self._changed:
            for entry in entries:
                self._queue.append(entry)
                self._rows_by_key[key] = self._rows_by_key.get(key, 0) + entry.size
            self._queued_rows += size
            self._set_depth()
        if not self._wake_pending:
            # Wake the model's thread once the loop has run what is ready now: requests that
            # arrive together (one loop iteration) then share a batch, even on an idle queue.
            self._wake_pending = True
            loop.call_soon(self._wake)
        try:
            if len(entries) == 1:
                return await entries[0].future
            results = await asyncio.gather(*(entry.future for entry in entries))
        except BaseException:
            for entry in entries:
                self._drop(entry)
                if not entry.future.done():
                    entry.future.cancel()
            raise
        return {name: np.concatenate([r[name] for r in results]) for name in results[0]}

    async def stop(self) -> None:
        """Refuse new requests, fail the queued ones, finish the running batch, stop."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._fail_queued(Unavailable("the service is shutting down"))
        loop = asyncio.get_running_loop()
        if self._thread is not None:
            await loop.run_in_executor(None, self._thread.join)
        # The thread handed its last batches to post-processing: wait for their answers. Each
        # job resolves its batch (a callback on this loop) before its own future completes.
        while self._post_jobs:
            await asyncio.gather(
                *(asyncio.wrap_future(job) for job in list(self._post_jobs)),
                return_exceptions=True,
            )
        await asyncio.sleep(0)  # the resolving callbacks scheduled last

    # --- queue bookkeeping (event loop) ---------------------------------------------------------

    def _fail_queued(self, exc: Exception) -> None:
        with self._changed:
            entries = list(self._queue)
            for entry in entries:
                self._unqueue(entry)
            self._queue.clear()
        for entry in entries:
            self._settle(entry)
            if not entry.future.done():
                entry.future.set_exception(exc)

    def _drop(self, entry: _Entry) -> bool:
        """Take ``entry`` out of the queue; False when it is no longer queued (taken into a
        batch, whose answer is on its way, or dropped already)."""
        with self._changed:
            if not entry.queued:
                return False
            with contextlib.suppress(ValueError):
                self._queue.remove(entry)
            self._unqueue(entry)
        self._settle(entry)
        return True

    def _unqueue(self, entry: _Entry) -> None:
        """Forget ``entry``'s rows; the caller holds the lock."""
        entry.queued = False
        self._queued_rows -= entry.size
        left = self._rows_by_key[entry.key] - entry.size
        if left:
            self._rows_by_key[entry.key] = left
        else:
            del self._rows_by_key[entry.key]
        self._set_depth()

    @staticmethod
    def _settle(entry: _Entry) -> None:
        """Cancel ``entry``'s deadline timer (on the event loop: its timers are not
        thread-safe)."""
        if entry.deadline is not None:
            entry.deadline.cancel()

    def _expire(self, entry: _Entry) -> None:
        if self._drop(entry) and not entry.future.done():
            entry.future.set_exception(
                DeadlineExceeded(
                    f"the request waited longer than {self.config.timeout_s:g} s in the "
                    "queue; retry, or send fewer images at a time"
                )
            )

    def _wake(self) -> None:
        self._wake_pending = False
        with self._changed:
            self._changed.notify()

    def _set_depth(self) -> None:
        if self._depth is not None:
            self._depth.set(self._queued_rows)

    # --- the model's thread ---------------------------------------------------------------------

    def _work(self) -> None:
        batch: list[_Entry] | None = None
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                self._run_guarded(batch)
                batch = None
        except BaseException:
            # The thread cannot go on: nothing may wait for it (a 504 much later, or never).
            self._broken = True
            logger.exception("the batch thread of %s stopped", "/".join(self._labels))
            failure = Unavailable("the model's batch queue stopped after an internal error; retry")
            if batch is not None:
                self._in_loop(self._fail, batch, failure)
            self._in_loop(self._fail_queued, failure)
            if self._on_broken is not None:
                self._in_loop(self._on_broken)

    def _gather_seconds(self) -> float:
        """How long at most a batch of a costly model waits for returning clients (GATHER_SHARE
        of its cheapest call, at most GATHER_MAX_S; 0 for a model whose cheapest call so far
        took under MIN_SPLIT_SECONDS, or one not yet measured)."""
        cheapest = self._costs.cheapest()
        if cheapest is None or cheapest < MIN_SPLIT_SECONDS:
            return 0.0
        return min(GATHER_SHARE * cheapest, GATHER_MAX_S)

    def _rows_since_last_batch(self) -> int:
        """Rows queued since the last batch ended (the caller holds the lock): in a closed loop,
        the clients that batch answered coming back."""
        rows = 0
        for entry in reversed(self._queue):
            if entry.enqueued_at < self._last_batch_end:
                break
            rows += entry.size
        return rows

    def _next_batch(self) -> list[_Entry] | None:
        """Wait until a batch should fire and take it (None once the batcher stops)."""
        with self._changed:
            while not self._stopping:
                if not self._queue or self._postprocessing >= self.config.max_postprocessing:
                    self._changed.wait()
                    continue
                gather = self._gather_seconds()
                head = self._queue[0]
                full = self._rows_by_key.get(head.key, 0) >= self.config.max_batch_size
                idle = self._last_batch_rows <= 1 or (
                    head.enqueued_at - self._last_batch_end
                    >= max(self.config.batch_timeout_s, gather)
                )
                # The oldest request waits batch_timeout_s; a costly model's batch also waits,
                # from the later of the oldest request and the last batch's end, for the
                # clients that batch answered, until as many rows came back as it held.
                fire_at = head.enqueued_at + self.config.batch_timeout_s
                if gather and self._rows_since_last_batch() < self._last_batch_rows:
                    fire_at = max(fire_at, max(head.enqueued_at, self._last_batch_end) + gather)
                remaining = fire_at - time.perf_counter()
                if full or idle or remaining <= 0:
                    batch = self._take_batch()
                    if batch:
                        return batch
                    continue
                self._changed.wait(remaining)  # woken early by a new request
        return None

    def _take_batch(self) -> list[_Entry]:
        """Take the oldest request's group, in arrival order, up to ``max_batch_size`` rows, or
        up to a smaller allowed size when that makes more rows a second (:meth:`_cap`; the
        caller holds the lock)."""
        key = self._queue[0].key
        cap = self._cap(key)
        batch: list[_Entry] = []
        rows = 0
        kept: deque[_Entry] = deque()
        for entry in self._queue:
            fits = entry.key == key and rows + entry.size <= cap
            # done(): its client left (a read of the future's state, safe from this thread).
            if fits and not entry.future.done():
                batch.append(entry)
                rows += entry.size
            elif fits:  # cancelled by its client: forget it
                self._unqueue(entry)
            else:
                kept.append(entry)
        self._queue = kept
        for entry in batch:
            self._unqueue(entry)
        return batch

    def _cap(self, key: Hashable) -> int:
        """The most rows the next batch of ``key``'s group takes: ``max_batch_size``, unless the
        rows queued are not an allowed size and a smaller allowed size makes more rows a second
        than padding up does, by the calls' measured costs (:mod:`service.engine.call_costs`).
        The rows left wait for the next batch, which the model's thread takes as soon as this
        one is computed: for a model whose every row costs the same, 17 rows as 16 now and one
        with the next arrivals, rather than 24 rows of arithmetic for 17 images. The oldest
        request always fits, so none waits for more than one batch longer."""
        config = self.config
        entries = [e for e in self._queue if e.key == key and not e.future.done()]
        if not entries:
            return config.max_batch_size
        rows = _greedy_rows(entries, config.max_batch_size)
        padded = config.padded_size(rows)
        seconds = self._costs.seconds(padded) if padded > rows else None
        if seconds is None or seconds < MIN_SPLIT_SECONDS:
            return config.max_batch_size
        best_rate = rows / seconds
        best_cap = config.max_batch_size
        for size in reversed(config.allowed_batch_sizes):  # the largest batch wins a tie
            if size >= rows or size < entries[0].size:
                continue
            taken = _greedy_rows(entries, size)
            rate = self._costs.rate(taken, config.padded_size(taken))
            if rate is not None and rate > best_rate * SPLIT_GAIN:
                best_cap, best_rate = size, rate
        return best_cap

    def _run_guarded(self, batch: list[_Entry]) -> None:
        """Run ``batch``; an error outside the model call fails the batch, not the thread."""
        try:
            start = time.perf_counter()
            padded = self._run(batch)
            if padded:
                # The model thread's whole time for the batch, not the call's alone: for a small
                # model the packing, the hand-off and the bookkeeping cost as much as the call,
                # and they are paid per batch, which is what a smaller batch multiplies.
                self._costs.observe(padded, time.perf_counter() - start)
        except Exception as exc:
            logger.exception("batch of %s failed outside the model call", "/".join(self._labels))
            self._in_loop(self._fail, batch, exc)

    def _run(self, batch: list[_Entry]) -> int:
        """Run ``batch`` and hand its outputs on; returns the padded size, or 0 when the model
        call failed."""
        rows = sum(entry.size for entry in batch)
        padded = self.config.padded_size(rows)
        inputs = {}
        for name in batch[0].rows:
            parts = [entry.rows[name] for entry in batch]
            if padded > rows:
                first = parts[0]
                parts.append(np.zeros((padded - rows, *first.shape[1:]), first.dtype))
            inputs[name] = np.concatenate(parts) if len(parts) > 1 else parts[0]
        start = time.perf_counter()
        if self._metrics is not None:
            for entry in batch:
                self._queue_wait.observe(start - entry.enqueued_at)
            self._batch_size.observe(rows)
            self._padded_size.observe(padded)
        # A lone request with nothing queued behind it is sequential traffic: no next batch will
        # overlap its post-processing, so this thread does it and saves a hand-off (the
        # client's latency). Several requests in a batch mean concurrent clients, whose next
        # requests arrive while this batch computes: post-processing goes to the pool and
        # overlaps the next model call (about 12% more images/s at 32 clients, 2 cores).
        fused = self._postprocess is not None and (
            not self.config.overlap_postprocessing or (len(batch) == 1 and not self._queue)
        )
        try:
            outputs = self._call(inputs, batch[0].shared, padded, rows, fused)
        except Exception as exc:
            self._in_loop(self._fail, batch, exc)
            return 0
        finally:
            self._last_batch_rows = rows
            self._last_batch_end = time.perf_counter()
            if self._metrics is not None:
                self._model_seconds.observe(self._last_batch_end - start)
        if self._postprocess is None or fused:
            self._in_loop(self._resolve, batch, outputs)
            return padded
        assert self._post_executor is not None
        with self._changed:
            self._postprocessing += 1
            self._postprocessing_rows += rows
        try:
            job = self._post_executor.submit(self._finish, batch, outputs, rows)
        except RuntimeError:  # the pool was shut down: the service is stopping
            self._finished(rows)
            self._in_loop(self._fail, batch, Unavailable("the service is shutting down"))
            return padded
        self._post_jobs.add(job)
        job.add_done_callback(self._post_jobs.discard)
        return padded

    def _call(
        self, inputs: Arrays, shared: Mapping[str, Any], padded: int, rows: int, fused: bool
    ) -> dict[str, Any]:
        """The model call (and, when ``fused``, the post-processing)."""
        outputs = self._fn(inputs, shared)
        _check_outputs(outputs, padded)
        if fused and self._postprocess is not None:
            return {**outputs, **self._postprocess(outputs, rows)}
        return dict(outputs)

    # --- post-processing (post_executor's threads) ----------------------------------------------

    def _finish(self, batch: list[_Entry], outputs: Arrays, rows: int) -> None:
        answered = False
        try:
            extra = self._postprocess_in_time(outputs, rows, batch)
            self._in_loop(self._resolve, batch, {**outputs, **extra})
            answered = True
        except Exception as exc:
            self._in_loop(self._fail, batch, exc)
            answered = True
        finally:
            if not answered:  # a BaseException: the pool's thread is going away
                self._in_loop(self._fail, batch, Unavailable("the images were not encoded; retry"))
            self._finished(rows)

    def _finished(self, rows: int) -> None:
        with self._changed:
            self._postprocessing -= 1
            self._postprocessing_rows -= rows
            self._changed.notify()  # the model's thread may wait for room

    def _postprocess_in_time(
        self, outputs: Arrays, rows: int, batch: list[_Entry]
    ) -> Mapping[str, Any]:
        """Post-process, unless every request of the batch is past its deadline by the time a
        thread is free (then the work would be thrown away)."""
        assert self._postprocess is not None and self._loop is not None
        deadlines = [entry.deadline.when() for entry in batch if entry.deadline is not None]
        if deadlines and self._loop.time() > max(deadlines):  # a monotonic clock
            raise DeadlineExceeded(
                f"the request waited longer than {self.config.timeout_s:g} s for its images "
                "to be encoded; retry, or send fewer images at a time"
            )
        return self._postprocess(outputs, rows)

    # --- answers (event loop) -------------------------------------------------------------------

    def _in_loop(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback(*args)`` on the event loop, from any thread."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: no one waits any more
            self._loop.call_soon_threadsafe(callback, *args)

    def _resolve(self, batch: list[_Entry], outputs: Mapping[str, Any]) -> None:
        offset = 0
        for entry in batch:
            self._settle(entry)
            if not entry.future.done():
                entry.future.set_result(
                    {name: out[offset : offset + entry.size] for name, out in outputs.items()}
                )
            offset += entry.size

    def _fail(self, batch: list[_Entry], exc: Exception) -> None:
        if not isinstance(exc, ServiceError):
            logger.error("batch of %s failed: %r", "/".join(self._labels), exc)
            exc = ModelError(f"the model call failed: {type(exc).__name__}: {exc}")
        for entry in batch:
            self._settle(entry)
            if not entry.future.done():
                entry.future.set_exception(exc)


def _greedy_rows(entries: list[_Entry], cap: int) -> int:
    """The rows a batch of at most ``cap`` rows takes from ``entries``, in their order, skipping
    those that do not fit (as :meth:`Batcher._take_batch` does)."""
    rows = 0
    for entry in entries:
        if rows + entry.size <= cap:
            rows += entry.size
            if rows == cap:
                break
    return rows


def _check_outputs(outputs: Any, rows: int) -> None:
    """Fail the batch unless every output has exactly one row per input row."""
    if not isinstance(outputs, Mapping) or not outputs:
        raise ModelError("the model returned no outputs")
    for name, value in outputs.items():
        shape = getattr(value, "shape", ())
        if not shape or shape[0] != rows:
            raise ModelError(
                f"the model returned {shape[0] if shape else 'no'} rows of {name!r} "
                f"for {rows} input rows"
            )
