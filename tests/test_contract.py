"""What training exports is what the service expects (docs/model-format.md).

The model comes from the session fixture ``exported_model`` (trained by ``training`` for a few
steps) and is read here only with plain ``tf.saved_model.load`` and ``json``, as the service does.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

MODEL_JSON_TYPES = {
    "name": str,
    "version": int,
    "z_dim": int,
    "resolution": int,
    "channels": int,
    "num_classes": int,
    "class_names": list,
    "architecture": str,
    "loss": str,
    "dataset": str,
    "steps": int,
    "images_seen": int,
    "training_options": dict,
    "command": str,
    "metrics": dict,
    "calibration": dict,
    "created_at": str,
    "project_version": str,
    "seed_convention": str,
}


@pytest.fixture(scope="module")
def info(exported_model) -> dict:
    return json.loads((exported_model.version_dir / "model.json").read_text())


@pytest.fixture(scope="module")
def loaded(exported_model):
    return tf.saved_model.load(str(exported_model.version_dir))


def test_model_json_keys_and_types(info, exported_model):
    for key, kind in MODEL_JSON_TYPES.items():
        assert isinstance(info[key], kind), key
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
    from service.model_repository import REQUIRED_KEYS, load_version

    model = load_version(exported_model.version_dir)
    assert set(REQUIRED_KEYS) <= set(MODEL_JSON_TYPES)
    z = np.stack([np.random.RandomState(seed).randn(model.z_dim) for seed in (0, 1)])
    images = model.generate(z.astype(np.float32), np.array([0, 1], np.int32), 1.0)
    assert images.dtype == np.uint8 and images.shape[0] == 2
    assert model.score(images, np.array([0, 1], np.int32)).shape == (2,)
