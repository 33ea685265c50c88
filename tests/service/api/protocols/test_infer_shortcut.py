"""The v2 ``/infer`` shortcut: the same answers as the routes through FastAPI, and no route whose
dependencies it cannot honour."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import APIRouter, Depends, Request, Response
from fastapi.testclient import TestClient

from service.api.protocols import infer_shortcut
from service.api.protocols.infer_shortcut import InferShortcut, infer_routes, unhonoured
from service.api.shortcut import route_of
from service.app import create_app
from tests.service.api.protocols.v2_bodies import HEADER, binary_request, read_response
from tests.service.conftest import make_settings

SEED = {"name": "seed", "shape": [1], "datatype": "INT64", "data": [3]}
BINARY, BINARY_HEADERS = binary_request([("seed", "INT64", np.array([4]))], outputs=["images"])
CASES: dict[str, tuple[str, bytes, dict[str, str]]] = {
    "json": ("/v2/models/cond/infer", json.dumps({"inputs": [SEED]}).encode(), {}),
    "binary": ("/v2/models/uncond/infer", BINARY, BINARY_HEADERS),
    "version": ("/v2/models/cond/versions/2/infer", json.dumps({"inputs": [SEED]}).encode(), {}),
    "score": (
        "/v2/models/uncond.score/infer",
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "images",
                        "shape": [1, 16, 16, 3],
                        "datatype": "UINT8",
                        "data": [0] * 768,
                    }
                ]
            }
        ).encode(),
        {},
    ),
    "unknown model": ("/v2/models/nope/infer", b'{"inputs": []}', {}),
    "bad tensor": ("/v2/models/cond/infer", b'{"inputs": [{"name": "z"}]}', {}),
    "header past the body": ("/v2/models/cond/infer", b"{}", {HEADER: "9"}),
    "not JSON": ("/v2/models/cond/infer", b"{", {}),
    "media type": ("/v2/models/cond/infer", b"{}", {"Content-Type": "text/plain"}),
}


@pytest.fixture(scope="module")
def apps(model_dir: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """(with the shortcut, without it): two apps of the same settings and models."""
    settings = make_settings(model_dir, warmup=False)
    short, plain = create_app(settings), create_app(settings)
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not InferShortcut]
    assert len(plain.user_middleware) == len(short.user_middleware) - 1
    with TestClient(short) as a, TestClient(plain) as b:
        yield a, b


@pytest.mark.parametrize("case", CASES)
def test_the_shortcut_answers_as_the_route_does(apps, case: str) -> None:
    path, body, headers = CASES[case]
    answers = [client.post(path, content=body, headers=headers) for client in apps]
    short, plain = answers
    assert short.status_code == plain.status_code, (short.text, plain.text)
    assert short.headers.get("content-type") == plain.headers.get("content-type")
    if short.status_code == 200:
        # The same pixels for the same seeds: both paths ran the same model call.
        outputs = [read_response(a.content, a.headers) for a in answers]
        for name in outputs[0]:
            np.testing.assert_array_equal(outputs[0][name], outputs[1][name])
    else:
        assert short.json() == plain.json()


def test_the_shortcut_counts_requests_under_the_route(apps) -> None:
    short, _ = apps
    path, body, _ = CASES["json"]
    short.post(path, content=body)
    assert 'route="/v2/models/{name}/infer"' in short.get("/metrics").text


def test_a_route_with_what_the_shortcut_cannot_honour_fails_the_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def audit(request: Request) -> None:  # a dependency added to the route one day
        return None

    router = APIRouter()

    @router.post("/v2/models/{name}/infer", dependencies=[Depends(audit)])
    async def infer(name: str, request: Request) -> Response:
        return Response()

    route = route_of(router, "POST", "/v2/models/{name}/infer")
    assert unhonoured(route) == ["audit"]
    monkeypatch.setattr(infer_shortcut, "INFER_PATHS", ("/v2/models/{name}/infer",))
    monkeypatch.setattr(infer_shortcut.open_inference, "router", router)
    monkeypatch.setattr(infer_shortcut, "include_dependencies", lambda _: [])
    with pytest.raises(TypeError, match="cannot honour \\(audit\\)"):
        infer_routes()


def test_the_served_routes_take_nothing_the_shortcut_skips() -> None:
    assert [route.path for route in infer_routes()] == list(infer_shortcut.INFER_PATHS)
