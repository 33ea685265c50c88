"""How a server learns that the app could not start, without a traceback in the log.

Usage (``gan-serve`` does this)::

    config = uvicorn.Config(StartupReport(app), ...)
    ...                                  # uvicorn exits with status 3 if the lifespan fails
    if app.state.startup_error: fail(app.state.startup_error)   # one line, exit status 2

The app's lifespan reports why it cannot start in one line (``app.state.startup_error``: a model
that does not load or warm up) and raises. Starlette then hands the server the whole traceback
as the failure's message, and uvicorn logs it; for a failure the app has already reported, this
wrapper sends the failure without it. Every other message, and every HTTP request, passes
through untouched.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class StartupReport:
    """ASGI wrapper of ``app`` (whose ``state`` holds ``startup_error``): see the module."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_reported(message: Message) -> None:
            reported = getattr(self.state, "startup_error", None) is not None
            if message["type"] == "lifespan.startup.failed" and reported:
                message = {**message, "message": ""}  # logged already, in one line
            await send(message)

        await self.app(scope, receive, send_reported)
