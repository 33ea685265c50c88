"""What this process may use of the machine, known without starting TensorFlow.

Usage::

    from service.machine import gpu_present, usable_cpus

    usable_cpus()     # 2: the CPUs of this process's affinity, capped by a container's quota
    gpu_present()     # False: no NVIDIA device, or a TensorFlow build that cannot use one

The settings' defaults (``GAN_CODEC_THREADS``) and TensorFlow's thread rule
(:mod:`service.repository.threads`) read it.
"""

from __future__ import annotations

import math
import os
from importlib import metadata
from pathlib import Path


def usable_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a container's
    ``--cpus``), at least 1."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def gpu_present() -> bool:
    """Whether an NVIDIA GPU is visible to a TensorFlow build that can use it, known without
    starting TensorFlow (its device files; ``CUDA_VISIBLE_DEVICES`` empty or -1 hides them)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if not any(Path("/dev").glob("nvidia[0-9]*")):
        return False
    try:
        metadata.distribution("tensorflow-cpu")
    except metadata.PackageNotFoundError:
        return True
    return False  # the CPU build ignores the GPU
