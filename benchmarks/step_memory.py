"""Memory of a training step per image: TensorFlow's allocator against the recipe's estimate.

Usage::

    nice -n 10 .venv/bin/python benchmarks/step_memory.py          # every row, a few minutes
    nice -n 10 .venv/bin/python benchmarks/step_memory.py --rows dcgan-128-8

For each row (architecture, resolution, width, DiffAugment on or off) the GAN is built as
``gan-train`` builds it and trained a step at two batch sizes on random colour images;
TensorFlow's allocator reports the peak bytes of the steps after the first
(``tf.config.experimental.get_memory_info``: on a CPU as on a GPU). The difference over the
difference in batch is the memory per image, which is what the automatic recipe estimates
(``training.footprint.bytes_per_image``) to choose a batch that fits. Prints both and their
ratio with the CPU model; the measurement is of this TensorFlow build's kernels and allocator,
so the ratio, not the bytes, is what carries to other machines.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from machine import cpu_model  # this folder is on sys.path: benchmarks run as scripts

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# name: (architecture, resolution, width, augment)
ROWS = {
    "dcgan-32-32": ("dcgan", 32, 32, "color,translation"),
    "dcgan-64-16": ("dcgan", 64, 16, "color,translation"),
    "dcgan-128-8": ("dcgan", 128, 8, "color,translation"),
    "dcgan-128-16": ("dcgan", 128, 16, "color,translation"),
    "dcgan-128-16-plain": ("dcgan", 128, 16, ""),
    "resnet-32-16": ("resnet", 32, 16, "color,translation"),
    "resnet-64-8": ("resnet", 64, 8, "color,translation"),
    "resnet-128-8": ("resnet", 128, 8, "color,translation"),
    "resnet-128-8-plain": ("resnet", 128, 8, ""),
}


def step_peak(architecture: str, resolution: int, width: int, augment: str, batch: int) -> int:
    """Peak allocator bytes above what the built GAN holds, over two steps after the first."""
    import tensorflow as tf

    from training.config import TrainConfig
    from training.loop import build_gan

    config = TrainConfig(
        resolution=resolution, channels=3, architecture=architecture, g_width=width,
        d_width=width, batch_size=batch, augment=augment,
        loss="hinge" if architecture == "resnet" else "nonsaturating",
    )  # fmt: skip
    gan = build_gan(config, num_classes=0)
    images = tf.random.uniform([batch, resolution, resolution, 3], -1, 1)
    data = tf.data.Dataset.from_tensors((images, tf.zeros([batch], tf.int32))).repeat()
    gan.fit(data, steps_per_epoch=1, epochs=1, verbose=0)  # traces the step
    tf.config.experimental.reset_memory_stats("CPU:0")
    held = tf.config.experimental.get_memory_info("CPU:0")["current"]
    gan.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
    return int(tf.config.experimental.get_memory_info("CPU:0")["peak"] - held)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS), help="rows to measure, by name")
    parser.add_argument("--batches", default="8,32", help="the two batch sizes [8,32]")
    args = parser.parse_args(argv)
    names = args.rows.split(",")
    unknown = sorted(set(names) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    small, large = (int(b) for b in args.batches.split(","))
    if not 1 <= small < large <= 256:
        parser.error("--batches takes two sizes, the first smaller, at most 256")

    from training.config import TrainConfig
    from training.footprint import bytes_per_image

    print(f"memory of a training step per image (batches {small} and {large}); CPU: {cpu_model()}")
    print("| architecture | resolution | width | DiffAugment | measured MB | estimate MB | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        arch, res, width, augment = ROWS[name]
        peaks = [step_peak(arch, res, width, augment, batch) for batch in (small, large)]
        measured = (peaks[1] - peaks[0]) / (large - small)
        config = TrainConfig(resolution=res, channels=3, architecture=arch, g_width=width,
                             d_width=width, augment=augment)  # fmt: skip
        estimate = bytes_per_image(config)
        print(f"| {arch} | {res} | {width} | {augment or 'off'} | {measured / 1e6:.2f} | "
              f"{estimate / 1e6:.2f} | {measured / estimate:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
