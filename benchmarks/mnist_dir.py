"""Where a benchmark finds the MNIST IDX files: ``--mnist-dir``, else ``$GAN_MNIST_DIR``, else
``../shared/data/mnist`` beside the project.

Usage (benchmarks run as scripts, so this folder is on ``sys.path``)::

    from mnist_dir import add_mnist_dir, checked_mnist_dir

    add_mnist_dir(parser)
    args = parser.parse_args(argv)
    mnist = checked_mnist_dir(parser, args)   # exits with a clear message when it is absent
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "mnist"


def add_mnist_dir(parser: argparse.ArgumentParser) -> None:
    """Add ``--mnist-dir`` (default ``$GAN_MNIST_DIR`` or ``../shared/data/mnist``)."""
    parser.add_argument(
        "--mnist-dir",
        type=Path,
        default=Path(os.environ.get("GAN_MNIST_DIR", DEFAULT)),
        help="MNIST IDX files (default $GAN_MNIST_DIR or ../shared/data/mnist)",
    )


def checked_mnist_dir(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    """``args.mnist_dir``, or a usage error (exit code 2) that says how to set it."""
    if not args.mnist_dir.is_dir():
        parser.error(f"no MNIST IDX files at {args.mnist_dir}; set --mnist-dir or GAN_MNIST_DIR")
    return Path(args.mnist_dir)
