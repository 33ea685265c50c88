"""The KServe manifest (deploy/k8s/kserve/): an InferenceService on the Open Inference Protocol
v2, served by the service's runtime, whose port and probes are those the service answers on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.cli import build_parser
from tests.conftest import REPO_ROOT
from tests.service.conftest import make_settings

yaml = pytest.importorskip("yaml")

MANIFEST = REPO_ROOT / "deploy" / "k8s" / "kserve" / "inferenceservice.yaml"


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    """The manifest's resources by kind."""
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}


def _container(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    [container] = documents["ServingRuntime"]["spec"]["containers"]
    return container


def test_the_inference_service_speaks_v2_through_the_services_runtime(documents) -> None:
    assert set(documents) == {"ServingRuntime", "InferenceService"}
    runtime, service = documents["ServingRuntime"], documents["InferenceService"]
    model = service["spec"]["predictor"]["model"]
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert model["protocolVersion"] == "v2" and "v2" in runtime["spec"]["protocolVersions"]
    assert model["runtime"] == runtime["metadata"]["name"]
    formats = [f["name"] for f in runtime["spec"]["supportedModelFormats"]]
    assert model["modelFormat"]["name"] in formats


def test_the_container_listens_where_it_says_and_probes_that_port(documents) -> None:
    container = _container(documents)
    assert container["name"] == "kserve-container"  # the container KServe routes to
    assert container["command"] == ["gan-serve"]
    args = build_parser().parse_args(container["args"])  # the documented CLI takes them
    [port] = container["ports"]
    assert port["containerPort"] == args.port == 8080  # KServe's port
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == args.port


def test_the_probes_paths_answer_without_an_api_key(documents, model_dir: Path) -> None:
    container = _container(documents)
    paths = {container[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")}
    assert paths == {"/v2/health/ready", "/v2/health/live"}
    app = create_app(make_settings(model_dir, api_keys="k", warmup=False))
    with TestClient(app) as client:
        for path in paths:  # kubelet sends no key
            assert client.get(path).status_code == 200, path
        assert client.get("/v2").status_code == 401  # the rest of the protocol needs one
