"""The FastAPI application factory.

Usage::

    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(model_dir="models"))

Nothing happens at import time: the app's lifespan loads every model (unless a loaded
:class:`~service.repository.repository.ModelRepository` is passed in), warms it up, starts the
batchers, starts the model watcher unless ``GAN_POLL_SECONDS`` is 0
(:mod:`service.engine.reload`), and
only then sets ``app.state.ready`` so that /readyz answers 200. On shutdown it clears the flag
first, then stops the watcher and the batchers. A batch queue that stops after an internal
error (it refuses every request from then on) makes ``gan-serve`` stop the process with exit
status 1, so that it is restarted (``app.state.stop_process``, installed by
:mod:`service.server.draining`). ``create_app_from_env`` is the zero-argument factory for
``uvicorn --factory`` (without the SIGTERM drain and that stop of ``gan-serve``).

Middleware (``service/http/``, one concern a file), outermost first:
:class:`~service.http.request_log.RequestLog` (request id, one JSON line per request),
:class:`~service.http.request_metrics.RequestMetrics`, :class:`~service.http.api_keys.ApiKeys`
(401 from the headers alone, before any body is read, when ``GAN_API_KEYS`` is set: every route
but those :mod:`service.api.registry` declares open), :class:`~service.http.body_limit.BodyLimit`
(413 over the size limit, 408 for a body that takes longer than ``GAN_BODY_TIMEOUT_S``), and
:class:`~service.api.shortcut.GenerateShortcut` (a plain ``POST /generate`` straight to its route
function, past FastAPI's routing and dependency resolution) and
:class:`~service.api.protocols.infer_shortcut.InferShortcut` (the same for the Open Inference
Protocol's
``/infer``).

Two thread pools do image work, so that neither starves the other: ``app.state.encode_pool``
encodes the generated PNGs (each batcher keeps at most a few batches waiting for it), and
``app.state.codec_pool`` decodes /score uploads and encodes grids. A third,
``app.state.animation_pool`` (:mod:`service.api.animation_pool`), encodes /animate's walks in
one thread and admits at most ``GAN_MAX_CONCURRENT_WALKS`` walks at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from service.api import generate
from service.api.animation_pool import AnimationPool
from service.api.openapi import install_openapi
from service.api.protocols.infer_shortcut import InferShortcut, infer_routes
from service.api.registry import include_dependencies, install_routers, protected_routes
from service.api.shortcut import GenerateShortcut, route_of
from service.engine.engine import InferenceEngine
from service.engine.heap import settle
from service.engine.reload import ModelWatcher
from service.engine.warmup import WarmUpError, summary
from service.errors import install_handlers
from service.http.api_keys import ApiKeys
from service.http.body_limit import BodyLimit
from service.http.request_log import RequestLog
from service.http.request_metrics import RequestMetrics
from service.metrics import Metrics
from service.repository.policy import VersionPolicies
from service.repository.repository import ModelLoadError, ModelRepository
from service.repository.threads import configure_threads
from service.settings import Settings

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
        app.state.animation_pool = AnimationPool(
            settings.max_concurrent_walks, settings.retry_after_s, app.state.metrics
        )
        nonlocal repository
        # The engine owns the repository from here on; a reference kept in this frame or the
        # closure would keep every replaced version's model in memory after a hot reload.
        repo, repository = repository, None
        try:
            engine = await _start(app, settings, repo)
        except BaseException:
            app.state.codec_pool.shutdown(wait=True)
            app.state.encode_pool.shutdown(wait=True)
            raise
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
            app.state.animation_pool.shutdown()

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
        docs_url=None,  # served by service.api.openapi with local assets
        redoc_url=None,
        **extra,
    )
    app.state.settings = settings
    app.state.ready = False
    app.state.draining = False
    app.state.engine = None
    app.state.watcher = None
    app.state.startup_error = None  # why the lifespan could not start, in one line
    # stop_process(reason): stop this process because it cannot serve; set by the server that
    # runs the app (gan-serve's DrainingServer), None in tests and under plain uvicorn.
    app.state.stop_process = None
    app.state.metrics = Metrics()
    # Bytes, compared with hmac.compare_digest; the settings keep them as SecretStr.
    app.state.api_keys = [key.get_secret_value().encode() for key in settings.api_keys]
    install_handlers(app)
    # Every router of service.api.registry; a route not declared open there needs a key.
    app.state.open_routes = install_routers(app)
    install_openapi(app, settings)
    # Innermost: the plain POST /generate goes straight to its route function (see the module).
    # Built here, not lazily, so that a route it cannot stand in for fails the app's build.
    route = route_of(generate.router, "POST", "/generate")
    included_with = include_dependencies(generate.router)
    GenerateShortcut(app.router, route, included_with)
    app.add_middleware(GenerateShortcut, route=route, included_with=included_with)
    app.add_middleware(InferShortcut, routes=infer_routes())  # the same for v2's /infer
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s
    )
    app.add_middleware(ApiKeys, keys=app.state.api_keys, routes=protected_routes())
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    app.add_middleware(RequestLog)
    return app


async def _start(
    app: FastAPI, settings: Settings, repository: ModelRepository | None
) -> InferenceEngine:
    """Load the models (unless ``repository`` holds them), warm them up and start their
    batchers. A failure is logged in one line, kept as ``app.state.startup_error`` (``gan-serve``
    exits with it, status 2) and raised, with no batcher left running."""
    loop = asyncio.get_running_loop()
    engine: InferenceEngine | None = None
    try:
        if repository is None:
            await loop.run_in_executor(None, configure_threads, settings)
            policies = VersionPolicies.parse(settings.version_policy, settings.model_versions)
            repository = await loop.run_in_executor(
                None,
                ModelRepository.load,
                settings.model_dir,
                policies,
                settings.default_model,
            )
        engine = InferenceEngine(
            repository,
            settings,
            app.state.metrics,
            app.state.encode_pool,
            on_broken=functools.partial(_cannot_serve, app),
        )
        await engine.start()
        return engine
    except BaseException as exc:  # a failure, or a Ctrl-C or cancellation meanwhile
        if engine is not None:
            await engine.stop()  # the models warmed up before the one that failed
        if isinstance(exc, Exception):
            # The model errors say what and where in one sentence; anything else gets its type.
            known = isinstance(exc, (ModelLoadError, WarmUpError))
            app.state.startup_error = str(exc) if known else summary(exc)
            logger.error("cannot start: %s", app.state.startup_error)
        raise


def _cannot_serve(app: FastAPI, what: str) -> None:
    """The batch queue ``what`` stopped for good: have the server stop this process (it exits
    with status 1, to be restarted), or, with no such server, leave it to /healthz (503)."""
    reason = f"the batch queue of {what} stopped after an internal error"
    stop = app.state.stop_process
    if stop is None:
        logger.error("%s; /healthz answers 503 until the process is restarted", reason)
        return
    logger.error("%s: stopping this process (exit status 1) so that it is restarted", reason)
    stop(reason)


def create_app_from_env() -> FastAPI:
    """Build the app from ``GAN_*`` environment variables (for ``uvicorn --factory``)."""
    return create_app(Settings())
