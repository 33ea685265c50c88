"""Extractors load from disk only, and fail clearly when their files are absent."""

import json
import socket
from pathlib import Path

import numpy as np
import pytest

from training.metrics.domain_classifier import train_domain_classifier
from training.metrics.extractors import (
    MNIST_CLASSIFIER,
    ClassifierExtractor,
    ExtractorError,
    load_extractor,
)
from training.metrics.real_images import RealImages


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted during an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_bundled_classifier_loads_offline_and_reads_digits(no_network: None, mnist: RealImages):
    info = json.loads((MNIST_CLASSIFIER / "extractor.json").read_text())
    assert info["heldout_accuracy"] > 0.97
    extractor = load_extractor("auto", (28, 28, 1))
    out = extractor(mnist.images[:300], batch_size=128)
    assert out.features.shape == (300, info["feature_dim"])
    assert out.logits is not None and out.logits.shape == (300, 10)
    assert (out.logits.argmax(axis=1) == mnist.labels[:300]).mean() > 0.95


def test_classifier_resizes_other_shapes():
    extractor = load_extractor("auto")
    out = extractor(np.zeros((4, 32, 32, 3), np.uint8))
    assert out.features.shape[0] == 4


def test_auto_refuses_images_it_was_not_trained_for():
    with pytest.raises(ExtractorError, match="no bundled classifier for 64x64x3"):
        load_extractor("auto", (64, 64, 3))


def test_missing_inception_weights_are_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None
):
    with pytest.raises(ExtractorError, match=r"InceptionV3 weights not found.*never downloaded"):
        load_extractor(f"inception:{tmp_path / 'absent.h5'}")
    monkeypatch.delenv("GAN_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(ExtractorError, match="GAN_INCEPTION_WEIGHTS"):
        load_extractor("inception")
    with pytest.raises(ExtractorError, match="unknown extractor"):
        load_extractor("vgg")


def test_trained_classifier_records_its_heldout_accuracy(tmp_path: Path):
    # Two easy classes of 16x16 images: a bright top half or a bright bottom half, with noise.
    rng = np.random.RandomState(0)
    labels = np.arange(300) % 2
    images = rng.randint(0, 60, size=(300, 16, 16, 1)).astype(np.uint8)
    images[labels == 0, :8] += 180
    images[labels == 1, 8:] += 180
    real = RealImages(images, labels.astype(np.int64), ("top", "bottom"), "npz:synthetic")
    info = train_domain_classifier(real, tmp_path / "clf", epochs=4, holdout=100, batch_size=32)
    extractor = ClassifierExtractor(tmp_path / "clf")
    held = np.random.RandomState(0).permutation(300)[-100:]
    out = extractor(images[held])
    assert out.logits is not None
    measured = float((out.logits.argmax(axis=1) == labels[held]).mean())
    assert info["heldout_accuracy"] == pytest.approx(measured)
    assert json.loads((tmp_path / "clf" / "extractor.json").read_text())["num_classes"] == 2
    assert measured > 0.9


def test_unreadable_inception_weights_are_a_clear_error(tmp_path: Path, no_network: None):
    weights = tmp_path / "inception.h5"
    weights.write_bytes(b"not an HDF5 file")
    with pytest.raises(ExtractorError, match="is not InceptionV3 no-top weights"):
        load_extractor(f"inception:{weights}")


def test_the_held_out_share_scales_with_the_data_set():
    from training.metrics.domain_classifier import default_holdout

    # A fifth, at most 2,000: MNIST's 10,000 keep 2,000 as before; 3,000 keep 600, not 2,000.
    assert [default_holdout(n) for n in (10_000, 60_000, 3_000, 300, 4)] == [2000, 2000, 600, 60, 1]


def test_by_default_training_stops_when_validation_stalls_and_holds_out_a_fifth(tmp_path: Path):
    rng = np.random.RandomState(1)
    labels = np.arange(200) % 2
    images = rng.randint(0, 60, size=(200, 16, 16, 1)).astype(np.uint8)
    images[labels == 0, :8] += 180
    images[labels == 1, 8:] += 180
    real = RealImages(images, labels.astype(np.int64), ("top", "bottom"), "npz:synthetic")
    info = train_domain_classifier(real, tmp_path / "clf", batch_size=32, max_epochs=3)
    assert info["num_heldout"] == 40 and info["num_train"] == 160
    assert 1 <= info["epochs"] <= 3 and "without gain" in info["epochs_rule"]


def test_a_weak_extractor_is_called_out():
    from training.metrics.domain_classifier import weakness_warning

    weak = weakness_warning({"heldout_accuracy": 0.137, "num_classes": 10})
    assert weak is not None and "13.7%" in weak and "chance: 10.0%" in weak
    assert weakness_warning({"heldout_accuracy": 0.868, "num_classes": 10}) is None


def test_train_extractor_help_states_its_defaults(capsys: pytest.CaptureFixture[str]):
    from training.cli.eval import main

    with pytest.raises(SystemExit):
        main(["train-extractor", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: a fifth of the images, at most 2000" in text
    assert "stops improving for 8 epochs" in text and "(default 28)" in text


@pytest.mark.parametrize(
    ("resolution", "widths"),
    [
        (28, [32, 64, 128]),
        (32, [32, 64, 128]),
        (64, [16, 32, 64, 128]),
        (128, [8, 16, 32, 64, 128]),
    ],
)
def test_the_classifier_gains_a_level_per_doubling_past_32_pixels(
    resolution: int, widths: list[int]
):
    import keras

    from training.metrics.domain_classifier import build_classifier

    model = build_classifier(resolution, 3, num_classes=5)
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convolutions] == widths
    # The last convolution works on 8x8 maps from 32 pixels up (7x7 at 28): its features span
    # the same share of the picture at every size.
    assert convolutions[-1].output.shape[1] == (7 if resolution == 28 else 8)
