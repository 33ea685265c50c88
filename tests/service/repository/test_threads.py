"""TensorFlow's thread pools follow the served models and the machine unless set explicitly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from service import machine
from service.repository import threads
from service.repository.threads import (
    HEAVY_COST,
    ThreadChoice,
    choose_threads,
    fills_the_cpus,
    model_cost,
    served_costs,
    tensorflow_threads,
)
from service.settings import Settings


def _fake_version(
    root: Path, name: str, version: int, resolution: int, variable_bytes: int
) -> Path:
    """A version directory as the rule sees it: model.json and a variables file of that size
    (nothing is loaded, so no SavedModel is needed)."""
    path = root / name / str(version)
    (path / "variables").mkdir(parents=True)
    (path / "variables" / "variables.data-00000-of-00001").write_bytes(b"\0" * variable_bytes)
    from tests.service.savedmodel_factory import model_json

    meta = model_json(name, version, 8, resolution, 3, 0)
    (path / "model.json").write_text(json.dumps(meta))
    return path


def test_the_cost_is_parameters_times_output_pixels(tmp_path: Path) -> None:
    path = _fake_version(tmp_path, "m", 1, resolution=64, variable_bytes=4000)
    # 4000 bytes of float32 are 1000 parameters; 64 x 64 output pixels.
    assert model_cost(path, {"resolution": 64}) == 1000 * 64 * 64


def test_the_bundled_model_keeps_one_thread_each(repo_root: Path) -> None:
    mnist = served_costs(repo_root / "models")
    assert mnist and all(cost < HEAVY_COST for cost in mnist.values())


def test_small_models_keep_one_thread_each_and_heavy_ones_get_the_cores() -> None:
    small = {"mnist/1": 0.74e9}
    heavy = {"mnist/1": 0.74e9, "big/1": 1.5e12}
    assert _pools(choose_threads(small, cpus=2)) == (1, 1)
    assert _pools(choose_threads(heavy, cpus=2)) == (0, 0)  # TensorFlow's defaults
    assert "big/1" in choose_threads(heavy, cpus=2).reason  # the heaviest one is named
    # Several workers share the cores; one CPU or a GPU decide before the models do.
    assert _pools(choose_threads(heavy, cpus=8, workers=4)) == (2, 2)
    assert _pools(choose_threads(heavy, cpus=2, workers=4)) == (1, 1)
    assert _pools(choose_threads(heavy, cpus=1)) == (1, 1)
    assert _pools(choose_threads(small, cpus=2, gpu=True)) == (0, 0)
    assert _pools(choose_threads({}, cpus=2)) == (1, 1)


def _pools(choice: ThreadChoice) -> tuple[int, int]:
    return choice.intra_op, choice.inter_op


def test_auto_reads_the_served_versions_and_an_explicit_setting_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    monkeypatch.setattr(threads, "gpu_present", lambda: False)
    heavy_bytes = int(HEAVY_COST / 128**2 * 4) + 4
    _fake_version(tmp_path, "big", 1, resolution=128, variable_bytes=heavy_bytes)
    _fake_version(tmp_path, "big", 2, resolution=128, variable_bytes=400)  # latest: small
    _fake_version(tmp_path, "big", 3, resolution=128, variable_bytes=400)
    settings = Settings(model_dir=tmp_path)
    assert (settings.intra_op_threads, settings.inter_op_threads) == ("auto", "auto")
    # The version policy serves the two latest (2 and 3), both small.
    assert _pools(tensorflow_threads(settings)) == (1, 1)
    every = Settings(model_dir=tmp_path, version_policy="all")
    assert _pools(tensorflow_threads(every)) == (0, 0)  # version 1 is served too: heavy
    pinned = Settings(model_dir=tmp_path, model_versions={"big": 1})
    assert _pools(tensorflow_threads(pinned)) == (0, 0)
    assert "big/1" in tensorflow_threads(pinned).reason
    explicit = Settings(model_dir=tmp_path, model_versions={"big": 1}, intra_op_threads=3)
    choice = tensorflow_threads(explicit)
    assert _pools(choice) == (3, 0) and "explicitly" in choice.reason
    both = Settings(model_dir=tmp_path, intra_op_threads=1, inter_op_threads=2)
    assert _pools(tensorflow_threads(both)) == (1, 2)


def test_the_environment_takes_auto_or_a_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_INTRA_OP_THREADS", "auto")
    monkeypatch.setenv("GAN_INTER_OP_THREADS", "4")
    settings = Settings()
    assert (settings.intra_op_threads, settings.inter_op_threads) == ("auto", 4)
    monkeypatch.setenv("GAN_INTER_OP_THREADS", "many")
    with pytest.raises(ValueError):
        Settings()


def test_the_choice_and_its_reason_are_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    applied: list[tuple[int, int]] = []
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    monkeypatch.setattr(threads, "gpu_present", lambda: False)
    monkeypatch.setattr(
        "service.repository.repository.configure_tensorflow",
        lambda intra, inter: applied.append((intra, inter)) or [],
    )
    _fake_version(tmp_path, "small", 1, resolution=16, variable_bytes=400)
    with caplog.at_level(logging.INFO, logger="service.repository.threads"):
        threads.configure_threads(Settings(model_dir=tmp_path))
    assert applied == [(1, 1)]
    assert "TensorFlow threads: intra-op 1, inter-op 1 (auto: small models" in caplog.text
    assert "small/1" in caplog.text


def test_a_cgroup_quota_caps_the_cpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = Path.read_text

    def read(path: Path, *args: object, **kwargs: object) -> str:
        if str(path) == "/sys/fs/cgroup/cpu.max":
            return "150000 100000\n"  # 1.5 CPUs: two threads' worth
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(machine.os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.setattr(Path, "read_text", read)
    assert machine.usable_cpus() == 2


@pytest.mark.parametrize(
    ("intra_op", "cpus", "gpu", "fills"),
    [
        (0, 2, False, True),  # TensorFlow's default: one thread per core
        (2, 2, False, True),
        (1, 2, False, False),  # a small model's one thread leaves a core to the encoders
        (1, 1, False, True),
        (0, 2, True, False),  # the arithmetic runs on the GPU
    ],
)
def test_a_model_call_fills_the_cpus_when_its_pool_spans_them_without_a_gpu(
    intra_op: int, cpus: int, gpu: bool, fills: bool
) -> None:
    assert fills_the_cpus(intra_op, cpus, gpu) is fills
