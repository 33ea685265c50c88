"""Training on partly observed MNIST: complete data vs 50% pixel dropout vs a 14x14 missing block,
each trained with the AmbientGAN-style discriminator and with the naive zero-fill baseline.

Usage::

    nice -n 10 python benchmarks/missing_data_training.py --steps 1500 [--num 5000]
    python benchmarks/missing_data_training.py --only complete,dropout-ambient --steps 200

Every run has the same options and steps (the bundled model's architecture; ``--steps`` and
``--batch-size`` as given); only the corruption and the mask mode differ. Each EMA generator is
evaluated as ``gan-eval`` does (bundled MNIST classifier: class accuracy, FD, precision, recall)
against the *complete* training images. Prints a table and writes
benchmarks/results/missing_data_training.json. CPU heavy: run it with ``nice``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_model  # this folder is on sys.path: benchmarks run as scripts

RUNS = {
    "complete": ("", "ambient"),
    "dropout-ambient": ("dropout:0.5", "ambient"),
    "dropout-zero-fill": ("dropout:0.5", "zero-fill"),
    "block-ambient": ("block:14", "ambient"),
    "block-zero-fill": ("block:14", "zero-fill"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num", type=int, default=5000, help="generated images per evaluation")
    parser.add_argument(
        "--eval-every", type=int, default=0,
        help="also evaluate every N steps (2,000 samples) and record each run's curve",
    )  # fmt: skip
    parser.add_argument("--only", default=",".join(RUNS), help="comma-separated runs")
    parser.add_argument("--dataset", default="mnist-idx:../shared/data/mnist")
    parser.add_argument(
        "--recipe",
        choices=("classic", "auto"),
        default="classic",
        help="classic: the bundled model's options; auto: gan-train's automatic recipe "
        "(z_dim and batch size kept)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/missing_data_training.json")
    )
    args = parser.parse_args()

    from training.config import TrainConfig
    from training.loop import train
    from training.metrics.evaluate import EvalOptions, evaluate_generator, reference_features
    from training.metrics.extractors import load_extractor
    from training.sampling import to_uint8

    extractor = load_extractor("auto", (28, 28, 1))
    options = EvalOptions(num=args.num)
    base = TrainConfig(
        dataset=args.dataset, resolution=28, conditional=True, z_dim=64, steps=args.steps,
        batch_size=args.batch_size, sample_every=0, checkpoint_every=0, log_every=100,
        recipe=args.recipe, explicit=("z_dim", "batch_size"), eval_every=args.eval_every,
    )  # fmt: skip
    reference: Any = None
    rows: list[dict[str, Any]] = []
    outdir = Path(tempfile.mkdtemp(prefix="missing-data-runs-"))
    for name in args.only.split(","):
        corrupt, mode = RUNS[name]
        config = base.replace(corrupt=corrupt, mask_mode=mode, name=name)
        started = time.perf_counter()
        result = train(config, outdir=outdir, verbose=False)
        seconds = time.perf_counter() - started
        if reference is None:  # the complete images: what every generator should learn
            reference = reference_features(result.data.images, result.data.labels, extractor)
        gan = result.gan

        def generate(z: np.ndarray, labels: np.ndarray, gan: Any = gan) -> np.ndarray:
            return to_uint8(np.asarray(gan.ema_generator([z, labels], training=False)))

        metrics, _, _ = evaluate_generator(
            generate, config.z_dim, result.data.num_classes, reference, extractor, options
        )
        observed = json.loads((result.run_dir / "run.json").read_text())["observed_fraction"]
        row = {
            "run": name,
            "corrupt": corrupt or "none",
            "mask_mode": mode,
            "observed_fraction": observed,
            "steps": int(gan.step.numpy()),
            "train_seconds": round(seconds, 1),
            **{k: metrics[k] for k in ("class_accuracy", "fd", "precision", "recall")},
            "curve": curve(result.run_dir),
        }
        rows.append(row)
        print(f"{name:18s} observed {observed:.3f}  acc {row['class_accuracy']:.3f}  "
              f"FD {row['fd']:8.3f}  P {row['precision']:.3f}  R {row['recall']:.3f}  "
              f"({row['steps']} steps, {seconds:.0f} s)", flush=True)  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result_json = {
            "cpu": cpu_model(), "num_generated": args.num, "recipe": args.recipe, "rows": rows
        }  # fmt: skip
        args.out.write_text(json.dumps(result_json, indent=2) + "\n")
    print(f"CPU: {cpu_model()}; wrote {args.out}")


def curve(run_dir: Path) -> list[dict[str, float]]:
    """The run's ``--eval-every`` evaluations: step, class accuracy and FD (empty without)."""
    points = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "eval/class_accuracy" in record:
            points.append({
                "step": record["step"],
                "class_accuracy": round(record["eval/class_accuracy"], 4),
                "fd": round(record["eval/fd"], 3),
            })  # fmt: skip
    return points


if __name__ == "__main__":
    main()
