"""Export a trained GAN as a model version: SavedModel (``generate``, ``score``) + ``model.json``.

With an encoder (``training.encoder``), the version also gets the optional ``encode`` and
``complete`` signatures (``training.completion``), listed in ``model.json``'s ``signatures``.
An exported version is restored to a GAN (:func:`restore_version`) to add an encoder to a model
whose training run is gone (:func:`add_encoder`).

Usage::

    from training.export import add_encoder, export_model, export_run

    version_dir = export_model(gan, "models", "digits", holdout=held_out_images)   # in memory
    version_dir = export_run("runs/00000-digits", "models", "digits")              # from a run
    version_dir = add_encoder(Path("models/digits/1"), Path("models"), "digits", steps=3000)

The layout and the signatures are those of docs/model-format.md. The version is written to a
temporary directory beside its target, reloaded with ``tf.saved_model.load`` and checked against
the in-memory EMA generator for fixed seeds, and only then renamed to
``models/NAME/<next version>/``, so a half-written or wrong version is never visible.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gan_contract.model_card import ModelCardError, validate_model_card
from gan_contract.seeds import SEED_CONVENTION, seeds_to_z
from training.config import TrainConfig
from training.data import DatasetError, ImageData
from training.encoder import fit_encoder
from training.gan import GAN
from training.nets.architectures import build_networks
from training.nets.layouts import ENCODER_HIDDEN, ENCODER_WIDTH
from training.rundir import run_commands
from training.sampling import to_uint8

QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)
VERIFY_SEEDS = list(range(8))


@dataclass(frozen=True)
class EncoderSize:
    """How large an added encoder is: its first convolution's channels and each branch's dense
    units (a smaller one for a model whose files must stay small; ``gan-export
    --encoder-width/--encoder-hidden``)."""

    width: int = ENCODER_WIDTH
    hidden: int = ENCODER_HIDDEN

    def __post_init__(self) -> None:
        """Raise :class:`ExportError` unless both are at least 1: a size is checked once, where
        it is made, before any model or data is loaded."""
        if self.width < 1 or self.hidden < 1:
            raise ExportError(f"an encoder's width and hidden units must be at least 1, not {self}")


class ExportError(RuntimeError):
    """The export could not be written or did not reproduce the in-memory generator."""


class ExportModule(tf.Module):
    """The two serving signatures around a generator and a discriminator."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model, z_dim: int) -> None:
        super().__init__(name="gan")
        self.generator = generator
        self.discriminator = discriminator
        self.generate = tf.function(
            self._generate,
            input_signature=[
                tf.TensorSpec([None, z_dim], tf.float32, name="z"),
                tf.TensorSpec([None], tf.int32, name="labels"),
                tf.TensorSpec([], tf.float32, name="truncation_psi"),
            ],
        )
        resolution, channels = generator.output_shape[1], generator.output_shape[3]
        self.score = tf.function(
            self._score,
            input_signature=[
                tf.TensorSpec([None, resolution, resolution, channels], tf.uint8, name="images"),
                tf.TensorSpec([None], tf.int32, name="labels"),
            ],
        )

    def _generate(self, z: tf.Tensor, labels: tf.Tensor, truncation_psi: tf.Tensor) -> dict:
        # The prior is N(0, I): truncation toward its mean is a scaling of z.
        images = tf.cast(self.generator([z * truncation_psi, labels], training=False), tf.float32)
        pixels = tf.clip_by_value(tf.round(images * 127.5 + 127.5), 0.0, 255.0)
        return {"images": tf.cast(pixels, tf.uint8)}

    def _score(self, images: tf.Tensor, labels: tf.Tensor) -> dict:
        x = tf.cast(images, tf.float32) / 127.5 - 1.0
        if self.discriminator.input_shape[0][-1] == x.shape[-1] + 1:
            # A D trained on partly observed images takes a mask channel: every pixel observed.
            x = tf.concat([x, tf.ones_like(x[..., :1])], axis=-1)
        logits = self.discriminator([x, labels], training=False)
        return {"logits": tf.reshape(tf.cast(logits, tf.float32), [-1])}


def _float32_copies(gan: GAN) -> tuple[keras.Model, keras.Model]:
    """The EMA generator and D rebuilt in float32 (a mixed-precision graph is slow on CPUs)."""
    policy = keras.mixed_precision.global_policy().name
    if policy == "float32":
        return gan.ema_generator, gan.discriminator
    keras.mixed_precision.set_global_policy("float32")
    try:
        generator, discriminator = build_networks(gan.config, num_classes=gan.num_classes)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    generator.set_weights(gan.ema_generator.get_weights())
    discriminator.set_weights(gan.discriminator.get_weights())
    return generator, discriminator


def _labels_for(count: int, num_classes: int) -> np.ndarray:
    return (np.arange(count) % max(num_classes, 1)).astype(np.int32)


def _batched(fn: Any, key: str, *arrays: np.ndarray, batch: int = 250) -> np.ndarray:
    outs = [
        fn(*(a[i : i + batch] for a in arrays))[key].numpy()
        for i in range(0, len(arrays[0]), batch)
    ]
    return np.concatenate(outs)


def calibration(
    module: ExportModule, holdout: ImageData | None, z_dim: int, num_classes: int, count: int
) -> dict[str, Any]:
    """Quantiles (101 levels) of D's logits on held-out real images and on generated images."""
    seeds = list(range(count))
    z = seeds_to_z(seeds, z_dim)
    gen_labels = _labels_for(count, num_classes)
    fakes = _batched(lambda a, b: module.generate(a, b, tf.constant(1.0)), "images", z, gen_labels)
    fake_logits = _batched(module.score, "logits", fakes, gen_labels)
    result: dict[str, Any] = {"quantile_levels": [round(float(q), 2) for q in QUANTILE_LEVELS]}
    if holdout is not None and len(holdout) > 0:
        real = holdout.images[:count]
        labels = (
            holdout.labels[:count].astype(np.int32)
            if holdout.labels is not None
            else np.zeros(len(real), np.int32)
        )
        real_logits = _batched(module.score, "logits", real, labels)
        result["real_logits"] = np.quantile(real_logits, QUANTILE_LEVELS).tolist()
        result["num_real"] = len(real)
    else:
        result["real_logits"], result["num_real"] = [], 0
    result["generated_logits"] = np.quantile(fake_logits, QUANTILE_LEVELS).tolist()
    result["num_generated"] = count
    return result


# The highest version number ever exported under a model's directory. A version number names one
# model for good (the service caches pinned versions as immutable and refuses a used number with
# other content), so a rollback that deletes version N must not let the next export take N again.
LAST_VERSION_FILE = ".last-version"


def _next_version(model_root: Path) -> int:
    """One above both the highest version directory present and the highest ever exported."""
    versions = [
        int(p.name)
        for p in model_root.iterdir()
        if p.is_dir() and p.name.isascii() and p.name.isdigit()
    ]
    return max(max(versions, default=0), _last_exported(model_root)) + 1


def _last_exported(model_root: Path) -> int:
    try:
        text = (model_root / LAST_VERSION_FILE).read_text().strip()
    except OSError:
        return 0
    return int(text) if text.isascii() and text.isdigit() else 0


def _record_version(model_root: Path, version: int) -> None:
    """Remember ``version`` as exported (written aside and renamed: never half a number)."""
    if _last_exported(model_root) >= version:
        return
    aside = model_root / f"{LAST_VERSION_FILE}.{os.getpid()}"
    aside.write_text(f"{version}\n")
    aside.replace(model_root / LAST_VERSION_FILE)


def _project_version() -> str:
    try:
        return metadata.version("gan-serving")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def verify(
    path: Path, gan: GAN, seeds: list[int] = VERIFY_SEEDS, generator: keras.Model | None = None
) -> float:
    """Reload ``path`` and compare its images with the in-memory generator's (max |diff|).

    ``generator`` is the network the export was made from: by default the float32 copy of the EMA
    generator (:func:`_float32_copies`). Like is compared with like: under mixed precision the
    training network computes in float16/bfloat16 (bfloat16 keeps 8 significant bits), so it
    differs from any float32 export by several grey levels however faithful the export is, while
    the float32 copy and the reloaded SavedModel run the same float32 arithmetic.
    """
    if generator is None:
        generator = _float32_copies(gan)[0]
    loaded = tf.saved_model.load(str(path))
    z = seeds_to_z(seeds, gan.config.z_dim)
    labels = _labels_for(len(seeds), gan.num_classes)
    exported = loaded.signatures["generate"](
        z=tf.constant(z), labels=tf.constant(labels), truncation_psi=tf.constant(1.0)
    )["images"].numpy()
    # A direct call, not predict, which would start collectives under a multi-worker strategy.
    expected = to_uint8(np.asarray(generator([z, labels], training=False), np.float32))
    return float(np.max(np.abs(exported.astype(np.int32) - expected.astype(np.int32))))


def export_model(
    gan: GAN,
    models_dir: str | Path,
    name: str,
    *,
    holdout: ImageData | None = None,
    run_dir: str | Path | None = None,
    class_names: list[str] | None = None,
    command: str = "",
    metrics: dict[str, Any] | None = None,
    calibration_count: int = 1000,
    encoder: keras.Model | None = None,
    encoder_info: dict[str, Any] | None = None,
) -> Path:
    """Write ``models_dir/name/<next version>/`` and return it (see the module docstring).

    ``run_dir`` (optional) supplies the training command and class names from its ``run.json``.
    ``encoder`` (optional) adds the ``encode`` and ``complete`` signatures; ``encoder_info``
    (how it was trained, its measured errors) goes into model.json.
    """
    if not name or "/" in name or name.startswith("."):
        raise ExportError(f"bad model name {name!r}: use a plain directory name")
    config: TrainConfig = gan.config
    meta: dict[str, Any] = {}
    if run_dir is not None and (Path(run_dir) / "run.json").exists():
        meta = json.loads((Path(run_dir) / "run.json").read_text())
    names = class_names if class_names is not None else meta.get("class_names", [])
    if gan.num_classes and len(names) != gan.num_classes:
        names = [str(i) for i in range(gan.num_classes)]

    generator, discriminator = _float32_copies(gan)
    module = ExportModule(generator, discriminator, config.z_dim)
    model_root = Path(models_dir) / name
    model_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", suffix=".tmp", dir=model_root))
    tmp.chmod(0o755)  # mkdtemp makes it private; a served model must be readable by the server
    try:
        signatures = {"generate": module.generate, "score": module.score}
        if encoder is not None:
            from training.completion import CompletionSignatures

            module.completion = CompletionSignatures(
                generator, encoder, config.z_dim, config.resolution, config.channels
            )
            signatures.update(encode=module.completion.encode, complete=module.completion.complete)
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        difference = verify(tmp, gan, generator=generator)
        # The same float32 network in a graph and in Keras may round a few ulps apart, which can
        # move a pixel lying on a .5 boundary by one grey level; anything more is a fault.
        if difference > 1.0:
            raise ExportError(f"the reloaded model differs from the generator by {difference}")
        info = {
            "name": name,
            "version": 0,
            "z_dim": config.z_dim,
            "resolution": config.resolution,
            "channels": config.channels,
            "num_classes": gan.num_classes,
            "class_names": list(names) if gan.num_classes else [],
            "architecture": config.architecture,
            "loss": config.loss,
            "dataset": config.dataset,
            "steps": int(gan.step.numpy()),
            "images_seen": int(gan.images_seen.numpy()),
            "training_options": config.to_dict(),
            "command": command or meta.get("command", ""),
            "commands": [command] if command else run_commands(meta),
            "metrics": metrics or {},
            "calibration": calibration(
                module, holdout, config.z_dim, gan.num_classes, calibration_count
            ),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "project_version": _project_version(),
            "seed_convention": SEED_CONVENTION,
            "run": Path(run_dir).name if run_dir is not None else "",
            "signatures": sorted(signatures),
        }
        if encoder is not None:
            from training.completion import completion_info

            info["completion"] = {**completion_info(), "encoder": encoder_info or {}}
        try:
            validate_model_card(info, "the exported model.json", complete=True)
        except ModelCardError as error:
            raise ExportError(str(error)) from error
        # Another export may take a version number at the same moment: retry with the next one.
        for _ in range(100):
            version = _next_version(model_root)
            info["version"] = version
            (tmp / "model.json").write_text(json.dumps(info, indent=2) + "\n")
            try:
                tmp.rename(model_root / str(version))
            except OSError:
                continue
            _record_version(model_root, version)
            return model_root / str(version)
        raise ExportError(f"could not find a free version number in {model_root}")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def export_run(
    run_dir: str | Path,
    models_dir: str | Path,
    name: str,
    calibration_count: int = 1000,
    metrics: dict[str, Any] | None = None,
    eval_num: int = 0,
    encoder_steps: int = 0,
    verbose: bool = False,
    encoder_size: EncoderSize | None = None,
) -> Path:
    """Export the last checkpoint of a run directory.

    With ``encoder_steps`` > 0 an encoder is trained for that many steps on the EMA generator's
    samples (``training.encoder``; ``verbose``: with a progress bar) and the version gets the
    ``encode`` and ``complete`` signatures.

    With ``eval_num`` > 0 the EMA generator is evaluated now on that many samples against the
    run's training images (as ``--eval-every`` does, recorded in the run's metrics.jsonl too), and
    those metrics go into ``model.json`` in place of ``metrics``.
    """
    from training.loop import build_gan, load_data, make_checkpoints
    from training.rundir import read_run

    config, meta = read_run(run_dir)
    keras.mixed_precision.set_global_policy(config.precision)
    gan = build_gan(config, int(meta.get("num_classes", 0)))
    checkpoints = make_checkpoints(gan, Path(run_dir))
    if checkpoints.restore_latest() is None:
        raise ExportError(f"{run_dir} has no checkpoint to export")
    train_data, holdout = load_data(config)
    if eval_num > 0:
        from training.metrics.callback import EvalCallback

        evaluation = EvalCallback(
            Path(run_dir), 0, train_data.images, train_data.labels, train_data.num_classes,
            num=eval_num,
        )  # fmt: skip
        evaluation.set_model(gan)
        metrics = evaluation.evaluate()
    encoder, encoder_info = with_encoder(
        gan, encoder_steps, verbose=verbose, real=train_data, size=encoder_size
    )
    return export_model(
        gan, models_dir, name, holdout=holdout, run_dir=run_dir,
        calibration_count=calibration_count, metrics=metrics,
        encoder=encoder, encoder_info=encoder_info,
    )  # fmt: skip


def with_encoder(
    gan: GAN,
    steps: int,
    verbose: bool = False,
    real: ImageData | None = None,
    size: EncoderSize | None = None,
) -> tuple[Any, dict[str, Any] | None]:
    """(an encoder trained ``steps`` steps on the EMA generator's samples and on ``real``, the
    run's training images when given, and its info) or (None, None). ``size``: its width and
    hidden units (the defaults of :func:`training.encoder.build_encoder` when None)."""
    if steps <= 0:
        return None, None
    size = size or EncoderSize()
    return fit_encoder(
        gan.ema_generator, z_dim=gan.config.z_dim, num_classes=gan.num_classes, steps=steps,
        seed=gan.config.seed, verbose=verbose, real=real, width=size.width, hidden=size.hidden,
    )  # fmt: skip


def restore_version(version_dir: Path) -> tuple[GAN, dict[str, Any]]:
    """A GAN rebuilt from an exported model version (its ``model.json`` training options and
    the SavedModel's variables) and its ``model.json``: to add an encoder to a model whose
    training run is gone. The EMA generator is the exported generator."""
    meta = json.loads((version_dir / "model.json").read_text())
    config = TrainConfig.from_dict(meta["training_options"])
    num_classes = int(meta["num_classes"])
    generator, discriminator = build_networks(config, num_classes=num_classes)
    # The export's variables are a checkpoint whose root holds `generator` and `discriminator`.
    checkpoint = tf.train.Checkpoint(generator=generator, discriminator=discriminator)
    checkpoint.read(str(version_dir / "variables" / "variables")).assert_existing_objects_matched()
    gan = GAN(generator, discriminator, config, num_classes=num_classes)
    gan.step.assign(int(meta.get("steps", 0)))
    gan.images_seen.assign(int(meta.get("images_seen", 0)))
    return gan, meta


def add_encoder(
    version_dir: Path,
    models_dir: Path,
    name: str,
    steps: int,
    verbose: bool = False,
    size: EncoderSize | None = None,
) -> Path:
    """Export ``version_dir``'s model again, as the next version of ``name``, with an encoder
    trained ``steps`` steps (the ``encode`` and ``complete`` signatures). When the dataset of
    its training options is readable, the encoder trains on its training images too, and the
    calibration is measured again on its held-out images; otherwise the encoder learns from
    the generator's samples alone."""
    from training.loop import load_data

    if steps < 1:
        raise ExportError(f"an encoder needs at least 1 step, not {steps}")
    gan, meta = restore_version(version_dir)
    try:
        train_data, holdout = load_data(gan.config)
    except DatasetError:
        train_data, holdout = None, None
    encoder, info = with_encoder(gan, steps, verbose=verbose, real=train_data, size=size)
    assert info is not None  # steps >= 1
    info["added_to"] = f"{meta.get('name')}/{meta.get('version')}"
    return export_model(
        gan, models_dir, name, holdout=holdout, class_names=meta.get("class_names"),
        command=str(meta.get("command", "")), metrics=meta.get("metrics"),
        encoder=encoder, encoder_info=info,
    )  # fmt: skip
