"""Training on a small colour data set: the classic defaults against the automatic recipe.

Usage::

    nice -n 10 python benchmarks/colour_recipe.py                    # 30 minutes per run
    python benchmarks/colour_recipe.py --minutes 2 --runs auto --num 500   # a quick look

The data is ``benchmarks/recoloured_mnist.py``'s: 3,000 MNIST digits at 32x32 in random colours,
one subfolder per class, PNG and JPEG mixed (written to a temporary folder, never kept). The judge
is a domain classifier trained as ``gan-eval train-extractor`` trains one, on another 10,000
recoloured digits (other colours; or ``--extractor DIR``). Each run is ``gan-train --dataset
folder:DATA --conditional --resolution 32 --channels 3`` with nothing else but
``--recipe classic`` (the plain defaults) or ``--recipe auto``, trained for the same wall-clock
budget (``--minutes``), exported, and evaluated as ``gan-eval`` evaluates (``--num`` samples
against the 3,000 real images: class accuracy, FD, precision, recall, mean coverage, beside the
real-vs-real floor and an untrained generator). Prints a table with the CPU model, writes
``benchmarks/results/colour_recipe.json`` and the auto run's sample grid (one row per class) to
``benchmarks/results/colour_recipe_grid.png``. CPU heavy: run it with ``nice``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import cpu_model  # this folder is on sys.path: benchmarks run as scripts
from mnist_dir import add_mnist_dir, checked_mnist_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = ("class_accuracy", "fd", "precision", "recall", "coverage_mean")


def train_and_export(recipe: str, data: Path, minutes: float, workdir: Path) -> dict[str, Any]:
    """One run as gan-train makes it (nothing but --recipe given), exported; returns its facts."""
    from training.config import TrainConfig
    from training.export import export_model
    from training.loop import train

    config = TrainConfig(
        dataset=f"folder:{data}", conditional=True, resolution=32, channels=3, recipe=recipe,
        explicit=(), steps=0, minutes=minutes, sample_every=0, checkpoint_every=0,
        log_every=100, name=recipe,
    )  # fmt: skip
    started = time.perf_counter()
    result = train(config, outdir=workdir / "runs", verbose=False)
    seconds = time.perf_counter() - started
    version_dir = export_model(
        result.gan, workdir / "models", recipe, holdout=result.holdout, run_dir=result.run_dir
    )
    grid = sorted((result.run_dir / "samples").glob("step-*.png"))[-1]  # the run's last grid
    options = json.loads((result.run_dir / "options.json").read_text())
    return {
        "version_dir": version_dir,
        "grid": grid,
        "steps": int(result.gan.step.numpy()),
        "train_minutes": round(seconds / 60, 1),
        "options": {k: options[k] for k in ("architecture", "g_width", "loss", "augment")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training time per run")
    parser.add_argument("--runs", default="classic,auto", help="recipes to train, in order")
    parser.add_argument("--num", type=int, default=2000, help="generated images per evaluation")
    parser.add_argument("--count", type=int, default=3000, help="training images")
    parser.add_argument("--extractor", type=Path, help="a trained domain classifier to judge by")
    add_mnist_dir(parser)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/colour_recipe.json")
    args = parser.parse_args(argv)
    checked_mnist_dir(parser, args)
    runs = args.runs.split(",")
    if not set(runs) <= {"classic", "auto"}:
        parser.error("--runs takes classic and/or auto")

    from recoloured_mnist import write_dataset

    from training.metrics.domain_classifier import train_domain_classifier
    from training.metrics.evaluate import EvalOptions, evaluate_model_dir
    from training.metrics.extractors import load_extractor
    from training.metrics.real_images import load_real_images

    workdir = Path(tempfile.mkdtemp(prefix="colour-recipe-"))
    data = workdir / "data"
    write_dataset(args.mnist_dir, data, args.count, seed=0)
    extractor_dir = args.extractor
    if extractor_dir is None:
        judge_data = workdir / "judge-data"
        write_dataset(args.mnist_dir, judge_data, 10_000, seed=1)  # other colours, more digits
        extractor_dir = workdir / "extractor"
        print("training the judge (a domain classifier on 10,000 other recoloured digits)")
        train_domain_classifier(load_real_images(f"folder:{judge_data}", 32, 3), extractor_dir)
    extractor = load_extractor(f"classifier:{extractor_dir}", (32, 32, 3))
    real = load_real_images(f"folder:{data}", 32, 3)
    options = EvalOptions(num=args.num)

    report: dict[str, Any] = {
        "cpu": cpu_model(),
        "minutes_per_run": args.minutes,
        "num_generated": args.num,
        "extractor_accuracy": extractor.info.get("heldout_accuracy"),
        "rows": {},
    }
    floor: dict[str, Any] = {}
    ceiling: dict[str, Any] = {}
    for recipe in runs:
        run = train_and_export(recipe, data, args.minutes, workdir)
        evaluation = evaluate_model_dir(
            run["version_dir"], real.images, real.labels, extractor, options
        )
        rows = evaluation["rows"]
        report["rows"][recipe] = {
            **{k: v for k, v in run.items() if k not in ("version_dir", "grid")},
            **{k: rows["model"].get(k) for k in COLUMNS},
        }
        floor = {k: rows["real_vs_real"].get(k) for k in COLUMNS}
        ceiling = {k: rows["untrained"].get(k) for k in COLUMNS}
        if recipe == "auto":
            grid_out = args.out.with_name("colour_recipe_grid.png")
            grid_out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run["grid"], grid_out)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**report, "floor": floor, "ceiling": ceiling}, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{args.count} recoloured digits, 32x32x3, {args.minutes:g} minutes of training per "
          f"run, {args.num} samples; CPU: {report['cpu']}")  # fmt: skip
    print("| run | steps | class acc | FD | precision | recall | cov mean |")
    print("| --- | --- | --- | --- | --- | --- | --- |")

    def line(name: str, row: dict[str, Any], steps: str = "") -> None:
        cells = [f"{row[k]:.3f}" if isinstance(row.get(k), float) else "-" for k in COLUMNS]
        print(f"| {name} | {steps} | " + " | ".join(cells) + " |")

    for recipe, row in report["rows"].items():
        line(f"`--recipe {recipe}`", row, str(row["steps"]))
    line("floor: real vs real", floor)
    line("ceiling: untrained G", ceiling)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
