"""Discovery of model versions in the repository."""

from pathlib import Path

from service.model_repository import discover


def test_only_plain_integer_directories_are_versions(tmp_path: Path) -> None:
    for name in ("1", "12", "²", "٣", ".export-abc.tmp", "latest"):
        (tmp_path / "mnist" / name).mkdir(parents=True)
    (tmp_path / "mnist" / "7").write_text("a file, not a version")
    (tmp_path / ".hidden" / "1").mkdir(parents=True)
    assert discover(tmp_path) == {"mnist": [1, 12]}


def test_tensorflow_runs_full_float32_matmuls_once_configured() -> None:
    # TensorFloat-32 would move pixels by more than the one grey level the service promises.
    import tensorflow as tf

    from service.model_repository import configure_tensorflow

    configure_tensorflow()
    assert not tf.config.experimental.tensor_float_32_execution_enabled()
