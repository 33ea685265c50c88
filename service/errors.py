"""Errors the service answers with, and the handlers that turn them into JSON.

Raise a :class:`ServiceError` subclass anywhere below a route; :func:`install_handlers` makes
every one of them (and FastAPI's validation errors) a JSON body ``{"error": ..., "detail": ...}``
with the right status code, so that a client mistake is never a 500. A 405 names every method
of the path in ``Allow`` (HTTP requires it) and in its detail, and a validation error names each
field or query parameter it refused, with the canonical name when a known alias was used
(``NAME_HINTS``).
"""

from __future__ import annotations

import typing
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from gan_contract.errors import ContractError

# Names a user may bring from StyleGAN's scripts or elsewhere, and what this API calls them.
NAME_HINTS = {
    "psi": "truncation_psi",
    "trunc": "truncation_psi",
    "truncation": "truncation_psi",
    "class": "class_label",
    "class_idx": "class_label",
    "label": "class_label",
    "labels": "class_label",
    "z": "noise",
    "latents": "noise",
}


def unknown_name_message(name: str, where: str, known: list[str], owner: str = "") -> str:
    """``unknown query parameter 'clas' (GET /generate takes: ...)``, or the canonical name
    when ``name`` is a known alias of one of ``known``."""
    text = f"unknown {where} {name!r}"
    if name in NAME_HINTS and NAME_HINTS[name] in known:
        return f"{text}; this API calls it {NAME_HINTS[name]!r}"
    if name == "seeds" and "seed" in known:
        return f"{text}; {owner or 'this route'} makes one image from 'seed' (POST takes seeds)"
    if not known:
        return f"{text}; {owner or 'this route'} takes none"
    return f"{text} ({owner + ' takes' if owner else 'known'}: {', '.join(known)})"


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


class NotAcceptable(ServiceError):
    """406: the request's ``Accept`` header allows none of the types the answer can have."""

    status_code = 406
    error = "not_acceptable"


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


def _problem(item: dict[str, Any]) -> str:
    """One validation error as ``field: message``, the field named as the client wrote it."""
    loc = [str(part) for part in item.get("loc", ())]
    message = str(item.get("msg", "")).removeprefix("Value error, ")
    # Union members appear in pydantic's locations as type names ("int", "list[int]", ...):
    # keep only the names and indices the client wrote.
    where = ".".join(
        part
        for part in loc
        if part not in ("body", "query", "int", "str", "float")
        and not any(char in part for char in "[(`")
    )
    if item.get("type") == "extra_forbidden" and loc:
        known = list(item.get("known", []))
        return unknown_name_message(loc[-1], "field", known)
    return f"{where}: {message}" if where else message


def validation_detail(errors: list[Any], known: list[str]) -> str:
    """The detail of a 422 for pydantic's ``errors()``: each problem as ``field: message``, an
    unknown field named with the hint of :func:`unknown_name_message` (``known``: the fields)."""
    return "; ".join(_problem({**item, "known": known}) for item in errors)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    malformed = _malformed_json(exc)
    if malformed is not None:  # not a request that breaks the rules: no request at all
        return error_response(400, "bad_request", malformed)
    errors = [
        {key: value for key, value in item.items() if key in ("loc", "msg", "type")}
        for item in exc.errors()
    ]
    detail = validation_detail(errors, _body_fields(request))
    body = {"error": "invalid_request", "detail": detail, "errors": errors}
    return JSONResponse(jsonable_encoder(body), 422)


def _body_fields(request: Request) -> list[str]:
    """The JSON body fields of the matched route (for the hint on an unknown field)."""
    field = getattr(request.scope.get("route"), "body_field", None)
    body = getattr(getattr(field, "field_info", None), "annotation", None)
    # A body of several closed shapes (seeds or noise) is a Union of models: all their fields.
    members = [arg for arg in typing.get_args(body) if hasattr(arg, "model_fields")] or [body]
    names: dict[str, None] = {}
    for member in members:
        names.update(dict.fromkeys(getattr(member, "model_fields", None) or {}))
    return list(names)


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on this request's path."""
    routes = request.app.router.routes
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    detail = str(exc.detail)
    if exc.status_code == 405:
        # Starlette's Allow names the methods of one route; a path served by several routes
        # (GET and POST /generate) must list them all. The detail says it too: a client that
        # shows only the body still learns what to send.
        allowed = ", ".join(allowed_methods(request))
        headers["Allow"] = allowed
        detail = f"method {request.method} is not allowed on {request.url.path}; allowed: {allowed}"
    names = {
        400: "bad_request",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
    }
    return error_response(
        exc.status_code,
        names.get(exc.status_code, "http_error"),
        detail,
        headers,
    )


def install_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(ContractError, _contract_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
