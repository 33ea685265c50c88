"""What the training tools do before their heavy imports.

Usage (in a CLI, after its arguments are parsed and checked)::

    from training.startup import TRAIN_EXTRA, load_tensorflow, require_packages

    require_packages("gan-train", TRAIN_EXTRA)  # exit 2, naming the install command, if missing
    load_tensorflow("gan-train")                # one progress line; TF's C++ notices kept quiet

Nothing here imports TensorFlow or any optional package at import time, so a tool can refuse a
bad argument or a missing package in well under a second.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

# Module name -> the package that provides it, for the modules each tool needs.
TENSORFLOW = {"tensorflow": "tensorflow-cpu", "keras": "keras"}
TRAIN_EXTRA: Mapping[str, str] = {
    **TENSORFLOW,
    "PIL": "pillow",
    "tqdm": "tqdm",
    "sklearn": "scikit-learn",
    "scipy": "scipy",
    "tensorboard": "tensorboard",
}
# gan-sample only runs the generate signature and writes PNGs.
SAMPLE_NEEDS: Mapping[str, str] = {**TENSORFLOW, "PIL": "pillow"}

INSTALL_HINT = (
    "install the training tools with `make train-setup` "
    "(or `pip install -e '.[train,cpu]'`; `.[train,gpu]` on an NVIDIA GPU)"
)


def fail(prog: str, message: str) -> NoReturn:
    """One error line on stderr and exit code 2 (the CLIs' convention for a user's mistake)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_dataset_path(prog: str, spec: str) -> None:
    """Exit 2 at once when a dataset spec names a file or folder that does not exist.

    The loaders check everything else, after TensorFlow is loaded; this catches the commonest
    mistake (a typo in the path) before that wait.
    """
    kind, _, path = spec.partition(":")
    if kind in ("folder", "npz", "mnist-idx") and path:
        where = Path(path).expanduser()
        if not where.exists():
            fail(prog, f"--dataset {spec}: {where} does not exist")


def missing_packages(needs: Mapping[str, str]) -> list[str]:
    """The packages of ``needs`` whose module cannot be found (nothing is imported)."""
    missing = []
    for module, package in needs.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken or half-removed installation
            found = False
        if not found and package not in missing:
            missing.append(package)
    return missing


def require_packages(prog: str, needs: Mapping[str, str] = TRAIN_EXTRA) -> None:
    """Exit 2 with one line naming the missing packages and the command that installs them."""
    missing = missing_packages(needs)
    if missing:
        fail(prog, f"missing {', '.join(missing)}: {INSTALL_HINT}")


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up notices (CPU features, oneDNN) out of the output.

    Must run before TensorFlow is imported; a level the user set in ``TF_CPP_MIN_LOG_LEVEL``
    wins, so ``TF_CPP_MIN_LOG_LEVEL=0`` brings the notices back for debugging.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_tensorflow(prog: str, doing: str = "") -> None:
    """Import TensorFlow quietly, after one line saying so (it takes seconds on a CPU)."""
    quiet_tensorflow()
    if "tensorflow" not in sys.modules:
        print(f"{prog}: loading TensorFlow{doing}...", file=sys.stderr, flush=True)
    import tensorflow as tf

    # TensorFlow's Python warnings go through its absl logger: as quiet as the C++ side.
    if os.environ["TF_CPP_MIN_LOG_LEVEL"].strip() in ("2", "3"):
        tf.get_logger().setLevel("ERROR")
