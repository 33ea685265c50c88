"""The machine a benchmark ran on, printed beside every figure it reports.

Usage (benchmarks run as scripts, so this folder is on ``sys.path``)::

    from machine import cpu_model

    print(f"CPU: {cpu_model()}")
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name as ``lscpu`` prints it (``/proc/cpuinfo`` without ``lscpu``)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        cpuinfo = Path("/proc/cpuinfo")
        out = cpuinfo.read_text() if cpuinfo.exists() else ""
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "model name":
            return value.strip()
    return platform.processor() or "unknown"
