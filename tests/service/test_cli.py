"""``gan-serve``: one clear error line and a non-zero exit for a bad model directory or a model
that cannot serve; serving, also with a model that fails at one batch size."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.integration.processes import ServiceProcess
from tests.service.savedmodel_factory import export_model


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_missing_model_directory_is_one_error_line(tmp_path: Path) -> None:
    result = run_cli("--model-dir", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"gan-serve: error: model directory {tmp_path / 'absent'} does not exist"
    ]


def test_broken_model_directory_is_one_error_line(tmp_path: Path) -> None:
    version = tmp_path / "digits" / "3"
    version.mkdir(parents=True)
    (version / "model.json").write_text(json.dumps({"name": "digits"}))
    result = run_cli("--model-dir", str(tmp_path), "--log-level", "error")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("gan-serve:")]
    assert len(lines) == 1 and "model.json: key 'version' is missing" in lines[0]
    assert "Traceback" not in result.stderr


def test_invalid_setting_is_one_error_line(tmp_path: Path) -> None:
    result = run_cli("--model-dir", str(tmp_path), env={"GAN_MAX_BATCH_SIZE": "0"})
    assert result.returncode == 2
    assert "invalid GAN_* setting: max_batch_size" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_dry_run_shows_the_versions_the_policy_serves(tmp_path: Path) -> None:
    for name, version in [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)]:
        (tmp_path / name / str(version)).mkdir(parents=True)
    default = json.loads(run_cli("--model-dir", str(tmp_path), "--dry-run").stdout)
    assert default["served"] == {"a": [2, 3], "b": [1, 2]}  # the two latest
    env = {"GAN_VERSION_POLICY": "latest:1", "GAN_MODEL_VERSIONS": '{"b": [1]}'}
    chosen = json.loads(run_cli("--model-dir", str(tmp_path), "--dry-run", env=env).stdout)
    assert chosen["models"] == {"a": [1, 2, 3], "b": [1, 2]}  # on disk
    assert chosen["served"] == {"a": [3], "b": [1]}
    assert chosen["settings"]["version_policy"] == "latest:1"
    result = run_cli("--model-dir", str(tmp_path), env={"GAN_VERSION_POLICY": "newest"})
    assert result.returncode == 2
    assert "invalid GAN_* setting: version_policy" in result.stderr
    assert "expected 'latest:N'" in result.stderr


def test_workers_start_only_after_the_checks_pass(tmp_path: Path) -> None:
    # The supervisor checks the settings and the model directory before any worker starts.
    result = run_cli("--model-dir", str(tmp_path / "absent"), env={"GAN_WORKERS": "2"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"gan-serve: error: model directory {tmp_path / 'absent'} does not exist"
    ]
    result = run_cli("--model-dir", str(tmp_path), env={"GAN_WORKERS": "0"})
    assert result.returncode == 2
    assert "invalid GAN_* setting: workers" in result.stderr


@pytest.mark.slow
def test_gan_serve_serves_the_model_directory(model_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "--model-dir", str(model_dir), "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "GAN_DRAIN_SECONDS": "0"},  # tests/integration/test_drain.py drains
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.3)
        with urllib.request.urlopen(f"{base}/generate?seed=1&class_label=0", timeout=10) as r:
            assert r.headers["Content-Type"] == "image/png"
            assert r.read().startswith(b"\x89PNG")
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0


def test_thread_settings_reach_tensorflow_before_the_models_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from service import cli, logs
    from service.repository import repository as model_repository

    calls: list[object] = []

    def load(*args: object, **kwargs: object) -> None:
        calls.append("load")
        raise model_repository.ModelLoadError("stop here")

    monkeypatch.setenv("GAN_INTRA_OP_THREADS", "3")
    monkeypatch.setenv("GAN_INTER_OP_THREADS", "2")
    monkeypatch.setenv("GAN_SWITCH_INTERVAL_MS", "0.5")
    switch_interval = sys.getswitchinterval()
    monkeypatch.setattr(sys, "setswitchinterval", lambda seconds: calls.append(seconds))
    monkeypatch.setattr(logs, "configure_logging", lambda level: None)  # keep pytest's logging
    monkeypatch.setattr(model_repository, "discover", lambda root: {})
    monkeypatch.setattr(model_repository, "configure_tensorflow", lambda *a: calls.append(a))
    monkeypatch.setattr(model_repository.ModelRepository, "load", load)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--model-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert calls == [(3, 2), 0.5 / 1000.0, "load"]
    assert sys.getswitchinterval() == switch_interval  # the test process's own is untouched


# --- models that fail at some batch sizes (a device out of memory at a large batch) ----------


@pytest.fixture(scope="module")
def failing_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``at8``: its generate signature raises at batch size 8 only; ``always``: at 1, 2 and 4."""
    root = tmp_path_factory.mktemp("failing")
    export_model(root / "at8" / "at8" / "1", name="at8", version=1, fail_at_batch=(8,))
    export_model(
        root / "always" / "always" / "1", name="always", version=1, fail_at_batch=(1, 2, 4)
    )
    return root


@pytest.mark.slow
def test_a_batch_size_that_fails_is_dropped_and_the_model_serves(
    failing_models: Path, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    env = {"GAN_POLL_SECONDS": "0", "GAN_DRAIN_SECONDS": "0"}  # batch sizes 1, 2, 4, 8, 12, ...
    with ServiceProcess(failing_models / "at8", env=env).start(log_path=log) as replica:
        body = json.dumps({"seeds": "0-7", "response": "json"}).encode()
        request = urllib.request.Request(
            f"{replica.url}/generate", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # 8 rows, padded to 12
            assert len(json.loads(response.read())["images"]) == 8
        with urllib.request.urlopen(f"{replica.url}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert replica.terminate() == 0
    assert 'gan_warmup_max_pixel_deviation{batch_size="8",model="at8",version="1"} 255.0' in metrics
    assert 'gan_warmup_max_pixel_deviation{batch_size="12",model="at8",version="1"} 0.0' in metrics
    text = log.read_text()
    assert "batch size 8 failed (InvalidArgumentError: assertion failed" in text
    assert "Traceback" not in text


@pytest.mark.slow
def test_a_model_that_fails_at_every_batch_size_is_one_error_line(failing_models: Path) -> None:
    env = {"GAN_MAX_BATCH_SIZE": "4", "GAN_POLL_SECONDS": "0"}  # batch sizes 1, 2 and 4
    result = run_cli("--model-dir", str(failing_models / "always"), "--log-level", "error", env=env)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("gan-serve:")]
    assert len(lines) == 1, result.stderr
    assert "always/1: warm-up failed at every batch size of [1, 2, 4]" in lines[0]
    assert "InvalidArgumentError: assertion failed" in lines[0]
    assert "Traceback" not in result.stderr


# A gan-serve whose batch queues break at their first batch, as an internal error would.
BREAKING_SERVE = """
import sys
from service.engine.batcher import Batcher

def broken_take(self):
    raise RuntimeError("queue bookkeeping broke")

Batcher._take_batch = broken_take
from service.cli import main
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_a_process_whose_batch_queue_stopped_exits_with_a_failure_status(
    model_dir: Path, tmp_path: Path
) -> None:
    port = ServiceProcess(model_dir).port
    log = tmp_path / "serve.log"
    argv = ["--model-dir", str(model_dir), "--port", str(port)]
    env = {**os.environ, "GAN_POLL_SECONDS": "0", "GAN_DRAIN_SECONDS": "0.5"}
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", BREAKING_SERVE, *argv],
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        replica = ServiceProcess(model_dir, port=port)
        replica.process = process
        replica.log_path = log
        replica.wait_ready()
        request = urllib.request.Request(
            f"{replica.url}/generate?seed=1&model=uncond", method="GET"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 503
        assert process.wait(timeout=60) == 1  # after its drain, to be restarted
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "uncond/1/generate stopped after an internal error: stopping this process" in (
        log.read_text()
    )
