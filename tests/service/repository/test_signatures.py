"""Signatures called in flat order give the signature's own answers, and refuse wrong inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gan_contract.seeds import seeds_to_z
from service.repository.repository import load_version
from service.repository.signatures import FlatSignature


@pytest.fixture(scope="module")
def saved(model_dir: Path):
    import tensorflow as tf

    return tf.saved_model.load(str(model_dir / "cond" / "1"))


def _generate_inputs(count: int) -> dict:
    import tensorflow as tf

    return {
        "z": tf.constant(seeds_to_z(range(count), 8), tf.float32),
        "labels": tf.constant(np.arange(count) % 3, tf.int32),
        "truncation_psi": tf.constant(0.7, tf.float32),
    }


def test_flat_calls_answer_as_the_signatures_do(saved) -> None:
    generate = FlatSignature(saved.signatures["generate"])
    score = FlatSignature(saved.signatures["score"])
    assert generate.flat and score.flat  # the fast path, not the fallback
    inputs = _generate_inputs(5)
    ours = generate(**inputs)
    theirs = saved.signatures["generate"](**inputs)
    assert ours.keys() == theirs.keys()
    # The same graph on the same tensors; TensorFlow does not promise bitwise-equal results from
    # one call to the next (threaded reductions), so allow one grey level, the service's promise.
    ours_images, their_images = (np.asarray(out["images"], np.int16) for out in (ours, theirs))
    assert ours_images.shape == their_images.shape == (5, 16, 16, 1)
    assert np.abs(ours_images - their_images).max() <= 1
    images = {"images": ours["images"], "labels": inputs["labels"]}
    # Logits of a few float32 layers: the same reasoning at float32's rounding, scaled.
    np.testing.assert_allclose(
        np.asarray(score(**images)["logits"]),
        np.asarray(saved.signatures["score"](**images)["logits"]),
        rtol=1e-5,
        atol=1e-5,
    )


def test_wrong_inputs_are_refused_by_name(saved) -> None:
    generate = FlatSignature(saved.signatures["generate"])
    inputs = _generate_inputs(2)
    del inputs["labels"]
    with pytest.raises(TypeError, match=r"missing \['labels'\], unknown \['psi'\]"):
        generate(**inputs, psi=inputs.pop("truncation_psi"))


def test_anything_else_is_called_the_public_way() -> None:
    def function(**tensors: int) -> dict:
        return {"sum": sum(tensors.values())}

    wrapped = FlatSignature(function)
    assert not wrapped.flat
    assert wrapped(a=1, b=2) == {"sum": 3}


def test_served_models_call_every_signature_flat(model_dir: Path) -> None:
    model = load_version(model_dir / "cond" / "1")
    assert isinstance(model._generate, FlatSignature) and model._generate.flat
    assert isinstance(model._score, FlatSignature) and model._score.flat
    z = seeds_to_z([1, 2], model.z_dim)
    assert model.generate(z, np.array([0, 2], np.int32), 1.0).shape == (2, 16, 16, 1)
