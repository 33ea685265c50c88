"""Encoding generated images: per image at 28 to 256 pixels, grey and colour, in every format the
service offers, and how encoding scales over the codec threads.

Usage::

    python benchmarks/png_encoding.py [--mnist-dir DIR] [--seconds 1]

Images: photo-like content at 64x64, 128x128 and 256x256, grey and RGB (noise whose spectrum
falls as 1/f, as natural images' does: smooth areas, edges and texture, never flat; the colour
channels correlated), and, when the MNIST files are found (``--mnist-dir``), 28x28 digits as
the bundled model makes. For each: the service's PNG encoder (``service.imaging``, zlib levels
1, 6 and 9) against Pillow's (level 6), WebP and JPEG at quality 90 (the service's
``GAN_IMAGE_QUALITY``), microseconds and bytes per image; then how many 128x128 colour PNGs per
second one thread and ``GAN_CODEC_THREADS`` threads encode (zlib and Pillow's codecs run
without the interpreter lock). With ``benchmarks/results/serve_sized.json`` present, also the
share of a 128x128 request's CPU time that its PNG takes. Writes
``benchmarks/results/png_encoding.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_model  # this folder is on sys.path: benchmarks run as scripts
from mnist_dir import add_mnist_dir

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "png_encoding.json"
SIZED = ROOT / "benchmarks" / "results" / "serve_sized.json"


def pillow_png(image: np.ndarray, level: int = 6) -> bytes:
    """The Pillow path the service used before: fromarray, then save as PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    pixels = image[..., 0] if image.shape[-1] == 1 else image
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, "PNG", compress_level=level)
    return buffer.getvalue()


def photo_like(count: int, side: int, channels: int, seed: int = 0) -> np.ndarray:
    """uint8 [count, side, side, channels] images whose amplitude spectrum falls as 1/f."""
    rng = np.random.default_rng(seed)
    freq = np.sqrt(np.add.outer(np.fft.fftfreq(side) ** 2, np.fft.fftfreq(side) ** 2))
    amplitude = 1.0 / np.maximum(freq, 1.0 / side)
    images = []
    for _ in range(count):
        base = rng.normal(size=(side, side)) + 1j * rng.normal(size=(side, side))
        layers = []
        for _ in range(channels):
            # Channels share most of their structure, as a photo's colour planes do.
            own = rng.normal(size=(side, side)) + 1j * rng.normal(size=(side, side))
            field = np.real(np.fft.ifft2((0.8 * base + 0.2 * own) * amplitude))
            layers.append((field - field.mean()) / (field.std() + 1e-9))
        pixels = np.stack(layers, axis=-1) * 50 + 128
        images.append(np.clip(np.round(pixels), 0, 255).astype(np.uint8))
    return np.stack(images)


def per_image_us(
    encode: Callable[[np.ndarray], bytes], images: np.ndarray, seconds: float
) -> float:
    """Mean microseconds per image, cycling over ``images`` for about ``seconds``."""
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for image in images:
            encode(image)
        count += len(images)
    return (time.perf_counter() - started) / count * 1e6


def image_sets(mnist_dir: Path | None) -> dict[str, np.ndarray]:
    sets: dict[str, np.ndarray] = {}
    if mnist_dir is not None and mnist_dir.is_dir():
        from training.data import load_dataset

        sets["28x28 grey (MNIST)"] = load_dataset(
            f"mnist-idx:{mnist_dir}", 28, 1, conditional=False
        ).images[:64]
    for side in (64, 128, 256):
        for channels, name in ((1, "grey"), (3, "RGB")):
            sets[f"{side}x{side} {name}"] = photo_like(16, side, channels, seed=side + channels)
    return sets


def threads_rate(images: np.ndarray, threads: int, seconds: float) -> float:
    """PNGs (level 6) per second that ``threads`` threads encode together."""
    from service.imaging import encode_png

    with ThreadPoolExecutor(threads) as pool:
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            list(pool.map(encode_png, list(images) * threads))
            count += len(images) * threads
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_mnist_dir(parser)
    parser.add_argument("--seconds", type=float, default=1.0, help="per encoder and image set")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from service.imaging import Encoding, encode_png
    from service.settings import Settings

    encoders: dict[str, Callable[[np.ndarray], bytes]] = {
        "png1": lambda i: encode_png(i, 1),
        "png6": lambda i: encode_png(i, 6),
        "png9": lambda i: encode_png(i, 9),
        "pillow6": pillow_png,
        "webp90": Encoding("webp", quality=90).encode,
        "jpeg90": Encoding("jpeg", quality=90).encode,
    }
    rows: list[dict[str, Any]] = []
    sets = image_sets(args.mnist_dir)
    for name, images in sets.items():
        row: dict[str, Any] = {"images": name, "raw_bytes": int(images[0].nbytes)}
        for key, encode in encoders.items():
            row[f"{key}_us"] = round(per_image_us(encode, images, args.seconds), 1)
            row[f"{key}_bytes"] = int(np.mean([len(encode(i)) for i in images]))
        rows.append(row)
    threads = Settings().codec_threads
    colour = sets["128x128 RGB"]
    scaling = {
        "threads": threads,
        "one_thread_per_s": threads_rate(colour, 1, 2 * args.seconds),
        "all_threads_per_s": threads_rate(colour, threads, 2 * args.seconds),
    }
    print(f"CPU: {cpu_model()}")
    print(
        f"{'images':20s} {'PNG 1':>7s} {'PNG 6':>7s} {'PNG 9':>7s} {'Pillow 6':>8s} "
        f"{'WebP 90':>7s} {'JPEG 90':>7s} | {'raw B':>7s} {'PNG 6 B':>8s} {'WebP B':>7s} "
        f"{'JPEG B':>7s}"
    )
    for r in rows:
        print(
            f"{r['images']:20s} {r['png1_us']:7.0f} {r['png6_us']:7.0f} {r['png9_us']:7.0f} "
            f"{r['pillow6_us']:8.0f} {r['webp90_us']:7.0f} {r['jpeg90_us']:7.0f} | "
            f"{r['raw_bytes']:7d} {r['png6_bytes']:8d} {r['webp90_bytes']:7d} "
            f"{r['jpeg90_bytes']:7d}"
        )
    print("(microseconds and bytes per image; PNG levels by the service's encoder)")
    print(
        f"128x128 RGB PNGs (level 6) per second: {scaling['one_thread_per_s']:.0f} with one "
        f"thread, {scaling['all_threads_per_s']:.0f} with {threads} (GAN_CODEC_THREADS's "
        f"default here): {scaling['all_threads_per_s'] / scaling['one_thread_per_s']:.2f}x"
    )
    share: dict[str, float] = {}
    if SIZED.exists():
        sized = json.loads(SIZED.read_text())
        runs = {r["concurrency"]: r for r in sized["service"]["runs"]}
        if 32 in runs:
            request_ms = runs[32]["cpu_ms_per_image"]
            png_ms = next(r for r in rows if r["images"] == "128x128 RGB")["png6_us"] / 1000
            share = {"request_cpu_ms": request_ms, "png_ms": png_ms}
            print(
                f"share of a 128x128 request's CPU time (the service at c=32 in "
                f"{SIZED.name}: {request_ms:.0f} ms per image) taken by its PNG: "
                f"{100 * png_ms / request_ms:.1f}%"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"cpu": cpu_model(), "rows": rows, "threads": scaling, "share": share}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
