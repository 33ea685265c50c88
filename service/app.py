"""The FastAPI application factory.

Usage::

    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(model_dir="models"))

Nothing happens at import time: the app's lifespan loads every model (unless a loaded
:class:`~service.model_repository.ModelRepository` is passed in), warms it up, starts the
batchers, and only then sets ``app.state.ready`` so that /readyz answers 200. On shutdown it
clears the flag first, then stops the batchers. ``create_app_from_env`` is the zero-argument
factory for ``uvicorn --factory``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_response, install_handlers
from service.inference import InferenceEngine
from service.metrics import Metrics, RequestMetrics
from service.model_repository import ModelLoadError, ModelRepository, configure_tensorflow
from service.routes import model_router, router
from service.settings import Settings

logger = logging.getLogger("service")


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, by Content-Length or as it streams."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body exceeds {self.max_bytes} bytes; send fewer or smaller images"
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await error_response(413, "payload_too_large", message)(scope, receive, send)
                    return
                # The HTTP server never reads past Content-Length: no need to count.
                await self.app(scope, receive, send)
                return
        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_bytes and not refused:
                    # Answer 413 now and tell the app the client left, so it stops reading.
                    refused = True
                    await error_response(413, "payload_too_large", message)(scope, receive, send)
                    return {"type": "http.disconnect"}
            return msg

        async def guarded_send(msg: Message) -> None:
            if not refused:  # after a 413 the app's own answer is dropped
                await send(msg)

        await self.app(scope, counting_receive, guarded_send)


def create_app(settings: Settings, repository: ModelRepository | None = None) -> FastAPI:
    """Build the app for ``settings``; ``repository``: models already loaded (by the CLI)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ready = False
        app.state.codec_pool = ThreadPoolExecutor(
            settings.codec_threads, thread_name_prefix="codec"
        )
        loop = asyncio.get_running_loop()
        repo = repository
        if repo is None:
            await loop.run_in_executor(None, configure_tensorflow)
            try:
                repo = await loop.run_in_executor(
                    None,
                    ModelRepository.load,
                    settings.model_dir,
                    settings.model_versions,
                    settings.default_model,
                )
            except ModelLoadError as exc:
                logger.error("cannot start: %s", exc)
                raise
        engine = InferenceEngine(repo, settings, app.state.metrics, app.state.codec_pool)
        await engine.start()
        app.state.engine = engine
        app.state.ready = True
        logger.info("ready: serving %s", ", ".join(f"{m.name}/{m.version}" for m in repo.all()))
        try:
            yield
        finally:
            # Not ready first, so that load balancers stop sending while the queues drain.
            app.state.ready = False
            await engine.stop()
            app.state.codec_pool.shutdown(wait=True)

    extra: dict[str, Any] = {}
    if "telemetry" in inspect.signature(FastAPI).parameters:
        # FastAPI's OpenTelemetry hooks look up three providers (and os.environ) per request;
        # the service exports Prometheus metrics instead.
        extra["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        title="GAN serving",
        version="0.1.0",
        description="Generate images from trained GAN generators and score images with their "
        "discriminators. Requests arriving together are batched into one model call.",
        lifespan=lifespan,
        **extra,
    )
    app.state.settings = settings
    app.state.ready = False
    app.state.engine = None
    app.state.metrics = Metrics()
    install_handlers(app)
    app.include_router(router)
    app.include_router(model_router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    return app


def create_app_from_env() -> FastAPI:
    """Build the app from ``GAN_*`` environment variables (for ``uvicorn --factory``)."""
    return create_app(Settings())
