"""The HTTP server: uvicorn with a graceful drain on SIGTERM.

Usage (``gan-serve`` does this)::

    config = uvicorn.Config(app, host="0.0.0.0", port=8000)
    server = DrainingServer(config, drain_seconds=20, state=app.state)
    server.run()                                  # returns after the drain; exit status 0

uvicorn stops accepting connections as soon as it gets SIGTERM. Behind a load balancer that is
too early: the balancer only takes a replica out once its readiness probe fails (Kubernetes) or
once a request to it fails (nginx's passive checks). So on the first SIGTERM this server

1. marks the app not ready at once (``/readyz`` answers 503, so probes take the replica out),
2. keeps accepting and serving requests for ``drain_seconds`` (the balancer's reaction time),
3. then shuts uvicorn down: no new connections, requests already accepted finish (each bounded
   by the queue deadline, ``GAN_REQUEST_TIMEOUT_MS``), the lifespan stops the batchers,
   and the process exits with status 0.

The orchestrator's grace period must exceed ``drain_seconds`` plus the request deadline (the
Kubernetes manifest: 45 s > 20 s + 10 s + margin). SIGINT (Ctrl-C) skips the drain: requests in
flight finish and the server stops at once; a second SIGTERM or SIGINT during the drain ends it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType
from typing import Any

import uvicorn

logger = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """``uvicorn.Server`` whose SIGTERM first drains for ``drain_seconds`` (see the module doc)."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float, state: Any = None) -> None:
        """``state``: the app's ``app.state``, whose ``ready`` flag the drain clears."""
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.state = state
        self.draining = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None

    async def serve(self, sockets: list | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # The signal is not recorded in self._captured_signals: uvicorn would re-raise it after
        # the shutdown and the process would die of SIGTERM instead of exiting with status 0.
        if (
            sig == signal.SIGTERM
            and not self.draining
            and self.drain_seconds > 0
            and self._loop is not None
        ):
            self.draining = True
            # A signal handler must not touch the loop's internals: hand over thread-safely.
            self._loop.call_soon_threadsafe(self._start_drain)
            return
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True

    def _start_drain(self) -> None:
        self._drain_task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        if self.state is not None:
            self.state.ready = False
            self.state.draining = True
        logger.info(
            "SIGTERM: not ready; serving for %.1f s more, then finishing accepted requests",
            self.drain_seconds,
        )
        await asyncio.sleep(self.drain_seconds)
        logger.info("drain period over; shutting down")
        self.should_exit = True
