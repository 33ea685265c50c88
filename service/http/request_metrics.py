"""Request metrics: an ASGI middleware that counts and times every HTTP request.

Usage (the app factory does this)::

    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
"""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import Metrics

CONVERTOR = re.compile(r"\{(\w+):\w+\}")  # a path parameter's convertor, "{name:model}"


class RequestMetrics:
    """ASGI middleware: count and time every HTTP request by its route template.

    A pure ASGI middleware (not ``BaseHTTPMiddleware``) so that it costs microseconds; the route
    template comes from ``scope["route"]`` which the router sets, so ``/v1/models/x`` and
    ``/v1/models/y`` share one label and unknown paths are counted as ``<unmatched>``.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Label children by label values: `.labels()` takes a lock and builds a key per call.
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "<unmatched>")
            if "{" in template and ":" in template:  # "/v1/models/{name}", not "{name:model}"
                template = CONVERTOR.sub(r"{\1}", template)
            method = scope["method"]
            key = (method, template)
            latency = self._latencies.get(key)
            if latency is None:
                latency = self._latencies[key] = self.metrics.latency.labels(method, template)
            count = self._counts.get((method, template, status))
            if count is None:
                count = self.metrics.requests.labels(method, template, str(status))
                self._counts[(method, template, status)] = count
            count.inc()
            latency.observe(time.perf_counter() - start)
