"""Distribution strategies, mixed precision and device set-up for training.

Usage (in this order, before any other TensorFlow work)::

    from training.distribute import make_strategy, set_precision, is_chief

    strategy = make_strategy("auto")        # or "none", "mirrored", "multiworker"
    set_precision("mixed_float16")          # or "float32", "mixed_bfloat16"
    with strategy.scope():
        model = ...                         # variables are created under the strategy
    if is_chief(strategy):
        ...                                 # only the chief writes samples and exports

Strategies:

- ``none``: TensorFlow's default strategy (one device).
- ``mirrored``: :class:`tf.distribute.MirroredStrategy` over every visible GPU, or over every
  logical CPU device when there is no GPU (see :func:`split_cpu`, used by tests and benchmarks).
- ``multiworker``: :class:`tf.distribute.MultiWorkerMirroredStrategy`, configured from the
  ``TF_CONFIG`` environment variable, e.g. for worker 0 of two::

      TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                  "task": {"type": "worker", "index": 0}}'

- ``auto``: ``multiworker`` when ``TF_CONFIG`` names a cluster, else ``mirrored`` when more than
  one GPU is visible, else ``none``.

The batch size given to training is the GLOBAL batch; each replica gets
``global_batch // num_replicas`` (see :func:`per_replica_batch`), and losses are averaged over the
global batch so that the update does not depend on the number of replicas.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import tensorflow as tf

from training.config import ConfigError

STRATEGIES = ("auto", "none", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


class DistributionError(ConfigError):
    """A strategy, precision or cluster configuration that cannot be used (CLIs exit with 2)."""


def enable_gpu_memory_growth() -> None:
    """Let TensorFlow grow GPU memory on demand instead of taking it all at start-up.

    Several processes (the workers of a test, a trainer next to the service) can then share a GPU.
    A no-op without GPUs, and once the GPUs are initialised (the setting is then fixed).
    """
    for gpu in tf.config.list_physical_devices("GPU"):
        # Raised when the devices were initialised already: the setting can no longer change.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)


def split_cpu(n: int) -> None:
    """Configure ``n`` logical CPU devices on the one physical CPU.

    This must run before TensorFlow initialises its devices (before the first op, strategy or
    model); :class:`tf.distribute.MirroredStrategy` then sees ``n`` devices without a GPU.
    """
    if n < 1:
        raise DistributionError(f"split_cpu needs at least one device, got {n}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == n:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError as error:
        raise DistributionError(
            f"cannot split the CPU into {n} logical devices: TensorFlow has already initialised "
            "its devices in this process (call split_cpu first, or run in a fresh process)"
        ) from error


def parse_tf_config(raw: str | None = None) -> dict[str, Any]:
    """Parse and validate ``TF_CONFIG`` (from the environment when ``raw`` is None).

    Returns the parsed dict; raises :class:`DistributionError` with the reason when it is missing,
    not JSON, or lacks a cluster with workers or this process's task.
    """
    if raw is None:
        raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise DistributionError(
            "--strategy multiworker needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
            '"task": {"type": "worker", "index": 0}}'
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise DistributionError(f"TF_CONFIG is not valid JSON: {error}") from error
    if not isinstance(config, dict):
        raise DistributionError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise DistributionError("TF_CONFIG has no 'cluster' object (job name -> list of host:port)")
    for job, hosts in cluster.items():
        if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
            raise DistributionError(f"TF_CONFIG cluster job {job!r} must be a list of 'host:port'")
    if "worker" not in cluster and "chief" not in cluster:
        raise DistributionError("TF_CONFIG cluster needs a 'worker' (or 'chief') job")
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise DistributionError("TF_CONFIG has no 'task' object with 'type' and 'index'")
    task_type, index = task["type"], task["index"]
    if task_type not in cluster:
        raise DistributionError(f"TF_CONFIG task type {task_type!r} is not a job of the cluster")
    if not isinstance(index, int) or not 0 <= index < len(cluster[task_type]):
        raise DistributionError(
            f"TF_CONFIG task index {index!r} is out of range for job {task_type!r} "
            f"({len(cluster[task_type])} hosts)"
        )
    return config


def _multiworker() -> tf.distribute.Strategy:
    parse_tf_config()
    # RING collectives work on CPUs and GPUs alike; NCCL is picked automatically where it helps.
    return tf.distribute.MultiWorkerMirroredStrategy()


def _mirrored() -> tf.distribute.Strategy:
    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus or tf.config.list_logical_devices("CPU")
    names = [device.name for device in devices]
    if gpus:
        return tf.distribute.MirroredStrategy(devices=names)
    # Without GPUs NCCL is unavailable; reducing on one device is the portable choice.
    return tf.distribute.MirroredStrategy(
        devices=names, cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The :class:`tf.distribute.Strategy` called ``name`` (one of :data:`STRATEGIES`).

    Create it first thing in the program: TensorFlow fixes its devices and, for multi-worker
    training, its collective runtime when the first op runs.
    """
    if name not in STRATEGIES:
        raise DistributionError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    enable_gpu_memory_growth()
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return _mirrored()
    if name == "multiworker":
        return _multiworker()
    # auto
    if os.environ.get("TF_CONFIG"):
        return _multiworker()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return _mirrored()
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process is the one that writes checkpoints, samples, logs and exports.

    Single-process strategies are always chief; in a multi-worker cluster the chief is the
    ``chief`` task, or worker 0 when the cluster has no ``chief`` job (Keras' convention).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    jobs = resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and "chief" not in jobs


def per_replica_batch(global_batch: int, strategy: tf.distribute.Strategy) -> int:
    """The batch each replica sees; the global batch must divide evenly among replicas."""
    replicas = strategy.num_replicas_in_sync
    if global_batch < replicas or global_batch % replicas:
        raise DistributionError(
            f"--batch-size {global_batch} is the global batch: it must be a multiple of the "
            f"{replicas} replicas"
        )
    return global_batch // replicas


def check_jit(strategy: tf.distribute.Strategy) -> None:
    """Raise :class:`DistributionError` when XLA cannot compile the train step under ``strategy``.

    With several replicas the step contains cross-device reductions (gradients, batch-norm
    statistics, the EMA). TensorFlow compiles those with XLA only when every device is a GPU;
    on CPU devices it needs a ``merge_call``, which XLA cannot contain.
    """
    if strategy.num_replicas_in_sync <= 1:
        return
    devices = strategy.extended.worker_devices
    if not all("GPU" in device.upper() for device in devices):
        raise DistributionError(
            f"--jit with {strategy.num_replicas_in_sync} replicas needs GPUs: TensorFlow cannot "
            "compile cross-device updates with XLA on CPU devices "
            f"({', '.join(devices)}); drop --jit or use --strategy none"
        )


NATIVE_BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags as Linux lists them, or None where they cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        return None
    return None


def bfloat16_warning(policy: str) -> str | None:
    """A warning when ``policy`` is bfloat16 but neither a GPU nor the CPU computes it natively.

    Without AVX512-BF16 or AMX-BF16, TensorFlow emulates bfloat16 on the CPU, converting every
    operand: a ResNet step took minutes where float32 took seconds on such a CPU
    (``benchmarks/train_speed.py --precision`` measures it). None when there is nothing to say,
    or when the flags cannot be read (not Linux).
    """
    if policy != "mixed_bfloat16" or tf.config.list_physical_devices("GPU"):
        return None
    flags = cpu_flags()
    if flags is None or flags & NATIVE_BFLOAT16_FLAGS:
        return None
    return (
        "this CPU has no native bfloat16 (no avx512_bf16 or amx_bf16 flag) and no GPU is "
        "visible: TensorFlow emulates bfloat16, which is much slower than float32 here; "
        "use --precision float32 on this machine"
    )


def set_precision(policy: str) -> None:
    """Set Keras' global dtype policy: ``float32``, ``mixed_float16`` or ``mixed_bfloat16``.

    Call it before building the networks. Under ``mixed_float16`` the optimizer needs loss scaling
    (``keras.optimizers.LossScaleOptimizer``); bfloat16 has float32's range and needs none.
    """
    if policy not in PRECISIONS:
        raise DistributionError(
            f"unknown precision {policy!r}; choose one of {', '.join(PRECISIONS)}"
        )
    import keras

    keras.mixed_precision.set_global_policy(policy)


def needs_loss_scaling(policy: str) -> bool:
    """Whether gradients must be loss-scaled under ``policy`` (only float16 underflows)."""
    return policy == "mixed_float16"
