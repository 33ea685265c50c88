"""The training clock and its budget (--minutes), and the time recorded with each checkpoint."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import tensorflow as tf

from training.callbacks import Checkpoints, TrainingClock
from training.collapse import CollapseWatch


class FakeTime:
    """A time source that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _clock(minutes: float, seconds_before: float = 0.0) -> tuple[TrainingClock, FakeTime, object]:
    time = FakeTime()
    clock = TrainingClock(minutes, seconds_before, now=time)
    model = SimpleNamespace(stop_training=False)
    clock.set_model(model)  # type: ignore[arg-type]
    return clock, time, model


def test_the_budget_ends_training_after_the_step_that_spends_it():
    clock, time, model = _clock(minutes=1)
    clock.on_train_begin()
    for _ in range(5):  # 5 steps of 10 s
        time.now += 10
        clock.on_train_batch_end(0)
    assert not model.stop_training and not clock.expired and clock.fraction() == 50 / 60
    time.now += 10
    clock.on_train_batch_end(0)  # 60 s: spent
    assert model.stop_training and clock.expired
    time.now += 1000  # what follows fit (export, evaluation) is not training
    clock.on_train_end()
    assert clock.seconds() == 60


def test_a_resumed_run_continues_the_time_it_had_trained():
    clock, time, model = _clock(minutes=1, seconds_before=45)
    clock.on_train_begin()
    time.now += 10
    clock.on_train_batch_end(0)
    assert not model.stop_training and clock.seconds() == 55
    time.now += 10
    clock.on_train_batch_end(0)
    assert model.stop_training


def test_without_a_budget_the_clock_only_counts():
    clock, time, model = _clock(minutes=0)
    clock.on_train_begin()
    time.now += 10**6
    clock.on_train_batch_end(0)
    assert clock.budget is None and clock.fraction() == 0 and not model.stop_training


def test_each_checkpoint_keeps_the_training_time_behind_it(tmp_path: Path):
    variable = tf.Variable(1.0)
    checkpoints = Checkpoints(tmp_path, max_to_keep=2, v=variable)
    first = checkpoints.save(10, seconds=12.5)
    checkpoints.save(20)  # a save without a clock records nothing
    third = checkpoints.save(30, seconds=40.0)
    assert checkpoints.seconds_at(third) == 40.0
    assert checkpoints.seconds_at(first) == 0.0  # deleted with its checkpoint (2 kept)
    assert sorted((tmp_path / Checkpoints.TIME_FILE).read_text().split()) == sorted(
        ["{", '"ckpt-30":', "40.0", "}"]
    )
    # A run's directory from before times were recorded: no time, not an error.
    assert Checkpoints(tmp_path / "old", v=variable).seconds_at("ckpt-5") == 0.0


def test_collapse_warnings_start_past_a_fifth_of_the_time_budget(tmp_path: Path):
    import numpy as np

    clock, time, _ = _clock(minutes=10)
    real = np.zeros((4, 8, 8, 1), np.uint8)
    watch = CollapseWatch(tmp_path, every=1, real_images=real, num_classes=0, start_after=None,
                          clock=clock)  # fmt: skip
    clock.on_train_begin()
    time.now += 60  # a tenth
    assert not watch.past_start(10**6)  # no step limit: the steps never count
    time.now += 61
    assert watch.past_start(1)
