"""Discovery of model versions in the repository, and the versions start-up loads."""

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from service.errors import NotFound
from service.repository.policy import VersionPolicies
from service.repository.repository import ModelLoadError, ModelRepository, discover


def test_only_plain_integer_directories_are_versions(tmp_path: Path) -> None:
    for name in ("1", "12", "²", "٣", ".export-abc.tmp", "latest"):
        (tmp_path / "mnist" / name).mkdir(parents=True)
    (tmp_path / "mnist" / "7").write_text("a file, not a version")
    (tmp_path / ".hidden" / "1").mkdir(parents=True)
    assert discover(tmp_path) == {"mnist": [1, 12]}


def test_tensorflow_runs_full_float32_matmuls_once_configured() -> None:
    # TensorFloat-32 would move pixels by more than the one grey level the service promises.
    import tensorflow as tf

    from service.repository.repository import configure_tensorflow

    configure_tensorflow()
    assert not tf.config.experimental.tensor_float_32_execution_enabled()


def test_thread_pools_already_running_are_kept_with_a_warning(caplog) -> None:
    import tensorflow as tf

    from service.repository.repository import configure_tensorflow

    tf.constant(1.0)  # TensorFlow's runtime has started, as in a process that served before
    threading = tf.config.threading
    before = (
        threading.get_intra_op_parallelism_threads(),
        threading.get_inter_op_parallelism_threads(),
    )
    with caplog.at_level(logging.WARNING, logger="service.repository.repository"):
        configure_tensorflow(before[0] + 3, before[1] + 2)
    assert f"intra-op threads; {before[0] + 3} not applied" in caplog.text
    assert f"inter-op threads; {before[1] + 2} not applied" in caplog.text
    after = (
        threading.get_intra_op_parallelism_threads(),
        threading.get_inter_op_parallelism_threads(),
    )
    assert after == before
    caplog.clear()
    configure_tensorflow(*before)  # what is already in force needs no change and no warning
    assert "not applied" not in caplog.text


# --- which versions start-up loads (service.repository.policy) ---------------------------------


@pytest.fixture(scope="module")
def three_versions(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cond`` versions 1, 2 and 3 (one network under three numbers) and ``uncond`` 1."""
    root = tmp_path_factory.mktemp("three")
    for version in (1, 2, 3):
        target = root / "cond" / str(version)
        shutil.copytree(model_dir / "cond" / "1", target)
        meta = json.loads((target / "model.json").read_text())
        (target / "model.json").write_text(json.dumps({**meta, "version": version}))
    shutil.copytree(model_dir / "uncond" / "1", root / "uncond" / "1")
    return root


def served(repo: ModelRepository) -> dict[str, list[int]]:
    return {name: sorted(versions) for name, versions in repo.models.items()}


@pytest.mark.parametrize(
    ("policy", "pinned", "expected"),
    [
        ("latest:2", {}, [2, 3]),  # the default
        ("latest:1", {}, [3]),
        ("all", {}, [1, 2, 3]),
        ("latest:2", {"cond": 1}, [1]),  # pinned: specific
        ("latest:1", {"cond": [1, 3]}, [1, 3]),
    ],
)
def test_start_up_loads_the_versions_the_policy_selects(
    three_versions: Path, policy: str, pinned: dict[str, Any], expected: list[int]
) -> None:
    repo = ModelRepository.load(three_versions, VersionPolicies.parse(policy, pinned))
    assert served(repo) == {"cond": expected, "uncond": [1]}
    # The highest served answers requests that name no version; the others, those naming them.
    assert repo.get("cond").version == expected[-1]
    assert all(repo.get("cond", version).version == version for version in expected)
    for version in {1, 2, 3} - set(expected):
        with pytest.raises(NotFound, match=f"no served version {version}"):
            repo.get("cond", version)


def test_the_default_policy_serves_the_two_latest(three_versions: Path) -> None:
    assert served(ModelRepository.load(three_versions)) == {"cond": [2, 3], "uncond": [1]}


def test_a_pinned_version_not_on_disk_stops_the_start(three_versions: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"pinned version cond/4 not found"):
        ModelRepository.load(three_versions, VersionPolicies.parse("latest:2", {"cond": [1, 4]}))
    with pytest.raises(ModelLoadError, match="pinned model 'nope' not found"):
        ModelRepository.load(three_versions, VersionPolicies.parse("latest:2", {"nope": 1}))
