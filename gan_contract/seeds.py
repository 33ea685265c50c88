"""Seeds: how a seed becomes noise, and how a list of seeds is written.

Usage::

    from gan_contract.seeds import parse_seeds, seeds_to_z

    seeds = parse_seeds("0-7,12,20-23", max_count=64)   # [0, 1, ..., 7, 12, 20, 21, 22, 23]
    z = seeds_to_z(seeds, z_dim=128)                     # float32 [len(seeds), 128]

A seed maps to noise exactly as StyleGAN does:
``numpy.random.RandomState(seed).randn(z_dim).astype("float32")``, seed in ``0..2**32-1``.
A seed string is a comma-separated list of ASCII integers ``N`` and ranges ``N-M`` (N <= M),
spaces allowed around each number. The caller gives the most seeds it accepts; the count is
checked before any range is expanded, so ``"0-4294967295"`` is refused at no cost.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

import numpy as np

from gan_contract.errors import ContractError

MAX_SEED = 2**32 - 1
SEED_CONVENTION = (
    "z = numpy.random.RandomState(seed).randn(z_dim).astype('float32') for seed in 0..2**32-1 "
    "(StyleGAN's convention); truncation multiplies z by psi"
)
# ASCII digits and spaces only (``\d`` would accept other scripts' digits, which int() reads
# too); the service's OpenAPI document states the same rule as a pattern.
_ITEM = re.compile(r" *([0-9]+) *(?:- *([0-9]+) *)?")


def seed_syntax_error(text: str) -> str | None:
    """Why ``text`` is not a seed string (its first bad item), or None when it is one.

    Syntax only: no range is expanded and no count is checked, so it is cheap for any input.
    """
    for item in text.split(","):
        if _ITEM.fullmatch(item) is None:
            return f"{item.strip()!r} is not a seed or a range; write e.g. '0-7,12,20-23'"
    return None


def parse_seeds(text: str, max_count: int) -> list[int]:
    """The seeds of ``text`` (e.g. ``"0-7,12,20-23"``) in order, at most ``max_count`` of them.

    Raises :class:`ContractError` naming the bad item: not a seed or a range, a range that runs
    backwards, a seed above :data:`MAX_SEED`, or more than ``max_count`` seeds in all.
    """
    bounds: list[tuple[int, int]] = []
    total = 0
    syntax = seed_syntax_error(text)
    if syntax is not None:
        raise ContractError(f"seeds: {syntax}")
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        assert match is not None  # checked above
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise ContractError(f"seeds: range {low}-{high} runs backwards; write {high}-{low}")
        if high > MAX_SEED:
            raise ContractError(f"seeds: {high} is out of range; seeds lie in 0..{MAX_SEED}")
        total += high - low + 1
        if total > max_count:
            raise ContractError(
                f"seeds: {text!r} asks for more than {max_count} seeds; ask for fewer"
            )
        bounds.append((low, high))
    return [seed for low, high in bounds for seed in range(low, high + 1)]


_local = threading.local()


def seeds_to_z(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """float32 [len(seeds), z_dim]: one StyleGAN-convention noise vector per seed.

    Re-seeding one ``RandomState`` per thread gives the same numbers as
    ``RandomState(seed).randn`` at a fiftieth of the cost: a new ``RandomState`` first seeds
    itself from OS entropy (about 0.3 ms) before the legacy seeding replaces that state.
    """
    state: np.random.RandomState | None = getattr(_local, "state", None)
    if state is None:
        state = _local.state = np.random.RandomState()
    z = np.empty((len(seeds), z_dim), dtype=np.float32)
    for row, seed in enumerate(seeds):
        if not 0 <= seed <= MAX_SEED:
            raise ContractError(f"seed {seed} is out of range; seeds lie in 0..{MAX_SEED}")
        state.seed(seed)
        z[row] = state.randn(z_dim)
    return z
