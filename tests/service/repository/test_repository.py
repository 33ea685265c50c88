"""Discovery of model versions in the repository."""

import logging
from pathlib import Path

from service.repository.repository import discover


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
