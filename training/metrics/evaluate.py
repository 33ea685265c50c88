"""A whole evaluation: a generator's metrics beside the real-vs-real floor and the ceiling.

Usage::

    from training.metrics.evaluate import EvalOptions, evaluate_model_dir, format_table
    report = evaluate_model_dir(Path("models/mnist"), real, extractor, EvalOptions(num=10_000))
    print(format_table(report))

Rows of the report:

- ``model``: ``num`` generated images (seeds 0..num-1 by the seed convention, psi = 1, labels
  cycling through the classes) against every real image;
- ``model_matched``: the first ``n`` of those against the real half B, where ``n`` =
  min(num, half the real images): exactly the floor's sizes, so the two rows compare directly;
- ``real_vs_real`` (the floor): ``n`` real images of half A against the disjoint half B, the best
  any generator can score at those sample sizes;
- ``untrained`` (the ceiling): a freshly initialised generator of the same architecture, rebuilt
  from ``model.json``'s ``training_options``, the worst.

Class accuracy and per-class coverage appear for conditional models when the extractor is a
classifier over the same number of classes. All statistics are float64 (FD, KID); distances for
precision and recall are float32 in chunks.

``report["warnings"]`` says where the sample is too small for a figure to mean much (FD from fewer
images than ten times the feature dimensions, a KID within its spread over subsets, coverage and
recall from a few hundred images per class); ``gan-eval`` prints them under the table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gan_contract.model_card import ModelCardError, read_model_card
from gan_contract.seeds import seeds_to_z
from training.metrics.classification import class_accuracy, per_class_coverage
from training.metrics.domain_classifier import weakness_warning
from training.metrics.extractors import Extractor, Features
from training.metrics.frechet import frechet_distance
from training.metrics.kid import kernel_distance
from training.metrics.precision_recall import precision_recall
from training.sampling import ModelDirError, resolve_version_dir

# (z float32 [B, z_dim], labels int32 [B]) -> uint8 images [B, H, W, C]
GenerateFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

ROWS = ("model", "model_matched", "real_vs_real", "untrained")
ROW_TITLES = {
    "model": "model",
    "model_matched": "model, floor's sizes",
    "real_vs_real": "floor: real vs real",
    "untrained": "ceiling: untrained G",
}


@dataclass(frozen=True)
class EvalOptions:
    """Sample sizes and estimator settings."""

    num: int = 10_000
    k: int = 3
    kid_subset_size: int = 1000
    kid_subsets: int = 100
    batch_size: int = 250
    seed: int = 0  # the real halves and the KID subsets


@dataclass(frozen=True)
class Reference:
    """The real images' features, computed once (the training callback reuses them)."""

    features: Features
    labels: np.ndarray | None


def latents(num: int, z_dim: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """z for seeds 0..num-1 (``RandomState(seed).randn(z_dim)``) and labels cycling the classes."""
    z = seeds_to_z(range(num), z_dim)
    labels = (np.arange(num) % num_classes if num_classes > 0 else np.zeros(num)).astype(np.int32)
    return z, labels


def generate_images(
    generate: GenerateFn, z_dim: int, num_classes: int, num: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """All ``num`` images by the seed convention, in batches; returns (images, labels)."""
    z, labels = latents(num, z_dim, num_classes)
    parts = [
        np.asarray(generate(z[i : i + batch_size], labels[i : i + batch_size]))
        for i in range(0, num, batch_size)
    ]
    return np.concatenate(parts), labels


def compute_metrics(
    real: Features,
    real_labels: np.ndarray | None,
    fake: Features,
    fake_labels: np.ndarray | None,
    num_classes: int,
    options: EvalOptions,
) -> dict[str, Any]:
    """Every metric of ``fake`` against ``real``; class metrics when labels and logits allow."""
    kid, kid_std = kernel_distance(
        real.features, fake.features, options.kid_subset_size, options.kid_subsets, options.seed
    )
    precision, recall = precision_recall(real.features, fake.features, k=options.k)
    result: dict[str, Any] = {
        "fd": frechet_distance(real.features, fake.features),
        "kid": kid,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "num_generated": int(fake.features.shape[0]),
        "num_real": int(real.features.shape[0]),
    }
    if num_classes > 0 and fake.logits is not None and fake_labels is not None:
        result["class_accuracy"] = class_accuracy(fake.logits, fake_labels)
        if real_labels is not None:
            coverage = per_class_coverage(
                real.features, real_labels, fake.features, fake_labels, num_classes, k=options.k
            )
            result["coverage_per_class"] = coverage
            result["coverage_mean"] = float(np.mean(coverage))
            result["coverage_min"] = float(np.min(coverage))
    return result


def halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of 0..n-1, a fixed function of ``seed``."""
    order = np.random.RandomState(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 : 2 * (n // 2)])


def _subset(features: Features, index: np.ndarray) -> Features:
    logits = None if features.logits is None else features.logits[index]
    return Features(features.features[index], logits)


def load_model_json(version_dir: Path) -> dict[str, Any]:
    """The validated ``model.json`` of ``version_dir`` (:mod:`gan_contract.model_card`)."""
    try:
        return read_model_card(version_dir)
    except ModelCardError as error:
        raise ModelDirError(str(error)) from error


def saved_model_generator(version_dir: Path) -> GenerateFn:
    """The exported ``generate`` signature at psi = 1, as a numpy function."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(version_dir))
    signature = loaded.signatures["generate"]
    psi = tf.constant(1.0, tf.float32)

    def generate(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        out = signature(z=tf.constant(z), labels=tf.constant(labels), truncation_psi=psi)
        _ = loaded  # keep the loaded object (and its variables) alive with the closure
        return np.asarray(out["images"].numpy())

    return generate


def untrained_generator(meta: dict[str, Any], seed: int = 0) -> GenerateFn:
    """A freshly initialised generator of the model's architecture (from its training options)."""
    import keras

    from training.config import TrainConfig
    from training.nets.architectures import build_networks

    config = TrainConfig.from_dict(meta["training_options"])
    keras.utils.set_random_seed(seed)
    generator, _ = build_networks(config, num_classes=int(meta.get("num_classes", 0)))

    def generate(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        x = np.asarray(generator([z, labels], training=False), dtype=np.float32)
        # The contract's output mapping for a tanh generator.
        return np.clip(np.round(x * 127.5 + 127.5), 0, 255).astype(np.uint8)

    return generate


def reference_features(
    images: np.ndarray, labels: np.ndarray | None, extractor: Extractor
) -> Reference:
    return Reference(extractor(images), labels)


def evaluate_generator(
    generate: GenerateFn,
    z_dim: int,
    num_classes: int,
    reference: Reference,
    extractor: Extractor,
    options: EvalOptions,
) -> tuple[dict[str, Any], Features, np.ndarray]:
    """One generator's metrics against ``reference``; also returns its features and labels."""
    images, labels = generate_images(generate, z_dim, num_classes, options.num, options.batch_size)
    fake = extractor(images)
    classes = num_classes if extractor.num_classes == num_classes else 0
    metrics = compute_metrics(reference.features, reference.labels, fake, labels, classes, options)
    return metrics, fake, labels


def evaluate_model_dir(
    model_dir: Path,
    real_images: np.ndarray,
    real_labels: np.ndarray | None,
    extractor: Extractor,
    options: EvalOptions,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """The full report (see the module doc) for an exported model."""
    version_dir = resolve_version_dir(model_dir)
    meta = load_model_json(version_dir)
    z_dim, num_classes = int(meta["z_dim"]), int(meta.get("num_classes", 0))
    classes = num_classes if extractor.num_classes == num_classes else 0
    started = time.perf_counter()
    log(f"features of {real_images.shape[0]} real images")
    reference = reference_features(real_images, real_labels, extractor)
    rows: dict[str, Any] = {}

    log(f"generating {options.num} images with {version_dir}")
    rows["model"], fake, fake_labels = evaluate_generator(
        saved_model_generator(version_dir), z_dim, num_classes, reference, extractor, options
    )
    half_a, half_b = halves(real_images.shape[0], options.seed)
    # The floor at the model's sample size (up to half the real images): a random part of half A.
    n_floor = min(options.num, half_a.size)
    half_a = np.sort(np.random.RandomState(options.seed).permutation(half_a)[:n_floor])
    real_b = _subset(reference.features, half_b)
    labels_a = None if real_labels is None else real_labels[half_a]
    labels_b = None if real_labels is None else real_labels[half_b]
    log(f"the model and the real-vs-real floor at equal sizes ({n_floor} / {half_b.size})")
    rows["model_matched"] = compute_metrics(
        real_b, labels_b, _subset(fake, np.arange(n_floor)), fake_labels[:n_floor], classes, options
    )
    rows["real_vs_real"] = compute_metrics(
        real_b, labels_b, _subset(reference.features, half_a), labels_a, classes, options
    )
    log("the untrained ceiling")
    try:
        rows["untrained"], _, _ = evaluate_generator(
            untrained_generator(meta, options.seed),
            z_dim,
            num_classes,
            reference,
            extractor,
            options,
        )
    except (ImportError, KeyError, TypeError, ValueError) as exc:
        # Older exports may lack training options this code understands; the rest still stands.
        rows["untrained"] = {"unavailable": f"{type(exc).__name__}: {exc}"}
    return {
        "model_dir": str(version_dir),
        "model": {k: meta.get(k) for k in ("name", "version", "dataset", "steps", "architecture")},
        "extractor": {"name": extractor.name, **extractor.info},
        "options": asdict(options),
        "rows": rows,
        "warnings": [
            *sample_size_warnings(rows, fake.features.shape[1], classes, options),
            *filter(None, [weakness_warning(extractor.info)]),
        ],
        "seconds": round(time.perf_counter() - started, 1),
    }


# Below these sizes a figure depends more on the sample size than on the model.
MIN_IMAGES_PER_CLASS = 500  # per-class coverage and recall need many images per class
FD_DIMS_FACTOR = 10  # FD's covariance estimate needs N well above the feature dimension


def sample_size_warnings(
    rows: dict[str, Any], feature_dim: int, num_classes: int, options: EvalOptions
) -> list[str]:
    """Plain-language warnings where the sample sizes are too small for a figure to mean much."""
    warnings: list[str] = []
    model, floor = rows["model"], rows["real_vs_real"]
    n = int(model["num_generated"])
    n_floor = int(floor["num_generated"])
    if n_floor < FD_DIMS_FACTOR * feature_dim:
        warnings.append(
            f"FD at N={n_floor} (under {FD_DIMS_FACTOR}x the {feature_dim} feature dimensions) is "
            "biased upward: compare the model with the floor only at the same sizes (the "
            '"floor\'s sizes" row), never with an FD measured at another N'
        )
    if n_floor < options.kid_subset_size:
        warnings.append(
            f"KID subsets hold only {n_floor} images (fewer than {options.kid_subset_size}): "
            "its spread over subsets is large"
        )
    for key in ("model", "model_matched"):
        kid, spread = rows[key]["kid"], rows[key]["kid_std"]
        if kid <= spread:
            warnings.append(
                f"the {ROW_TITLES[key]} row's KID ({kid:.3g} ± {spread:.2g}) is within its "
                "spread over subsets (a negative value is noise): at this N it does not tell "
                "the model from real data"
            )
            break
    if num_classes and n // num_classes < MIN_IMAGES_PER_CLASS:
        warnings.append(
            f"coverage and recall grow with the number of generated images ({n // num_classes} "
            f"per class here, under {MIN_IMAGES_PER_CLASS}): read them against the floor at the "
            "same sizes, not against a larger run"
        )
    elif not num_classes and n < MIN_IMAGES_PER_CLASS * 10:
        warnings.append(
            f"recall grows with the number of generated images ({n} here): read it against the "
            "floor at the same sizes, not against a larger run"
        )
    return warnings


COLUMNS = (
    ("fd", "FD", "{:.4g}"),
    ("kid", "KID ± std", "{:.3g}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("class_accuracy", "class acc", "{:.2%}"),
    ("coverage_mean", "cov mean", "{:.3f}"),
    ("coverage_min", "cov min", "{:.3f}"),
)


def format_table(report: dict[str, Any]) -> str:
    """A Markdown table: one row per generator (model, floor, ceiling), one column per metric."""
    rows = report["rows"]
    present = [c for c in COLUMNS if any(c[0] in r for r in rows.values())]
    header = ["", *[title for _, title, _ in present], "n gen / real"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in ROWS:
        row = rows.get(key)
        if row is None:
            continue
        if "unavailable" in row:
            cells = ["n/a"] * len(present) + [row["unavailable"]]
        else:
            cells = []
            for name, _, fmt in present:
                value = row.get(name)
                cell = "-" if value is None else fmt.format(value)
                if name == "kid" and "kid_std" in row:
                    # The spread over subsets: differences below it are noise.
                    cell += f" ± {row['kid_std']:.2g}"
                cells.append(cell)
            cells.append(f"{row['num_generated']} / {row['num_real']}")
        lines.append("| " + " | ".join([ROW_TITLES[key], *cells]) + " |")
    return "\n".join(lines)
