"""Real clients against a real ``gan-serve``: tritonclient (the Open Inference Protocol v2, JSON
and binary tensors) and a TF Serving ``:predict`` request, giving the images ``POST /generate``
gives for the same seeds, within the reproducibility promise; and the README's tritonclient
example, run as written."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.images import assert_same_image
from tests.integration.processes import ServiceProcess
from tests.readme_commands import code_blocks

triton = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is in the dev extra")
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = pytest.mark.slow

SEEDS = [11, 12, 13]
CLASSES = [0, 2, 1]  # of "cond", the fixture's conditional model (3 classes, 16x16 grey)


def _client(service: ServiceProcess) -> Any:
    return triton.InferenceServerClient(f"127.0.0.1:{service.port}", network_timeout=30.0)


def _post(service: ServiceProcess, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        service.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _generated(service: ServiceProcess) -> list[bytes]:
    """The PNGs of POST /generate for SEEDS and CLASSES."""
    body = {"seeds": SEEDS, "class_label": CLASSES, "model": "cond", "response": "json"}
    images = _post(service, "/generate", body)["images"]
    return [base64.b64decode(image["png_base64"]) for image in images]


def _inputs(binary: bool) -> list[Any]:
    seed = triton.InferInput("seed", [len(SEEDS)], "INT64")
    seed.set_data_from_numpy(np.array(SEEDS, np.int64), binary_data=binary)
    label = triton.InferInput("class_label", [len(CLASSES)], "INT32")
    label.set_data_from_numpy(np.array(CLASSES, np.int32), binary_data=binary)
    return [seed, label]


def test_tritonclient_sees_a_live_ready_server_and_its_models(service: ServiceProcess) -> None:
    client = _client(service)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("cond") and client.is_model_ready("cond.score")
    assert not client.is_model_ready("nope")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("cond")
    assert [t["name"] for t in metadata["inputs"]][:2] == ["seed", "z"]
    assert metadata["outputs"][0] == {
        "name": "images",
        "datatype": "UINT8",
        "shape": [-1, 16, 16, 1],
    }


@pytest.mark.parametrize("binary", [True, False], ids=["binary tensors", "JSON tensors"])
def test_tritonclient_inference_gives_the_images_of_generate(
    service: ServiceProcess, binary: bool
) -> None:
    outputs = [
        triton.InferRequestedOutput("images", binary_data=binary),
        triton.InferRequestedOutput("png", binary_data=True),
    ]
    result = _client(service).infer("cond", _inputs(binary), outputs=outputs, request_id="r1")
    assert result.get_response()["id"] == "r1"
    images = result.as_numpy("images")
    assert images.shape == (3, 16, 16, 1) and images.dtype == np.uint8
    pngs = result.as_numpy("png")
    for image, png, native in zip(images, pngs, _generated(service), strict=True):
        assert_same_image(image[..., 0], native)  # a grey PNG decodes to [H, W]
        assert_same_image(bytes(png), native)


def test_tritonclient_without_outputs_gets_every_output_but_png(service: ServiceProcess) -> None:
    result = _client(service).infer("cond", _inputs(binary=True))
    assert [o["name"] for o in result.get_response()["outputs"]] == ["images"]
    assert result.as_numpy("images").shape == (3, 16, 16, 1)


def test_tritonclient_raises_the_services_message(service: ServiceProcess) -> None:
    seed = triton.InferInput("seed", [1], "INT32")  # the model takes INT64
    seed.set_data_from_numpy(np.array([1], np.int32))
    with pytest.raises(InferenceServerException) as raised:
        _client(service).infer("cond", [seed])
    assert raised.value.status() == "400"
    assert "input 'seed' is INT32; cond takes INT64" in raised.value.message()


def test_a_tf_serving_predict_request_gives_the_images_of_generate(service: ServiceProcess) -> None:
    instances = [{"seed": s, "class_label": c} for s, c in zip(SEEDS, CLASSES, strict=True)]
    predictions = _post(service, "/v1/models/cond:predict", {"instances": instances})["predictions"]
    for prediction, native in zip(predictions, _generated(service), strict=True):
        assert_same_image(np.array(prediction["images"], np.uint8)[..., 0], native)
        assert_same_image(base64.b64decode(prediction["png"]["b64"]), native)
    request = urllib.request.Request(
        service.url + "/v1/models/cond:predict", b'{"instances": [-1]}', method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400
    assert "seeds are in" in json.load(refused.value)["error"]


EXAMPLES = [
    (page, block)
    for page in (REPO_ROOT / "README.md", REPO_ROOT / "docs" / "protocols.md")
    for block in code_blocks("python", page)
    if "tritonclient" in block
]


@pytest.mark.parametrize(("page", "example"), EXAMPLES, ids=[page.name for page, _ in EXAMPLES])
def test_the_pages_tritonclient_examples_run(
    service: ServiceProcess,
    page: Path,
    example: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The pages' bundled MNIST model stands as the fixture's conditional model here.
    code = example.replace("localhost:8000", f"127.0.0.1:{service.port}")
    code = code.replace('"mnist', '"cond').replace("np.array([7]", "np.array([2]")  # classes 0-2
    monkeypatch.chdir(tmp_path)  # where an example writes its files
    exec(compile(code, f"{page.name} (tritonclient example)", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out.strip()


def test_every_page_shows_a_tritonclient_example() -> None:
    assert [page.name for page, _ in EXAMPLES] == ["README.md", "protocols.md"]
