"""Schemathesis hooks: how to generate the API's custom string formats.

``schemathesis.toml`` at the repository's top loads this file, so that a plain
``schemathesis run http://127.0.0.1:8000/openapi.json --checks all`` run from there (and the
fuzz test in this folder) generates valid values of the formats the OpenAPI document names:

- ``seed-range``: seeds and ascending ranges such as ``0-7,12`` (see ``SEED_RANGE_TEXT`` in
  service/schemas.py). JSON Schema can state the syntax (a ``pattern``) but not that each range
  ascends or how many seeds a string names in all; the values here do both, with at most 16
  seeds, under any images-per-request limit a test sets.
"""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

MAX_SEED = 2**32 - 1


@st.composite
def _seed_ranges(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        low = draw(st.integers(0, MAX_SEED - 3))
        span = draw(st.integers(0, 3))
        parts.append(str(low) if span == 0 else f"{low}-{low + span}")
    return ",".join(parts)


schemathesis.openapi.format("seed-range", _seed_ranges())
