"""Errors of the protocol adapters' routes in the protocols' own shape: ``{"error": "..."}``.

Usage::

    router = APIRouter(route_class=ProtocolRoute)   # every route of the router answers so

The Open Inference Protocol v2 and TensorFlow Serving's REST API both answer an error as a JSON
object whose ``error`` is the message (tritonclient raises it as its exception's text). A route of
such a router turns the service's errors (:class:`~service.errors.ServiceError`, FastAPI's
validation errors, the contract's refusals) into that shape, keeping the status and headers
(``Retry-After``) except that a request that breaks a rule (the service's 422) is a 400, the
protocols' status for an invalid argument. The native routes keep their own shape. Answers the
HTTP layer gives before any route runs (401 for a missing key, 413 for a body over the limit, 408)
keep the service's shape, whose ``error`` is a string as well.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from gan_contract.errors import ContractError
from service.errors import ServiceError, validation_detail


class ProtocolError(BaseModel):
    """An error of a protocol route: the message, and what to fix."""

    error: str = Field(description="What went wrong and what to fix.")


PROTOCOL_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProtocolError, "description": text}
    for code, text in {
        400: "invalid request: a tensor, shape, datatype or byte count the message names",
        401: "missing or invalid API key (when GAN_API_KEYS is set)",
        404: "unknown model, version or signature",
        408: "the request body arrived too slowly",
        413: "request body over the limit",
        415: "unsupported media type or content encoding",
        503: "queue full or not ready (Retry-After says when to retry)",
        504: "deadline passed while queued",
    }.items()
}


def protocol_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The protocols' error answer; a 422 of the service is their 400 (invalid argument)."""
    return JSONResponse({"error": message}, 400 if status == 422 else status, headers=headers)


def protocol_answer(exc: Exception) -> Response | None:
    """The protocols' answer to an error a route raised, or None for an unexpected one (which
    then reaches the app's server error handling, a 500)."""
    if isinstance(exc, ServiceError):
        return protocol_error(exc.status_code, exc.message, exc.headers)
    if isinstance(exc, RequestValidationError):
        return protocol_error(400, validation_detail(list(exc.errors()), []))
    if isinstance(exc, ContractError):
        return protocol_error(400, str(exc))
    return None


class ProtocolRoute(APIRoute):
    """A route whose errors are answered as ``{"error": "..."}`` (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                response = protocol_answer(exc)
                if response is None:
                    raise
                return response

        return answer
