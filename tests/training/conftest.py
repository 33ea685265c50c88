"""Fixtures shared by the training tests."""

from __future__ import annotations

from collections.abc import Iterator

import keras
import pytest


@pytest.fixture
def restore_policy() -> Iterator[None]:
    """Put the Keras mixed-precision policy back after a test that changes it."""
    previous = keras.mixed_precision.global_policy().name
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
