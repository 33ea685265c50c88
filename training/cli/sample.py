"""``gan-sample``: images, grids and latent walks from an exported model (no service needed).

Seeds map to noise as the service maps them (:mod:`gan_contract.seeds`), and grids and
animations are the service's too. TensorFlow is loaded only after the arguments, the model
directory and the installed packages are checked (:mod:`training.cli.startup`); every failure is
one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.cli.startup import (
    SAMPLE_NEEDS,
    fail,
    load_tensorflow,
    one_line_errors,
    require_packages,
)

EXAMPLES = """examples:
  gan-sample models/mnist --seeds 0-35 --grid grid.png              # latest version
  gan-sample models/mnist/1 --seeds 0-9 --class 3 --psi 0.7 --outdir out/
  gan-sample models/mnist --seeds 0-9 --grid docs/mnist-grid.png   # a row per class
  gan-sample models/mnist --walk 0,7,42 --frames 60 --out walk.webp  # a latent walk (or .gif)
"""


# The most seeds one gan-sample run draws (the service has its own, smaller, limit).
MAX_SAMPLE_SEEDS = 100_000


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gan-sample``."""
    from gan_contract.grid import GRID_PADDING

    parser = argparse.ArgumentParser(
        prog="gan-sample",
        description="Generate images from an exported model (no service needed). Seeds map to "
        "noise as in StyleGAN: z = numpy.random.RandomState(seed).randn(z_dim). A conditional "
        "model without --class gives every seed in every class (one row per class).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model_dir", type=Path, metavar="MODEL_DIR", help="models/NAME (latest) or models/NAME/V"
    )
    parser.add_argument(
        "--seeds",
        default="0-35",
        help=f"seeds, e.g. 0-7,12,20-23, at most {MAX_SAMPLE_SEEDS} [0-35]",
    )
    parser.add_argument(
        "--truncation-psi",
        "--psi",
        dest="psi",
        type=float,
        default=1.0,
        help="truncation psi (1 = none; alias --psi) [1.0]",
    )
    parser.add_argument(
        "--class-label",
        "--class",
        dest="class_label",
        type=int,
        help="class label of a conditional model (alias --class, as in StyleGAN)",
    )
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--outdir", type=Path, help="write one PNG per image into this folder")
    out.add_argument("--grid", type=Path, metavar="FILE", help="write one PNG grid of all images")
    out.add_argument(
        "--out", type=Path, metavar="FILE", help="with --walk: the animation (.webp or .gif)"
    )
    walk = parser.add_argument_group("latent walk (as POST /animate)")
    walk.add_argument("--walk", metavar="SEEDS", help="key seeds visited in order, e.g. 0,7,42")
    walk.add_argument("--frames", type=int, default=60, help="frames of the walk [60]")
    walk.add_argument("--fps", type=float, default=15.0, help="frames per second [15]")
    parser.add_argument(
        "--padding",
        type=int,
        default=GRID_PADDING,
        metavar="PX",
        help=f"black pixels between grid cells; the service's grids have {GRID_PADDING} "
        f"[{GRID_PADDING}]",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the resolved options and exit"
    )
    return parser


@one_line_errors("gan-sample")
def main(argv: Sequence[str] | None = None) -> int:
    """``gan-sample MODEL_DIR --seeds ... (--outdir DIR | --grid FILE)``."""
    from gan_contract.grid import make_grid
    from gan_contract.model_card import read_model_card
    from gan_contract.seeds import parse_seeds, seeds_to_z
    from training.sampling import resolve_version_dir, save_png

    args = build_parser().parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds, MAX_SAMPLE_SEEDS)
        version_dir = resolve_version_dir(args.model_dir)
        info = read_model_card(version_dir)
    except (ValueError, OSError) as error:  # ContractError and ModelDirError are ValueErrors
        fail("gan-sample", str(error))
    num_classes = int(info.get("num_classes", 0))
    if args.class_label is not None and num_classes == 0:
        fail("gan-sample", "--class given, but the model is unconditional")
    if args.class_label is not None and not 0 <= args.class_label < num_classes:
        fail("gan-sample", f"--class must be in 0..{num_classes - 1}, got {args.class_label}")
    if not 0 <= args.padding <= 64:
        fail("gan-sample", f"--padding must be in 0..64, got {args.padding}")
    if not args.psi > 0:
        fail("gan-sample", f"--psi must be positive, got {args.psi}")
    if (args.walk is None) != (args.out is None):
        fail("gan-sample", "--walk and --out go together (--out FILE.webp or FILE.gif)")
    if args.walk is not None:
        return _walk(args, version_dir, info)
    if num_classes and args.class_label is None:
        classes = list(range(num_classes))  # every seed in every class, row by row
    else:
        classes = [args.class_label or 0]
    require_packages("gan-sample", SAMPLE_NEEDS)
    if args.dry_run:
        resolved = {
            "model": str(version_dir),
            "seeds": seeds,
            "psi": args.psi,
            "classes": classes if num_classes else [],
            "outdir": str(args.outdir),
            "grid": str(args.grid),
        }
        print(json.dumps(resolved, indent=2))
        return 0

    load_tensorflow("gan-sample")
    import numpy as np
    import tensorflow as tf

    generate = tf.saved_model.load(str(version_dir)).signatures["generate"]
    z_all = np.concatenate([seeds_to_z(seeds, int(info["z_dim"]))] * len(classes))
    labels_all = np.repeat(np.array(classes, np.int32), len(seeds))
    images = np.concatenate([
        generate(z=tf.constant(z_all[i : i + 256]), labels=tf.constant(labels_all[i : i + 256]),
                 truncation_psi=tf.constant(args.psi, tf.float32))["images"].numpy()
        for i in range(0, len(z_all), 256)
    ])  # fmt: skip
    if args.grid is not None:
        columns = len(seeds) if len(classes) > 1 else None
        save_png(make_grid(images, columns, padding=args.padding), args.grid)
        print(f"wrote {args.grid} ({len(images)} images from {version_dir})")
        return 0
    for image, seed, label in zip(images, seeds * len(classes), labels_all, strict=True):
        suffix = f"-class{label}" if num_classes else ""
        save_png(image, args.outdir / f"seed{seed:04d}{suffix}.png")
    print(f"wrote {len(images)} images to {args.outdir} from {version_dir}")
    return 0


def _walk(args: argparse.Namespace, version_dir: Path, info: dict[str, Any]) -> int:
    """``gan-sample --walk SEEDS --out FILE``: the animation POST /animate gives (defaults)."""
    from gan_contract.animation import encode_animation
    from gan_contract.seeds import parse_seeds, seeds_to_z
    from gan_contract.walks import walk

    fmt = args.out.suffix.lower().lstrip(".")
    if fmt not in ("webp", "gif"):
        fail("gan-sample", f"--out must end in .webp or .gif, got {args.out.name!r}")
    try:
        seeds = parse_seeds(args.walk, 64)
    except ValueError as error:
        fail("gan-sample", str(error))
    if not 2 <= len(seeds) <= 64:
        fail("gan-sample", f"--walk needs 2..64 seeds, got {len(seeds)}")
    if not 2 <= args.frames <= 1000:
        fail("gan-sample", f"--frames must be in 2..1000, got {args.frames}")
    if not 1 <= args.fps <= 60:
        fail("gan-sample", f"--fps must be in 1..60, got {args.fps}")
    num_classes = int(info.get("num_classes", 0))
    key_labels = None
    if num_classes:  # as the service: the seed modulo the number of classes, unless --class
        key_labels = [args.class_label if args.class_label is not None else s % num_classes
                      for s in seeds]  # fmt: skip
    z, labels = walk(seeds_to_z(seeds, int(info["z_dim"])), args.frames, labels=key_labels)
    if args.dry_run:
        print(json.dumps({"model": str(version_dir), "walk": seeds, "frames": args.frames,
                          "labels": labels.tolist(), "out": str(args.out)}, indent=2))  # fmt: skip
        return 0

    require_packages("gan-sample", SAMPLE_NEEDS)
    load_tensorflow("gan-sample")
    import numpy as np
    import tensorflow as tf

    generate = tf.saved_model.load(str(version_dir)).signatures["generate"]
    images = np.concatenate([
        generate(z=tf.constant(z[i : i + 256]), labels=tf.constant(labels[i : i + 256]),
                 truncation_psi=tf.constant(args.psi, tf.float32))["images"].numpy()
        for i in range(0, len(z), 256)
    ])  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(encode_animation(images, fmt, fps=args.fps))
    print(f"wrote {args.out} ({len(images)} frames from {version_dir})")
    return 0
