"""The animation pool: at most ``max_walks`` walks at once, a 503 at once beyond, and a place
held until the encoder's thread is done with the walk, even when its client has left."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest

from service.api.animation_pool import AnimationPool
from service.errors import Unavailable


async def _until(condition, what: str) -> None:
    for _ in range(2000):  # at most 10 s
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


def test_walks_past_the_bound_are_refused_at_once_and_places_come_back() -> None:
    async def scenario() -> None:
        pool = AnimationPool(max_walks=2, retry_after_s=7)
        with pool.admit(), pool.admit():
            assert pool.walks == 2
            with pytest.raises(Unavailable) as refused, pool.admit():
                pass
            assert refused.value.headers == {"Retry-After": "7"}
        assert pool.walks == 0
        with contextlib.suppress(ValueError), pool.admit():  # a walk that fails gives its back
            raise ValueError("frames failed")
        assert pool.walks == 0
        with pool.admit() as place:
            assert await place.encode(lambda a, b=0: bytes([a, b]), 1, b=2) == b"\x01\x02"
        pool.shutdown()

    asyncio.run(scenario())


def test_a_walk_whose_client_left_keeps_its_place_until_its_encoding_ends() -> None:
    async def scenario() -> None:
        pool = AnimationPool(max_walks=1, retry_after_s=1)
        started, release = threading.Event(), threading.Event()

        def slow() -> bytes:
            started.set()
            release.wait(10)
            return b"done"

        async def walk() -> bytes:
            with pool.admit() as place:
                return await place.encode(slow)

        task = asyncio.create_task(walk())
        await asyncio.to_thread(started.wait, 10)
        task.cancel()  # the client left while its file is being encoded
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # The encoder's thread is still busy with it: no new walk until it is done.
        assert pool.walks == 1
        with pytest.raises(Unavailable), pool.admit():
            pass
        release.set()
        await _until(lambda: pool.walks == 0, "the place given back")
        with pool.admit():
            pass
        pool.shutdown()

    asyncio.run(scenario())
