"""What training exports is what the service expects (docs/model-format.md), and the shared
conventions of ``gan_contract`` give the same answers on both sides.

The exported model comes from the session fixture ``exported_model`` (trained by ``training`` for a
few steps) and is read with plain ``tf.saved_model.load`` and ``json``, as the service does.
"""

import io
import json

import numpy as np
import pytest
import tensorflow as tf

from gan_contract.model_card import validate_model_card


@pytest.fixture(scope="module")
def info(exported_model) -> dict:
    return json.loads((exported_model.version_dir / "model.json").read_text())


@pytest.fixture(scope="module")
def loaded(exported_model):
    return tf.saved_model.load(str(exported_model.version_dir))


def test_model_json_keys_and_types(info, exported_model):
    # Every field of the schema (gan_contract.model_card) with its type, then the values.
    validate_model_card(info, complete=True)
    assert info["name"] == exported_model.version_dir.parent.name
    assert info["version"] == int(exported_model.version_dir.name)
    assert info["channels"] in (1, 3)
    assert info["architecture"] in ("dcgan", "resnet")
    assert info["loss"] in ("nonsaturating", "minimax", "hinge", "wgan-gp")
    assert len(info["class_names"]) == info["num_classes"]
    assert "RandomState(seed).randn(z_dim)" in info["seed_convention"]
    cal = info["calibration"]
    assert cal["quantile_levels"][0] == 0.0 and cal["quantile_levels"][-1] == 1.0
    assert len(cal["quantile_levels"]) == len(cal["real_logits"]) == 101
    assert len(cal["generated_logits"]) == 101
    assert isinstance(cal["num_real"], int) and isinstance(cal["num_generated"], int)


def test_signature_names_dtypes_and_shapes(loaded, info):
    assert set(loaded.signatures) == {"generate", "score"}
    res, ch, z_dim = info["resolution"], info["channels"], info["z_dim"]

    _, generate_inputs = loaded.signatures["generate"].structured_input_signature
    assert {k: (v.dtype, v.shape.as_list()) for k, v in generate_inputs.items()} == {
        "z": (tf.float32, [None, z_dim]),
        "labels": (tf.int32, [None]),
        "truncation_psi": (tf.float32, []),
    }
    out = loaded.signatures["generate"].structured_outputs
    assert {k: (v.dtype, v.shape.as_list()) for k, v in out.items()} == {
        "images": (tf.uint8, [None, res, res, ch])
    }

    _, score_inputs = loaded.signatures["score"].structured_input_signature
    assert {k: (v.dtype, v.shape.as_list()) for k, v in score_inputs.items()} == {
        "images": (tf.uint8, [None, res, res, ch]),
        "labels": (tf.int32, [None]),
    }
    out = loaded.signatures["score"].structured_outputs
    assert {k: (v.dtype, v.shape.as_list()) for k, v in out.items()} == {
        "logits": (tf.float32, [None])
    }


def test_calling_the_signatures(loaded, info):
    z = np.stack([np.random.RandomState(s).randn(info["z_dim"]).astype("float32") for s in (0, 1)])
    labels = tf.constant([1, 2], tf.int32)
    images = loaded.signatures["generate"](
        z=tf.constant(z), labels=labels, truncation_psi=tf.constant(1.0)
    )["images"]
    res, ch = info["resolution"], info["channels"]
    assert images.dtype == tf.uint8 and images.shape == (2, res, res, ch)
    again = loaded.signatures["generate"](
        z=tf.constant(z), labels=labels, truncation_psi=tf.constant(1.0)
    )["images"]
    # The same call twice on one machine (same batch shape): the same bytes.
    np.testing.assert_array_equal(images, again)
    logits = loaded.signatures["score"](images=images, labels=labels)["logits"]
    assert logits.dtype == tf.float32 and logits.shape == (2,)
    assert np.all(np.isfinite(logits.numpy()))


def test_the_service_loader_accepts_the_export(exported_model):
    # The service's own checks (required keys and types, signature shapes) on the same export.
    from service.repository.repository import load_version

    model = load_version(exported_model.version_dir)
    z = np.stack([np.random.RandomState(seed).randn(model.z_dim) for seed in (0, 1)])
    images = model.generate(z.astype(np.float32), np.array([0, 1], np.int32), 1.0)
    assert images.dtype == np.uint8 and images.shape[0] == 2
    assert model.score(images, np.array([0, 1], np.int32)).shape == (2,)


# -- the conventions of gan_contract, applied alike by training and the service ---------------
#
# These tests drive the real entry points of both sides (gan-sample, load_dataset, the HTTP app)
# on the same inputs. The session's factory model ``cond`` (16x16 grayscale, three classes; both
# sides take its latest version) stands in for any exported model.


@pytest.fixture(scope="module")
def service(model_dir):
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    settings = Settings(model_dir=model_dir, max_batch_size=8, max_images_per_request=16)
    with TestClient(create_app(settings)) as client:
        yield client


def _gan_sample(argv: list[str], capsys) -> tuple[int, str]:
    from training.cli.sample import main as sample_main

    try:
        code = sample_main(argv)
    except SystemExit as exit:
        code = int(exit.code or 0)
    captured = capsys.readouterr()
    return code, captured.out if code == 0 else captured.err


def test_gan_sample_and_the_service_draw_the_same_grid(service, model_dir, tmp_path, capsys):
    from PIL import Image

    grid = tmp_path / "grid.png"
    argv = [str(model_dir / "cond"), "--seeds", "0-15", "--class", "1", "--grid", str(grid)]
    assert _gan_sample(argv, capsys)[0] == 0
    body = {"seeds": "0-15", "class_label": 1, "response": "grid", "model": "cond"}
    response = service.post("/generate", json=body)
    assert response.status_code == 200, response.text
    served = np.asarray(Image.open(io.BytesIO(response.content)))
    sampled = np.asarray(Image.open(grid))
    assert sampled.shape == served.shape == (4 * 16 + 3 * 2, 4 * 16 + 3 * 2)
    # gan-sample runs all 16 rows in one batch, the service in batches of 8: the promise across
    # batch shapes is +-1 grey level per pixel, not identical bytes.
    assert np.abs(sampled.astype(int) - served.astype(int)).max() <= 1


@pytest.mark.parametrize(
    "spec",
    ["0-3, 7", " 5 ", "9,2-4,0", "1_0", "+3", "\u0663", "0-2,,4", "3-1", "4294967296", "7,x", ""],
)
def test_gan_sample_and_the_service_read_seed_strings_alike(service, model_dir, spec, capsys):
    argv = [str(model_dir / "cond"), "--seeds", spec, "--grid", "g.png", "--dry-run"]
    code, output = _gan_sample(argv, capsys)
    body = {"seeds": spec, "response": "json", "model": "cond"}
    response = service.post("/generate", json=body)
    if code == 0:
        assert response.status_code == 200, response.text
        served = [image["seed"] for image in response.json()["images"]]
        assert json.loads(output)["seeds"] == served
    else:
        assert code == 2 and response.status_code == 422, response.text
        # One rule, one message: the CLI's line carries the service's detail.
        assert response.json()["detail"] in output


@pytest.mark.parametrize("resolution", [28, 16])
def test_training_and_the_service_prepare_an_image_alike(mnist_digits, tmp_path, resolution):
    from service.imaging import decode_image
    from tests.gan_contract.variants import digit_variants, png_bytes
    from training.data import load_dataset

    for index, digit in enumerate(mnist_digits[:6]):
        for name, image in digit_variants(digit).items():
            (tmp_path / f"{index:02d}-{name}.png").write_bytes(png_bytes(image))
    trained = load_dataset(f"folder:{tmp_path}", resolution, 1, conditional=False).images
    names = sorted(p.name for p in tmp_path.iterdir())  # the folder loader's order
    by_name = dict(zip(names, trained, strict=True))
    for index, digit in enumerate(mnist_digits[:6]):
        for name, image in digit_variants(digit).items():
            served, _ = decode_image(
                png_bytes(image), max_pixels=10_000, resolution=resolution, channels=1
            )
            # Same pixels in, same integer steps and one Pillow resize: identical bytes.
            np.testing.assert_array_equal(served, by_name[f"{index:02d}-{name}.png"], name)
