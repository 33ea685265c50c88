"""Steps a minute of the automatic recipe's networks at 32, 64 and 128 pixels.

Usage::

    nice -n 10 .venv/bin/python benchmarks/resolution_speed.py                 # a few minutes
    nice -n 10 .venv/bin/python benchmarks/resolution_speed.py --steps 20 --rounds 5

For each resolution the options are what ``gan-train --recipe auto`` chooses for 5,000 colour
images in 5 classes (the shapes benchmark's data: DCGAN, widths 32, 16, 8, DiffAugment, the
class measures, batch 64), the GAN is built as ``gan-train`` builds it, and ``GAN.fit`` runs on
random images. After one traced step each, the resolutions take turns (``--rounds`` of
``--steps`` steps each), so that a shared CPU slows all of them alike; the median of each is
printed as steps a minute with the CPU model and the load average, beside the ratio to 32x32.
The data pipeline is left out (it is the same at every size): a run's own steps a minute, which
``gan-train --minutes`` prints, includes it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from machine import cpu_model  # this folder is on sys.path: benchmarks run as scripts

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESOLUTIONS = (32, 64, 128)
IMAGES, CLASSES = 5000, 5


def build(resolution: int) -> tuple[Any, Any, Any]:
    """The recipe's GAN at ``resolution``, its options and an endless dataset of random
    batches."""
    import tensorflow as tf

    from training.config import TrainConfig
    from training.loop import build_gan
    from training.recipe import resolve

    base = TrainConfig(resolution=resolution, channels=3, conditional=True, recipe="auto")
    config, _ = resolve(base, IMAGES)
    gan = build_gan(config, num_classes=CLASSES)
    batch = config.batch_size
    images = tf.random.uniform([batch, resolution, resolution, 3], -1, 1)
    labels = tf.random.uniform([batch], 0, CLASSES, dtype=tf.int32)
    data = tf.data.Dataset.from_tensors((images, labels)).repeat()
    return gan, config, data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="steps per turn [10]")
    parser.add_argument("--rounds", type=int, default=3, help="turns of each resolution [3]")
    args = parser.parse_args(argv)
    if not 1 <= args.steps <= 1000 or not 1 <= args.rounds <= 100:
        parser.error("--steps must be 1 to 1000 and --rounds 1 to 100")

    built = {resolution: build(resolution) for resolution in RESOLUTIONS}
    for gan, _, data in built.values():
        gan.fit(data, steps_per_epoch=1, epochs=1, verbose=0)  # traces the step
    seconds: dict[int, list[float]] = {resolution: [] for resolution in RESOLUTIONS}
    for _ in range(args.rounds):
        for resolution, (gan, _, data) in built.items():
            started = time.perf_counter()
            gan.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
            seconds[resolution].append(time.perf_counter() - started)

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"the recipe's networks for {IMAGES:,} colour images in {CLASSES} classes; "
          f"CPU: {cpu_model()}, {os.cpu_count()} cores, load average {load}")  # fmt: skip
    print("| resolution | g/d width | batch | steps a minute | images/s | time a step vs 32 |")
    print("| --- | --- | --- | --- | --- | --- |")
    base = statistics.median(seconds[RESOLUTIONS[0]])
    for resolution, (_, config, _) in built.items():
        median = statistics.median(seconds[resolution])
        per_minute = args.steps / median * 60
        print(f"| {resolution} | {config.g_width} | {config.batch_size} | {per_minute:.0f} | "
              f"{per_minute * config.batch_size / 60:.0f} | {median / base:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
