"""How well the ``complete`` signature fills in missing pixels, against two baselines.

Usage::

    python benchmarks/completion_quality.py MODEL_VERSION_DIR [--count 1000] [--steps 0,50]

The model must have the ``complete`` signature (``gan-export MODEL_DIR --name NAME
--encoder-steps N`` adds it; the bundled ``models/mnist/2`` has it). The test images are the ones
the model held out from training (``holdout`` of its training options, the same split as the
export's calibration). Cases: bottom half missing, right half missing, 60% of the pixels missing
at random. Per case and method it reports the accuracy of the bundled MNIST classifier on the
completed images against the true labels, the mean absolute error on the missing pixels (grey
levels, 0-255) and, where a method chooses the class, how often it chose the true one.

Methods: ``complete:N`` (encoder guess + N optimisation steps; for a conditional model the class
is *not* given: every class is completed and the one of the lowest ``class_cost`` kept, exactly
as ``POST /complete`` does without ``class_label``), ``complete:N+label`` (the true class given:
an upper bound), ``mean fill`` (missing pixels from the mean training image), ``nearest``
(missing pixels from the training image closest on the observed pixels). Two other ways of
choosing the class from the same completions, for comparison: ``class by fit`` (the smallest
error on the observed pixels: what ``/complete`` did before ``class_cost``) and ``class by fit
and D`` (that error, less the discriminator's logit of the completed image in its class, weighed
by ``D_WEIGHT``). Prints a table, writes JSON to benchmarks/results/completion_quality.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_model  # this folder is on sys.path: benchmarks run as scripts

CASES = ("bottom half", "right half", "60% random")
# "class by fit and D": the observed error in [-1, 1] units (grey levels / 127.5) less this
# times D's logit. Of the weights 0.003, 0.01, 0.03 and 0.1 tried on 300 held-out digits, every
# one chose the class worse than the fit alone once the latent was refined (0.003 the least).
D_WEIGHT = 0.01


def masks_for(case: str, count: int, side: int) -> np.ndarray:
    masks = np.ones((count, side, side), np.uint8)
    if case == "bottom half":
        masks[:, side // 2 :] = 0
    elif case == "right half":
        masks[:, :, side // 2 :] = 0
    else:
        masks = (np.random.RandomState(0).random_sample(masks.shape) >= 0.6).astype(np.uint8)
    return masks


def nearest_fill(queries: np.ndarray, masks: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Each query's missing pixels from the training image nearest on its observed pixels."""
    q = queries.reshape(len(queries), -1).astype(np.float32)
    m = masks.reshape(len(masks), -1).astype(np.float32)
    out = queries.copy().reshape(len(queries), -1)
    best_dist = np.full(len(q), np.inf, np.float32)
    best = np.zeros(len(q), np.int64)
    for start in range(0, len(train), 10_000):
        b = train[start : start + 10_000].reshape(-1, q.shape[1]).astype(np.float32)
        # |m*(q - b)|^2 = sum(m q^2) - 2 (m q).b + m.(b^2), for every pair at once.
        dist = (m * q * q).sum(1)[:, None] - 2.0 * (m * q) @ b.T + m @ (b * b).T
        index = dist.argmin(1)
        value = dist[np.arange(len(q)), index]
        better = value < best_dist
        best_dist[better], best[better] = value[better], index[better] + start
    chosen = train.reshape(len(train), -1)[best]
    out[m == 0] = chosen[m == 0]
    return out.reshape(queries.shape)


def run_complete(
    fn: Any, images: np.ndarray, masks: np.ndarray, labels: np.ndarray, steps: int
) -> dict[str, np.ndarray]:
    """The signature's outputs for every image, in batches of 100."""
    import tensorflow as tf

    outs: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(images), 100):
        out = fn(
            images=tf.constant(images[start : start + 100]),
            masks=tf.constant(masks[start : start + 100]),
            labels=tf.constant(labels[start : start + 100]),
            steps=tf.constant(steps),
        )
        for key, value in out.items():
            outs.setdefault(key, []).append(value.numpy())
    return {key: np.concatenate(parts) for key, parts in outs.items()}


def every_class(
    fn: Any, score: Any, images: np.ndarray, masks: np.ndarray, steps: int, classes: int
) -> dict[str, np.ndarray]:
    """Each image completed in each class: outputs [classes, N, ...], with D's logit of each
    completion in its class as ``d_logit``."""
    import tensorflow as tf

    per_class = []
    for label in range(classes):
        labels = np.full(len(images), label, np.int32)
        out = run_complete(fn, images, masks, labels, steps)
        logits = [
            score(images=tf.constant(out["images"][i : i + 500]),
                  labels=tf.constant(labels[i : i + 500]))["logits"].numpy()
            for i in range(0, len(images), 500)
        ]  # fmt: skip
        out["d_logit"] = np.concatenate(logits)
        per_class.append(out)
    return {key: np.stack([out[key] for out in per_class]) for key in per_class[0]}


def chosen(outputs: dict[str, np.ndarray], cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The completed images of the lowest ``cost`` [classes, N] per image, and those classes."""
    best = cost.argmin(axis=0)
    return outputs["images"][best, np.arange(cost.shape[1])], best


def print_table(rows: list[dict[str, Any]]) -> None:
    """The rows as docs/measurements.md shows them: one line per method, per case its
    accuracy, its error on the missing pixels and, where it chose the class, how often right."""
    methods = list(dict.fromkeys(row["method"] for row in rows))
    head = " | ".join(f"{case}: accuracy | {case}: MAE | {case}: class" for case in CASES)
    print(f"| method | {head} |\n|{' --- |' * (1 + 3 * len(CASES))}")
    for method in methods:
        cells = []
        for case in CASES:
            row = next((r for r in rows if r["method"] == method and r["case"] == case), None)
            if row is None:
                cells += ["", "", ""]
                continue
            found = row["class_found"]
            cells += [f"{row['accuracy']:.3f}", f"{row['missing_mae']:.1f}",
                      "" if found is None else f"{found:.3f}"]  # fmt: skip
        print(f"| {method} | {' | '.join(cells)} |")


def save_picture(
    path: Path, originals: np.ndarray, cases: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    """Rows: the originals, then per case the input (missing pixels grey) and the completion."""
    from PIL import Image

    rows = [originals]
    for masks, completed in cases.values():
        rows.append(np.where(masks[..., None] == 1, originals, np.uint8(128)))
        rows.append(completed)
    side = originals.shape[1]
    grid = np.zeros((len(rows) * (side + 2), len(originals) * (side + 2)), np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            top, left = r * (side + 2), c * (side + 2)
            grid[top : top + side, left : left + side] = image[..., 0]
    path.parent.mkdir(parents=True, exist_ok=True)
    size = (grid.shape[1] * 2, grid.shape[0] * 2)
    Image.fromarray(grid).resize(size, Image.Resampling.NEAREST).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a model version directory with `complete`")
    parser.add_argument("--count", type=int, default=1000, help="held-out images [1000]")
    parser.add_argument("--steps", default="0,50", help="optimisation steps to try [0,50]")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/completion_quality.json")
    )
    parser.add_argument(
        "--picture", type=Path, help="also write a before/after PNG of 10 images per case"
    )
    args = parser.parse_args()

    import tensorflow as tf

    from training.config import TrainConfig
    from training.loop import load_data
    from training.metrics.extractors import load_extractor

    info = json.loads((args.model / "model.json").read_text())
    config = TrainConfig.from_dict(info["training_options"])
    train, holdout = load_data(config)
    images = holdout.images[: args.count]
    assert holdout.labels is not None, "the benchmark needs a labelled dataset"
    truth = holdout.labels[: args.count].astype(np.int32)
    loaded = tf.saved_model.load(str(args.model))
    complete, score = loaded.signatures["complete"], loaded.signatures["score"]
    classifier = load_extractor("auto", images.shape[1:])
    num_classes = int(info["num_classes"])
    mean_image = np.round(train.images.astype(np.float64).mean(0)).astype(np.uint8)

    rows: list[dict[str, Any]] = []
    pictures: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def record(
        case: str,
        method: str,
        filled: np.ndarray,
        masks: np.ndarray,
        secs: float,
        classes: np.ndarray | None = None,
    ) -> None:
        logits = classifier(filled).logits
        assert logits is not None
        missing = masks[..., None].repeat(filled.shape[-1], -1) == 0
        diff = np.abs(filled.astype(np.float64) - images.astype(np.float64))[missing]
        row = {
            "case": case,
            "method": method,
            "accuracy": float(np.mean(logits.argmax(1) == truth)),
            "missing_mae": float(diff.mean()),
            "class_found": None if classes is None else float(np.mean(classes == truth)),
            "seconds": round(secs, 2),
        }
        rows.append(row)
        found = "" if classes is None else f"  class found {row['class_found']:.3f}"
        print(f"{case:12s} {method:32s} acc {row['accuracy']:.3f}  "
              f"MAE {row['missing_mae']:6.2f}{found}  {secs:7.1f} s", flush=True)  # fmt: skip

    for case in CASES:
        masks = masks_for(case, len(images), images.shape[1])
        t = time.perf_counter()
        filled = np.where(masks[..., None] == 1, images, mean_image[None])
        record(case, "mean fill", filled, masks, time.perf_counter() - t)
        t = time.perf_counter()
        filled = nearest_fill(images, masks, train.images)
        record(case, "nearest", filled, masks, time.perf_counter() - t)
        for steps in (int(s) for s in args.steps.split(",")):
            if not num_classes:
                t = time.perf_counter()
                zeros = np.zeros(len(images), np.int32)
                filled = run_complete(complete, images, masks, zeros, steps)["images"]
                record(case, f"complete:{steps}", filled, masks, time.perf_counter() - t)
                continue
            t = time.perf_counter()
            filled = run_complete(complete, images, masks, truth, steps)["images"]
            record(case, f"complete:{steps}+label", filled, masks, time.perf_counter() - t)
            pictures[case] = (masks[:10], filled[:10])
            t = time.perf_counter()
            out = every_class(complete, score, images, masks, steps, num_classes)
            secs = time.perf_counter() - t
            fit = out["observed_error"]
            for method, rule in (
                (f"complete:{steps}", out.get("class_cost", fit)),  # as POST /complete chooses
                (f"complete:{steps}, class by fit", fit),
                (f"complete:{steps}, class by fit and D", fit / 127.5 - D_WEIGHT * out["d_logit"]),
            ):
                filled, classes = chosen(out, rule)
                record(case, method, filled, masks, secs, classes)

    result = {
        "model": str(args.model),
        "count": len(images),
        "cpu": cpu_model(),
        "completion": info.get("completion", {}),
        "rows": rows,
    }
    print_table(rows)
    if args.picture is not None and pictures:
        save_picture(args.picture, images[:10], pictures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"CPU: {result['cpu']}; wrote {args.out}")


if __name__ == "__main__":
    main()
