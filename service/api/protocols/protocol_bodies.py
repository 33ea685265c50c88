"""Request bodies of the protocol adapters: the media types each takes, and compressed bodies.

Usage (in a protocol route)::

    headers = body_headers(request.scope["headers"])
    encoding = check_headers(headers)                         # v2: 415 unless taken
    body = inflate(body, encoding, settings.max_body_bytes)   # when encoding is not identity
    body = await read_body(request, TF_MEDIA_TYPES)           # TF Serving: JSON, uncompressed

The protocols' clients send other headers than the native API's: tritonclient sends no
``Content-Type`` at all (JSON, or the binary tensor extension when
``Inference-Header-Content-Length`` is set), and may compress the body (``Content-Encoding:
gzip`` or ``deflate``); TF Serving's documented ``curl -d`` sends
``application/x-www-form-urlencoded`` for what is JSON. Each route lists what it takes, and
anything else is a 415. A compressed body is inflated up to ``GAN_MAX_BODY_BYTES`` and no further
(413 past it), so that a small compressed body cannot become a large one in memory.
"""

from __future__ import annotations

import zlib

from fastapi import Request

from service.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType

JSON_TYPES = ("application/json",)
V2_MEDIA_TYPES = ("", *JSON_TYPES, "application/octet-stream")
# TF Serving reads the body as JSON whatever it is declared as; curl -d declares a form.
TF_MEDIA_TYPES = ("", *JSON_TYPES, "application/x-www-form-urlencoded")
# zlib's wbits for each Content-Encoding: gzip's header, and zlib's (HTTP's "deflate").
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def body_headers(scope_headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The headers that say how to read a body (``content-type``, ``content-encoding``,
    ``inference-header-content-length``), found in one pass over the request's headers."""
    return {name: value for name, value in scope_headers if name in _BODY_HEADERS}


_BODY_HEADERS = frozenset(
    (b"content-type", b"content-encoding", b"inference-header-content-length")
)


def check_headers(
    headers: dict[bytes, bytes],
    media_types: tuple[str, ...] = V2_MEDIA_TYPES,
    compressed: bool = True,
) -> str:
    """The body's ``Content-Encoding`` (``identity``, or with ``compressed`` ``gzip`` or
    ``deflate``) once its media type is one of ``media_types`` ("" for none; JSON's ``+json``
    types count as JSON). 415 otherwise. ``headers``: :func:`body_headers` of the request."""
    content_type = headers.get(b"content-type", b"").decode("latin-1")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in media_types and not (
        media_type.endswith("+json") and "application/json" in media_types
    ):
        accepted = ", ".join(t for t in media_types if t) + (
            " or none" if "" in media_types else ""
        )
        raise UnsupportedMediaType(f"unsupported Content-Type {media_type!r}: send {accepted}")
    encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
    if encoding != "identity" and not (compressed and encoding in _WBITS):
        offered = "gzip, deflate or none" if compressed else "none"
        raise UnsupportedMediaType(f"unsupported Content-Encoding {encoding!r}: send {offered}")
    return encoding


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decompressed (``gzip`` or ``deflate``), at most ``limit`` bytes of it: 413
    past the limit, 400 for data that is not what it says."""
    inflater = zlib.decompressobj(_WBITS[encoding])
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise InvalidRequest(f"the body is not valid {encoding} data: {error}") from None
    if len(data) > limit:
        raise PayloadTooLarge(
            f"the {encoding} body inflates past {limit} bytes (GAN_MAX_BODY_BYTES)"
        )
    if not inflater.eof:
        raise InvalidRequest(f"the {encoding} body is truncated")
    return data


async def read_body(request: Request, media_types: tuple[str, ...]) -> bytes:
    """The body of a request whose media type is one of ``media_types``, not compressed."""
    check_headers(body_headers(request.scope["headers"]), media_types, compressed=False)
    return await request.body()
