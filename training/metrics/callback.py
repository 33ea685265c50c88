"""Metrics during training: a Keras callback for ``gan-train --eval-every N``.

Usage (the training loop adds it when ``config.eval_every`` > 0)::

    from training.metrics.callback import EvalCallback, last_eval_metrics
    callback = EvalCallback(run_dir, every=2000, images=real.images, labels=real.labels)
    gan.fit(dataset, callbacks=[..., callback])
    metrics = callback.last or last_eval_metrics(run_dir)   # what export writes to model.json

Every ``every`` generator steps, and at the end of training, it draws ``num`` images from the
model's EMA generator (seeds 0..num-1, labels cycling through the classes, as ``gan-eval`` does),
computes FD, KID, precision/recall and the class metrics against the real images' features, and
appends one record ``{"step", "images_seen", "eval/fd", ...}`` to the run's ``metrics.jsonl`` and
the same scalars to TensorBoard. The real features are computed once, at the start. With the
default ``num`` of 2000 the FD is biased upward against ``gan-eval``'s 10,000-sample figure:
compare it within a run, and use ``gan-eval`` for the final number. The extractor is the
bundled MNIST classifier unless ``$GAN_EVAL_EXTRACTOR`` names another (as ``gan-eval --extractor``
does: ``classifier:DIR``, ``inception:WEIGHTS``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from training.metrics.evaluate import EvalOptions, Reference, evaluate_generator
from training.metrics.extractors import Extractor, ExtractorError, load_extractor

EVAL_PREFIX = "eval/"
EXTRACTOR_ENV = "GAN_EVAL_EXTRACTOR"


class EvalCallback(keras.callbacks.Callback):
    """Computes the evaluation metrics every ``every`` steps; ``last`` keeps the latest result.

    The model must expose ``ema_generator`` (or ``generator``), ``config.z_dim``, ``step`` and
    ``images_seen`` (as ``training.gan`` does).
    """

    def __init__(
        self,
        run_dir: Path,
        every: int,
        images: np.ndarray,
        labels: np.ndarray | None,
        num_classes: int = 0,
        extractor: str | Extractor | None = None,
        num: int = 2000,
    ) -> None:
        super().__init__()
        self.path = run_dir / "metrics.jsonl"
        self.tensorboard_dir = run_dir / "tensorboard"
        self.every = every
        self.images, self.labels = images, labels
        self.num_classes = num_classes
        self.extractor_spec = extractor or os.environ.get(EXTRACTOR_ENV, "auto")
        self.options = EvalOptions(num=num, kid_subset_size=min(1000, num), kid_subsets=20)
        self.last: dict[str, Any] | None = None
        self.last_step = -1
        self._extractor: Extractor | None = None
        self._reference: Reference | None = None
        self._writer: Any = None
        # Load the extractor and the real features now: a bad setup fails before training does.
        try:
            self._prepare()
        except ExtractorError as exc:
            raise ExtractorError(
                f"--eval-every: {exc} (gan-train takes the extractor from {EXTRACTOR_ENV}, "
                "e.g. classifier:DIR or inception:WEIGHTS)"
            ) from exc

    def _prepare(self) -> tuple[Extractor, Reference]:
        if self._extractor is None or self._reference is None:
            spec = self.extractor_spec
            shape = self.images.shape[1:]
            self._extractor = (
                load_extractor(spec, (shape[0], shape[1], shape[2]))
                if isinstance(spec, str)
                else spec
            )
            self._reference = Reference(self._extractor(self.images), self.labels)
        return self._extractor, self._reference

    def evaluate(self) -> dict[str, Any]:
        """Measure the current generator now; also records it (JSONL, TensorBoard, ``last``)."""
        import tensorflow as tf

        extractor, reference = self._prepare()
        generator = getattr(self.model, "ema_generator", None) or self.model.generator

        def generate(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
            x = np.asarray(generator([z, labels], training=False), dtype=np.float32)
            return np.clip(np.round(x * 127.5 + 127.5), 0, 255).astype(np.uint8)

        started = time.perf_counter()
        metrics, _, _ = evaluate_generator(
            generate,
            int(self.model.config.z_dim),
            self.num_classes,
            reference,
            extractor,
            self.options,
        )
        step = int(self.model.step.numpy())
        scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        record: dict[str, Any] = {
            "step": step,
            "images_seen": int(self.model.images_seen.numpy()),
            **{EVAL_PREFIX + k: v for k, v in metrics.items()},
            EVAL_PREFIX + "extractor": extractor.name,
            EVAL_PREFIX + "seconds": time.perf_counter() - started,
            "time": time.time(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.tensorboard_dir))
        with self._writer.as_default(step=step):
            for key, value in scalars.items():
                if not key.startswith("num_"):
                    tf.summary.scalar(EVAL_PREFIX + key, value)
        self._writer.flush()
        self.last = {**metrics, "step": step, "extractor": extractor.name}
        self.last_step = step
        return self.last

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = int(self.model.step.numpy())
        if self.every > 0 and step % self.every == 0 and step != self.last_step:
            self.evaluate()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if int(self.model.step.numpy()) != self.last_step:
            self.evaluate()


def last_eval_metrics(run_dir: Path) -> dict[str, Any]:
    """The latest evaluation record of a run's ``metrics.jsonl`` (prefix stripped), or {}."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return {}
    last: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash; earlier records still count
        if any(key.startswith(EVAL_PREFIX) for key in record):
            last = record
    result = {k[len(EVAL_PREFIX) :]: v for k, v in last.items() if k.startswith(EVAL_PREFIX)}
    if result:
        result["step"] = last.get("step")
    return result
