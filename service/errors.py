"""Errors the service answers with, and the handlers that turn them into JSON.

Raise a :class:`ServiceError` subclass anywhere below a route; :func:`install_handlers` makes
every one of them (and FastAPI's validation errors) a JSON body ``{"error": ..., "detail": ...}``
with the right status code, so that a client mistake is never a 500.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gan_contract.errors import ContractError


class ServiceError(Exception):
    """An error with an HTTP status and a message that tells the client what to do."""

    status_code = 500
    error = "internal_error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ServiceError):
    """400: the body cannot be parsed at all (malformed JSON), as opposed to a 422 request that
    parses but breaks a rule."""

    status_code = 400
    error = "bad_request"


class InvalidRequest(ServiceError):
    status_code = 422
    error = "invalid_request"


class NotFound(ServiceError):
    status_code = 404
    error = "not_found"


class PayloadTooLarge(ServiceError):
    status_code = 413
    error = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    error = "unsupported_media_type"


class Unavailable(ServiceError):
    """503: the queue is full, the service is not ready or it is shutting down."""

    status_code = 503
    error = "unavailable"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, {"Retry-After": str(retry_after_s)})


class DeadlineExceeded(ServiceError):
    status_code = 504
    error = "deadline_exceeded"


class ModelError(ServiceError):
    """500: the model failed or broke its contract (a server fault, not the client's)."""

    status_code = 500
    error = "model_error"


def error_response(
    status_code: int, error: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON body every error of the service has."""
    return JSONResponse({"error": error, "detail": message}, status_code, headers=headers)


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(exc.status_code, exc.error, exc.message, exc.headers)


async def _contract_error(_: Request, exc: Exception) -> JSONResponse:
    # Routes turn the contract's refusals into the right ServiceError; any they miss is still
    # the client's input breaking a convention (a seed string, an image), never a 500.
    return error_response(422, InvalidRequest.error, str(exc))


def _malformed_json(exc: RequestValidationError) -> str | None:
    """What is wrong with a body that is not JSON at all (a 400), or None for a 422 case."""
    for item in exc.errors():
        if item.get("type") != "json_invalid":
            continue
        loc = item.get("loc", ())
        position = loc[-1] if loc and isinstance(loc[-1], int) else None
        reason = str((item.get("ctx") or {}).get("error") or item.get("msg", "invalid JSON"))
        body = exc.body if isinstance(exc.body, str) else None
        if position is None or body is None:
            return f"the request body is not valid JSON: {reason}"
        line = body.count("\n", 0, position) + 1
        column = position - (body.rfind("\n", 0, position) + 1) + 1
        return (
            f"the request body is not valid JSON: {reason} at line {line}, column {column} "
            f"(character {position + 1})"
        )
    return None


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    malformed = _malformed_json(exc)
    if malformed is not None:  # not a request that breaks the rules: no request at all
        return error_response(400, "bad_request", malformed)
    errors = [
        {key: value for key, value in item.items() if key in ("loc", "msg", "type")}
        for item in exc.errors()
    ]
    problems = []
    for item in errors:
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        problems.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
    body = {"error": "invalid_request", "detail": "; ".join(problems), "errors": errors}
    return JSONResponse(jsonable_encoder(body), 422)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    names = {
        400: "bad_request",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
    }
    return error_response(
        exc.status_code,
        names.get(exc.status_code, "http_error"),
        str(exc.detail),
        dict(exc.headers or {}),
    )


def install_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(ContractError, _contract_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
