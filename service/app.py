"""The FastAPI application factory.

Usage::

    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(model_dir="models"))

Nothing happens at import time: the app's lifespan loads every model (unless a loaded
:class:`~service.model_repository.ModelRepository` is passed in), warms it up, starts the
batchers, starts the model watcher unless ``GAN_POLL_SECONDS`` is 0 (:mod:`service.reload`), and
only then sets ``app.state.ready`` so that /readyz answers 200. On shutdown it clears the flag
first, then stops the watcher and the batchers. ``create_app_from_env`` is the zero-argument
factory for ``uvicorn --factory`` (without the SIGTERM drain of ``gan-serve``, which lives in
:mod:`service.server`).

Middleware, outermost first: :class:`~service.logs.RequestLog` (request id, one JSON line per
request), :class:`~service.metrics.RequestMetrics`, :class:`~service.auth.ApiKeys` (401 from the
headers alone, before any body is read, for the model routes when ``GAN_API_KEYS`` is set;
/healthz, /readyz and /metrics never need a key), :class:`BodyLimit` (413 over the size limit,
408 for a body that takes longer than ``GAN_BODY_TIMEOUT_S``),
:class:`~service.shortcut.GenerateShortcut` (a plain ``POST /generate`` straight to its route
function, past FastAPI's routing and dependency resolution).

Two thread pools do image work, so that neither starves the other: ``app.state.encode_pool``
encodes the generated PNGs (each batcher keeps at most a few batches waiting for it), and
``app.state.codec_pool`` decodes /score uploads and encodes grids.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth import ApiKeys
from service.completion import completion_router
from service.dependencies import ERRORS, known_query_only
from service.errors import error_response, install_handlers
from service.heap import settle
from service.inference import InferenceEngine
from service.logs import RequestLog
from service.metrics import Metrics, RequestMetrics
from service.model_repository import ModelLoadError, ModelRepository, configure_tensorflow
from service.openapi import install_docs, install_openapi
from service.playground import playground_router
from service.reload import ModelWatcher
from service.routes import model_router, router
from service.settings import Settings
from service.shortcut import GenerateShortcut, route_of
from service.walk_routes import walk_router

logger = logging.getLogger("service")

API_DESCRIPTION = """Generate images from trained GAN generators and score images with their
discriminators. Requests arriving together are batched into one model call.

Terms: **truncation_psi** (psi) pulls each latent toward the average latent before generating
(1 = none; smaller gives cleaner, more typical images with less variety). The generator served
is the **EMA** generator, an exponential moving average of the generator's weights over
training, smoother and usually better than the last weights. A **logit** is the discriminator's
raw output for an image (higher = more like the real training images), and
**real_percentile** places it among the logits of held-out real images (50 = as real-looking as
the median real image; a good generated image of the bundled MNIST model typically scores
between the 5th and the 30th percentile).

Limits in this document (psi range, images per request, classes, z_dim) are those of this
running service and the models it serves. Every error is JSON `{"error": ..., "detail": ...}`.
"""

if sys.version_info >= (3, 11):

    async def _receive_within(receive: Receive, seconds: float) -> Message:
        # A timer on the current task: no Task per receive, unlike asyncio.wait_for (<= 3.11).
        async with asyncio.timeout(seconds):
            return await receive()

else:  # pragma: no cover - Python 3.10

    async def _receive_within(receive: Receive, seconds: float) -> Message:
        return await asyncio.wait_for(receive(), seconds)


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes`` (by Content-Length or as it streams),
    408 for a body still incomplete ``timeout_s`` after the request began (a slow client)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body exceeds {self.max_bytes} bytes; send fewer or smaller images"
        counting = True
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await error_response(413, "payload_too_large", message)(scope, receive, send)
                    return
                # The HTTP server never reads past Content-Length: no need to count.
                counting = False
                break
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        received = 0
        refused = False
        started = False
        body_done = False

        async def refuse(status: int, error: str, text: str) -> Message:
            # Answer now (unless the app already began its answer) and tell the app the client
            # left, so it stops reading; the app's own answer is then dropped.
            nonlocal refused
            refused = True
            if not started:
                await error_response(status, error, text)(scope, receive, send)
            return {"type": "http.disconnect"}

        async def guarded_receive() -> Message:
            nonlocal received, body_done
            if refused:
                return {"type": "http.disconnect"}
            if body_done:  # the app now listens for a disconnect: no deadline for that
                return await receive()
            try:
                msg = await _receive_within(receive, max(deadline - loop.time(), 0.0))
            except asyncio.TimeoutError:
                text = f"the request body did not arrive within {self.timeout_s:g} s"
                return await refuse(408, "request_timeout", text)
            if msg["type"] == "http.request":
                body_done = not msg.get("more_body", False)
            if msg["type"] == "http.request" and counting:
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    return await refuse(413, "payload_too_large", message)
            return msg

        async def guarded_send(msg: Message) -> None:
            nonlocal started
            if not refused:
                started = True
                await send(msg)

        await self.app(scope, guarded_receive, guarded_send)


def create_app(settings: Settings, repository: ModelRepository | None = None) -> FastAPI:
    """Build the app for ``settings``; ``repository``: models already loaded (by the CLI)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ready = False
        app.state.codec_pool = ThreadPoolExecutor(
            settings.codec_threads, thread_name_prefix="codec"
        )
        app.state.encode_pool = ThreadPoolExecutor(
            settings.codec_threads, thread_name_prefix="encode"
        )
        nonlocal repository
        loop = asyncio.get_running_loop()
        # The engine owns the repository from here on; a reference kept in this frame or the
        # closure would keep every replaced version's model in memory after a hot reload.
        repo, repository = repository, None
        if repo is None:
            await loop.run_in_executor(
                None,
                configure_tensorflow,
                settings.intra_op_threads,
                settings.inter_op_threads,
            )
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
        engine = InferenceEngine(repo, settings, app.state.metrics, app.state.encode_pool)
        await engine.start()
        app.state.engine = engine
        del repo
        seconds, frozen = settle()  # before ready: the one long collection no request waits for
        logger.info("garbage collected in %.2f s; %d long-lived objects frozen", seconds, frozen)
        watcher: asyncio.Task[None] | None = None
        if settings.poll_seconds > 0:
            app.state.watcher = ModelWatcher(engine, settings)
            watcher = asyncio.get_running_loop().create_task(app.state.watcher.run())
        # A SIGTERM during start-up has already begun the drain: stay not ready.
        app.state.ready = not app.state.draining
        served = ", ".join(f"{m.name}/{m.version}" for m in engine.repository.all())
        logger.info("ready: serving %s", served)
        try:
            yield
        finally:
            # Not ready first, so that load balancers stop sending while the queues drain.
            app.state.ready = False
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await engine.stop()  # cancels the unloads still waiting, stops every batcher
            app.state.codec_pool.shutdown(wait=True)
            app.state.encode_pool.shutdown(wait=True)

    extra: dict[str, Any] = {}
    if "telemetry" in inspect.signature(FastAPI).parameters:
        # FastAPI's OpenTelemetry hooks look up three providers (and os.environ) per request;
        # the service exports Prometheus metrics instead.
        extra["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        title="GAN serving",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by service.openapi with local assets
        redoc_url=None,
        **extra,
    )
    app.state.settings = settings
    app.state.ready = False
    app.state.draining = False
    app.state.engine = None
    app.state.watcher = None
    app.state.metrics = Metrics()
    # Bytes, compared with hmac.compare_digest; the settings keep them as SecretStr.
    app.state.api_keys = [key.get_secret_value().encode() for key in settings.api_keys]
    install_handlers(app)
    # Every API route refuses an unknown query parameter with a 422 that names it (documented);
    # operations take none. API keys are checked by the ApiKeys middleware, before the body.
    app.include_router(
        router, dependencies=[Depends(known_query_only)], responses={422: ERRORS[422]}
    )
    for api_router in (model_router, walk_router, completion_router):
        app.include_router(api_router, dependencies=[Depends(known_query_only)])
    app.include_router(playground_router)
    install_openapi(app, settings)
    install_docs(app)
    # Innermost: the plain POST /generate goes straight to its route function (see the module).
    app.add_middleware(GenerateShortcut, route=route_of(model_router, "POST", "/generate"))
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s
    )
    app.add_middleware(
        ApiKeys,
        keys=app.state.api_keys,
        routes=[*model_router.routes, *walk_router.routes, *completion_router.routes],
    )
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    app.add_middleware(RequestLog)
    return app


def create_app_from_env() -> FastAPI:
    """Build the app from ``GAN_*`` environment variables (for ``uvicorn --factory``)."""
    return create_app(Settings())
