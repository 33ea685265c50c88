"""Strategy names, TF_CONFIG validation, the chief rule, precision policies, batch splitting,
and the warning where bfloat16 is emulated."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import keras
import pytest
import tensorflow as tf

from training.config import ConfigError
from training.distribute import (
    DistributionError,
    check_jit,
    is_chief,
    make_strategy,
    needs_loss_scaling,
    parse_tf_config,
    per_replica_batch,
    set_precision,
)

ROOT = Path(__file__).resolve().parents[2]
TWO_WORKERS = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}}


def test_none_and_auto_on_one_cpu_are_the_default_strategy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for name in ("none", "auto"):
        strategy = make_strategy(name)
        assert strategy.num_replicas_in_sync == 1
        assert is_chief(strategy)
    check_jit(make_strategy("none"))  # one replica: XLA is fine


def test_unknown_strategy_and_precision_are_errors(restore_policy: None) -> None:
    with pytest.raises(DistributionError, match="unknown strategy 'tpu'; choose one of auto"):
        make_strategy("tpu")
    with pytest.raises(DistributionError, match="unknown precision 'float16'"):
        set_precision("float16")
    assert issubclass(DistributionError, ConfigError)  # CLIs turn it into exit code 2


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "float32"])
def test_set_precision_sets_the_keras_policy(policy: str, restore_policy: None) -> None:
    set_precision(policy)
    assert keras.mixed_precision.global_policy().name == policy
    assert needs_loss_scaling(policy) == (policy == "mixed_float16")


def test_multiworker_without_tf_config_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(DistributionError, match="needs the TF_CONFIG environment variable"):
        make_strategy("multiworker")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({"task": {"type": "worker", "index": 0}}), "no 'cluster'"),
        (json.dumps({"cluster": {"worker": []}}), "must be a list of 'host:port'"),
        (json.dumps({"cluster": {"ps": ["a:1"]}}), "needs a 'worker'"),
        (json.dumps(TWO_WORKERS), "no 'task'"),
        (json.dumps({**TWO_WORKERS, "task": {"type": "chief", "index": 0}}), "not a job"),
        (json.dumps({**TWO_WORKERS, "task": {"type": "worker", "index": 2}}), "out of range"),
    ],
)
def test_invalid_tf_config_is_explained(raw: str, message: str) -> None:
    with pytest.raises(DistributionError, match=message):
        parse_tf_config(raw)


def test_valid_tf_config_parses() -> None:
    config = {**TWO_WORKERS, "task": {"type": "worker", "index": 1}}
    assert parse_tf_config(json.dumps(config)) == config


def _cluster(task_type: str, task_id: int, jobs: dict[str, list[str]]) -> SimpleNamespace:
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(jobs), task_type=task_type, task_id=task_id
    )
    return SimpleNamespace(cluster_resolver=resolver)


def test_the_chief_is_the_chief_task_or_else_worker_zero() -> None:
    workers = {"worker": ["a:1", "b:1"]}
    assert is_chief(_cluster("worker", 0, workers))  # type: ignore[arg-type]
    assert not is_chief(_cluster("worker", 1, workers))  # type: ignore[arg-type]
    with_chief = {"chief": ["c:1"], **workers}
    assert is_chief(_cluster("chief", 0, with_chief))  # type: ignore[arg-type]
    assert not is_chief(_cluster("worker", 0, with_chief))  # type: ignore[arg-type]


def test_per_replica_batch_needs_an_even_split() -> None:
    two = SimpleNamespace(num_replicas_in_sync=2)
    assert per_replica_batch(64, two) == 32  # type: ignore[arg-type]
    with pytest.raises(DistributionError, match="multiple of the 2 replicas"):
        per_replica_batch(63, two)  # type: ignore[arg-type]
    assert per_replica_batch(7, tf.distribute.get_strategy()) == 7


SPLIT_SCRIPT = """
import tensorflow as tf
from training.distribute import DistributionError, make_strategy, split_cpu
split_cpu(3)
split_cpu(3)  # the same configuration again is a no-op
strategy = make_strategy("mirrored")
print("replicas", strategy.num_replicas_in_sync)
try:
    split_cpu(2)
except DistributionError as error:
    print("error", error)
"""


def test_split_cpu_gives_mirrored_several_devices_and_refuses_late_changes() -> None:
    process = subprocess.run(
        [sys.executable, "-c", SPLIT_SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr[-2000:]
    assert "replicas 3" in process.stdout
    assert "error cannot split the CPU into 2 logical devices" in process.stdout


def test_bfloat16_warning_only_without_native_support(monkeypatch: pytest.MonkeyPatch):
    from training import distribute

    monkeypatch.setattr(distribute, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert distribute.bfloat16_warning("mixed_bfloat16") is None
    monkeypatch.setattr(distribute, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert distribute.bfloat16_warning("mixed_bfloat16") is None
    monkeypatch.setattr(distribute, "cpu_flags", lambda: frozenset({"avx2"}))
    assert "emulates bfloat16" in (distribute.bfloat16_warning("mixed_bfloat16") or "")
    assert distribute.bfloat16_warning("float32") is None
    assert distribute.bfloat16_warning("mixed_float16") is None


def test_cpu_flags_reads_the_flags_line(tmp_path: Path):
    from training.distribute import cpu_flags

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2\n\n")
    assert cpu_flags(str(info)) == frozenset({"fpu", "sse2", "avx2"})
    assert cpu_flags(str(tmp_path / "missing")) is None
