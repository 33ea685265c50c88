"""Liveness, readiness and the settings read from the environment."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.repository.repository import ModelLoadError
from service.settings import Settings


def test_healthz_answers_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_once_models_are_warmed_up(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["models"] == {"cond": 2, "uncond": 1}


def test_readyz_is_503_before_startup(model_dir: Path) -> None:
    app = create_app(Settings(model_dir=model_dir))
    client = TestClient(app)  # no `with`: the lifespan has not run
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert client.post("/generate", json={"seeds": [1]}).status_code == 503


def test_settings_read_from_gan_prefixed_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("GAN_MODEL_VERSIONS", '{"mnist": 3}')
    monkeypatch.setenv("GAN_MAX_BATCH_SIZE", "16")
    monkeypatch.setenv("GAN_INTRA_OP_THREADS", "0")
    monkeypatch.setenv("GAN_INTER_OP_THREADS", "4")
    settings = Settings()
    assert (settings.intra_op_threads, settings.inter_op_threads) == (0, 4)
    assert settings.model_dir == tmp_path
    assert settings.model_versions == {"mnist": 3}
    assert settings.batch_sizes() == [1, 2, 4, 8, 12, 16]


def test_settings_are_frozen_and_checked():
    settings = Settings()
    with pytest.raises(ValueError):
        settings.max_batch_size = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="allowed_batch_sizes"):
        Settings(max_batch_size=8, allowed_batch_sizes=[4, 2])
    with pytest.raises(ValueError, match="max_batch_size"):
        Settings(max_batch_size=8, allowed_batch_sizes=[2, 4])
    # Batching off calls the model one row at a time: no padding work for nothing.
    assert Settings(max_batch_size=1).batch_sizes() == [1]
    assert Settings(max_batch_size=12).batch_sizes() == [1, 2, 4, 8, 12]


def test_broken_model_directory_fails_startup(tmp_path: Path) -> None:
    version = tmp_path / "broken" / "1"
    version.mkdir(parents=True)
    (version / "model.json").write_text("{not json")
    app = create_app(Settings(model_dir=tmp_path))
    with pytest.raises(ModelLoadError, match=r"model\.json"), TestClient(app):
        pass


def test_missing_model_directory_fails_startup(tmp_path: Path) -> None:
    app = create_app(Settings(model_dir=tmp_path / "absent"))
    with pytest.raises(ModelLoadError, match="does not exist"), TestClient(app):
        pass


def test_a_stopped_batch_queue_fails_liveness_and_readiness(model_dir: Path) -> None:
    from tests.service.conftest import make_settings

    with TestClient(create_app(make_settings(model_dir, warmup=False))) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        batcher = engine.batcher(engine.repository.get("uncond"), "generate")

        def broken_take() -> list[object]:
            raise RuntimeError("queue bookkeeping broke")

        batcher._take_batch = broken_take
        refused = client.post("/generate", json={"seeds": [1], "model": "uncond"})
        assert refused.status_code == 503
        for path in ("/healthz", "/readyz"):
            response = client.get(path)
            assert response.status_code == 503, path
            assert "uncond/1/generate stopped" in response.json()["detail"]
        # The other model still serves; only the orchestrator's restart mends the broken one.
        assert client.post("/generate", json={"seeds": [1], "model": "cond"}).status_code == 200
