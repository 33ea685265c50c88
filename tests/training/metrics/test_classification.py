"""Class accuracy and per-class coverage."""

import numpy as np
import pytest

from training.metrics.classification import class_accuracy, per_class_coverage


def test_class_accuracy_counts_agreement():
    logits = np.array([[3.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 5.0]])
    assert class_accuracy(logits, [0, 1, 1, 1]) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        class_accuracy(logits, [0, 1])


def test_per_class_coverage_flags_the_missing_class():
    rng = np.random.RandomState(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0]])
    real_y = np.repeat([0, 1], 200)
    real = centres[real_y] + rng.randn(400, 2)
    # The generator covers class 0 well but draws class 1 far away from its real images.
    fake_y = np.repeat([0, 1], 200)
    fake = centres[fake_y] + rng.randn(400, 2)
    fake[fake_y == 1] += 50.0
    cov = per_class_coverage(real, real_y, fake, fake_y, num_classes=2)
    assert cov[0] > 0.8
    assert cov[1] == 0.0
