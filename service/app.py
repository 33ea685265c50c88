"""The FastAPI application factory.

Usage::

    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(model_dir="models"))

Nothing happens at import time: the app's lifespan does the work when the server starts.
``create_app_from_env`` is the zero-argument factory for ``uvicorn --factory``.
"""

from __future__ import annotations

from fastapi import FastAPI

from service.routes import router
from service.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """Build the app for ``settings``."""
    app = FastAPI(
        title="GAN serving",
        version="0.1.0",
        description="Generate images from trained GAN generators and score images with their "
        "discriminators.",
    )
    app.state.settings = settings
    app.include_router(router)
    return app


def create_app_from_env() -> FastAPI:
    """Build the app from ``GAN_*`` environment variables (for ``uvicorn --factory``)."""
    return create_app(Settings())
