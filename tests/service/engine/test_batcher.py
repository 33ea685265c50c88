"""The batcher, driven by fake model functions (no TensorFlow)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from service.engine import batcher as batcher_module
from service.engine.batcher import BatchConfig, Batcher
from service.errors import DeadlineExceeded, ModelError, Unavailable
from service.metrics import Metrics
from service.settings import Settings


class FakeModel:
    """Doubles its input; records the batches it saw and the thread it ran on."""

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[int, dict[str, Any]]] = []
        self.threads: set[str] = set()
        self.delay_s = delay_s
        self.gate = gate

    def __call__(self, rows: Mapping[str, np.ndarray], shared: Mapping[str, Any]):
        if self.gate is not None:
            self.gate.wait(5)
        time.sleep(self.delay_s)
        self.threads.add(threading.current_thread().name)
        x = rows["x"]
        self.calls.append((len(x), dict(shared)))
        return {"y": x * 2 * shared.get("scale", 1)}


def config(**kw: Any) -> BatchConfig:
    base = dict(
        max_batch_size=8,
        batch_timeout_s=0.05,
        max_enqueued=64,
        allowed_batch_sizes=(2, 4, 8),
        timeout_s=5.0,
    )
    base.update(kw)
    return BatchConfig(**base)


def rows(*values: int) -> dict[str, np.ndarray]:
    return {"x": np.array(values, dtype=np.float32)}


def run(coro):
    return asyncio.run(coro)


def record_timed_waits(b: Batcher, timed_waits: list[float]) -> None:
    """Append to ``timed_waits`` every timeout the batcher's thread sleeps on (a timer)."""
    untimed_wait = b._changed.wait

    def wait(timeout: float | None = None) -> bool:
        if timeout is not None:
            timed_waits.append(timeout)
        return untimed_wait(timeout)

    b._changed.wait = wait  # type: ignore[method-assign]


async def closed_loop_client(b: Batcher, index: int, rounds: int) -> None:
    """One row at a time, ``rounds`` times; client ``index`` sends its next request
    ``index`` half-milliseconds after each answer (an HTTP round trip each)."""
    for _ in range(rounds):
        await b.submit(rows(index))
        await asyncio.sleep(0.0005 * index)


async def three_behind_a_busy_model(b: Batcher, gate: threading.Event) -> list[dict[str, Any]]:
    """A lone request (it fires at once and holds the model at ``gate``), then three that queue
    while the model is busy; opens the gate and returns the three's outputs."""
    first = asyncio.ensure_future(b.submit(rows(100)))
    await asyncio.sleep(0.05)
    rest = asyncio.gather(*(b.submit(rows(i)) for i in range(3)))
    await asyncio.sleep(0.05)
    gate.set()
    await first
    return await rest


def test_concurrent_requests_share_one_padded_batch_in_a_worker_thread():
    gate = threading.Event()
    model = FakeModel(gate=gate)

    async def main():
        b = Batcher(model, config())
        b.start()
        outs = await three_behind_a_busy_model(b, gate)
        await b.stop()
        return outs

    outs = run(main())
    assert [o["y"].tolist() for o in outs] == [[0.0], [2.0], [4.0]]
    # The three queued while the model was busy: one call for them, padded from 3 rows to 4.
    assert [size for size, _ in model.calls] == [2, 4]
    assert threading.main_thread().name not in model.threads


def test_requests_that_arrive_together_share_a_batch_on_an_idle_queue():
    model = FakeModel()

    async def main():
        b = Batcher(model, config(batch_timeout_s=5.0))
        b.start()

        async def arrive(i: int) -> dict[str, np.ndarray]:
            if i > 0:
                time.sleep(0.05)  # the loop parses the next request: the model's thread may run
            return await b.submit(rows(i))

        # Three requests read in one pass of the event loop, as from three sockets at once.
        outs = await asyncio.gather(*(arrive(i) for i in range(3)))
        await b.stop()
        return outs

    outs = run(main())
    assert [o["y"].tolist() for o in outs] == [[0.0], [2.0], [4.0]]
    # The idle queue fires at once, but only after the loop's pass: one call for the three.
    assert [size for size, _ in model.calls] == [4]


def test_by_default_a_free_model_waits_for_no_companions(monkeypatch: pytest.MonkeyPatch):
    # The default timeout is 0, as in Triton's dynamic batcher: the model's thread never sleeps
    # on a timer while requests are queued, and what queues during a call is the next batch.
    # (The gate below makes the first call look costly; a cheap model's calls stay under the
    # threshold past which the batcher waits for returning clients, as this raised one says.)
    monkeypatch.setattr(batcher_module, "MIN_SPLIT_SECONDS", 10.0)
    assert Settings.model_fields["batch_timeout_ms"].default == 0
    default = BatchConfig().batch_timeout_s
    assert default == 0
    gate = threading.Event()
    model = FakeModel(gate=gate)
    timed_waits: list[float] = []

    async def main():
        b = Batcher(model, config(batch_timeout_s=default))
        record_timed_waits(b, timed_waits)
        b.start()
        await three_behind_a_busy_model(b, gate)
        # After a batch of several rows, requests one at a time (a timeout would hold each).
        for i in range(3):
            await b.submit(rows(i))
        await b.stop()

    run(main())
    assert [size for size, _ in model.calls] == [2, 4, 2, 2, 2]
    assert timed_waits == []


def test_full_batch_fires_before_the_timeout():
    gate = threading.Event()
    model = FakeModel(gate=gate)

    async def main():
        b = Batcher(model, config(batch_timeout_s=30.0))
        b.start()
        first = asyncio.ensure_future(b.submit(rows(100)))  # occupies the model
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(b.submit(rows(i))) for i in range(8)]
        await asyncio.sleep(0.05)
        gate.set()
        start = time.perf_counter()
        await asyncio.gather(first, *rest)
        elapsed = time.perf_counter() - start
        await b.stop()
        return elapsed

    elapsed = run(main())
    assert [size for size, _ in model.calls] == [2, 8]
    assert elapsed < 10.0  # not the 30 s timeout


def test_partial_batch_waits_for_the_timeout_under_load():
    gate = threading.Event()
    model = FakeModel(gate=gate)

    async def main():
        b = Batcher(model, config(batch_timeout_s=0.2))
        b.start()
        first = asyncio.ensure_future(b.submit(rows(1, 2)))  # previous batch of two rows
        await asyncio.sleep(0.02)
        gate.set()
        await first
        start = time.perf_counter()
        await b.submit(rows(3))
        waited = time.perf_counter() - start
        await b.stop()
        return waited

    assert run(main()) >= 0.15


def test_idle_queue_fires_at_once():
    model = FakeModel()

    async def main():
        b = Batcher(model, config(batch_timeout_s=5.0))
        b.start()
        start = time.perf_counter()
        for i in range(3):
            await b.submit(rows(i))
        await b.stop()
        return time.perf_counter() - start

    assert run(main()) < 2.0
    assert [size for size, _ in model.calls] == [2, 2, 2]


def test_requests_larger_than_the_batch_are_split_and_reassembled():
    model = FakeModel()

    async def main():
        b = Batcher(model, config())
        b.start()
        out = await b.submit({"x": np.arange(19, dtype=np.float32)})
        await b.stop()
        return out

    out = run(main())
    np.testing.assert_array_equal(out["y"], np.arange(19) * 2)
    assert sorted(size for size, _ in model.calls) == [4, 8, 8]


def test_different_shared_arguments_never_share_a_batch():
    gate = threading.Event()
    model = FakeModel(gate=gate)

    async def main():
        b = Batcher(model, config())
        b.start()
        first = asyncio.ensure_future(b.submit(rows(0)))
        await asyncio.sleep(0.02)
        a = [asyncio.ensure_future(b.submit(rows(1), {"scale": 1})) for _ in range(2)]
        c = [asyncio.ensure_future(b.submit(rows(1), {"scale": 10})) for _ in range(2)]
        gate.set()
        results = await asyncio.gather(first, *a, *c)
        await b.stop()
        return results

    results = run(main())
    assert [r["y"].tolist() for r in results[1:]] == [[2.0], [2.0], [20.0], [20.0]]
    assert all(len({tuple(s.items())}) == 1 for _, s in model.calls)
    assert sorted(s.get("scale") for _, s in model.calls[1:]) == [1, 10]


def test_full_queue_refuses_at_once_with_retry_after():
    gate = threading.Event()
    model = FakeModel(gate=gate)

    async def main():
        b = Batcher(model, config(max_enqueued=4, retry_after_s=3))
        b.start()
        running = asyncio.ensure_future(b.submit(rows(0)))
        await asyncio.sleep(0.02)
        queued = asyncio.ensure_future(b.submit(rows(1, 2, 3, 4)))
        await asyncio.sleep(0)
        with pytest.raises(Unavailable) as info:
            await b.submit(rows(5))
        with pytest.raises(Unavailable):
            b.check_room(1)  # what routes ask before preparing a request
        gate.set()
        await asyncio.gather(running, queued)
        b.check_room(4)  # room again once the queue has drained
        await b.stop()
        with pytest.raises(Unavailable, match="not accepting"):
            b.check_room(1)
        return info.value

    error = run(main())
    assert error.status_code == 503 and error.headers["Retry-After"] == "3"


def test_deadline_in_the_queue_gives_504_and_frees_the_slot():
    gate = threading.Event()
    model = FakeModel(gate=gate)
    metrics = Metrics()
    labels = {"model": "m", "version": "1", "signature": "generate"}

    async def main():
        b = Batcher(model, config(max_enqueued=1), labels=("m", "1", "generate"), metrics=metrics)
        b.start()
        running = asyncio.ensure_future(b.submit(rows(0)))
        await asyncio.sleep(0.02)
        with pytest.raises(DeadlineExceeded):
            await b.submit(rows(1), timeout_s=0.05)
        depth = metrics.registry.get_sample_value("gan_batch_queue_depth", labels)
        b.check_room(1)  # the expired request's slot is free again (one row may wait)
        gate.set()
        await running
        await b.stop()
        return depth

    assert run(main()) == 0


def test_a_failed_batch_fails_every_request_in_it():
    gate = threading.Event()

    def broken(rows, shared):
        gate.wait(5)
        raise RuntimeError("kaput")

    async def main():
        b = Batcher(broken, config())
        b.start()
        futures = [asyncio.ensure_future(b.submit(rows(i))) for i in range(4)]
        await asyncio.sleep(0.02)
        gate.set()
        results = await asyncio.gather(*futures, return_exceptions=True)
        await b.stop()
        return results

    results = run(main())
    assert all(isinstance(r, ModelError) and "kaput" in r.message for r in results)


def test_outputs_with_the_wrong_number_of_rows_fail_the_batch():
    def short(rows, shared):
        return {"y": rows["x"][:1]}

    async def main():
        b = Batcher(short, config())
        b.start()
        try:
            await b.submit(rows(1, 2, 3))
        finally:
            await b.stop()

    with pytest.raises(ModelError, match="1 rows"):
        run(main())


def test_stop_resolves_every_future():
    gate = threading.Event()
    model = FakeModel(gate=gate)

    async def main():
        b = Batcher(model, config())
        b.start()
        futures = [asyncio.ensure_future(b.submit(rows(i))) for i in range(20)]
        await asyncio.sleep(0.02)
        stopping = asyncio.ensure_future(b.stop())
        await asyncio.sleep(0.02)
        gate.set()
        await stopping
        # A future left unresolved would hang a gather forever: wait with a bound instead.
        _, pending = await asyncio.wait(futures, timeout=5)
        with pytest.raises(Unavailable):
            await b.submit(rows(1))
        return futures, pending

    futures, pending = run(main())
    assert not pending, f"{len(pending)} futures were never resolved"
    done, refused = 0, 0
    for index, future in enumerate(futures):
        error = future.exception()
        if error is None:
            assert future.result()["y"].tolist() == [2.0 * index]  # its own row, not another's
            done += 1
        else:
            assert isinstance(error, Unavailable), repr(error)
            refused += 1
    assert done >= 1 and refused >= 1 and done + refused == 20


def test_metrics_record_batch_sizes_and_queue_depth():
    metrics = Metrics()
    model = FakeModel(delay_s=0.02)

    async def main():
        b = Batcher(model, config(), labels=("m", "1", "generate"), metrics=metrics)
        b.start()
        await asyncio.gather(*(b.submit(rows(i)) for i in range(9)))
        await b.stop()

    run(main())
    labels = {"model": "m", "version": "1", "signature": "generate"}
    assert metrics.registry.get_sample_value("gan_batch_size_sum", labels) == 9
    count = metrics.registry.get_sample_value("gan_batch_size_count", labels)
    assert count is not None and count < 9
    assert metrics.registry.get_sample_value("gan_batch_queue_depth", labels) == 0


def test_postprocess_runs_per_batch_off_the_loop_and_joins_the_outputs():
    model = FakeModel()
    seen: list[tuple[int, str]] = []

    def post(outputs, rows):
        seen.append((rows, threading.current_thread().name))
        return {"text": [f"y={v:g}" for v in outputs["y"][:rows]]}

    async def main():
        pool = ThreadPoolExecutor(1, thread_name_prefix="post")
        b = Batcher(model, config(), postprocess=post, post_executor=pool)
        b.start()
        outs = await asyncio.gather(*(b.submit(rows(i)) for i in range(3)))
        lone = await b.submit(rows(5))
        await b.stop()
        pool.shutdown()
        return outs, lone

    outs, lone = run(main())
    assert [o["text"] for o in outs] == [["y=0"], ["y=2"], ["y=4"]]
    assert lone["text"] == ["y=10"]
    # Three clients at once: their batch's post-processing went to the pool (their next requests
    # would overlap it); a lone request's ran in the model's thread, right after the call.
    assert seen == [(3, "post_0"), (1, "batch-model")]


def test_postprocess_overlaps_the_next_batch_when_requests_wait():
    gate = threading.Event()
    model = FakeModel(gate=gate)
    seen: dict[float, str] = {}

    def post(outputs, rows):
        seen[float(outputs["y"][0])] = threading.current_thread().name
        return {"text": [str(v) for v in outputs["y"][:rows]]}

    async def main():
        pool = ThreadPoolExecutor(1, thread_name_prefix="post")
        b = Batcher(model, config(), postprocess=post, post_executor=pool)
        b.start()
        first = asyncio.ensure_future(b.submit(rows(1)))
        await asyncio.sleep(0.02)
        # Queued while the first runs; different shared arguments make two more batches.
        second = asyncio.ensure_future(b.submit(rows(2), {"scale": 1}))
        third = asyncio.ensure_future(b.submit(rows(3), {"scale": 2}))
        await asyncio.sleep(0.02)
        gate.set()
        outs = await asyncio.gather(first, second, third)
        await b.stop()
        pool.shutdown()
        return outs

    outs = run(main())
    assert [o["text"] for o in outs] == [["2.0"], ["4.0"], ["12.0"]]
    # The second batch started with the third still queued: its PNGs went to the pool.
    assert seen == {2.0: "batch-model", 4.0: "post_0", 12.0: "batch-model"}


def test_a_failed_postprocess_fails_its_batch():
    def post(outputs, rows):
        raise ValueError("cannot encode")

    async def main():
        b = Batcher(FakeModel(), config(), postprocess=post)
        b.start()
        try:
            await b.submit(rows(1))
        finally:
            await b.stop()

    with pytest.raises(ModelError, match="cannot encode"):
        run(main())


# --- the model thread survives, or fails loudly; no future is left unresolved -----------------


def _bad_padding(b: Batcher) -> list[dict[str, np.ndarray]]:
    # Two requests of one group whose rows cannot be concatenated: the error is raised while
    # the batch is assembled, before the model call.
    return [rows(1), {"x": np.zeros((1, 3), np.float32)}]


def _bad_metrics(b: Batcher) -> list[dict[str, np.ndarray]]:
    calls = {"n": 0}

    def observe(value: float) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("metrics backend hiccup")

    b._padded_size.observe = observe  # type: ignore[method-assign]
    return [rows(1), rows(2)]


@pytest.mark.parametrize("breakage", [_bad_padding, _bad_metrics])
def test_an_error_outside_the_model_call_fails_its_batch_and_the_thread_goes_on(breakage):
    model = FakeModel()

    async def main():
        b = Batcher(model, config(batch_timeout_s=0.2), metrics=Metrics())
        b.start()
        bad = breakage(b)
        results = await asyncio.wait_for(
            asyncio.gather(*(b.submit(r) for r in bad), return_exceptions=True), 2.0
        )
        after = await asyncio.wait_for(b.submit(rows(5)), 2.0)
        await b.stop()
        return results, after

    results, after = run(main())
    assert all(isinstance(r, ModelError) for r in results), results
    assert after["y"].tolist() == [10.0]


def test_a_thread_that_cannot_go_on_fails_its_queue_and_refuses_at_once():
    async def main():
        b = Batcher(FakeModel(), config())

        def broken_take() -> list[Any]:
            raise RuntimeError("queue bookkeeping broke")

        b._take_batch = broken_take  # type: ignore[method-assign]
        b.start()
        with pytest.raises(Unavailable):
            await asyncio.wait_for(b.submit(rows(1)), 2.0)
        with pytest.raises(Unavailable):
            b.check_room(1)
        with pytest.raises(Unavailable):
            await asyncio.wait_for(b.submit(rows(2)), 2.0)
        await b.stop()

    run(main())


class Fatal(BaseException):
    """What no ``except Exception`` catches: it ends the model's thread."""


def test_a_thread_that_stops_during_a_batch_fails_that_batch_and_the_queue():
    entered = threading.Event()
    gate = threading.Event()

    def model(rows_: Mapping[str, np.ndarray], shared: Mapping[str, Any]) -> dict[str, Any]:
        entered.set()
        gate.wait(5)
        raise Fatal("the model's thread is going away")

    async def main():
        b = Batcher(model, config())
        b.start()
        running = asyncio.ensure_future(b.submit(rows(1)))
        while not entered.is_set():
            await asyncio.sleep(0.005)
        queued = asyncio.ensure_future(b.submit(rows(2), {"scale": 2}))  # another group
        await asyncio.sleep(0.02)
        gate.set()
        for request in (running, queued):
            with pytest.raises(Unavailable):
                await asyncio.wait_for(request, 2.0)
        assert b.broken
        with pytest.raises(Unavailable):
            b.check_room(1)
        await b.stop()

    run(main())


def test_a_thread_that_stops_tells_its_owner_once_on_the_event_loop():
    # So that the process can stop (and be restarted) rather than refuse this model for good.
    calls = iter([RuntimeError("one failed batch"), Fatal("the model's thread is going away")])

    def model(rows_: Mapping[str, np.ndarray], shared: Mapping[str, Any]) -> dict[str, Any]:
        raise next(calls)

    told: list[str] = []

    async def main() -> str:
        b = Batcher(model, config(), on_broken=lambda: told.append(threading.current_thread().name))
        b.start()
        with pytest.raises(ModelError):  # a failed batch: the thread goes on, nothing to tell
            await b.submit(rows(1))
        assert told == []
        with pytest.raises(Unavailable):
            await asyncio.wait_for(b.submit(rows(2)), 2.0)
        for _ in range(100):
            if told:
                break
            await asyncio.sleep(0.01)
        await b.stop()
        return threading.current_thread().name

    loop_thread = run(main())
    assert told == [loop_thread]


def test_post_processing_that_cannot_start_or_finish_fails_its_batch_and_the_batcher_goes_on():
    def post(outputs: Mapping[str, np.ndarray], n: int) -> dict[str, Any]:
        if outputs["y"][0] == 2.0:
            raise Fatal("the encoder's thread is going away")
        return {"z": list(range(n))}

    async def main():
        pool = ThreadPoolExecutor(1)
        b = Batcher(FakeModel(), config(), postprocess=post, post_executor=pool)
        b.start()
        # Two groups queued together: the first batch's post-processing goes to the pool,
        # where it dies; the second (nothing queued behind it) is encoded in the model's thread.
        first = asyncio.ensure_future(b.submit(rows(1), {"scale": 1}))
        second = asyncio.ensure_future(b.submit(rows(2), {"scale": 2}))
        with pytest.raises(Unavailable):
            await asyncio.wait_for(first, 2.0)
        assert (await asyncio.wait_for(second, 2.0))["z"] == [0]
        # A pool shut down under a running service refuses the batch, not the batcher.
        pool.shutdown()
        third = asyncio.ensure_future(b.submit(rows(3), {"scale": 1}))
        fourth = asyncio.ensure_future(b.submit(rows(4), {"scale": 2}))
        with pytest.raises(Unavailable):
            await asyncio.wait_for(third, 2.0)
        assert (await asyncio.wait_for(fourth, 2.0))["y"].tolist() == [16.0]
        assert not b.broken
        await b.stop()

    run(main())


# --- PNG encoding is bounded ------------------------------------------------------------------


def test_rows_waiting_for_postprocessing_count_against_the_queue_and_are_bounded():
    gate = threading.Event()
    model = FakeModel()

    def post(outputs: Mapping[str, np.ndarray], n: int) -> dict[str, Any]:
        gate.wait(5)
        return {"z": list(range(n))}

    async def main():
        pool = ThreadPoolExecutor(8)
        b = Batcher(
            model,
            config(
                max_batch_size=2,
                allowed_batch_sizes=(2,),
                max_enqueued=8,
                timeout_s=1.0,
                max_postprocessing=2,
            ),
            postprocess=post,
            post_executor=pool,
        )
        b.start()
        accepted = [asyncio.ensure_future(b.submit(rows(i))) for i in range(8)]
        await asyncio.sleep(0.2)  # the model thread runs what it may
        calls_while_blocked = len(model.calls)
        # Rows computed but not yet encoded still take room: the queue is full.
        with pytest.raises(Unavailable):
            b.check_room(1)
        await asyncio.sleep(1.0)  # past the deadline of the requests still queued
        gate.set()
        outcomes = await asyncio.gather(*accepted, return_exceptions=True)
        await b.stop()
        pool.shutdown()
        return calls_while_blocked, outcomes

    calls_while_blocked, outcomes = run(main())
    # At most max_postprocessing batches wait for post-processing; the rest wait in the queue,
    # where their deadline applies.
    assert calls_while_blocked <= 2
    assert any(isinstance(o, DeadlineExceeded) for o in outcomes)
    assert all(isinstance(o, (dict, DeadlineExceeded)) for o in outcomes), outcomes


def test_a_batch_past_its_deadline_when_an_encoder_is_free_is_not_encoded():
    gate = threading.Event()
    encoded: list[float] = []

    def post(outputs: Mapping[str, np.ndarray], n: int) -> dict[str, Any]:
        encoded.append(float(outputs["y"][0]))
        return {"z": list(range(n))}

    async def main():
        pool = ThreadPoolExecutor(1)
        pool.submit(gate.wait, 5)  # every encoder is busy
        b = Batcher(FakeModel(), config(timeout_s=0.2), postprocess=post, post_executor=pool)
        b.start()
        # Two groups: the first batch's encoding goes to the busy pool, the second (nothing
        # queued behind it) is encoded in the model's thread.
        first = asyncio.ensure_future(b.submit(rows(1), {"scale": 1}))
        second = asyncio.ensure_future(b.submit(rows(2), {"scale": 10}))
        await asyncio.wait_for(second, 2.0)
        await asyncio.sleep(0.3)  # past the first request's deadline
        gate.set()
        with pytest.raises(DeadlineExceeded):
            await asyncio.wait_for(first, 2.0)
        await b.stop()
        pool.shutdown()

    run(main())
    assert encoded == [40.0]  # only the second batch (2 * 2 * 10) was encoded


class RowCostModel(FakeModel):
    """A model whose every row (padding included) costs ``per_row_s``, plus ``fixed_s`` a call."""

    def __init__(self, per_row_s: float, fixed_s: float = 0.0) -> None:
        super().__init__()
        self.per_row_s, self.fixed_s = per_row_s, fixed_s

    def __call__(self, rows: Mapping[str, np.ndarray], shared: Mapping[str, Any]):
        time.sleep(self.fixed_s + self.per_row_s * len(rows["x"]))
        return super().__call__(rows, shared)


async def batcher_that_knows(
    model: FakeModel, sizes: tuple[int, ...] = (1, 2), timed_waits: list[float] | None = None
) -> Batcher:
    """A started batcher of ``model`` (allowed sizes 1, 2, 4, 8; no batch timeout) that has
    called it at each of ``sizes`` one after another, so that it knows what those calls cost;
    the timeouts its thread sleeps on are appended to ``timed_waits`` if given."""
    b = Batcher(model, config(allowed_batch_sizes=(1, 2, 4, 8), batch_timeout_s=0.0))
    if timed_waits is not None:
        record_timed_waits(b, timed_waits)
    b.start()
    for size in sizes:
        await b.submit(rows(*range(size)))
    return b


async def _five_after_learning(model: FakeModel) -> list[dict[str, Any]]:
    """Calls at every allowed size (1, 2, 4, 8) one after another, so that the batcher knows
    their costs, then five one-row requests at once; returns the five's outputs."""
    b = await batcher_that_knows(model, sizes=(1, 2, 4, 8))
    outs = await asyncio.gather(*(b.submit(rows(i)) for i in range(5)))
    await b.stop()
    return outs


def test_a_model_whose_rows_each_cost_the_same_gets_no_padding_it_would_pay_for():
    # 5 rows padded to 8 cost 80 ms (62 rows/s); 4 now cost 40 ms (100 rows/s) and the fifth
    # goes with the next batch: the batcher measured both and takes four.
    model = RowCostModel(per_row_s=0.01)
    outs = run(_five_after_learning(model))
    assert [o["y"].tolist() for o in outs] == [[0.0], [2.0], [4.0], [6.0], [8.0]]
    assert [size for size, _ in model.calls] == [1, 2, 4, 8, 4, 1]


def test_a_model_whose_call_costs_the_same_at_every_size_is_padded():
    # A fixed 40 ms a call: 8 padded rows cost what 4 do, so the five share one batch.
    model = RowCostModel(per_row_s=0.0, fixed_s=0.04)
    outs = run(_five_after_learning(model))
    assert [o["y"].tolist() for o in outs] == [[0.0], [2.0], [4.0], [6.0], [8.0]]
    assert [size for size, _ in model.calls] == [1, 2, 4, 8, 8]


def test_postprocessing_runs_in_the_model_thread_when_overlap_is_off():
    # A model whose call keeps every core busy: its batches are encoded after the call, in the
    # model's thread, even when several requests share the batch.
    threads: list[str] = []

    def post(outputs: Mapping[str, np.ndarray], rows: int) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return {"done": [True] * rows}

    gate = threading.Event()
    model = FakeModel(gate=gate)

    async def main() -> list[dict[str, Any]]:
        with ThreadPoolExecutor(2, thread_name_prefix="encoder") as pool:
            b = Batcher(
                model,
                config(overlap_postprocessing=False),
                postprocess=post,
                post_executor=pool,
            )
            b.start()
            outs = await three_behind_a_busy_model(b, gate)
            await b.stop()
            return outs

    outs = run(main())
    assert [list(o["done"]) for o in outs] == [[True]] * 3
    assert len(threads) == 2 and all(name.startswith("batch-") for name in threads)


def test_a_cheap_model_keeps_its_padding_whatever_its_rows_cost():
    # Half a millisecond a row: 8 padded rows take 4 ms, below what a split can save against
    # the work per request outside the model's thread, so the five share one padded batch.
    model = RowCostModel(per_row_s=0.0005)
    outs = run(_five_after_learning(model))
    assert [o["y"].tolist() for o in outs] == [[0.0], [2.0], [4.0], [6.0], [8.0]]
    assert [size for size, _ in model.calls] == [1, 2, 4, 8, 8]


def test_a_costly_model_waits_for_the_clients_its_last_batch_answered():
    # Four clients in a closed loop whose next requests come back 0 to 1.5 ms apart (an HTTP
    # round trip each). After a 200 ms call the batcher waits for them, until the rows of its
    # last batch are back (GATHER_SHARE of the call at most, 10 ms): every batch holds the
    # four. Without the wait the first to return went alone and the other three a whole call
    # later (batches of 4, 1, 3, 1, ...).
    model = RowCostModel(per_row_s=0.0, fixed_s=0.2)

    async def main() -> None:
        b = await batcher_that_knows(model)
        await asyncio.gather(*(closed_loop_client(b, i, 3) for i in range(4)))
        await b.stop()

    run(main())
    assert [size for size, _ in model.calls][2:] == [4, 4, 4]


def test_a_costly_model_merges_two_cohorts_of_clients_into_full_batches():
    # Two clients start, six more arrive while the first batch computes: two cohorts. Without
    # waiting for the clients its last batch answered, the batcher took the six the moment the
    # two's batch ended and the two (back a millisecond later) went alone a call later, batch
    # after batch (2, 6, 2, 6, ...: a fixed cost paid twice per eight images). Waiting for the
    # rows the last batch held to come back merges the cohorts: every batch after the first
    # holds all eight.
    model = RowCostModel(per_row_s=0.0, fixed_s=0.2)

    async def main() -> None:
        b = await batcher_that_knows(model)
        early = [asyncio.ensure_future(closed_loop_client(b, i, 4)) for i in range(2)]
        await asyncio.sleep(0.05)  # the two's batch is computing
        late = [closed_loop_client(b, i, 3) for i in range(2, 8)]
        await asyncio.gather(*early, *late)
        await b.stop()

    run(main())
    assert [size for size, _ in model.calls][2:] == [2, 8, 8, 8]


class FirstCallSlowModel(FakeModel):
    """A cheap model whose first call takes 50 ms (a first call after a pause, a collection)."""

    def __call__(self, rows: Mapping[str, np.ndarray], shared: Mapping[str, Any]):
        if not self.calls:
            time.sleep(0.05)
        return super().__call__(rows, shared)


def test_one_slow_call_never_makes_a_cheap_model_wait_for_clients():
    # The first one-row call takes 50 ms and every other call is fast: the batcher judges the
    # model by its cheapest call, so its batches never sleep on a timer.
    model = FirstCallSlowModel()
    timed_waits: list[float] = []

    async def main() -> None:
        b = await batcher_that_knows(model, timed_waits=timed_waits)
        await asyncio.gather(*(closed_loop_client(b, i, 3) for i in range(4)))
        await b.stop()

    run(main())
    assert timed_waits == []
