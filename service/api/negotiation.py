"""The format of a generated image: the request's ``format`` field, else its ``Accept`` header.

Usage (``GET`` and ``POST /generate``)::

    encoding = choose_encoding(
        body.format, body.quality, body.compress_level, request.headers.get("accept"), settings
    )
    encoding.media_type        # "image/webp"; a 406 was raised if no format could be given

The rules:

- A ``format`` given in the request (``png``, ``webp`` or ``jpeg``) wins, whatever ``Accept``
  says, as every field the request names explicitly does (``response=json`` answers JSON).
- Otherwise ``Accept`` chooses among ``image/png``, ``image/webp`` and ``image/jpeg`` by its
  q-values (RFC 9110, 12.5.1: the most specific range that matches a type gives its q;
  ``image/*`` and ``*/*`` match them all); equal q-values go to the service's order, PNG
  (lossless) first. No ``Accept``, or one that allows any image: PNG.
- An ``Accept`` that allows none of the three (``text/html``, ``image/gif``, ``image/png;q=0``)
  is a 406 that names the types the service can send.

``quality`` (1-100, WebP and JPEG; default ``GAN_IMAGE_QUALITY``) and ``compress_level`` (0-9,
PNG; default ``GAN_PNG_COMPRESS_LEVEL``) are each used by their formats only.
"""

from __future__ import annotations

from service.errors import NotAcceptable
from service.imaging import MEDIA_TYPES, Encoding, Format
from service.settings import Settings

# Media ranges of one Accept header at most: a longer header is cut (and parsed no further),
# so that a hostile one costs bounded work.
MAX_RANGES = 64


def accept_ranges(header: str | None) -> list[tuple[str, float]]:
    """The (media range, q) pairs of an ``Accept`` header, lower case; malformed q-values read
    as 1 (as if absent), out-of-range ones are clamped to [0, 1]."""
    ranges: list[tuple[str, float]] = []
    for item in (header or "").split(",")[:MAX_RANGES]:
        kind, *params = (part.strip() for part in item.split(";"))
        if not kind:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 1.0
        ranges.append((kind.lower(), q))
    return ranges


def acceptability(media_type: str, ranges: list[tuple[str, float]]) -> float:
    """The q-value ``ranges`` give ``media_type``: that of the most specific matching range
    (``type/subtype``, then ``type/*``, then ``*/*``), 0 when none matches."""
    family = media_type.split("/", 1)[0] + "/*"
    for candidate in (media_type, family, "*/*"):
        values = [q for kind, q in ranges if kind == candidate]
        if values:
            return max(values)
    return 0.0


def negotiated_format(header: str | None) -> Format:
    """The image format ``Accept`` prefers (PNG without a header); 406 when it allows none."""
    ranges = accept_ranges(header)
    if not ranges:
        return "png"
    best: Format | None = None
    best_q = 0.0
    for name, media_type in MEDIA_TYPES.items():  # the service's order: ties go to the first
        q = acceptability(media_type, ranges)
        if q > best_q:
            best, best_q = name, q  # type: ignore[assignment]
    if best is None:
        raise NotAcceptable(
            f"Accept: {header[:200] if header else ''} allows none of the image types this "
            f"answer can have ({', '.join(MEDIA_TYPES.values())}); accept one of them, or give "
            "format in the request"
        )
    return best


def choose_encoding(
    format: Format | None,
    quality: int | None,
    compress_level: int | None,
    accept: str | None,
    settings: Settings,
) -> Encoding:
    """The encoding of a generated image: ``format`` or the one ``accept`` prefers, at the
    request's ``quality`` and ``compress_level`` or the settings' defaults."""
    chosen = format if format is not None else negotiated_format(accept)
    return Encoding(
        chosen,
        level=settings.png_compress_level if compress_level is None else compress_level,
        quality=settings.image_quality if quality is None else quality,
    )
