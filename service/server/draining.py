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

The app can stop the process too, when it cannot serve any more (a batch queue that stopped
after an internal error refuses every request): it calls ``app.state.stop_process(reason)``,
which this server installs. A process alone drains as on SIGTERM; a worker of ``gan-serve``'s
supervisor (``supervised``) stops at once, and the supervisor, seeing it exit, drains the other
workers. ``failure`` keeps the reason, and ``gan-serve`` exits with status 1, so that the
orchestrator restarts the replica.
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

    def __init__(
        self,
        config: uvicorn.Config,
        drain_seconds: float,
        state: Any = None,
        supervised: bool = False,
    ) -> None:
        """``state``: the app's ``app.state``, whose ``ready`` flag the drain clears and whose
        ``stop_process`` this server sets (see the module doc); ``supervised``: this process
        is one worker of several, whose supervisor drains the replica."""
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.state = state
        self.supervised = supervised
        self.draining = False
        self.failure: str | None = None  # why the app had this process stopped
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None
        if state is not None:
            state.stop_process = self.stop_failing

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

    def stop_failing(self, reason: str) -> None:
        """Stop this process because the app cannot serve (``reason``, kept in
        :attr:`failure`): alone after a drain, as on SIGTERM; supervised at once. Safe to call
        from any thread, and more than once."""
        if self.failure is not None:
            return
        self.failure = reason
        if self.state is not None:
            self.state.ready = False  # out of rotation at once, whatever follows
        if self.supervised or self.drain_seconds <= 0 or self._loop is None:
            self.should_exit = True
        elif not self.draining:
            self.draining = True
            self._loop.call_soon_threadsafe(self._start_drain)

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
