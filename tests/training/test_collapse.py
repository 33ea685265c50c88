"""Mode collapse and an ignored class label are measured and reported while training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.collapse import MIN_DIVERSITY, collapse_measures, collapse_warnings

RNG = np.random.RandomState(0)
# Real images: 64 different random 8x8 patterns.
REAL = RNG.randint(0, 256, size=(64, 8, 8, 1)).astype(np.uint8)
PATTERNS = REAL.astype(np.float64) / 127.5 - 1.0


def _row(z: np.ndarray) -> np.ndarray:
    # A pattern chosen by the noise: different seeds give different real-looking images.
    return np.argsort(z[:, 0]) % len(PATTERNS)


def healthy(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return PATTERNS[(_row(z) + 7 * labels) % len(PATTERNS)]


def collapsed(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.repeat(PATTERNS[:1], len(z), axis=0) + 1e-3 * z[:, :1, None, None]


def label_blind(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return PATTERNS[_row(z)]


def test_a_healthy_generator_raises_no_warning():
    measures = collapse_measures(healthy, REAL, num_classes=10, z_dim=4)
    # Distinct real patterns per seed: diversity as real's (ratio ~1), classes change images.
    assert 0.8 < measures["collapse/diversity"] < 1.2
    assert measures["collapse/label_effect"] > 0.8
    assert collapse_warnings(measures) == []


def test_one_picture_for_every_seed_is_mode_collapse():
    measures = collapse_measures(collapsed, REAL, num_classes=0, z_dim=4)
    assert measures["collapse/diversity"] < MIN_DIVERSITY
    assert "collapse/label_effect" not in measures  # unconditional: nothing to ignore
    [warning] = collapse_warnings(measures)
    assert warning.startswith("mode collapse") and "--augment" in warning


def test_the_same_picture_in_every_class_is_an_ignored_label():
    measures = collapse_measures(label_blind, REAL, num_classes=10, z_dim=4)
    assert measures["collapse/diversity"] > MIN_DIVERSITY
    assert measures["collapse/label_effect"] == 0.0
    [warning] = collapse_warnings(measures)
    assert warning.startswith("the class label is ignored")


def test_a_run_logs_the_measures_and_warns_past_its_start(tmp_path: Path, capsys):
    from tests.training.tiny import TINY
    from training.collapse import CollapseWatch
    from training.loop import build_gan

    gan = build_gan(TINY, num_classes=3)
    watch = CollapseWatch(tmp_path, every=2, real_images=REAL.repeat(2, 1).repeat(2, 2),
                          num_classes=3, start_after=10)  # fmt: skip
    watch.set_model(gan)
    # A generator whose every output is the same image: the watch must say so once past step 10.
    gan.ema_generator.set_weights([np.zeros_like(w) for w in gan.ema_generator.get_weights()])
    early, late = watch.check(4), watch.check(12)
    assert "collapse/warning" not in early  # before start_after: measured, not warned
    assert late["collapse/diversity"] < MIN_DIVERSITY and late["collapse/warning"]
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4, 12]
    assert "warning at step 12: mode collapse" in capsys.readouterr().err


def test_a_training_run_measures_collapse_with_each_sample_grid(exported_model):
    # The session's tiny conditional run: 40 steps, a sample grid every 20.
    lines = (exported_model.run_dir / "metrics.jsonl").read_text().splitlines()
    measured = [json.loads(line) for line in lines if "collapse/diversity" in line]
    assert [r["step"] for r in measured] == [20, 40]
    assert all("collapse/label_effect" in r for r in measured)
