"""Every dataset kind, awkward image files, the holdout split and the tf.data pipeline."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.data import DatasetError, colour_warning, load_dataset, make_pipeline, split_holdout


def _write_image_zoo(root: Path) -> None:
    """Two classes of awkward files: modes, sizes, formats, and two unreadable files."""
    (root / "cats").mkdir(parents=True)
    (root / "dogs" / "nested").mkdir(parents=True)
    Image.new("L", (40, 30), 200).save(root / "cats" / "gray_odd_size.png")
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 255, 0, 0))  # fully transparent: becomes black
    rgba.save(root / "cats" / "rgba.png")
    palette = Image.new("P", (16, 16))
    palette.putpalette([0, 0, 255] * 256)
    palette.save(root / "cats" / "palette.gif")
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(root / "dogs" / "cmyk.jpg")
    Image.fromarray(np.full((16, 16), 65535, np.uint16)).save(root / "dogs" / "sixteen.png")
    Image.new("RGB", (16, 16), (0, 255, 0)).save(root / "dogs" / "nested" / "green.webp")
    Image.new("LA", (16, 16), (255, 255)).save(root / "dogs" / "la.png")
    Image.new("RGB", (16, 16), (10, 20, 30)).save(root / "dogs" / "plain.bmp")
    (root / "dogs" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    full = root / "cats" / "full.jpg"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(full)
    (root / "cats" / "truncated.jpg").write_bytes(full.read_bytes()[:200])
    (root / "notes.txt").write_text("not an image")


def test_folder_with_awkward_files(tmp_path: Path):
    _write_image_zoo(tmp_path)
    data = load_dataset(f"folder:{tmp_path}", resolution=16, channels=3, conditional=True)
    assert data.images.shape == (9, 16, 16, 3) and data.images.dtype == np.uint8
    assert data.class_names == ["cats", "dogs"]
    assert sorted(Path(p).name for p in data.skipped) == ["corrupt.png", "truncated.jpg"]
    assert data.labels is not None and list(np.bincount(data.labels)) == [4, 5]
    by_name = {
        name: image
        for name, image in zip(
            ["full", "gray_odd_size", "palette", "rgba", "cmyk", "la", "green", "plain", "sixteen"],
            data.images,
            strict=True,
        )
    }
    np.testing.assert_array_equal(by_name["gray_odd_size"][5, 5], [200, 200, 200])
    np.testing.assert_array_equal(by_name["palette"][5, 5], [0, 0, 255])
    np.testing.assert_array_equal(by_name["rgba"][8, 8], [255, 0, 0])
    assert by_name["rgba"][0, 0, 1] < 20  # the transparent green corner went black, not green
    np.testing.assert_array_equal(by_name["sixteen"][3, 3], [255, 255, 255])
    assert by_name["cmyk"][8, 8, 0] > 200 and by_name["cmyk"][8, 8, 1:].max() < 60  # red


def test_folder_to_grayscale_unconditional(tmp_path: Path):
    _write_image_zoo(tmp_path)
    data = load_dataset(f"folder:{tmp_path}", resolution=32, channels=1, conditional=False)
    assert data.images.shape == (9, 32, 32, 1)
    assert data.labels is None and data.num_classes == 0


def test_colour_pictures_loaded_as_grey_are_counted_and_warned_about(tmp_path: Path):
    _write_image_zoo(tmp_path)
    grey = load_dataset(f"folder:{tmp_path}", resolution=16, channels=1, conditional=False)
    # In colour: the red RGBA, the blue palette, the red CMYK, the green WebP and the BMP of
    # (10, 20, 30). Grey: L, LA, 16-bit, and the JPEG of (1, 2, 3), as grey as JPEG keeps it.
    assert grey.colour_files == 5
    warning = colour_warning(grey, f"folder:{tmp_path}")
    assert warning is not None and "5 of the pictures" in warning and "--channels 3" in warning
    colour = load_dataset(f"folder:{tmp_path}", resolution=16, channels=3, conditional=False)
    assert colour.colour_files == 0 and colour_warning(colour, "folder:x") is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("folder:{tmp}/missing", "does not exist"),
        ("folder:{tmp}", "no images"),
        ("pictures:{tmp}", "unknown dataset kind"),
        ("keras:imagenet", "unknown keras dataset"),
        ("npz:", "needs a path"),
    ],
)
def test_bad_specs_are_clear_errors(tmp_path: Path, spec: str, message: str):
    with pytest.raises(DatasetError, match=message):
        load_dataset(spec.format(tmp=tmp_path), 16, 1, False)


def test_conditional_folder_needs_class_subfolders(tmp_path: Path):
    Image.new("L", (16, 16)).save(tmp_path / "a.png")
    with pytest.raises(DatasetError, match="class subfolders"):
        load_dataset(f"folder:{tmp_path}", 16, 1, conditional=True)


def test_folder_of_only_unreadable_files(tmp_path: Path):
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="readable"):
        load_dataset(f"folder:{tmp_path}", 16, 1, False)


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_mnist_idx(tmp_path: Path):
    images = np.random.RandomState(0).randint(0, 256, (5, 28, 28))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([3, 1, 4, 1, 5]))
    data = load_dataset(f"mnist-idx:{tmp_path}", 28, 1, conditional=True)
    np.testing.assert_array_equal(data.images[..., 0], images)
    assert list(data.labels) == [3, 1, 4, 1, 5] and data.num_classes == 6
    assert load_dataset(f"mnist-idx:{tmp_path}", 16, 3, False).images.shape == (5, 16, 16, 3)


def test_mnist_idx_real_files(mnist_dir: Path):
    data = load_dataset(f"mnist-idx:{mnist_dir}", 28, 1, conditional=True)
    assert data.images.shape == (10_000, 28, 28, 1)
    assert data.class_names == [str(i) for i in range(10)]


def test_npz(tmp_path: Path):
    x = np.random.RandomState(0).rand(6, 20, 24).astype(np.float32)  # floats in [0, 1]
    np.savez(tmp_path / "with.npz", x=x, y=np.array([0, 1, 2, 0, 1, 2]))
    np.savez(tmp_path / "without.npz", x=(x * 255).astype(np.uint8))
    data = load_dataset(f"npz:{tmp_path / 'with.npz'}", 16, 1, conditional=True)
    assert data.images.shape == (6, 16, 16, 1) and data.num_classes == 3
    assert data.images.max() > 128  # [0, 1] floats were scaled to 0..255
    with pytest.raises(DatasetError, match="needs labels"):
        load_dataset(f"npz:{tmp_path / 'without.npz'}", 16, 1, conditional=True)
    np.savez(tmp_path / "nox.npz", images=x)
    with pytest.raises(DatasetError, match="no array 'x'"):
        load_dataset(f"npz:{tmp_path / 'nox.npz'}", 16, 1, False)


def test_digits_needs_no_download():
    data = load_dataset("digits", 32, 3, conditional=True)
    assert data.images.shape == (1797, 32, 32, 3)
    assert data.num_classes == 10 and set(data.labels) == set(range(10))


def test_keras_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    import keras

    def offline() -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DatasetError, match="offline"):
        load_dataset("keras:mnist", 28, 1, False)


def test_holdout_split_is_disjoint_and_repeatable():
    data = load_dataset("digits", 16, 1, conditional=True)
    data.images = data.images.copy()
    data.images[:, 0, 0, 0] = np.arange(len(data)) % 256  # tag images to follow them
    train, held = split_holdout(data, 100, seed=1)
    assert (len(train), len(held)) == (1697, 100)
    _, held_again = split_holdout(data, 100, seed=1)
    np.testing.assert_array_equal(held.images, held_again.images)
    assert len(split_holdout(data, 10_000, seed=1)[1]) == 179  # at most a tenth


def test_pipeline_batches_and_resumes_exactly():
    data = load_dataset("digits", 16, 1, conditional=True)
    stream = list(make_pipeline(data, 64, flip=True, seed=3).take(30))
    x, y = stream[0]
    assert x.shape == (64, 16, 16, 1) and x.dtype == "float32" and y.dtype == "int32"
    assert float(x.numpy().min()) >= -1.0 and float(x.numpy().max()) <= 1.0
    resumed = list(make_pipeline(data, 64, flip=True, seed=3, start_batch=28).take(2))
    for (a, la), (b, lb) in zip(stream[28:], resumed, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    # 30 batches of 64 cross an epoch boundary (1797 images) and still see every image.
    labels = np.concatenate([y.numpy() for _, y in stream[:28]])
    assert len(labels) == 1792 and set(labels) == set(range(10))


def test_flip_mirrors_some_images():
    data = load_dataset("digits", 16, 1, conditional=True)
    plain = next(iter(make_pipeline(data, 64, flip=False, seed=0)))[0].numpy()
    flipped = next(iter(make_pipeline(data, 64, flip=True, seed=0)))[0].numpy()
    mirrored = [np.array_equal(f, p[:, ::-1]) and not np.array_equal(f, p)
                for f, p in zip(flipped, plain, strict=True)]  # fmt: skip
    assert 10 < sum(mirrored) < 54
