"""The container's health check and the Kubernetes manifests' probes leave a replica the time
its warm-up takes: gan-serve listens only once every model is warmed up (tens of seconds for a
128x128 model on two CPU cores), and a liveness probe that counts before then restarts the
container for ever."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

yaml = pytest.importorskip("yaml")

# The start-up time every deployment file allows: a 256x256 model's warm-up on a small CPU host.
START_UP_BUDGET_S = 300
MANIFESTS = [
    REPO_ROOT / "deploy" / "k8s" / "deployment.yaml",
    REPO_ROOT / "deploy" / "k8s" / "kserve" / "inferenceservice.yaml",
]


def serving_containers(manifest: Path) -> list[dict[str, Any]]:
    """The containers that run gan-serve: a Deployment's, or a KServe ServingRuntime's."""
    found = []
    for doc in yaml.safe_load_all(manifest.read_text()):
        spec = doc["spec"]
        if doc["kind"] == "Deployment":
            found += spec["template"]["spec"]["containers"]
        elif doc["kind"] == "ServingRuntime":
            found += spec["containers"]
    return found


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_a_long_warm_up_is_not_cut_short_by_the_liveness_probe(manifest: Path) -> None:
    containers = serving_containers(manifest)
    assert containers, f"{manifest}: no container runs gan-serve"
    for container in containers:
        startup, liveness = container.get("startupProbe"), container["livenessProbe"]
        # Without a startup probe, liveness fails from its first probe while the models warm
        # up, and kubelet restarts the container after initialDelay + period x threshold.
        assert startup is not None, f"{manifest}: liveness would count during the warm-up"
        assert startup["periodSeconds"] * startup["failureThreshold"] >= START_UP_BUDGET_S
        assert startup["httpGet"] == liveness["httpGet"]  # the same route, port and no key


def test_the_images_health_check_allows_the_same_start_up_time() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    [period] = re.findall(r"HEALTHCHECK .*--start-period=(\d+)s", dockerfile)
    assert int(period) >= START_UP_BUDGET_S
