"""API keys: a FastAPI dependency that answers 401 unless the request carries a configured key.

Usage::

    app.include_router(model_router, dependencies=[Depends(require_api_key)])

The keys come from ``GAN_API_KEYS`` (comma-separated, several so that keys can be rotated
without downtime). A request names its key as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``.
Every configured key is compared in constant time (``hmac.compare_digest``), and all of them are
compared whatever the outcome, so the answer's timing tells nothing about which prefix matched.
With no key configured the dependency lets every request through. Keys are never logged: the
settings hold them as ``SecretStr`` and the request log records no header.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from service.errors import ServiceError


class Unauthorized(ServiceError):
    status_code = 401
    error = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, {"WWW-Authenticate": 'Bearer realm="gan-serving"'})


def presented_key(request: Request) -> str | None:
    """The key a request carries (``Authorization: Bearer`` first, then ``X-API-Key``)."""
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def key_matches(candidate: str, keys: list[bytes]) -> bool:
    """True when ``candidate`` is one of ``keys``; compares with every key, in constant time."""
    given = candidate.encode("utf-8", "surrogateescape")
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key)
    return found


async def require_api_key(request: Request) -> None:
    """401 unless the request carries one of the configured keys (no keys: always allowed)."""
    keys: list[bytes] = request.app.state.api_keys
    if not keys:
        return
    candidate = presented_key(request)
    if candidate is None:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    if not key_matches(candidate, keys):
        raise Unauthorized("the API key is not valid")
