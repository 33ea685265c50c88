"""Keras callbacks for the side effects of a run: progress, logs, samples, checkpoints, stopping.

Usage (``training.loop`` wires them; extra callbacks can be passed to ``train``)::

    callbacks = [
        StopGuard(checkpoints),                 # NaN/Inf and SIGINT/SIGTERM
        ProgressBar(total_steps=10_000),
        MetricsLogger(run_dir, every=50),
        TrackerReset(every=50),                 # after MetricsLogger, on every worker
        SampleGrid(run_dir, every=500, seeds=range(64), num_classes=10),
        CheckpointSaver(checkpoints, every=1000),
    ]

Every callback reads the step from ``model.step`` (restored by checkpoints), not from Keras'
batch index, so a resumed run logs and saves at the same steps as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gan_contract.grid import make_grid
from gan_contract.seeds import seeds_to_z
from training.sampling import save_png, to_uint8


class Checkpoints:
    """The run's ``tf.train.CheckpointManager`` plus the last good step (saves are atomic)."""

    def __init__(self, directory: Path, max_to_keep: int = 3, **objects: Any) -> None:
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(directory), max_to_keep=max_to_keep
        )
        self.last_saved: str | None = self.manager.latest_checkpoint

    def restore_latest(self) -> str | None:
        """Restore the newest checkpoint, if any; returns its path."""
        latest = self.manager.latest_checkpoint
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        return latest

    def save(self, step: int) -> str:
        if self.last_saved and self.last_saved.endswith(f"-{step}"):
            return self.last_saved  # already saved at this step
        self.last_saved = self.manager.save(checkpoint_number=step)
        return self.last_saved


class StopGuard(keras.callbacks.Callback):
    """Stops training on a non-finite loss, or at the next step after SIGINT/SIGTERM."""

    def __init__(self) -> None:
        super().__init__()
        self.signal_name: str | None = None
        self.diverged_at: int | None = None
        self.bad_logs: dict[str, float] = {}
        self._previous: dict[int, Any] = {}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Outside the main thread signals cannot be caught: they stay with the caller.
            with contextlib.suppress(ValueError):
                self._previous[sig] = signal.signal(sig, self._handle)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name is not None:  # a second Ctrl-C: give up waiting for the step
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        values = {k: float(v) for k, v in (logs or {}).items()}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            self.diverged_at = int(self.model.step.numpy())
            self.bad_logs = bad
            self.model.stop_training = True
        elif self.signal_name is not None:
            self.model.stop_training = True

    @property
    def healthy(self) -> bool:
        return self.diverged_at is None


class ProgressBar(keras.callbacks.Callback):
    """A tqdm bar: step, losses, images/s and ETA."""

    def __init__(self, total_steps: int, batch_size: int) -> None:
        super().__init__()
        self.total_steps = total_steps
        self.batch_size = batch_size
        self.bar: Any = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        from tqdm import tqdm

        start = int(self.model.step.numpy())
        # The first step traces and compiles the graph (seconds on a CPU): say so meanwhile.
        self.bar = tqdm(
            total=self.total_steps, initial=start, unit="step", dynamic_ncols=True,
            desc="tracing the train step",
        )  # fmt: skip
        self._t0, self._s0 = time.perf_counter(), start

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if batch == 0:
            self.bar.set_description_str("training", refresh=False)
        self.bar.update(1)
        if batch % 10 == 0 and logs:
            step = int(self.model.step.numpy())
            rate = (step - self._s0) * self.batch_size / max(time.perf_counter() - self._t0, 1e-9)
            self.bar.set_postfix(
                d=f"{float(logs['d_loss']):.3f}", g=f"{float(logs['g_loss']):.3f}",
                img_s=f"{rate:.0f}", refresh=False,
            )  # fmt: skip

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.bar is not None:
            self.bar.close()


class MetricsLogger(keras.callbacks.Callback):
    """Appends the losses, averaged over the last ``every`` steps, to ``metrics.jsonl`` and
    TensorBoard."""

    def __init__(self, run_dir: Path, every: int, batch_size: int) -> None:
        super().__init__()
        self.path = run_dir / "metrics.jsonl"
        self.every = max(every, 1)
        self.batch_size = batch_size
        self.writer = tf.summary.create_file_writer(str(run_dir / "tensorboard"))

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._t, self._s = time.perf_counter(), int(self.model.step.numpy())

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = int(self.model.step.numpy())
        if step % self.every != 0 or not logs:
            return
        now = time.perf_counter()
        record: dict[str, Any] = {"step": step, "images_seen": int(self.model.images_seen.numpy())}
        record.update({k: float(v) for k, v in logs.items()})
        record["images_per_s"] = (step - self._s) * self.batch_size / max(now - self._t, 1e-9)
        record["time"] = time.time()
        self._t, self._s = now, step
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        with self.writer.as_default(step=step):
            for key, value in record.items():
                if key not in ("step", "time"):
                    tf.summary.scalar(key, value)
        self.writer.flush()


class TrackerReset(keras.callbacks.Callback):
    """Restarts the loss trackers every ``every`` steps, so that each log is a window mean.

    It runs on every worker, after :class:`MetricsLogger` (chief only) has read the trackers:
    under a multi-worker strategy a reset reduces the trackers across workers, so all of them
    must take part.
    """

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every = max(every, 1)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if int(self.model.step.numpy()) % self.every != 0 or not logs:
            return
        for metric in self.model.metrics:
            metric.reset_state()


class SampleGrid(keras.callbacks.Callback):
    """Saves a PNG grid of the EMA generator's images for fixed seeds every ``every`` steps.

    Conditional models get one row per class (up to 10 classes), the same seeds in each row.
    """

    def __init__(self, run_dir: Path, every: int, num_classes: int, count: int = 64) -> None:
        super().__init__()
        self.directory = run_dir / "samples"
        self.every = every
        if num_classes > 0:
            rows = min(num_classes, 10)
            self.columns = max(count // rows, 1)
            self.labels = np.repeat(np.arange(rows, dtype=np.int32), self.columns)
        else:
            self.columns = int(math.sqrt(count))
            self.labels = np.zeros(self.columns**2, np.int32)
        self.writer: Any = None

    def write(self, step: int) -> Path:
        seeds = [i % self.columns for i in range(len(self.labels))]
        z = seeds_to_z(seeds, self.model.config.z_dim)
        # A direct call, not predict: under a multi-worker strategy predict runs collectives
        # that the other workers (which write no samples) would never join.
        images = np.asarray(self.model.ema_generator([z, self.labels], training=False))
        grid = make_grid(to_uint8(images), self.columns)  # the contract's layout
        return save_png(grid, self.directory / f"step-{step:07d}.png")

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = int(self.model.step.numpy())
        if self.every and step % self.every == 0:
            self.write(step)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.write(int(self.model.step.numpy()))


class CheckpointSaver(keras.callbacks.Callback):
    """Saves every ``every`` steps and at the end, unless the run diverged (then it must not)."""

    def __init__(self, checkpoints: Checkpoints, every: int, guard: StopGuard) -> None:
        super().__init__()
        self.checkpoints = checkpoints
        self.every = every
        self.guard = guard

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = int(self.model.step.numpy())
        if self.guard.healthy and self.every and step % self.every == 0:
            self.checkpoints.save(step)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.guard.healthy:
            self.checkpoints.save(int(self.model.step.numpy()))
