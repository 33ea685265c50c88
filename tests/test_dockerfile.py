"""The serving image copies what serving needs, each once, and none of the training code."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT


def copied_sources() -> list[str]:
    """The sources of every ``COPY`` of the Dockerfile, in order."""
    sources: list[str] = []
    for line in (REPO_ROOT / "Dockerfile").read_text().splitlines():
        found = re.match(r"COPY\s+(?:--\S+\s+)*(.+)\s+\S+$", line.strip())
        if found:
            sources += found.group(1).split()
    return sources


def test_the_image_copies_each_source_once_and_no_training_code() -> None:
    sources = [source.rstrip("/") for source in copied_sources()]
    assert len(sources) == len(set(sources)), sources
    assert {"service", "gan_contract", "models", "pyproject.toml"} <= set(sources)
    assert "training" not in sources
