"""The media type of a request body, read one way by every route and by the shortcut.

Usage::

    kind = media_type(request.headers.get("content-type"))   # "application/json"; "" when none
    if is_json(kind): ...          # application/json or application/*+json
    elif is_raw_image(kind): ...   # image/* or application/octet-stream: one image file
    elif kind == MULTIPART: ...

The rules, the same on every route:

- JSON is ``application/json`` or ``application/<anything>+json``: exactly the types FastAPI
  parses as JSON, so that a route's own check and FastAPI's parsing never disagree (a
  ``text/x+json`` body is neither).
- A raw image body is ``image/*`` (the image's own type) or ``application/octet-stream``, the
  generic type of bytes of unknown kind (the playground sends it for a dropped file the browser
  cannot name): the bytes are read as an image whatever the header says, and bytes that are no
  image are a 415 from the decoder.
"""

from __future__ import annotations

MULTIPART = "multipart/form-data"
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"


def media_type(content_type: str | bytes | None) -> str:
    """A ``Content-Type`` header's media type, without its parameters, in lower case; ``""``
    when there is none. Takes the header as text or as the raw bytes of an ASGI scope."""
    if content_type is None:
        return ""
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")  # HTTP header bytes (RFC 9110, 5.5)
    return content_type.split(";", 1)[0].strip().lower()


def is_json(kind: str) -> bool:
    """True for a JSON media type (``application/json``, ``application/*+json``)."""
    return kind == JSON or (kind.startswith("application/") and kind.endswith("+json"))


def is_raw_image(kind: str) -> bool:
    """True for a body that is one image file (``image/*``, ``application/octet-stream``)."""
    return kind.startswith("image/") or kind == OCTET_STREAM
