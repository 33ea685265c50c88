"""What the training tools do before their heavy imports, and how they fail.

Each tool is a thin layer: parse arguments, build the typed config, call one function.
TensorFlow is imported only after the arguments, the input paths and the installed packages are
checked, so ``--help``, ``--dry-run`` and mistakes stay instant. Every failure (bad arguments,
unreadable data, a diverged run, a failed export, an unexpected error) prints one clear line and
exits with code 2, never a traceback; set ``GAN_TRACEBACK=1`` to see the traceback of an
unexpected error.

Usage (in a CLI, after its arguments are parsed and checked)::

    from training.cli.startup import TRAIN_EXTRA, load_tensorflow, require_packages

    require_packages("gan-train", TRAIN_EXTRA)  # exit 2, naming the install command, if missing
    load_tensorflow("gan-train")                # one progress line; TF's C++ notices kept out

Nothing here imports TensorFlow or any optional package at import time, so a tool can refuse a
bad argument or a missing package in well under a second.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
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


def one_line_errors(prog: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Turn any error a CLI did not foresee into one line and exit code 2 (the last resort)."""

    def wrap(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def run(argv: Sequence[str] | None = None) -> int:
            try:
                return main(argv)
            except Exception as error:  # SystemExit and Ctrl-C pass through
                if os.environ.get("GAN_TRACEBACK"):
                    raise
                message = str(error).strip().splitlines()
                fail(prog, f"{type(error).__name__}: {message[0] if message else 'failed'}")

        return run

    return wrap


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


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null meanwhile: TensorFlow's C++ code writes there directly,
    below ``sys.stderr``. A Python exception is still raised (and printed) as usual."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_tensorflow(prog: str, doing: str = "") -> None:
    """Import TensorFlow after one line saying so (it takes seconds on a CPU), keeping its C++
    start-up notices (CPU features, oneDNN) out of the output.

    ``TF_CPP_MIN_LOG_LEVEL`` set in the environment of the process start is the user's choice and
    wins (``TF_CPP_MIN_LOG_LEVEL=0`` shows every notice). Setting it from Python is not enough:
    TensorFlow 2.21 prints the import-time notices whatever ``os.environ`` says by then, so
    they are silenced at the file-descriptor level, during the import only.
    """
    if "tensorflow" in sys.modules:
        return
    print(f"{prog}: loading TensorFlow{doing}...", file=sys.stderr, flush=True)
    user_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    if user_level is not None:
        import tensorflow  # noqa: F401

        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # for what TensorFlow logs later, and subprocesses
    with native_stderr_silenced():
        import tensorflow as tf
    # TensorFlow's Python warnings go through its absl logger: as quiet as the C++ side.
    tf.get_logger().setLevel("ERROR")
