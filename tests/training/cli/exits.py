"""What the tests of the training commands share."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def exit_code(main: Callable[[Sequence[str]], int], argv: list[str]) -> int:
    """``main(argv)``'s exit code, whether it returns it or exits with it."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
