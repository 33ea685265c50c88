"""Keras callbacks for the side effects of a run: progress, logs, samples, checkpoints, stopping.

Usage (``training.loop`` wires them; extra callbacks can be passed to ``train``)::

    clock = TrainingClock(minutes=30)           # ends training when 30 minutes are spent
    callbacks = [
        clock,
        StopGuard(),                            # NaN/Inf and SIGINT/SIGTERM
        ProgressBar(total_steps=10_000, clock=clock),
        MetricsLogger(run_dir, every=50),
        TrackerReset(every=50),                 # after MetricsLogger, on every worker
        SampleGrid(run_dir, every=500, seeds=range(64), num_classes=10),
        CheckpointSaver(checkpoints, every=1000, clock=clock),
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
from collections.abc import Callable
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
    """The run's ``tf.train.CheckpointManager`` plus the last good step (saves are atomic).

    Beside the checkpoints, ``training-time.json`` records how long the run had trained when
    each was saved, so that a resumed run knows how much of its ``--minutes`` is left (a
    checkpoint written before it existed counts as no time).
    """

    TIME_FILE = "training-time.json"

    def __init__(self, directory: Path, max_to_keep: int = 3, **objects: Any) -> None:
        self.directory = Path(directory)
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

    def save(self, step: int, seconds: float | None = None) -> str:
        """Save at ``step``, with ``seconds`` of training behind it when given."""
        if self.last_saved and self.last_saved.endswith(f"-{step}"):
            return self.last_saved  # already saved at this step
        self.last_saved = self.manager.save(checkpoint_number=step)
        if seconds is not None:
            kept = {Path(path).name for path in self.manager.checkpoints}
            times = {k: v for k, v in self._times().items() if k in kept}
            times[Path(self.last_saved).name] = round(seconds, 3)
            path = self.directory / self.TIME_FILE
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(times, indent=2) + "\n")
            temporary.replace(path)  # atomic, as the checkpoint's own files are
        return self.last_saved

    def seconds_at(self, checkpoint: str) -> float:
        """How long the run had trained when ``checkpoint`` was saved (0 when not recorded)."""
        return float(self._times().get(Path(checkpoint).name, 0.0))

    def _times(self) -> dict[str, float]:
        try:
            data = json.loads((self.directory / self.TIME_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


class TrainingClock(keras.callbacks.Callback):
    """The run's training time, counted across resumes, and its budget (``--minutes``).

    Time counts from the start of ``fit`` (the first step's tracing included) to the end of the
    last step; ``seconds_before`` is what the run had trained before this resume. With a budget,
    training stops after the step that spends it, as it stops after the last of ``--steps``:
    the callbacks' end-of-training work (checkpoint, sample grid) follows as usual.
    """

    def __init__(
        self,
        minutes: float = 0.0,
        seconds_before: float = 0.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.budget = minutes * 60.0 if minutes > 0 else None
        self.seconds_before = seconds_before
        self.expired = False
        self._now = now  # the time source (seconds); tests give their own
        self._started: float | None = None

    def seconds(self) -> float:
        """Seconds of training of the run so far."""
        running = self._now() - self._started if self._started is not None else 0.0
        return self.seconds_before + running

    def fraction(self) -> float:
        """The part of the budget spent (0 without one)."""
        return self.seconds() / self.budget if self.budget else 0.0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._started = self._now()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.budget is not None and self.seconds() >= self.budget:
            self.expired = True
            self.model.stop_training = True
            self._stop()  # what follows the last step (its checkpoint, grid) is not training

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._started is not None:
            self.seconds_before, self._started = self.seconds(), None


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
    """A tqdm bar: step, losses, images/s and ETA; with a time budget, the minutes left.

    ``total_steps`` None: no step limit (a run of ``--minutes`` alone), so no ETA by steps.
    """

    def __init__(
        self, total_steps: int | None, batch_size: int, clock: TrainingClock | None = None
    ) -> None:
        super().__init__()
        self.total_steps = total_steps
        self.batch_size = batch_size
        self.clock = clock
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
            postfix = {
                "d": f"{float(logs['d_loss']):.3f}", "g": f"{float(logs['g_loss']):.3f}",
                "img_s": f"{rate:.0f}",
            }  # fmt: skip
            if self.clock is not None and self.clock.budget is not None:
                left = max(self.clock.budget - self.clock.seconds(), 0.0)
                postfix["left"] = f"{int(left // 60)}:{int(left % 60):02d}"
            self.bar.set_postfix(postfix, refresh=False)

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
    """Saves every ``every`` steps and at the end, unless the run diverged (then it must not);
    with the run's training time from ``clock`` when given."""

    def __init__(
        self,
        checkpoints: Checkpoints,
        every: int,
        guard: StopGuard,
        clock: TrainingClock | None = None,
    ) -> None:
        super().__init__()
        self.checkpoints = checkpoints
        self.every = every
        self.guard = guard
        self.clock = clock

    def _save(self) -> None:
        seconds = self.clock.seconds() if self.clock is not None else None
        self.checkpoints.save(int(self.model.step.numpy()), seconds)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = int(self.model.step.numpy())
        if self.guard.healthy and self.every and step % self.every == 0:
            self._save()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.guard.healthy:
            self._save()
