"""The automatic recipe at 64x64 colour, measured on shapes whose classes are known.

Usage::

    nice -n 10 .venv/bin/python benchmarks/shapes_recipe.py --minutes 30          # the benchmark
    nice -n 10 .venv/bin/python benchmarks/shapes_recipe.py --steps 9000   # a step budget, the
                                        # same training whatever else the machine is doing
    nice -n 10 .venv/bin/python benchmarks/shapes_recipe.py --minutes 1 --count 1000 \\
        --judge-count 1000 --judge-epochs 2 --num 500                          # a quick look

The data is ``benchmarks/shapes.py``'s: ``--count`` scenes (5,000) of five shape classes at
``--size`` (64) pixels, set 0, written as one subfolder per class to a temporary folder (never
kept). The judge is a domain classifier trained as ``gan-eval train-extractor`` trains one, on
``--judge-count`` (10,000) scenes of another set (set 1: other colours, places and textures),
until its validation accuracy stops improving (or ``--judge-epochs``; or ``--extractor DIR``, a
judge trained before). The run is ``gan-train --dataset folder:DATA --conditional --resolution
64 --channels 3 --minutes N`` with nothing else (the recipe chooses the rest), exported, and
evaluated as ``gan-eval`` evaluates: ``--num`` samples against the real scenes, class accuracy,
FD, precision, recall and mean coverage under the judge, beside the real-vs-real floor and an
untrained generator. Prints the recipe's choices and a table with the CPU model and the steps
the time allowed, and writes them to ``benchmarks/results/shapes_recipe.json``; the run's last
sample grid (``shapes-recipe-grid.png``: one row per class, the same seeds in every row) and a
grid of real scenes (``shapes-real-grid.png``) go to ``--grids`` (``benchmarks/results``;
``docs`` for the manual's figures). CPU heavy: run it with ``nice``.
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

import numpy as np
from machine import cpu_model  # this folder is on sys.path: benchmarks run as scripts

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
COLUMNS = ("class_accuracy", "fd", "precision", "recall", "coverage_mean")
TRAIN_SET, JUDGE_SET = 0, 1  # the shapes generator's seeds: disjoint scenes


def train_judge(data: Path, out: Path, size: int, epochs: int | None) -> dict[str, Any]:
    """A domain classifier of the shapes in ``data`` (a class-per-folder set), exported to
    ``out``; returns what ``train_domain_classifier`` records."""
    from training.metrics.domain_classifier import train_domain_classifier
    from training.metrics.real_images import load_real_images

    print(f"training the judge (a domain classifier on {data}, epochs: {epochs or 'until flat'})")
    return train_domain_classifier(load_real_images(f"folder:{data}", size, 3), out, epochs=epochs)


def train_and_export(
    data: Path, size: int, minutes: float, steps: int, workdir: Path
) -> dict[str, Any]:
    """``gan-train --dataset folder:DATA --conditional --resolution SIZE --channels 3 --minutes
    N`` (or ``--steps N``; the recipe chooses the rest), exported; returns its facts."""
    from training.config import TrainConfig
    from training.export import export_model
    from training.loop import train

    config = TrainConfig(
        dataset=f"folder:{data}", conditional=True, resolution=size, channels=3, recipe="auto",
        explicit=(), steps=steps, minutes=0.0 if steps else minutes, sample_every=0,
        checkpoint_every=0,
        log_every=100, name="shapes",
    )  # fmt: skip
    started = time.perf_counter()
    result = train(config, outdir=workdir / "runs", verbose=False)
    wall = time.perf_counter() - started
    version_dir = export_model(
        result.gan, workdir / "models", "shapes", holdout=result.holdout, run_dir=result.run_dir
    )
    run = json.loads((result.run_dir / "run.json").read_text())
    print(f"recipe auto for {run['num_train_images']:,} training images of {size}x{size}x3:")
    for choice in run["recipe"]:
        print(f"  --{choice['option'].replace('_', '-'):<19} {choice['value']!s:<20}")
    return {
        "version_dir": version_dir,
        "grid": sorted((result.run_dir / "samples").glob("step-*.png"))[-1],
        "steps": int(result.gan.step.numpy()),
        "train_minutes": round(result.seconds / 60, 2),
        "wall_minutes": round(wall / 60, 2),  # with loading the data and the sample grids
        "options": {c["option"]: c["value"] for c in run["recipe"]},
    }


def real_grid(images: np.ndarray, labels: np.ndarray, classes: int, columns: int) -> np.ndarray:
    """The first ``columns`` real images of each class, one row per class (black cells where a
    class has fewer)."""
    from gan_contract.grid import make_grid

    cells = np.zeros((classes, columns, *images.shape[1:]), np.uint8)
    for label in range(classes):
        found = images[labels == label][:columns]
        cells[label, : len(found)] = found
    return make_grid(cells.reshape(-1, *images.shape[1:]), columns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training time [30]")
    parser.add_argument(
        "--steps", type=int, default=0, help="a step budget instead of --minutes (0: time)"
    )
    parser.add_argument("--count", type=int, default=5000, help="training scenes [5000]")
    parser.add_argument("--size", type=int, default=64, choices=(64, 128), help="pixels [64]")
    parser.add_argument("--judge-count", type=int, default=10_000, help="judge's scenes [10000]")
    parser.add_argument("--judge-epochs", type=int, help="judge's epochs [until it is flat]")
    parser.add_argument("--extractor", type=Path, help="a judge trained before (its folder)")
    parser.add_argument("--num", type=int, default=2000, help="samples evaluated [2000]")
    parser.add_argument(
        "--grids", type=Path, default=RESULTS, help="folder of the two grids [benchmarks/results]"
    )
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= 24 * 60:
        parser.error("--minutes must be more than 0 and at most a day")
    if not 0 <= args.steps <= 10_000_000:
        parser.error("--steps must be 0 to 10,000,000")
    for name in ("count", "judge_count", "num"):
        if not 100 <= getattr(args, name) <= 200_000:
            parser.error(f"--{name.replace('_', '-')} must be 100 to 200,000")
    if args.judge_epochs is not None and not 1 <= args.judge_epochs <= 200:
        parser.error("--judge-epochs must be 1 to 200")

    from PIL import Image
    from shapes import CLASSES, write_dataset

    from training.metrics.evaluate import EvalOptions, evaluate_model_dir
    from training.metrics.extractors import load_extractor
    from training.metrics.real_images import load_real_images

    workdir = Path(tempfile.mkdtemp(prefix="shapes-recipe-"))
    try:
        data = workdir / "data"
        write_dataset(data, args.count, seed=TRAIN_SET, size=args.size)
        judge_dir = args.extractor
        if judge_dir is None:
            write_dataset(workdir / "judge-data", args.judge_count, seed=JUDGE_SET, size=args.size)
            judge_dir = workdir / "judge"
            train_judge(workdir / "judge-data", judge_dir, args.size, args.judge_epochs)
        judge = load_extractor(f"classifier:{judge_dir}", (args.size, args.size, 3))
        real = load_real_images(f"folder:{data}", args.size, 3)
        assert real.labels is not None
        run = train_and_export(data, args.size, args.minutes, args.steps, workdir)
        evaluation = evaluate_model_dir(
            run["version_dir"], real.images, real.labels, judge, EvalOptions(num=args.num)
        )
        rows = {
            name: {k: evaluation["rows"][name].get(k) for k in COLUMNS}
            for name in ("model", "real_vs_real", "untrained")
        }
        args.grids.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run["grid"], args.grids / "shapes-recipe-grid.png")
        grid = real_grid(real.images, real.labels, len(CLASSES), columns=12)
        Image.fromarray(grid).save(args.grids / "shapes-real-grid.png", optimize=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    report = {
        "cpu": cpu_model(),
        "size": args.size,
        "count": args.count,
        "minutes": None if args.steps else args.minutes,
        "steps": args.steps or None,
        "num_generated": args.num,
        "judge": {k: judge.info.get(k) for k in ("heldout_accuracy", "num_train", "epochs")},
        "run": {k: v for k, v in run.items() if k not in ("version_dir", "grid")},
        "rows": rows,
        "warnings": evaluation.get("warnings", []),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "shapes_recipe.json").write_text(json.dumps(report, indent=2) + "\n")

    budget = f"{args.steps:,} steps" if args.steps else f"{args.minutes:g} minutes"
    print(
        f"\n{args.count:,} shape scenes, {args.size}x{args.size}x3, {budget} of training "
        f"({run['steps']:,} steps in {run['train_minutes']:g} minutes), {args.num:,} samples; "
        "judge held-out accuracy "
        f"{report['judge']['heldout_accuracy']:.3f}; CPU: {report['cpu']}"
    )
    print("| run | steps | class acc | FD | precision | recall | cov mean |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    titles = {"model": "`--recipe auto`", "real_vs_real": "floor: real vs real",
              "untrained": "ceiling: untrained G"}  # fmt: skip
    for name, row in rows.items():
        cells = [f"{row[k]:.3f}" if isinstance(row.get(k), float) else "-" for k in COLUMNS]
        steps = f"{run['steps']:,}" if name == "model" else ""
        print(f"| {titles[name]} | {steps} | " + " | ".join(cells) + " |")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    print(f"wrote {RESULTS / 'shapes_recipe.json'}, and the grids to {args.grids}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
