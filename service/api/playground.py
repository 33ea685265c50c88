"""The playground page at ``/``: static files shipped in the package (service/static/).

Its ``router`` is listed in :mod:`service.api.registry` (open: the page needs no key).

The page is plain HTML, CSS and JavaScript (no build step, nothing from a CDN) and talks to the
service only through its public API, as any client would: /v1/models for the models and their
cards, /generate, /animate, /score and, when a model lists them, /encode and /complete. It needs
no API key to load; when the service asks for one (a 401 from /v1/models) the page shows a key
field and sends the key with every request.

Only the files named in ``FILES`` are served (no path from the client reaches the file system),
each read once and kept in memory.
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from service.errors import NotFound

router = APIRouter()

FILES: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "canvas.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# The page may change with the service: browsers revalidate, and the ETag-less answer is small.
CACHE = "no-cache"
# The page loads its scripts, styles and images from the service itself (and blob: URLs of the
# answers it receives); nothing else.
POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


@functools.cache
def _read(name: str) -> bytes:
    return resources.files("service").joinpath("static", name).read_bytes()


def _file(name: str) -> Response:
    if name not in FILES:
        raise NotFound(f"no playground file {name!r}")
    headers = {
        "Cache-Control": CACHE,
        "Content-Security-Policy": POLICY,
        "X-Content-Type-Options": "nosniff",
    }
    return Response(_read(name), media_type=FILES[name], headers=headers)


@router.get("/", include_in_schema=False)
async def page() -> Response:
    """The playground page."""
    return _file("index.html")


@router.get("/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    """A script or style sheet of the playground page."""
    return _file(name)
