"""Training on partly observed images: masks from datasets and --corrupt, and a D that only
compares observed pixels."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.training.tiny import TINY
from training import masking
from training.config import ConfigError
from training.data import ImageData, load_dataset, make_pipeline
from training.loop import build_gan, train

QUICK = TINY.replace(sample_every=0, checkpoint_every=0, log_every=2, steps=4)


def _npz(tmp_path: Path, mask_shape: tuple[int, ...] = (6, 32, 32)) -> Path:
    rng = np.random.RandomState(0)
    mask = np.ones(mask_shape, np.uint8)
    mask[:, :16] = 0  # top half missing
    path = tmp_path / "partial.npz"
    np.savez(path, x=rng.randint(0, 256, (6, 32, 32), dtype=np.uint8), mask=mask)
    return path


def test_npz_mask_is_read_and_resized(tmp_path: Path):
    data = load_dataset(f"npz:{_npz(tmp_path)}", resolution=16, channels=1, conditional=False)
    assert data.masks is not None and data.masks.shape == (6, 16, 16)
    assert data.masks[:, :8].sum() == 0 and data.masks[:, 8:].all()


def test_npz_mask_of_another_shape_is_refused(tmp_path: Path):
    from training.data import DatasetError

    with pytest.raises(DatasetError, match="'mask' must be"):
        load_dataset(f"npz:{_npz(tmp_path, (6, 32, 31))}", 16, 1, False)


def test_folder_alpha_marks_missing_pixels(tmp_path: Path):
    rgba = np.full((16, 16, 4), 255, np.uint8)
    rgba[:, :4, 3] = 0  # left quarter missing
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.new("L", (16, 16), 128).save(tmp_path / "b.png")  # complete: no alpha
    data = load_dataset(f"folder:{tmp_path}", resolution=16, channels=1, conditional=False)
    assert data.masks is not None
    assert data.masks[0, :, :4].sum() == 0 and data.masks[0, :, 4:].all() and data.masks[1].all()
    ignored = masking.attach_masks(data, QUICK.replace(mask_mode="ignore"))
    assert ignored.masks is None


def test_corruption_masks_are_attached_and_combined():
    data = ImageData(np.zeros((100, 16, 16, 1), np.uint8), masks=None)
    data = masking.attach_masks(data, QUICK.replace(corrupt="block:8"))
    assert data.masks is not None and np.all((data.masks == 0).sum(axis=(1, 2)) == 64)
    own = np.ones((100, 16, 16), np.uint8)
    own[:, 0] = 0
    both = masking.attach_masks(ImageData(data.images, masks=own), QUICK.replace(corrupt="block:8"))
    assert both.masks is not None and both.masks[:, 0].sum() == 0
    assert masking.summary(both)["observed_fraction"] < masking.summary(data)["observed_fraction"]


def test_bad_corruption_is_a_config_error():
    for bad in ("holes:3", "dropout:1.5", "block:16"):
        with pytest.raises(ConfigError):
            QUICK.replace(corrupt=bad).validate()
    with pytest.raises(ConfigError, match="contradict"):
        QUICK.replace(corrupt="dropout:0.5", mask_mode="ignore").validate()


def test_pipeline_packs_the_mask_and_flips_it_with_the_pixels():
    images = np.zeros((8, 16, 16, 1), np.uint8)
    images[:, :, :8] = 255  # left half white
    masks = np.ones((8, 16, 16), np.uint8)
    masks[:, :, :8] = 0  # ... and missing
    data = ImageData(images, masks=masks)
    x, _ = next(iter(make_pipeline(data, batch_size=8, flip=True, seed=0)))
    x = x.numpy()
    assert x.shape == (8, 16, 16, 2) and set(np.unique(x[..., 1])) == {0.0, 1.0}
    # Whether flipped or not, the mask still covers exactly the white half.
    np.testing.assert_array_equal(x[..., 1] == 0.0, x[..., 0] == 1.0)


def test_zero_fill_baseline_blackens_holes_and_drops_masks():
    images = np.full((4, 8, 8, 1), 200, np.uint8)
    masks = np.ones((4, 8, 8), np.uint8)
    masks[:, 0] = 0
    data = ImageData(images, masks=masks)
    served = masking.pipeline_data(data, QUICK.replace(mask_mode="zero-fill"))
    assert served.masks is None and served.images[:, 0].max() == 0 and served.images[:, 1:].min()
    assert masking.gan_class(QUICK.replace(mask_mode="zero-fill"), data).__name__ == "GAN"
    assert masking.gan_class(QUICK, data) is masking.MaskedGAN
    complete = ImageData(images, masks=np.ones_like(masks))
    assert masking.gan_class(QUICK, complete).__name__ == "GAN"


def _masked_batch() -> tuple[np.ndarray, tf.Tensor, tf.Tensor]:
    """Four grey 16x16 images with half their pixels missing, as the pipeline serves them (the
    mask as a last channel): (masks [4, 16, 16, 1], real batch, labels)."""
    rng = np.random.RandomState(0)
    masks = (rng.random_sample((4, 16, 16, 1)) > 0.5).astype(np.float32)
    real = tf.constant(np.concatenate([rng.uniform(-1, 1, (4, 16, 16, 1)), masks], -1), tf.float32)
    return masks, real, tf.constant([0, 1, 2, 3], tf.int32)


def test_the_discriminator_never_sees_missing_pixels():
    gan = build_gan(QUICK, num_classes=10, gan_class=masking.MaskedGAN)
    masks, real, labels = _masked_batch()
    with tf.GradientTape() as tape:
        tape.watch(real)
        observed, fake_masks = gan._observe(real)
        logits = gan._d(observed, labels, tf.constant([0, 0], tf.int64))  # no augmentation
    grad = tape.gradient(logits, real).numpy()[..., 0]
    assert np.all(grad[masks[..., 0] == 0] == 0.0)  # missing pixels have no influence at all
    assert np.any(grad[masks[..., 0] == 1] != 0.0)
    # The fakes get other images' masks of the same batch: D sees the same holes on both sides.
    assert fake_masks is not None
    np.testing.assert_array_equal(fake_masks.numpy(), np.roll(masks, 1, axis=0))
    fake = gan._measure(tf.ones((4, 16, 16, 1)), fake_masks).numpy()
    np.testing.assert_array_equal(fake, np.roll(masks, 1, axis=0))
    np.testing.assert_array_equal(gan._measure(tf.ones((4, 16, 16, 1)), None).numpy(), fake)


def test_with_the_mask_channel_d_sees_the_mask_beside_the_observed_pixels():
    gan = build_gan(QUICK.replace(mask_channel=True), num_classes=10, gan_class=masking.MaskedGAN)
    assert gan.discriminator.input_shape[0][-1] == 2  # a grey image and its mask
    masks, real, labels = _masked_batch()
    with tf.GradientTape() as tape:
        tape.watch(real)
        observed, fake_masks = gan._observe(real)
        logits = gan._d(observed, labels, tf.constant([0, 0], tf.int64))
    grad = tape.gradient(logits, real).numpy()
    pixels = grad[..., 0]
    assert np.all(pixels[masks[..., 0] == 0] == 0.0)  # still no influence of a missing pixel
    assert np.any(pixels[masks[..., 0] == 1] != 0.0)
    np.testing.assert_array_equal(observed.numpy()[..., 1:], masks)
    fake = gan._measure(tf.fill((4, 16, 16, 1), 0.5), fake_masks).numpy()
    np.testing.assert_array_equal(fake[..., 1:], np.roll(masks, 1, axis=0))
    np.testing.assert_array_equal(fake[..., :1], 0.5 * np.roll(masks, 1, axis=0))


def test_g_is_judged_under_each_of_its_mask_draws():
    config = QUICK.replace(mask_channel=True, mask_draws=3)
    gan = build_gan(config, num_classes=10, gan_class=masking.MaskedGAN)
    _, real, _ = _masked_batch()
    _, fake_masks = gan._observe(real)  # the D step sets the masks the G step starts from
    views = gan._g_views(tf.fill((4, 16, 16, 1), 0.5))
    assert len(views) == 3
    for shift, view in enumerate(views):
        expected = np.roll(fake_masks.numpy(), shift, axis=0)
        np.testing.assert_array_equal(view.numpy()[..., 1:], expected)
        np.testing.assert_array_equal(view.numpy()[..., :1], 0.5 * expected)
    with pytest.raises(ConfigError, match="mask_draws must be 1 to 16"):
        QUICK.replace(mask_draws=0).validate()
    # A run saved before the option existed resumes with the one draw it trained with.
    saved = QUICK.to_dict()
    del saved["mask_draws"]
    assert type(QUICK).from_dict(saved).mask_draws == 1 and QUICK.mask_draws == 4


def test_the_mask_channel_is_chosen_for_ambient_training_only():
    images = np.zeros((8, 16, 16, 1), np.uint8)
    masks = np.ones((8, 16, 16), np.uint8)
    masks[:, :4] = 0
    partial = ImageData(images, masks=masks)
    assert masking.with_mask_channel(QUICK, partial).mask_channel
    naive = QUICK.replace(mask_mode="zero-fill")
    assert not masking.with_mask_channel(naive, partial).mask_channel
    complete = ImageData(images, masks=np.ones_like(masks))
    assert not masking.with_mask_channel(QUICK, complete).mask_channel


@pytest.fixture(scope="module")
def ambient_run(tmp_path_factory: pytest.TempPathFactory):
    """One short ambient run on half-missing pixels, shared by the tests that read it."""
    config = QUICK.replace(corrupt="dropout:0.5", mask_draws=2)
    return train(config, outdir=tmp_path_factory.mktemp("ambient"), verbose=False)


def test_a_run_on_corrupted_data_records_the_observed_fraction(ambient_run):
    result = ambient_run
    assert isinstance(result.gan, masking.MaskedGAN)
    assert result.status == "finished" and int(result.gan.step.numpy()) == 4
    meta = json.loads((result.run_dir / "run.json").read_text())
    # ~1,600 training images of 256 Bernoulli(0.5) pixels: within 0.01 of a half.
    assert abs(meta["observed_fraction"] - 0.5) < 0.01
    first = json.loads((result.run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert first == {"step": 0, "observed_fraction": meta["observed_fraction"]}
    options = json.loads((result.run_dir / "options.json").read_text())
    assert options["corrupt"] == "dropout:0.5" and options["mask_mode"] == "ambient"
    assert options["mask_channel"] is True and options["mask_draws"] == 2
    assert all(np.isfinite(v) for v in result.history[-1].values())


def test_a_model_trained_with_the_mask_channel_scores_complete_images(ambient_run, tmp_path):
    from training.export import export_run

    result = ambient_run
    version = export_run(result.run_dir, tmp_path / "models", "partial")
    loaded = tf.saved_model.load(str(version))
    images = np.random.RandomState(1).randint(0, 256, (3, 16, 16, 1)).astype(np.uint8)
    labels = tf.constant([0, 1, 2], tf.int32)
    logits = loaded.signatures["score"](images=tf.constant(images), labels=labels)["logits"]
    # The score is D's on the image with every pixel observed (a mask channel of ones).
    x = tf.constant(images, tf.float32) / 127.5 - 1.0
    expected = result.gan.discriminator([tf.concat([x, tf.ones_like(x)], -1), labels])
    # Same weights and arithmetic; the SavedModel's graph may fuse ops differently, so allow
    # float32 rounding of a few hundred accumulated products on logits of order one.
    np.testing.assert_allclose(logits.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)


def test_cli_refuses_a_bad_corruption_with_exit_code_2(capsys):
    from training.cli.train import main as train_main

    with pytest.raises(SystemExit) as exit_info:
        train_main(["--corrupt", "holes:3", "--dry-run"])
    assert exit_info.value.code == 2
    assert "dropout:P" in capsys.readouterr().err
    assert train_main(["--corrupt", "block:14", "--resolution", "28", "--dry-run"]) == 0


MIRRORED_SCRIPT = """
import sys, math
from training.distribute import split_cpu
split_cpu(2)
from tests.training.tiny import TINY
from training.loop import train
config = TINY.replace(sample_every=0, checkpoint_every=0, log_every=1, steps=3,
                      corrupt="block:8", strategy="mirrored")
result = train(config, outdir=sys.argv[1], verbose=False)
print(type(result.gan).__name__, result.status, int(result.gan.step.numpy()))
print("finite", all(math.isfinite(v) for v in result.history[-1].values()))
"""


def test_masked_training_under_two_replicas(tmp_path: Path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    process = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path)],
        cwd=root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-2000:]
    assert "MaskedGAN finished 3" in process.stdout and "finite True" in process.stdout
