"""Export: versions, model.json, calibration, truncation, the all-or-nothing rename, and an
encoder added to an exported version."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from gan_contract.reproducibility import pixel_deviation
from gan_contract.seeds import seeds_to_z
from tests.images import assert_same_image
from training import export


def test_model_json_describes_the_run(exported_model):
    info = json.loads((exported_model.version_dir / "model.json").read_text())
    assert exported_model.version_dir.name == "1" and info["version"] == 1
    assert info["name"] == "tiny" and info["num_classes"] == 10
    assert info["class_names"] == [str(i) for i in range(10)]
    assert (info["steps"], info["images_seen"]) == (40, 40 * 16)
    assert info["command"] == "gan-train (tests)"
    assert info["training_options"]["z_dim"] == 8
    calibration = info["calibration"]
    assert len(calibration["quantile_levels"]) == 101
    assert calibration["num_real"] == 64 and calibration["num_generated"] == 64
    for key in ("real_logits", "generated_logits"):
        assert len(calibration[key]) == 101
        assert np.all(np.diff(calibration[key]) >= 0)  # quantiles are sorted


def test_no_temporary_directories_remain(exported_model):
    names = sorted(p.name for p in (exported_model.models_dir / "tiny").iterdir())
    assert names == [export.LAST_VERSION_FILE, "1"]


def test_truncation_zero_gives_the_mean_image(exported_model):
    generate = tf.saved_model.load(str(exported_model.version_dir)).signatures["generate"]
    z = tf.constant(seeds_to_z([1, 2, 3], 8))
    labels = tf.constant([4, 4, 4], tf.int32)
    flat = generate(z=z, labels=labels, truncation_psi=tf.constant(0.0))["images"].numpy()
    # One image in three rows of a batch: within the one grey level that rounding allows.
    assert_same_image(flat[0], flat[1])
    assert_same_image(flat[1], flat[2])
    varied = generate(z=z, labels=labels, truncation_psi=tf.constant(1.0))["images"].numpy()
    assert pixel_deviation(varied[0], varied[1]) > 10


def test_next_export_is_the_next_version(exported_model, tmp_path: Path):
    gan = exported_model.result.gan
    first = export.export_model(gan, tmp_path, "m", calibration_count=8)
    second = export.export_model(gan, tmp_path, "m", calibration_count=8)
    assert (first.name, second.name) == ("1", "2")
    assert json.loads((second / "model.json").read_text())["calibration"]["num_real"] == 0


def test_an_export_after_a_rollback_never_takes_the_withdrawn_number(
    exported_model, tmp_path: Path
):
    gan = exported_model.result.gan
    export.export_model(gan, tmp_path, "m", calibration_count=8)
    withdrawn = export.export_model(gan, tmp_path, "m", calibration_count=8)
    shutil.rmtree(withdrawn)  # a rollback: version 2 deleted, version 1 served again
    again = export.export_model(gan, tmp_path, "m", calibration_count=8)
    assert again.name == "3"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [".last-version", "1", "3"]


def test_a_failed_verification_leaves_nothing(
    exported_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(export, "verify", lambda path, gan, **kwargs: 9.0)
    with pytest.raises(export.ExportError, match="differs"):
        export.export_model(exported_model.result.gan, tmp_path, "m", calibration_count=8)
    assert list((tmp_path / "m").iterdir()) == []


def test_bad_model_name():
    with pytest.raises(export.ExportError, match="bad model name"):
        export.export_model(None, "models", "../escape")  # type: ignore[arg-type]


def test_a_mixed_bfloat16_model_exports_checked_against_its_float32_copy(
    tmp_path: Path, restore_policy: None
):
    import keras

    from training.config import TrainConfig
    from training.loop import build_gan

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    config = TrainConfig(
        resolution=16, z_dim=16, g_width=8, d_width=8, max_width=16, precision="mixed_bfloat16"
    )
    gan = build_gan(config, num_classes=0)
    assert gan.generator.compute_dtype == "bfloat16"
    # Kernels four times their initial size spread the images over the whole grey range, as
    # training does, so that bfloat16's rounding (8 significant bits) of the hidden layers
    # moves pixels by several grey levels: the float32 export can never match the bfloat16
    # network to one grey level, only the float32 copy it was made from.
    weights = [w * 4 if w.ndim > 1 else w for w in gan.ema_generator.get_weights()]
    gan.ema_generator.set_weights(weights)
    version = export.export_model(gan, tmp_path, "bf", calibration_count=8)
    assert export.verify(version, gan) <= 1.0
    # The check is as strict as before: against the bfloat16 network it sees the rounding.
    assert export.verify(version, gan, generator=gan.ema_generator) >= 2.0


def test_a_discriminator_with_minibatch_stddev_exports_a_per_image_score(tmp_path: Path):
    import numpy as np
    import tensorflow as tf

    from training.config import TrainConfig
    from training.loop import build_gan

    config = TrainConfig(resolution=16, z_dim=8, g_width=4, d_width=4, max_width=8, mbstd_group=2)
    gan = build_gan(config, num_classes=0)
    pixels = np.random.RandomState(0).randint(0, 256, (4, 16, 16, 1)).astype(np.uint8)
    images = pixels.astype("float32") / 127.5 - 1.0  # as the signature maps them
    labels = np.zeros(4, np.int32)
    gan.discriminator([images, labels], training=True)  # moves the moving average off 1.0
    moving = float(gan.discriminator.get_layer("minibatch_stddev").moving_stddev.numpy())
    assert moving != 1.0
    version = export.export_model(gan, tmp_path, "mbstd", calibration_count=8)
    score = tf.saved_model.load(str(version)).signatures["score"]
    batch = score(images=tf.constant(pixels), labels=tf.constant(labels))["logits"].numpy()
    alone = score(images=tf.constant(pixels[2:3]), labels=tf.constant(labels[2:3]))["logits"]
    expected = np.asarray(gan.discriminator([images, labels], training=False))
    # The same float32 network at two batch sizes: a few ulps of sums of ~50 terms apart.
    np.testing.assert_allclose(alone.numpy()[0], batch[2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batch, expected, rtol=1e-5, atol=1e-6)


def test_an_encoder_is_added_to_an_exported_version(exported_model, tmp_path, capsys):
    from training.cli.export import main as export_main

    gan, meta = export.restore_version(exported_model.version_dir)
    z = np.random.RandomState(0).randn(4, gan.config.z_dim).astype(np.float32)
    labels = np.arange(4, dtype=np.int32)
    loaded = tf.saved_model.load(str(exported_model.version_dir))
    exported = loaded.signatures["generate"](
        z=tf.constant(z), labels=tf.constant(labels), truncation_psi=tf.constant(1.0)
    )["images"].numpy()
    mine = gan.ema_generator([z, labels], training=False).numpy()
    mine = np.clip(np.round(mine * 127.5 + 127.5), 0, 255)
    # The same weights: at most one grey level of rounding apart (the export's own promise).
    assert np.max(np.abs(mine - exported.astype(np.float64))) <= 1.0
    argv = [str(exported_model.version_dir), "--name", "again", "--models-dir", str(tmp_path),
            "--encoder-steps", "3", "--encoder-width", "4", "--encoder-hidden", "8"]  # fmt: skip
    assert export_main(argv) == 0
    err = capsys.readouterr().err
    # A bar while the encoder trains (minutes on a real model), with its losses.
    assert "encoder" in err and "3/3" in err and "latent=" in err and "image=" in err, err
    info = json.loads((tmp_path / "again" / "1" / "model.json").read_text())
    assert info["signatures"] == ["complete", "encode", "generate", "score"]
    assert info["steps"] == meta["steps"] and info["completion"]["encoder"]["steps"] == 3
    encoder = info["completion"]["encoder"]
    # The size asked for, and the weights of an encoder of that size.
    from training.encoder import build_encoder

    built = build_encoder(gan.config.resolution, gan.config.channels, gan.config.z_dim,
                          gan.num_classes, width=4, hidden=8)  # fmt: skip
    assert (encoder["width"], encoder["hidden"]) == (4, 8)
    assert encoder["parameters"] == built.count_params()
    with pytest.raises(SystemExit) as exit_info:
        export_main([*argv[:-4], "--encoder-width", "0"])
    assert exit_info.value.code == 2 and "--encoder-width" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        export_main([str(exported_model.version_dir), "--name", "x"])  # no --encoder-steps
    assert exit_info.value.code == 2 and "--encoder-steps" in capsys.readouterr().err
