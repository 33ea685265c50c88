"""``gan-eval``: offline quality metrics of an exported generator, with their floor and ceiling.

Examples::

    gan-eval models/mnist --dataset mnist-idx:../shared/data/mnist
    gan-eval models/mnist/1 --dataset mnist-idx:DIR --num 2000 --json mnist-eval.json
    gan-eval models/faces --dataset folder:~/faces --extractor inception:~/inception_notop.h5
    gan-eval train-extractor --dataset mnist-idx:DIR --out training/assets/mnist_classifier

The first form prints a Markdown table (FD, KID, precision, recall and, for conditional models,
class accuracy and per-class coverage) for the model, for real-vs-real (the floor) and for an
untrained generator of the same architecture (the ceiling), and writes the report as JSON.
Every failure is one line on stderr and exit code 2. Arguments, paths and installed packages are
checked before TensorFlow is loaded; ``--dry-run`` prints the resolved options and stops there.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from training.cli.startup import check_dataset_path, fail, load_tensorflow, require_packages

EXAMPLES = """examples:
  gan-eval models/mnist --dataset mnist-idx:../shared/data/mnist
  gan-eval models/mnist --dataset mnist-idx:DIR --num 2000 --json eval.json
  gan-eval models/NAME --dataset folder:PATH --extractor inception:inception_v3_notop.h5
  gan-eval train-extractor --dataset mnist-idx:DIR --out training/assets/mnist_classifier
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gan-eval",
        description="Evaluate an exported generator: FD, KID, precision/recall and class metrics, "
        "beside the real-vs-real floor and an untrained generator's ceiling. "
        "`gan-eval train-extractor --help` trains a domain classifier.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model_dir", type=Path, help="models/NAME (latest version) or models/NAME/N"
    )
    parser.add_argument(
        "--dataset",
        required=True,
        help="real images, as for gan-train: mnist-idx:DIR, folder:PATH, npz:FILE, digits",
    )
    parser.add_argument("--num", type=int, default=10_000, help="generated images (default 10000)")
    parser.add_argument(
        "--extractor",
        default="auto",
        help="auto (the bundled MNIST classifier), classifier:DIR, inception[:WEIGHTS.h5]",
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="report path (default runs/eval/NAME-VERSION-EXTRACTOR.json, e.g. "
        "runs/eval/mnist-1-classifier_mnist_classifier.json)",
    )
    parser.add_argument("--kid-subsets", type=int, default=100, help="KID subsets (default 100)")
    parser.add_argument("--batch-size", type=int, default=250, help="generation batch size")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the resolved options and exit"
    )
    return parser


def build_extractor_parser() -> argparse.ArgumentParser:
    from training.metrics.domain_classifier import MAX_EPOCHS, PATIENCE  # numpy only

    parser = argparse.ArgumentParser(
        prog="gan-eval train-extractor",
        description="Train a small CNN classifier on a labelled dataset, measure its accuracy on "
        "held-out images, and export it as a SavedModel usable with --extractor classifier:DIR.",
    )
    parser.add_argument(
        "--dataset",
        required=True,
        help="labelled images: mnist-idx:DIR, folder:PATH (one "
        "subfolder per class), npz:FILE (arrays x, y) or digits",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for the SavedModel")
    parser.add_argument("--resolution", type=int, default=28, help="image side (default 28)")
    parser.add_argument(
        "--channels", type=int, choices=(1, 3), default=1, help="1 (grey) or 3 (RGB) (default 1)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="fixed number of epochs (default: until the accuracy on a validation tenth of the "
        f"training images stops improving for {PATIENCE} epochs, at most {MAX_EPOCHS})",
    )
    parser.add_argument(
        "--holdout",
        type=int,
        default=None,
        help="images kept out to measure it (default: a fifth of the images, at most 2000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the resolved options and exit"
    )
    return parser


def _print_options(args: argparse.Namespace, **extra: Any) -> None:
    resolved = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    print(json.dumps({**resolved, **extra}, indent=2))


def _train_extractor(argv: list[str]) -> int:
    parser = build_extractor_parser()
    args = parser.parse_args(argv)
    if (args.epochs is not None and args.epochs < 1) or args.resolution < 8:
        fail(parser.prog, "--epochs must be >= 1 and --resolution >= 8")
    if args.holdout is not None and args.holdout < 1:
        fail(parser.prog, "--holdout must be >= 1")
    check_dataset_path(parser.prog, args.dataset)
    require_packages(parser.prog)
    if args.dry_run:
        _print_options(args)
        return 0
    load_tensorflow(parser.prog, ", then the images")
    from training.metrics.real_images import DatasetError, load_real_images

    try:
        real = load_real_images(args.dataset, args.resolution, args.channels, labelled=True)
    except DatasetError as exc:
        fail(parser.prog, str(exc))
    from training.metrics.domain_classifier import train_domain_classifier

    try:
        info = train_domain_classifier(
            real, args.out, epochs=args.epochs, holdout=args.holdout, seed=args.seed
        )
    except ValueError as exc:
        fail(parser.prog, str(exc))
    print(
        f"held-out accuracy {info['heldout_accuracy']:.2%} on {info['num_heldout']} images "
        f"after {info['epochs']} epochs on {info['num_train']}; exported to {args.out}"
    )
    from training.metrics.domain_classifier import weakness_warning

    warning = weakness_warning(info)
    if warning:
        print(f"{parser.prog}: warning: {warning}", file=sys.stderr)
    return 0


def _evaluate(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.num < 10:
        fail(parser.prog, "--num must be at least 10")
    if args.kid_subsets < 1 or args.batch_size < 1:
        fail(parser.prog, "--kid-subsets and --batch-size must be >= 1")
    check_dataset_path("gan-eval", args.dataset)
    require_packages("gan-eval")
    from training.metrics.evaluate import (  # numpy and scipy; no TensorFlow yet
        EvalOptions,
        ModelDirError,
        evaluate_model_dir,
        format_table,
        load_model_json,
        resolve_version_dir,
    )
    from training.metrics.extractors import ExtractorError, load_extractor

    try:
        version_dir = resolve_version_dir(args.model_dir)
        meta = load_model_json(version_dir)
        # The real images are prepared at the model's size, as its training data was.
        res, channels = int(meta["resolution"]), int(meta["channels"])
    except ModelDirError as exc:
        fail(parser.prog, str(exc))
    except KeyError as exc:
        fail(parser.prog, f"{args.model_dir}: model.json lacks the key {exc}")
    if args.dry_run:
        _print_options(args, model=str(version_dir), resolution=res, channels=channels)
        return 0
    load_tensorflow("gan-eval", ", then the images and the model")
    from training.metrics.real_images import DatasetError, load_real_images

    try:
        real = load_real_images(args.dataset, res, channels, int(meta["num_classes"]) > 0)
        extractor = load_extractor(args.extractor, (res, res, channels))
        options = EvalOptions(
            num=args.num, kid_subsets=args.kid_subsets, batch_size=args.batch_size
        )
        report = evaluate_model_dir(
            version_dir,
            real.images,
            real.labels,
            extractor,
            options,
            log=lambda msg: print(f"gan-eval: {msg}", file=sys.stderr),
        )
    except (ModelDirError, DatasetError, ExtractorError) as exc:
        fail(parser.prog, str(exc))
    except KeyError as exc:
        fail(parser.prog, f"{args.model_dir}: model.json lacks the key {exc}")
    report["dataset"] = args.dataset
    out = args.json or Path("runs") / "eval" / (
        f"{version_dir.parent.name}-{version_dir.name}-"
        f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', extractor.name)}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['model_dir']} on {args.dataset}, features: {extractor.name}")
    print(format_table(report))
    print(
        "(floor: disjoint real images at the model's sample size; ceiling: untrained generator; "
        f"report: {out})"
    )
    for warning in report["warnings"]:
        print(f"gan-eval: warning: {warning}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``gan-eval``; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "train-extractor":
        return _train_extractor(args[1:])
    return _evaluate(args)


if __name__ == "__main__":
    sys.exit(main())
