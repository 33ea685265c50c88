"""Liveness of the app built by the factory."""

from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings


def test_healthz_answers_ok(tmp_path):
    app = create_app(Settings(model_dir=tmp_path))
    with TestClient(app) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_settings_read_from_gan_prefixed_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_MODEL_DIR", str(tmp_path))
    assert Settings().model_dir == tmp_path
