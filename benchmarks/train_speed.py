"""Training speed: images/s of gan-train's train step against a plain reference loop.

Usage::

    .venv/bin/python benchmarks/train_speed.py                 # every row, prints a table
    .venv/bin/python benchmarks/train_speed.py --steps 50 --rows dcgan-28

For each row (a configuration) the same networks train on the same batches of the same tf.data
pipeline, two ways, in one process and interleaved (so that a shared CPU slows both alike):

- ``gan-train``: one ``GAN.fit`` call, as ``gan-train`` makes it (``train_step``: D, then G,
  then the EMA update, loss trackers; a batch-level callback, as gan-train's progress bar is),
  timed in blocks of ``--steps`` steps;
- ``plain``: a hand-written ``tf.function`` step with two ``tf.GradientTape``s (D then G, the
  same non-saturating losses and Adam settings, no EMA), run for ``--steps`` steps between the
  fit's blocks.

The ratio is gan-train / plain images/s from the best block of each (>= 1 means gan-train's step
is not slower); the median ratio of adjacent block pairs is printed beside it, as it is robust
when the load on a shared CPU drifts. Results go to ``benchmarks/results/train_speed.json``.

The second table (``--table scale``) measures ``GAN.fit`` at 32x32x3, conditional, for both
architectures under every combination of precision (float32, mixed_float16; mixed_bfloat16 on
one device), XLA (``--jit``) and devices (the default strategy on one logical CPU device, or
MirroredStrategy over two logical CPU devices carved from the same CPU), and prints each row's
ratio to the float32 / no XLA / one device row of its architecture. All models are built first
and then timed round-robin, so that a shared CPU slows every row alike. XLA with two CPU
replicas is listed as not supported: TensorFlow compiles cross-device updates with XLA only on
GPUs. To add a configuration (precision, XLA, a strategy,
another architecture) add a :class:`Row` to ``ROWS``: the row's ``overrides`` are TrainConfig
fields, so everything TrainConfig can express can be measured.

The third table (``--table precision``) times one ``train_step`` (D, G, EMA; DiffAugment on) of
tiny networks (width 8, batch 16, 32x32x1) under float32 and mixed_bfloat16, for both
architectures, and prints the bfloat16 / float32 step-time ratio beside the CPU model and
whether the CPU has native bfloat16 (the ``avx512_bf16`` or ``amx_bf16`` flag): without them
TensorFlow emulates bfloat16 and ``gan-train`` warns at start-up. On a CPU with native bfloat16,
``TF_ENABLE_ONEDNN_OPTS=0`` makes TensorFlow take its generic kernels, which emulate bfloat16 as
on a CPU without it: a stand-in for measuring that case.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from machine import cpu_model  # this folder is on sys.path: benchmarks run as scripts

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).resolve().parent / "results" / "train_speed.json"


@dataclass(frozen=True)
class Row:
    """One configuration to measure: a name and TrainConfig overrides."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)


BASE = {
    "dataset": "digits",
    "resolution": 28,
    "channels": 1,
    "conditional": True,
    "z_dim": 64,
    "batch_size": 64,
}
ROWS = [
    Row("dcgan-28 (the bundled MNIST model)", {}),
    Row("dcgan-32 rgb, unconditional", {"resolution": 32, "channels": 3, "conditional": False}),
]


def plain_step_fn(generator: Any, discriminator: Any, config: Any) -> Any:
    """The reference: one D and one G update with tf.GradientTape in a tf.function."""
    import keras
    import tensorflow as tf

    d_opt = keras.optimizers.Adam(config.lr_d, beta_1=config.beta1, beta_2=config.beta2)
    g_opt = keras.optimizers.Adam(config.lr_g, beta_1=config.beta1, beta_2=config.beta2)

    @tf.function
    def step(real: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        z = tf.random.normal([tf.shape(real)[0], config.z_dim])
        with tf.GradientTape() as tape:
            fake = generator([z, labels], training=True)
            real_logits = discriminator([real, labels], training=True)
            fake_logits = discriminator([fake, labels], training=True)
            d_loss = tf.reduce_mean(tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits))
        grads = tape.gradient(d_loss, discriminator.trainable_variables)
        d_opt.apply_gradients(zip(grads, discriminator.trainable_variables, strict=True))
        z = tf.random.normal([tf.shape(real)[0], config.z_dim])
        with tf.GradientTape() as tape:
            fake = generator([z, labels], training=True)
            g_loss = tf.reduce_mean(tf.nn.softplus(-discriminator([fake, labels], training=True)))
        grads = tape.gradient(g_loss, generator.trainable_variables)
        g_opt.apply_gradients(zip(grads, generator.trainable_variables, strict=True))
        return d_loss + g_loss

    return step


class _Interleave:
    """A Keras callback timing ``fit`` in blocks of ``block`` steps, running ``other`` between."""

    def __new__(cls, block: int, other: Any) -> Any:
        import keras

        class Interleave(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.gan_times: list[float] = []
                self.plain_times: list[float] = []
                self._start: float | None = None

            def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
                if (batch + 1) % block:
                    return
                float((logs or {}).get("d_loss", 0.0))  # the block's last step is done
                if self._start is not None:
                    self.gan_times.append(time.perf_counter() - self._start)
                    self.plain_times.append(other())
                self._start = time.perf_counter()

        return Interleave()


def measure_row(row: Row, steps: int, repeats: int) -> dict[str, Any]:
    """images/s of both ways for one row: the best of ``repeats`` interleaved timings, and the
    median ratio of adjacent pairs (robust when the load on a shared CPU drifts)."""
    import keras

    from training.config import TrainConfig
    from training.data import load_dataset, make_pipeline
    from training.loop import build_gan
    from training.nets.architectures import build_networks

    config = TrainConfig(**{**BASE, **row.overrides}).validate()
    data = load_dataset(config.dataset, config.resolution, config.channels, config.conditional)
    dataset = make_pipeline(data, config.batch_size, seed=config.seed)
    keras.utils.set_random_seed(config.seed)
    gan = build_gan(config, data.num_classes)
    generator, discriminator = build_networks(config, data.num_classes)
    plain = plain_step_fn(generator, discriminator, config)
    batches = iter(dataset)

    def run_plain() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            real, labels = next(batches)
            loss = plain(real, labels)
        float(loss)  # wait for the last step
        return time.perf_counter() - start

    for _ in range(5):  # trace and warm up
        plain(*next(batches))
    # One fit call, as gan-train makes, timed in blocks of ``steps``; after each block the plain
    # loop runs as many steps. Adjacent blocks see the same load on a shared CPU.
    timer = _Interleave(steps, run_plain)
    gan.fit(
        dataset,
        epochs=1,
        steps_per_epoch=steps * (repeats + 1),  # the first block traces and warms up
        verbose=0,
        shuffle=False,
        callbacks=[timer],
    )
    gan_times, plain_times = timer.gan_times, timer.plain_times
    pair_ratios = sorted(p / g for g, p in zip(gan_times, plain_times, strict=True))
    images = steps * config.batch_size
    gan_rate, plain_rate = images / min(gan_times), images / min(plain_times)
    return {
        "row": row.name,
        "overrides": row.overrides,
        "batch_size": config.batch_size,
        "steps": steps,
        "repeats": repeats,
        "gan_train_images_per_s": round(gan_rate, 1),
        "plain_images_per_s": round(plain_rate, 1),
        "ratio": round(gan_rate / plain_rate, 3),
        "median_pair_ratio": round(pair_ratios[len(pair_ratios) // 2], 3),
    }


@dataclass(frozen=True)
class ScaleRow:
    """One configuration of the scale table."""

    architecture: str
    precision: str = "float32"
    jit: bool = False
    devices: int = 1

    @property
    def name(self) -> str:
        xla = "xla" if self.jit else "-"
        return f"{self.architecture:<7} {self.precision:<15} {xla:<4} {self.devices}"


SCALE_BASE: dict[str, Any] = {
    "dataset": "digits",
    "resolution": 32,
    "channels": 3,
    "conditional": True,
    "z_dim": 128,
    "batch_size": 32,
}
# Widths that keep a step near a tenth of a second on a 2-core CPU.
SCALE_WIDTHS = {"dcgan": {"g_width": 32, "d_width": 32}, "resnet": {"g_width": 16, "d_width": 16}}
SCALE_ROWS = [
    ScaleRow(arch, precision, jit, devices)
    for arch in ("dcgan", "resnet")
    for precision in ("float32", "mixed_float16")
    for jit in (False, True)
    for devices in (1, 2)
] + [ScaleRow(arch, "mixed_bfloat16") for arch in ("dcgan", "resnet")]


def measure_scale(steps: int, repeats: int) -> list[dict[str, Any]]:
    """images/s of every ScaleRow (best of ``repeats`` round-robin timings) and its ratio."""
    import keras

    from training.config import TrainConfig
    from training.data import load_dataset, make_pipeline
    from training.distribute import DistributionError, check_jit, make_strategy, set_precision
    from training.loop import build_gan

    data = load_dataset("digits", SCALE_BASE["resolution"], SCALE_BASE["channels"], True)
    strategies = {1: make_strategy("none"), 2: make_strategy("mirrored")}
    built: dict[ScaleRow, tuple[Any, Any, int]] = {}
    skipped: dict[ScaleRow, str] = {}
    for row in SCALE_ROWS:
        options: dict[str, Any] = {
            **SCALE_BASE,
            **SCALE_WIDTHS[row.architecture],
            "architecture": row.architecture,
            "loss": "hinge" if row.architecture == "resnet" else "nonsaturating",
            "precision": row.precision,
            "jit": row.jit,
        }
        config = TrainConfig(**options).validate()
        strategy = strategies[row.devices]
        try:
            if row.jit:
                check_jit(strategy)
        except DistributionError:
            skipped[row] = "n/a: XLA with CPU replicas"
            continue
        set_precision(row.precision)
        keras.utils.set_random_seed(0)
        gan = build_gan(config, data.num_classes, strategy)
        dataset = make_pipeline(data, config.batch_size, seed=0)
        gan.fit(dataset, epochs=1, steps_per_epoch=3, verbose=0, shuffle=False)  # trace, warm up
        built[row] = (gan, dataset, config.batch_size)
        print(f"built {row.name}", flush=True)
    set_precision("float32")

    times: dict[ScaleRow, list[float]] = {row: [] for row in built}
    for _ in range(repeats):
        for row, (gan, dataset, _) in built.items():
            start = time.perf_counter()
            gan.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
            times[row].append(time.perf_counter() - start)
    results = []
    for row in SCALE_ROWS:
        entry: dict[str, Any] = {
            "architecture": row.architecture,
            "precision": row.precision,
            "jit": row.jit,
            "devices": row.devices,
        }
        if row in built:
            batch = built[row][2]
            entry["images_per_s"] = round(steps * batch / min(times[row]), 1)
        else:
            entry["images_per_s"] = None
            entry["note"] = skipped[row]
        results.append(entry)
    for entry in results:
        base = next(
            r
            for r in results
            if r["architecture"] == entry["architecture"]
            and r["precision"] == "float32"
            and not r["jit"]
            and r["devices"] == 1
        )
        rate = entry["images_per_s"]
        entry["ratio"] = round(rate / base["images_per_s"], 3) if rate else None
    return results


def print_scale(results: list[dict[str, Any]]) -> None:
    header = (
        f"{'architecture':<12} {'precision':<15} {'xla':<4} {'devices':>7} "
        f"{'img/s':>8} {'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        rate = f"{r['images_per_s']:.1f}" if r["images_per_s"] else "n/a"
        ratio = f"{r['ratio']:.3f}" if r["ratio"] else "-"
        xla = "xla" if r["jit"] else "-"
        print(
            f"{r['architecture']:<12} {r['precision']:<15} {xla:<4} {r['devices']:>7} "
            f"{rate:>8} {ratio:>7}"
        )
    if any(r["images_per_s"] is None for r in results):
        print("n/a: TensorFlow compiles cross-device updates with XLA only on GPUs")


PRECISION_BASE: dict[str, Any] = {
    "dataset": "digits",
    "resolution": 32,
    "channels": 1,
    "conditional": False,
    "z_dim": 64,
    "g_width": 8,
    "d_width": 8,
    "batch_size": 16,
    "augment": "color,translation,cutout",
    "strategy": "none",
}


def measure_precision(steps: int, repeats: int) -> list[dict[str, Any]]:
    """Seconds per train step under float32 and mixed_bfloat16 (best of ``repeats``)."""
    import keras

    from training.config import TrainConfig
    from training.data import load_dataset, make_pipeline
    from training.distribute import set_precision
    from training.loop import build_gan

    data = load_dataset("digits", PRECISION_BASE["resolution"], PRECISION_BASE["channels"], False)
    built: dict[tuple[str, str], tuple[Any, Any]] = {}
    for architecture in ("dcgan", "resnet"):
        for precision in ("float32", "mixed_bfloat16"):
            loss = "hinge" if architecture == "resnet" else "nonsaturating"
            options = {**PRECISION_BASE, "architecture": architecture, "loss": loss}
            config = TrainConfig(**options, precision=precision).validate()
            set_precision(precision)
            keras.utils.set_random_seed(0)
            gan = build_gan(config, data.num_classes)
            dataset = make_pipeline(data, config.batch_size, seed=0)
            gan.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)  # trace
            built[(architecture, precision)] = (gan, dataset)
            print(f"built {architecture} {precision}", flush=True)
    set_precision("float32")
    times: dict[tuple[str, str], list[float]] = {key: [] for key in built}
    for _ in range(repeats):
        for key, (gan, dataset) in built.items():
            start = time.perf_counter()
            gan.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
            times[key].append((time.perf_counter() - start) / steps)
    results = []
    for (architecture, precision), step_times in times.items():
        base = min(times[(architecture, "float32")])
        results.append({
            "architecture": architecture,
            "precision": precision,
            "seconds_per_step": round(min(step_times), 4),
            "ratio_to_float32": round(min(step_times) / base, 2),
        })  # fmt: skip
    return results


def print_precision(results: list[dict[str, Any]], cpu: str, native_bf16: bool) -> None:
    print(f"CPU: {cpu}; native bfloat16 (avx512_bf16/amx_bf16): {'yes' if native_bf16 else 'no'}")
    header = f"{'architecture':<12} {'precision':<15} {'s/step':>8} {'x float32':>10}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['architecture']:<12} {r['precision']:<15} {r['seconds_per_step']:>8.4f} "
            f"{r['ratio_to_float32']:>10.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="steps per timing [60]")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timings [3]")
    parser.add_argument("--rows", nargs="*", help="row name prefixes to run (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON output file")
    parser.add_argument(
        "--table",
        choices=("overhead", "scale", "precision", "all"),
        default="all",
        help="gan-train vs plain loop, the precision/XLA/devices table, float32 vs bfloat16 "
        "step time, or all three [all]",
    )
    parser.add_argument(
        "--scale-steps", type=int, default=20, help="steps per timing in the scale table [20]"
    )
    parser.add_argument(
        "--precision-steps",
        type=int,
        default=5,
        help="steps per timing in the float32 vs bfloat16 table [5]",
    )
    args = parser.parse_args(argv)

    # Two logical CPU devices for the MirroredStrategy rows: before TensorFlow starts.
    from training.distribute import split_cpu

    split_cpu(2)
    import tensorflow as tf

    from training.distribute import NATIVE_BFLOAT16_FLAGS, cpu_flags

    cpu = cpu_model()
    native_bf16 = bool((cpu_flags() or frozenset()) & NATIVE_BFLOAT16_FLAGS)
    print(f"CPU: {cpu}")
    rows = [r for r in ROWS if not args.rows or any(r.name.startswith(p) for p in args.rows)]
    if args.table in ("scale", "precision"):
        rows = []
    results = [measure_row(row, args.steps, args.repeats) for row in rows]
    scale = measure_scale(args.scale_steps, args.repeats) if args.table in ("scale", "all") else []
    precision = (
        measure_precision(args.precision_steps, args.repeats)
        if args.table in ("precision", "all")
        else []
    )
    if precision:
        print_precision(precision, cpu, native_bf16)
        print()
    if scale:
        print_scale(scale)
        print()
    header = (
        f"{'configuration':<40} {'gan-train img/s':>16} {'plain img/s':>12} {'ratio':>7}"
        f" {'median pair ratio':>18}"
    )
    if results:
        print(header)
        print("-" * len(header))
    for r in results:
        print(
            f"{r['row']:<40} {r['gan_train_images_per_s']:>16.1f} "
            f"{r['plain_images_per_s']:>12.1f} {r['ratio']:>7.3f} {r['median_pair_ratio']:>18.3f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "train_speed",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "cpu_model": cpu,
            "native_bfloat16": native_bf16,
            "cpus": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "tensorflow": tf.__version__,
        },
        "rows": results,
        "scale_rows": scale,
        "precision_rows": precision,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
