"""Training on a small colour data set: the classic defaults against the automatic recipe.

Usage::

    nice -n 10 python benchmarks/colour_recipe.py                    # 30 minutes per run
    python benchmarks/colour_recipe.py --minutes 2 --runs auto --num 500   # a quick look
    python benchmarks/colour_recipe.py --steps 6000 --runs auto --raw --eval-at 3000 \
        --set lr_d=4e-4 --extractor /tmp/judge --out /tmp/lr_d.json     # a step budget, an option

The data is ``benchmarks/recoloured_mnist.py``'s: 3,000 MNIST digits at 32x32 in random colours,
one subfolder per class, PNG and JPEG mixed (written to a temporary folder, never kept). The judge
is a domain classifier trained as ``gan-eval train-extractor`` trains one, on another 10,000
recoloured digits (other colours; or ``--extractor DIR``). Each run is ``gan-train --dataset
folder:DATA --conditional --resolution 32 --channels 3`` with nothing else but
``--recipe classic`` (the plain defaults) or ``--recipe auto``, trained for the same wall-clock
budget (``--minutes``) or the same number of steps (``--steps``: runs on machines of other
speeds or loads then compare), exported, and evaluated as ``gan-eval`` evaluates (``--num``
samples against the 3,000 real images: class accuracy, FD, precision, recall, mean coverage,
beside the real-vs-real floor and an untrained generator). Prints a table with the CPU model,
writes ``benchmarks/results/colour_recipe.json`` and the auto run's sample grid (one row per
class) to ``benchmarks/results/colour_recipe_grid.png``. CPU heavy: run it with ``nice``.

For trying options on top of a recipe: ``--set KEY=VALUE`` (repeatable) sets a TrainConfig
field as its command-line flag would (the recipe keeps it, as it keeps a user's choice);
``--eval-at STEPS`` also evaluates the generator at those steps of the run, in memory (the
real-vs-real floor is computed once, at the end); ``--raw`` evaluates the raw generator beside
the exported moving average at each of those points. ``--extractor DIR`` judges by the domain
classifier saved in DIR, and trains and saves one there first when DIR holds none, so that
later runs reuse it.
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
from mnist_dir import add_mnist_dir, checked_mnist_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = ("class_accuracy", "fd", "precision", "recall", "coverage_mean")


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """``["lr_d=4e-4", "augment=translation"]`` as TrainConfig fields of the defaults' types."""
    import dataclasses

    from training.config import TrainConfig

    defaults = TrainConfig()
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise ValueError(f"--set takes KEY=VALUE with KEY a TrainConfig field, got {pair!r}")
        kind = type(getattr(defaults, key))
        if kind is bool:
            values[key] = text.strip().lower() in ("1", "true", "yes", "on")
        else:
            values[key] = kind(text.strip())
    return values


def _as_uint8(network: Any) -> Any:
    """A numpy generate function of a Keras generator (the contract's output mapping)."""

    def generate(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        x = np.asarray(network([z, labels], training=False), dtype=np.float32)
        return np.clip(np.round(x * 127.5 + 127.5), 0, 255).astype(np.uint8)

    return generate


class Judge:
    """The extractor and the real images' features, loaded on first use (then reused)."""

    def __init__(self, extractor_dir: Path, real: Any, num: int) -> None:
        self.extractor_dir, self.real, self.num = extractor_dir, real, num
        self._state: tuple[Any, Any] | None = None

    def load(self) -> tuple[Any, Any]:
        if self._state is None:
            from training.metrics.evaluate import reference_features
            from training.metrics.extractors import load_extractor

            extractor = load_extractor(f"classifier:{self.extractor_dir}", (32, 32, 3))
            reference = reference_features(self.real.images, self.real.labels, extractor)
            self._state = (extractor, reference)
        return self._state

    def metrics(self, network: Any, z_dim: int, num_classes: int) -> dict[str, Any]:
        """COLUMNS of a Keras generator's ``num`` samples (gan-eval's seeds and labels)."""
        from training.metrics.evaluate import EvalOptions, evaluate_generator

        extractor, reference = self.load()
        rows, _, _ = evaluate_generator(
            _as_uint8(network), z_dim, num_classes, reference, extractor, EvalOptions(num=self.num)
        )
        return {k: rows.get(k) for k in COLUMNS}


def step_evaluations(judge: Judge, steps: set[int], raw: bool) -> Any:
    """A callback that evaluates the EMA generator (and the raw one) at ``steps``."""
    import keras

    class StepEvaluations(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.found: dict[str, dict[str, Any]] = {}

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            step = int(self.model.step.numpy())
            if step not in steps:
                return
            gan = self.model
            nets = {"ema": gan.ema_generator, **({"raw": gan.generator} if raw else {})}
            for name, net in nets.items():
                row = judge.metrics(net, gan.config.z_dim, gan.num_classes)
                self.found[f"{step}-{name}"] = {"step": step, "generator": name, **row}
                cells = " ".join(f"{k}={v:.3f}" for k, v in row.items() if v is not None)
                print(f"step {step} {name}: {cells}", flush=True)

    return StepEvaluations()


def train_and_export(
    recipe: str,
    data: Path,
    minutes: float,
    workdir: Path,
    steps: int = 0,
    sets: dict[str, Any] | None = None,
    callbacks: list[Any] | None = None,
) -> dict[str, Any]:
    """One run as gan-train makes it (--recipe and the ``sets`` given), exported; returns its
    facts. ``steps`` > 0 is a step budget instead of ``minutes``."""
    from training.config import TrainConfig
    from training.export import export_model
    from training.loop import train

    sets = dict(sets or {})
    config = TrainConfig(
        dataset=f"folder:{data}", conditional=True, resolution=32, channels=3, recipe=recipe,
        explicit=tuple(sets), steps=steps, minutes=0.0 if steps else minutes, sample_every=0,
        checkpoint_every=0, log_every=100, name=recipe,
    ).replace(**sets)  # fmt: skip
    started = time.perf_counter()
    result = train(config, outdir=workdir / "runs", verbose=False, extra_callbacks=callbacks)
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
        "options": {
            k: options[k] for k in ("architecture", "g_width", "loss", "augment", *sorted(sets))
        },
        "raw_generator": result.gan.generator,
        "z_dim": result.gan.config.z_dim,
        "num_classes": result.gan.num_classes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training time per run")
    parser.add_argument(
        "--steps", type=int, default=0, help="a step budget per run instead of --minutes"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
        help="a TrainConfig field on top of the recipe, as its flag would set it (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--eval-at", default="", help="steps at which to evaluate too, comma-separated (in memory)"
    )
    parser.add_argument(
        "--raw", action="store_true", help="evaluate the raw generator beside the exported EMA"
    )
    parser.add_argument("--runs", default="classic,auto", help="recipes to train, in order")
    parser.add_argument("--num", type=int, default=2000, help="generated images per evaluation")
    parser.add_argument("--count", type=int, default=3000, help="training images")
    parser.add_argument(
        "--extractor", type=Path,
        help="a trained domain classifier to judge by (trained and saved there if DIR has none)",
    )  # fmt: skip
    add_mnist_dir(parser)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/colour_recipe.json")
    args = parser.parse_args(argv)
    checked_mnist_dir(parser, args)
    runs = args.runs.split(",")
    if not set(runs) <= {"classic", "auto"}:
        parser.error("--runs takes classic and/or auto")
    if args.steps < 0:
        parser.error("--steps must be 0 (use --minutes) or more")
    try:
        sets = parse_sets(args.sets)
        eval_at = {int(step) for step in args.eval_at.split(",") if step.strip()}
    except ValueError as error:
        parser.error(str(error))

    from recoloured_mnist import write_dataset

    from training.metrics.domain_classifier import INFO_FILE, train_domain_classifier
    from training.metrics.evaluate import EvalOptions, evaluate_model_dir
    from training.metrics.extractors import load_extractor
    from training.metrics.real_images import load_real_images

    workdir = Path(tempfile.mkdtemp(prefix="colour-recipe-"))
    data = workdir / "data"
    write_dataset(args.mnist_dir, data, args.count, seed=0)
    extractor_dir = args.extractor or workdir / "extractor"
    if not (extractor_dir / INFO_FILE).exists():
        judge_data = workdir / "judge-data"
        write_dataset(args.mnist_dir, judge_data, 10_000, seed=1)  # other colours, more digits
        print("training the judge (a domain classifier on 10,000 other recoloured digits)")
        train_domain_classifier(load_real_images(f"folder:{judge_data}", 32, 3), extractor_dir)
    extractor = load_extractor(f"classifier:{extractor_dir}", (32, 32, 3))
    real = load_real_images(f"folder:{data}", 32, 3)
    options = EvalOptions(num=args.num)
    judge = Judge(extractor_dir, real, args.num)

    report: dict[str, Any] = {
        "cpu": cpu_model(),
        "minutes_per_run": 0.0 if args.steps else args.minutes,
        "steps_per_run": args.steps or None,
        "set": sets,
        "num_generated": args.num,
        "extractor_accuracy": extractor.info.get("heldout_accuracy"),
        "rows": {},
    }
    floor: dict[str, Any] = {}
    ceiling: dict[str, Any] = {}
    for recipe in runs:
        evaluations = step_evaluations(judge, eval_at, args.raw)
        run = train_and_export(recipe, data, args.minutes, workdir, args.steps, sets, [evaluations])
        evaluation = evaluate_model_dir(
            run["version_dir"], real.images, real.labels, extractor, options
        )
        rows = evaluation["rows"]
        raw = run.pop("raw_generator")
        z_dim, num_classes = run.pop("z_dim"), run.pop("num_classes")
        report["rows"][recipe] = {
            **{k: v for k, v in run.items() if k not in ("version_dir", "grid")},
            **{k: rows["model"].get(k) for k in COLUMNS},
        }
        if args.raw:
            report["rows"][f"{recipe} (raw G)"] = {
                "steps": run["steps"],
                **judge.metrics(raw, z_dim, num_classes),
            }
        for found in evaluations.found.values():
            name = f"{recipe} at step {found['step']}" + (
                " (raw G)" if found["generator"] == "raw" else ""
            )
            report["rows"][name] = {k: found[k] for k in ("step", *COLUMNS)}
        floor = {k: rows["real_vs_real"].get(k) for k in COLUMNS}
        ceiling = {k: rows["untrained"].get(k) for k in COLUMNS}
        if recipe == "auto":
            grid_out = args.out.with_name(f"{args.out.stem}_grid.png")
            grid_out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run["grid"], grid_out)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**report, "floor": floor, "ceiling": ceiling}, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)

    budget = f"{args.steps:,} steps" if args.steps else f"{args.minutes:g} minutes"
    extra = "".join(f", --set {k}={v}" for k, v in sets.items())
    print(f"\n{args.count} recoloured digits, 32x32x3, {budget} of training per run{extra}, "
          f"{args.num} samples; CPU: {report['cpu']}")  # fmt: skip
    print("| run | steps | class acc | FD | precision | recall | cov mean |")
    print("| --- | --- | --- | --- | --- | --- | --- |")

    def line(name: str, row: dict[str, Any], steps: str = "") -> None:
        cells = [f"{row[k]:.3f}" if isinstance(row.get(k), float) else "-" for k in COLUMNS]
        print(f"| {name} | {steps} | " + " | ".join(cells) + " |")

    for name, row in report["rows"].items():
        line(f"`--recipe {name}`", row, str(row.get("steps", row.get("step", ""))))
    line("floor: real vs real", floor)
    line("ceiling: untrained G", ceiling)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
