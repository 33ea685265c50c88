"""The whole evaluation on a generator whose quality is known."""

from pathlib import Path

import numpy as np
import pytest

from training.metrics.evaluate import (
    EvalOptions,
    evaluate_model_dir,
    format_table,
    halves,
    latents,
    resolve_version_dir,
    sample_size_warnings,
)
from training.metrics.extractors import load_extractor
from training.metrics.real_images import RealImages


def test_latents_follow_the_seed_convention():
    z, labels = latents(12, 5, num_classes=10)
    np.testing.assert_array_equal(z[7], np.random.RandomState(7).randn(5).astype(np.float32))
    assert labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert latents(3, 5, num_classes=0)[1].tolist() == [0, 0, 0]


def test_halves_are_disjoint_and_equal():
    a, b = halves(11, seed=0)
    assert a.size == b.size == 5
    assert not set(a) & set(b)


def test_report_places_the_model_between_floor_and_ceiling(bank_model: Path, mnist: RealImages):
    assert mnist.labels is not None
    extractor = load_extractor("auto", (28, 28, 1))
    options = EvalOptions(num=500, kid_subset_size=200, kid_subsets=5, batch_size=100)
    report = evaluate_model_dir(
        bank_model, mnist.images[:1000], mnist.labels[:1000], extractor, options
    )
    rows = report["rows"]
    assert report["model_dir"] == str(resolve_version_dir(bank_model))
    assert rows["model"]["num_generated"] == 500
    assert rows["model"]["num_real"] == 1000
    assert rows["real_vs_real"]["num_generated"] == rows["real_vs_real"]["num_real"] == 500
    # Real digits of the requested class: the classifier agrees, they lie on the real manifold.
    assert rows["model"]["class_accuracy"] > 0.9
    assert rows["real_vs_real"]["class_accuracy"] > 0.9
    assert rows["model"]["precision"] > 0.6
    assert len(rows["model"]["coverage_per_class"]) == 10
    # Only 50 distinct images per class: recall and coverage fall below the real halves'.
    assert rows["model"]["recall"] < rows["real_vs_real"]["recall"]
    # A fresh generator draws noise-like images: far worse on every count.
    ceiling = rows["untrained"]
    assert "unavailable" not in ceiling, ceiling
    assert ceiling["class_accuracy"] < 0.5
    assert ceiling["fd"] > 5 * rows["model"]["fd"]
    assert ceiling["precision"] < rows["model"]["precision"]
    table = format_table(report)
    for title in ("model", "floor: real vs real", "ceiling: untrained G", "class acc"):
        assert title in table


def test_missing_model_directory_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ValueError, match="not found"):
        resolve_version_dir(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="integer version"):
        resolve_version_dir(tmp_path / "empty")


def _rows(n: int, n_real: int, kid: float, kid_std: float) -> dict:
    n_floor = min(n, n_real // 2)
    model = {"num_generated": n, "num_real": n_real, "kid": kid, "kid_std": kid_std}
    matched = {**model, "num_generated": n_floor, "num_real": n_real // 2}
    floor = {"num_generated": n_floor, "num_real": n_real // 2, "kid": 0.0, "kid_std": kid_std}
    return {"model": model, "model_matched": matched, "real_vs_real": floor}


def test_small_samples_are_flagged_metric_by_metric():
    # gan-eval --num 1000 on 10,000 real images, 128-d features, 10 classes: a negative KID.
    warnings = sample_size_warnings(_rows(1000, 10_000, -0.001, 0.004), 128, 10, EvalOptions())
    text = " / ".join(warnings)
    assert len(warnings) == 3, text
    assert "FD at N=1000" in text and "1280" not in text  # says 10x the 128 dimensions
    assert "within its spread" in text and "negative value is noise" in text
    assert "100 per class" in text
    # Fewer images than a KID subset: the subsets shrink, and that is said too.
    small = sample_size_warnings(_rows(200, 10_000, 0.05, 0.001), 128, 10, EvalOptions())
    assert any("KID subsets hold only 200" in w for w in small)


def test_the_reference_sample_size_raises_no_warning():
    rows = _rows(10_000, 10_000, 0.004, 0.0008)
    assert sample_size_warnings(rows, 128, 10, EvalOptions()) == []
    # The same sizes with Inception's 2048-d features: FD needs more images than that.
    [fd] = sample_size_warnings(rows, 2048, 10, EvalOptions())
    assert fd.startswith("FD at N=5000")
