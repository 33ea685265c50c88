"""The optional ``encode`` and ``complete`` signatures (docs/model-format.md), read as the
service reads them: with plain ``tf.saved_model.load`` and ``json``."""

import json

import numpy as np
import pytest
import tensorflow as tf


@pytest.fixture(scope="module")
def tinyc(completion_models):
    path = completion_models / "tinyc" / "1"
    return tf.saved_model.load(str(path)), json.loads((path / "model.json").read_text())


def _inputs(info: dict, count: int = 4) -> dict:
    res, ch = info["resolution"], info["channels"]
    images = np.random.RandomState(0).randint(0, 256, (count, res, res, ch)).astype(np.uint8)
    masks = np.ones((count, res, res), np.uint8)
    masks[:, res // 2 :] = 0  # bottom half missing
    labels = (np.arange(count) % max(info["num_classes"], 1)).astype(np.int32)
    return {
        "images": tf.constant(images),
        "masks": tf.constant(masks),
        "labels": tf.constant(labels),
    }


def test_model_json_lists_the_signatures(tinyc, completion_models):
    _, info = tinyc
    assert info["signatures"] == ["complete", "encode", "generate", "score"]
    assert info["completion"]["max_steps"] >= 1 and info["completion"]["encoder"]["steps"] == 30
    plain = json.loads((completion_models / "tiny" / "1" / "model.json").read_text())
    assert plain["signatures"] == ["generate", "score"] and "completion" not in plain


def test_encode_and_complete_signature_shapes(tinyc):
    loaded, info = tinyc
    res, ch, z_dim = info["resolution"], info["channels"], info["z_dim"]
    common = {
        "images": (tf.uint8, [None, res, res, ch]),
        "masks": (tf.uint8, [None, res, res]),
        "labels": (tf.int32, [None]),
    }
    _, inputs = loaded.signatures["encode"].structured_input_signature
    assert {k: (v.dtype, v.shape.as_list()) for k, v in inputs.items()} == common
    outputs = loaded.signatures["encode"].structured_outputs
    assert {k: (v.dtype, v.shape.as_list()) for k, v in outputs.items()} == {
        "z": (tf.float32, [None, z_dim])
    }
    _, inputs = loaded.signatures["complete"].structured_input_signature
    assert {k: (v.dtype, v.shape.as_list()) for k, v in inputs.items()} == {
        **common,
        "steps": (tf.int32, []),
    }
    outputs = loaded.signatures["complete"].structured_outputs
    assert {k: (v.dtype, v.shape.as_list()) for k, v in outputs.items()} == {
        "images": (tf.uint8, [None, res, res, ch]),
        "z": (tf.float32, [None, z_dim]),
        "observed_error": (tf.float32, [None]),
        "class_cost": (tf.float32, [None]),
    }


def test_complete_keeps_observed_pixels_and_starts_at_the_encoders_guess(tinyc):
    loaded, info = tinyc
    inputs = _inputs(info)
    z = loaded.signatures["encode"](**inputs)["z"].numpy()
    guess = loaded.signatures["complete"](**inputs, steps=tf.constant(0))
    # The same encoder graph on the same inputs; 1e-5 covers a different kernel choice.
    np.testing.assert_allclose(guess["z"].numpy(), z, atol=1e-5)
    refined = loaded.signatures["complete"](**inputs, steps=tf.constant(40))
    images, masks = inputs["images"].numpy(), inputs["masks"].numpy().astype(bool)
    for out in (guess, refined):
        completed = out["images"].numpy()
        np.testing.assert_array_equal(completed[masks], images[masks])  # kept byte for byte
    assert not np.allclose(refined["z"].numpy(), z)  # the steps moved z


def test_the_service_loads_both_kinds(completion_models):
    from service.repository.repository import load_version

    with_encoder = load_version(completion_models / "tinyc" / "1")
    without = load_version(completion_models / "tiny" / "1")
    assert with_encoder.has("encode") and with_encoder.has("complete")
    assert not without.has("encode") and not without.has("complete")
    res = with_encoder.resolution
    images = np.zeros((2, res, res, with_encoder.channels), np.uint8)
    masks = np.ones((2, res, res), np.uint8)
    labels = np.array([0, 1], np.int32)
    assert with_encoder.encode(images, masks, labels).shape == (2, with_encoder.z_dim)
    out = with_encoder.complete(images, masks, labels, 2)
    assert out["images"].shape == images.shape and out["observed_error"].shape == (2,)
