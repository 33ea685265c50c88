"""One training run: the numbered run directory, the data, the GAN, the callbacks, ``fit``.

Usage::

    from training.config import TrainConfig
    from training.loop import train
    from training.rundir import resume_config

    result = train(TrainConfig(dataset="digits", steps=500), outdir="runs")
    print(result.run_dir, result.status)                  # runs/00000-digits, "finished"

    config = resume_config("runs/00000-digits", {"steps": 1000})
    result = train(config, resume="runs/00000-digits")    # continues at step 500

A run directory holds ``options.json`` (the resolved TrainConfig), ``run.json`` (command,
classes, history), ``metrics.jsonl``, ``tensorboard/``, ``samples/`` and ``checkpoints/``.
Only the chief writes any of it; :func:`training.distribute.is_chief` is the one place that
decides.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training import augment, distribute, recipe
from training import callbacks as cb
from training.collapse import CollapseWatch
from training.config import ConfigError, TrainConfig
from training.data import ImageData, colour_warning, load_dataset, make_pipeline, split_holdout
from training.gan import GAN, make_optimizer, stack_critic_batches
from training.nets.architectures import build_networks
from training.rundir import new_run_dir, run_commands

# ``fit``'s step count when ``config.steps`` is 0 (no limit: the time budget ends the run).
UNLIMITED_STEPS = 2**62


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the message names the step and the last good checkpoint."""


@dataclass
class TrainResult:
    """What ``train`` leaves behind."""

    run_dir: Path
    gan: GAN
    data: ImageData
    holdout: ImageData
    status: str  # "finished" or "interrupted (SIGINT)" / "interrupted (SIGTERM)"
    checkpoint: str | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    chief: bool = True  # False on the other workers of a multi-worker run (they export nothing)
    seconds: float = 0.0  # training time of the run in total, across resumes
    out_of_time: bool = False  # finished because ``config.minutes`` were spent


def _make_augment(policy: str, mask_channel: bool = False) -> Any:
    try:
        return augment.make_augment(policy, mask_channel)
    except ValueError as error:  # an unknown policy name: the CLI's exit code 2, not a traceback
        raise ConfigError(str(error)) from error


def build_gan(
    config: TrainConfig,
    num_classes: int,
    strategy: tf.distribute.Strategy | None = None,
    gan_class: type[GAN] = GAN,
) -> GAN:
    """Networks, GAN and optimizers (built, so a checkpoint restores into them) in ``strategy``.

    ``gan_class``: GAN, or training.masking.MaskedGAN for partly observed data.
    """
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        generator, discriminator = build_networks(config, num_classes=num_classes)
        gan = gan_class(generator, discriminator, config, num_classes=num_classes)
        gan.compile(
            d_optimizer=make_optimizer(config.lr_d, config),
            g_optimizer=make_optimizer(config.lr_g, config),
            augment=_make_augment(config.augment, config.mask_channel),
            jit_compile=config.jit,
        )
        gan.d_optimizer.build(discriminator.trainable_variables)
        gan.g_optimizer.build(generator.trainable_variables)
    return gan


def make_checkpoints(gan: GAN, run_dir: Path) -> cb.Checkpoints:
    """The checkpoint layout of a run (what ``gan-export`` and ``--resume`` restore)."""
    return cb.Checkpoints(
        run_dir / "checkpoints",
        generator=gan.generator,
        discriminator=gan.discriminator,
        ema_generator=gan.ema_generator,
        g_optimizer=gan.g_optimizer,
        d_optimizer=gan.d_optimizer,
        step=gan.step,
        images_seen=gan.images_seen,
    )


def load_data(config: TrainConfig) -> tuple[ImageData, ImageData]:
    """The (training, held-out) split of the run's dataset (with its masks when partly
    observed: training.masking)."""
    from training import masking

    data = load_dataset(config.dataset, config.resolution, config.channels, config.conditional)
    data = masking.attach_masks(data, config)
    train_data, holdout = split_holdout(data, config.holdout, config.seed)
    train_data.skipped, train_data.colour_files = data.skipped, data.colour_files
    return train_data, holdout


def train(
    config: TrainConfig,
    outdir: str | Path = "runs",
    resume: str | Path | None = None,
    command: str = "",
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: bool = True,
) -> TrainResult:
    """Train (or continue) a run; returns when ``config.steps`` are done, ``config.minutes``
    are spent (training time of the run in total, across resumes), or on a signal.

    Raises TrainingDiverged on a NaN/Inf loss (no checkpoint is written after it).
    ``extra_callbacks`` (e.g. periodic evaluation) run after the built-in ones.
    """
    from training import masking

    config.validate()
    distribute.set_precision(config.precision)
    keras.utils.set_random_seed(config.seed)
    strategy = distribute.make_strategy(config.strategy)
    chief = distribute.is_chief(strategy)
    if config.minutes and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Each worker would read its own clock and some would stop a step before the others,
        # which then wait for them for ever.
        raise ConfigError("--minutes cannot end a multi-worker run: give --steps instead")

    data, holdout = load_data(config)
    if data.skipped and verbose:
        examples = ", ".join(data.skipped[:3])
        print(f"skipped {len(data.skipped)} unreadable image file(s), e.g. {examples}")
    colour = colour_warning(data, config.dataset)
    if colour and verbose and chief:
        print(f"gan-train: warning: {colour}", file=sys.stderr)
    choices: list[recipe.Choice] = []
    if not resume:  # a resumed run keeps the options it was resolved to (its options.json)
        config, choices = recipe.resolve(config, len(data))
        config = masking.with_mask_channel(config, data)
        if choices and verbose and chief:
            print(recipe.report(choices, len(data), config))
    # --batch-size is the global batch; raises DistributionError (a ConfigError) when the
    # replicas cannot share it evenly.
    per_replica = distribute.per_replica_batch(config.batch_size, strategy)
    if config.mbstd_group and per_replica % config.mbstd_group:
        raise ConfigError(
            f"--mbstd-group {config.mbstd_group} must divide each replica's batch "
            f"({per_replica} = {config.batch_size} / {strategy.num_replicas_in_sync} replicas)"
        )
    if len(data) < config.batch_size * config.n_critic:
        raise ConfigError(
            f"the dataset has {len(data)} training images, fewer than one batch "
            f"({config.batch_size * config.n_critic})"
        )

    if resume:
        run_dir = Path(resume)
    elif chief:
        run_dir = new_run_dir(outdir, config.run_name)
    else:
        # The other workers of a multi-worker run keep nothing: a scratch directory, deleted below.
        run_dir = Path(tempfile.mkdtemp(prefix="gan-worker-"))
    gan = build_gan(config, data.num_classes, strategy, masking.gan_class(config, data))
    checkpoints = make_checkpoints(gan, run_dir)
    restored = checkpoints.restore_latest() if resume else None
    if resume and restored is None and verbose:
        print(f"{run_dir} has no checkpoint yet: starting from step 0")
    if chief:
        _write_run_files(run_dir, config, data, command, resumed=bool(resume), choices=choices)
        _record_observed(run_dir, int(gan.step.numpy()), masking.summary(data))

    start = int(gan.step.numpy())
    remaining = (config.steps or UNLIMITED_STEPS) - start
    clock = cb.TrainingClock(config.minutes, checkpoints.seconds_at(restored) if restored else 0.0)
    spent = clock.budget is not None and clock.seconds() >= clock.budget  # a resume, out of time
    if spent:
        remaining = 0
    guard = cb.StopGuard()
    callbacks: list[keras.callbacks.Callback] = [clock, guard]
    warn_after = config.steps // 5 if config.steps else None  # steps (None: no step limit)
    if chief:
        if verbose:
            total = config.steps or None
            callbacks.append(cb.ProgressBar(total, config.batch_size * config.n_critic, clock))
        callbacks += [
            cb.MetricsLogger(run_dir, config.log_every, config.batch_size),
            cb.SampleGrid(run_dir, config.sample_every, data.num_classes),
            # Warnings only past a fifth of the run: a fresh generator varies little.
            CollapseWatch(
                run_dir, config.sample_every, data.images, data.num_classes, warn_after, clock
            ),
            cb.CheckpointSaver(checkpoints, config.checkpoint_every, guard, clock),
        ]
    callbacks.append(cb.TrackerReset(config.log_every))  # after MetricsLogger, on every worker
    if chief and config.eval_every:
        from training.metrics.callback import EvalCallback  # loads an extractor: only when asked

        callbacks.append(
            EvalCallback(run_dir, config.eval_every, data.images, data.labels, data.num_classes)
        )
    callbacks += extra_callbacks or []

    history: list[dict[str, float]] = []
    if remaining > 0:
        dataset = make_pipeline(
            masking.pipeline_data(data, config),
            config.batch_size * config.n_critic,
            config.flip,
            config.seed,
            start_batch=start,
        )
        if config.n_critic > 1:
            dataset = dataset.map(stack_critic_batches(config.n_critic))
        fit = gan.fit(
            dataset,
            epochs=1,
            steps_per_epoch=remaining,
            callbacks=callbacks,
            verbose=0,
            shuffle=False,
        )
        history = [{k: float(v[-1]) for k, v in fit.history.items()}]
    elif verbose and spent:
        print(f"{run_dir} has trained {clock.seconds():.0f} s of its {config.minutes:g} "
              "minutes: nothing to train (raise --minutes to continue)")  # fmt: skip
    elif verbose:
        print(f"{run_dir} is already at step {start} of {config.steps}: nothing to train")

    if not chief and not resume:
        shutil.rmtree(run_dir, ignore_errors=True)
    if not guard.healthy:
        bad = ", ".join(f"{k}={v}" for k, v in guard.bad_logs.items())
        last = checkpoints.last_saved or "none (no checkpoint was written before it)"
        raise TrainingDiverged(
            f"training diverged at step {guard.diverged_at} ({bad}); last good checkpoint: {last}"
        )
    status = f"interrupted ({guard.signal_name})" if guard.signal_name else "finished"
    if chief:
        _record_time(run_dir, clock.seconds())
    return TrainResult(
        run_dir,
        gan,
        data,
        holdout,
        status,
        checkpoints.last_saved if chief else None,
        history,
        chief=chief,
        seconds=clock.seconds(),
        out_of_time=clock.expired or spent,
    )


def _write_run_files(
    run_dir: Path,
    config: TrainConfig,
    data: ImageData,
    command: str,
    resumed: bool,
    choices: Sequence[recipe.Choice] = (),
) -> None:
    (run_dir / "options.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    meta_path = run_dir / "run.json"
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    # Every command that trained the run, in order; "command" is the latest (a resume's, which
    # may have raised --steps), so that an export never shows a superseded command line.
    history = run_commands(meta)
    if command and (resumed or not history):
        history.append(command)
    meta["commands"] = history
    meta["command"] = history[-1] if history else command
    meta.setdefault("created_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    meta["num_classes"] = data.num_classes
    meta["class_names"] = data.class_names
    meta["num_train_images"] = len(data)
    meta["skipped_files"] = len(data.skipped)
    if choices:  # why each option of the automatic recipe has its value
        meta["recipe"] = [choice.to_dict() for choice in choices]
    if resumed:
        meta.setdefault("resumed", []).append(
            {"command": command, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        )
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")


def _record_time(run_dir: Path, seconds: float) -> None:
    """The run's training time in total (``train_seconds`` in run.json)."""
    meta_path = run_dir / "run.json"
    meta = json.loads(meta_path.read_text())
    meta["train_seconds"] = round(seconds, 1)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")


def _record_observed(run_dir: Path, step: int, observed: dict[str, Any]) -> None:
    """The observed fraction of the training pixels, in run.json (and in metrics.jsonl when
    pixels are missing)."""
    meta_path = run_dir / "run.json"
    meta = json.loads(meta_path.read_text())
    meta.update(observed)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    if observed["observed_fraction"] >= 1.0:
        return
    with (run_dir / "metrics.jsonl").open("a") as handle:
        handle.write(json.dumps({"step": step, **observed}) + "\n")


def sample_images(gan: GAN, z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The EMA generator's float images for numpy noise and labels (batch-wise)."""
    # A direct call, not predict, which would start collectives under a multi-worker strategy.
    return np.asarray(gan.ema_generator([z, labels], training=False))
