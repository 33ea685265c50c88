"""Fixtures of the integration tests: one real ``gan-serve`` shared by the tests that only send
requests (fuzzing, hostile clients), so that the session pays its start-up once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.processes import ServiceProcess

BODY_TIMEOUT_S = 2.0


@pytest.fixture(scope="session")
def service(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """``gan-serve`` on the session's models; a body must arrive within ``BODY_TIMEOUT_S``."""
    log = tmp_path_factory.mktemp("service") / "replica.log"
    env = {"GAN_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S), "GAN_DRAIN_SECONDS": "0"}
    with ServiceProcess(model_dir, env=env).start(log_path=log) as replica:
        yield replica


@pytest.fixture(scope="session")
def bundled_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """``gan-serve`` on the repository's ``models/``, as ``make run`` serves it (the bundled
    MNIST model: completion works out of the box)."""
    from tests.integration.processes import REPO_ROOT

    log = tmp_path_factory.mktemp("bundled-service") / "replica.log"
    env = {"GAN_DRAIN_SECONDS": "0"}
    with ServiceProcess(REPO_ROOT / "models", env=env).start(log_path=log) as replica:
        yield replica
