"""An open-loop HTTP load generator on asyncio streams, for the overload test.

Usage::

    result = asyncio.run(open_loop(host, port, make_request, rate=200.0, seconds=3.0))
    result.accepted_rate, result.p99_accepted_s, result.statuses

Requests start on a fixed schedule (``rate`` per second) whether or not earlier ones have
finished, as independent clients would send them; this is what overloads a server, where a
closed loop would slow down with it. Each request uses its own connection (``Connection:
close``), so a slow answer never delays the next request. Python clients are slow, so keep the
server's work per request large enough that the server, not this client, is the bottleneck.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Outcome:
    status: int | None  # None: the connection failed
    seconds: float
    retry_after: str | None = None
    error: str | None = None


@dataclass
class LoadResult:
    seconds: float
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def offered_rate(self) -> float:
        return len(self.outcomes) / self.seconds

    def _of(self, status: int) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def accepted_rate(self) -> float:
        return len(self._of(200)) / self.seconds

    @property
    def rejected_rate(self) -> float:
        return len(self._of(503)) / self.seconds

    @property
    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            key = str(outcome.status) if outcome.status is not None else str(outcome.error)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def percentile(self, status: int, q: float) -> float:
        times = sorted(o.seconds for o in self._of(status))
        if not times:
            return math.nan
        return times[min(len(times) - 1, math.ceil(q * len(times)) - 1)]

    @property
    def p99_accepted_s(self) -> float:
        return self.percentile(200, 0.99)

    @property
    def p99_rejected_s(self) -> float:
        return self.percentile(503, 0.99)


async def one_request(host: str, port: int, payload: bytes, timeout: float) -> Outcome:
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(payload)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                headers = dict(
                    (name.strip().lower(), value.strip())
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                )
                length = int(headers.get("content-length", "0"))
                await reader.readexactly(length)
            finally:
                writer.close()
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
        return Outcome(None, time.perf_counter() - start, error=type(exc).__name__)
    return Outcome(status, time.perf_counter() - start, headers.get("retry-after"))


def post(path: str, body: bytes) -> bytes:
    """A complete HTTP/1.1 POST of a JSON body on its own connection."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def open_loop(
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    rate: float,
    seconds: float,
    timeout: float = 30.0,
) -> LoadResult:
    """Start ``rate`` requests per second for ``seconds``; wait for all; return the outcomes."""
    total = int(rate * seconds)
    start = time.perf_counter()
    tasks = []
    for index in range(total):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        payload = make_request(index)
        tasks.append(asyncio.create_task(one_request(host, port, payload, timeout)))
    outcomes = await asyncio.gather(*tasks)
    return LoadResult(seconds=time.perf_counter() - start, outcomes=list(outcomes))


async def closed_loop(
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    clients: int,
    seconds: float,
    timeout: float = 30.0,
) -> LoadResult:
    """``clients`` sending back to back for ``seconds``: what the server sustains."""
    outcomes: list[Outcome] = []
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def client() -> None:
        while time.perf_counter() < deadline:
            payload = make_request(next(counter))
            outcomes.append(await one_request(host, port, payload, timeout))

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return LoadResult(seconds=time.perf_counter() - start, outcomes=outcomes)
