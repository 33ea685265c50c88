"""A servable: one load of a model version, its batchers, and the requests holding it.

Usage (the inference engine does this; routes only see :class:`LoadedModel`)::

    servable = Servable(model, {"generate": gen_batcher, "score": score_batcher})
    with servable.hold():            # a request uses this load; it stays loaded meanwhile
        out = await servable.batchers["generate"].submit(rows)
    await servable.wait_idle()       # returns once no request holds it
    await servable.stop()

As in TensorFlow Serving, a servable is identified by its load (``model.generation``), not by
its (name, version): a version that is retired and loaded again (a rollback) is a second
servable, and retiring the first never touches the second's batchers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping

from service.engine.batcher import Batcher
from service.repository.repository import LoadedModel


class Servable:
    """A loaded model version with its batchers and a count of the requests holding it."""

    def __init__(self, model: LoadedModel, batchers: Mapping[str, Batcher]) -> None:
        self.model = model
        self.batchers = dict(batchers)
        self._holders = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def generation(self) -> int:
        return self.model.generation

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Count the caller as using this servable while inside."""
        self._holders += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._holders -= 1
            if self._holders == 0:
                self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no request holds this servable (at once when none does)."""
        while self._holders:
            await self._idle.wait()

    async def stop(self) -> None:
        """Stop the batchers (queued requests get 503; the running batches finish)."""
        await asyncio.gather(*(batcher.stop() for batcher in self.batchers.values()))
