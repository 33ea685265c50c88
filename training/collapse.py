"""Mode collapse, reported while training rather than discovered in the samples afterwards.

Usage (``training.loop`` adds it on the chief; it checks whenever a sample grid is written)::

    watch = CollapseWatch(run_dir, every=500, real_images=data.images, num_classes=10,
                          start_after=1000)

Two measures of the EMA generator on fixed seeds, each a ratio to what the real images show, so
that they read the same on any data set:

- ``collapse/diversity``: the mean distance between images of different seeds (same class)
  over the mean distance between real images. Near 0: every seed gives the same picture.
- ``collapse/label_effect`` (conditional models): the mean distance between the images of one
  seed in different classes over the mean distance between images of different seeds. Near 0:
  the class label is ignored (every class row of the sample grid is the same picture).

Both go to ``metrics.jsonl`` (and TensorBoard); below :data:`MIN_DIVERSITY` or
:data:`MIN_LABEL_EFFECT`, after ``start_after`` steps (a freshly initialised generator varies
little), the run prints a warning with the options worth trying and records it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gan_contract.seeds import seeds_to_z
from training.callbacks import TrainingClock

MIN_DIVERSITY = 0.25
START_FRACTION = 0.2  # of a time budget, before which no warning is given
MIN_LABEL_EFFECT = 0.2
SEEDS = 16  # seeds per class measured
CLASSES = 4  # classes measured (conditional models)
KNOBS = (
    "try --recipe auto (gan-train's default), --augment color,translation,cutout (DiffAugment: "
    "small data sets), with classes --diversity-weight 1 --diversity-space features (mode "
    "seeking in D's features), --r1-gamma 1, a lower --lr-d, or more images"
)
LABEL_KNOBS = (
    "try --recipe auto (gan-train's default), --g-conditioning batchnorm with --class-weight 1 "
    "(the class enters every layer of G, and D learns the classes from the real images), or "
    "more steps"
)

Generate = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean L2 distance between the rows of ``a`` and of ``b`` (flattened images)."""
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return float(np.sqrt(np.maximum(squared, 0.0)).mean())


def _spread(images: np.ndarray) -> float:
    """Mean distance between different images of one set (the diagonal left out)."""
    n = len(images)
    return _mean_distance(images, images) * n / max(n - 1, 1)


def collapse_measures(
    generate: Generate, real: np.ndarray, num_classes: int, z_dim: int
) -> dict[str, float]:
    """The two ratios above for ``generate(z, labels)`` -> images in [-1, 1] and ``real``
    images (uint8 [N, H, W, C]); ``collapse/label_effect`` only for a conditional model."""
    reference = _spread(real.astype(np.float64) / 127.5 - 1.0)
    z = seeds_to_z(range(SEEDS), z_dim)
    classes = list(range(min(num_classes, CLASSES))) or [0]
    images = [
        np.asarray(generate(z, np.full(SEEDS, c, np.int32)), np.float64).reshape(SEEDS, -1)
        for c in classes
    ]
    across_seeds = float(np.mean([_spread(batch) for batch in images]))
    measures = {"collapse/diversity": across_seeds / max(reference, 1e-12)}
    if num_classes > 1:
        # The same seed in two classes: row i against row i only.
        pairs = [
            float(np.linalg.norm(images[i] - images[j], axis=1).mean())
            for i in range(len(classes))
            for j in range(i + 1, len(classes))
        ]
        measures["collapse/label_effect"] = float(np.mean(pairs)) / max(across_seeds, 1e-12)
    return measures


def collapse_warnings(measures: dict[str, float]) -> list[str]:
    """Plain-language warnings for the measures below their thresholds."""
    warnings = []
    diversity = measures.get("collapse/diversity")
    if diversity is not None and diversity < MIN_DIVERSITY:
        warnings.append(
            f"mode collapse: images of different seeds differ {diversity:.2f} times as much as "
            f"real images do (below {MIN_DIVERSITY}); {KNOBS}"
        )
    label_effect = measures.get("collapse/label_effect")
    if label_effect is not None and label_effect < MIN_LABEL_EFFECT:
        warnings.append(
            f"the class label is ignored: one seed in different classes changes the image "
            f"{label_effect:.2f} times as much as another seed does (below {MIN_LABEL_EFFECT}); "
            f"{LABEL_KNOBS}"
        )
    return warnings


class CollapseWatch(keras.callbacks.Callback):
    """Measures collapse every ``every`` steps (0: only at the end) and warns past
    ``start_after`` steps (None: no step limit) or a fifth of ``clock``'s time budget; records
    go to ``metrics.jsonl``."""

    def __init__(
        self,
        run_dir: Path,
        every: int,
        real_images: np.ndarray,
        num_classes: int,
        start_after: int | None,
        clock: TrainingClock | None = None,
        count: int = 64,
    ) -> None:
        super().__init__()
        self.path = run_dir / "metrics.jsonl"
        self.every = every
        order = np.random.RandomState(0).permutation(len(real_images))[:count]
        self.real = real_images[np.sort(order)]
        self.num_classes = num_classes
        self.start_after = start_after
        self.clock = clock
        self.warnings: list[str] = []
        self._last_step: int | None = None

    def check(self, step: int) -> dict[str, Any]:
        """Measure now, append the record, print any warning; returns the record."""

        def generate(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
            # A direct call, as SampleGrid does (no predict() collectives on a multi-worker chief).
            return np.asarray(self.model.ema_generator([z, labels], training=False))

        measures = collapse_measures(
            generate, self.real, self.num_classes, int(self.model.config.z_dim)
        )
        record: dict[str, Any] = {"step": step, **measures}
        if self.past_start(step):
            found = collapse_warnings(measures)
            if found:
                record["collapse/warning"] = found
                self.warnings += found
                for text in found:
                    # Through tqdm when the progress bar is drawing, so the line is not torn.
                    _write(f"gan-train: warning at step {step}: {text}")
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        self._last_step = step
        return record

    def past_start(self, step: int) -> bool:
        """Whether warnings are due: past ``start_after`` steps, or past a fifth of the clock's
        time budget (a run ends at whichever limit it reaches first)."""
        by_steps = self.start_after is not None and step >= self.start_after
        return by_steps or (self.clock is not None and self.clock.fraction() >= START_FRACTION)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = int(self.model.step.numpy())
        if self.every and step % self.every == 0:
            self.check(step)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        step = int(self.model.step.numpy())
        if step != self._last_step:  # not measured at this step yet
            self.check(step)


def _write(line: str) -> None:
    try:
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)
    except ImportError:
        print(line, file=sys.stderr)
