"""The server's own stop when the app cannot serve: a process alone drains first, as on SIGTERM;
a worker of several stops at once (its supervisor drains the others). Either way the failure is
kept, for gan-serve's exit status."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

import uvicorn
from starlette.types import Receive, Scope, Send

from service.server.draining import DrainingServer


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return


def stop_failing(drain_seconds: float, supervised: bool) -> tuple[DrainingServer, SimpleNamespace]:
    """Start a server, have the app report that it cannot serve, and wait until it stops."""
    state = SimpleNamespace(ready=True, draining=False, stop_process=None)
    config = uvicorn.Config(app, log_config=None, lifespan="on")
    server = DrainingServer(config, drain_seconds, state, supervised=supervised)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        state.stop_process("the batch queue of m/1/generate stopped")
        await asyncio.wait_for(task, 30)

    asyncio.run(main())
    return server, state


def test_a_process_alone_drains_before_it_stops() -> None:
    server, state = stop_failing(drain_seconds=0.2, supervised=False)
    assert server.failure == "the batch queue of m/1/generate stopped"
    assert state.draining and not state.ready  # /readyz answered 503 meanwhile


def test_a_worker_stops_at_once_and_leaves_the_drain_to_its_supervisor() -> None:
    # A 60-s drain would outlast the 30 s the test waits.
    server, state = stop_failing(drain_seconds=60, supervised=True)
    assert server.failure == "the batch queue of m/1/generate stopped"
    assert not state.draining and not state.ready
