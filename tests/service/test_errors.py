"""A body that is not JSON at all is a 400 that says where it breaks; a JSON body that breaks a
rule stays a 422 naming the field."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("{seeds:", "line 1, column 2"),
        ('{"seeds": [1,\n 2,, 3]}', "line 2, column 4"),
        ('{"seeds": [1]', "line 1, column 14"),
    ],
)
def test_malformed_json_to_generate_is_400_saying_where(
    client: TestClient, body: str, where: str
) -> None:
    response = client.post("/generate", content=body, headers=JSON)
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == "bad_request"
    assert payload["detail"].startswith("the request body is not valid JSON: ")
    assert where in payload["detail"]
    assert client.get("/healthz").status_code == 200


def test_malformed_json_to_score_is_400_saying_where(client: TestClient) -> None:
    response = client.post("/score", content='{"images": [', headers=JSON)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("the request body is not valid JSON: ") and "line 1" in detail


def test_well_formed_json_breaking_a_rule_stays_422(client: TestClient) -> None:
    response = client.post("/generate", json={"seeds": "not a range"}, headers=JSON)
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"
    assert "seeds" in response.json()["detail"]
