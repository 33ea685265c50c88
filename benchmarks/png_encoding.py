"""PNG encoding of generated images: the service's encoder against Pillow's, per image.

Usage::

    python benchmarks/png_encoding.py [--mnist-dir DIR] [--seconds 2]

Images: MNIST digits (28x28 grey, as the bundled model makes), the same digits tinted and
upscaled to 64x64 RGB, and a 256x256 RGB grid of them. Both encoders use compression level 6
(the service's default). Prints microseconds per image and bytes for each, with the ratio
measured in the same run, and writes benchmarks/results/png_encoding.json.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from machine import cpu_model  # this folder is on sys.path: benchmarks run as scripts
from mnist_dir import add_mnist_dir, checked_mnist_dir

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "png_encoding.json"


def pillow_png(image: np.ndarray, level: int = 6) -> bytes:
    """The Pillow path the service used before: fromarray, then save as PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    pixels = image[..., 0] if image.shape[-1] == 1 else image
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, "PNG", compress_level=level)
    return buffer.getvalue()


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


def test_images(mnist_dir: Path) -> dict[str, np.ndarray]:
    """Three sets of uint8 [N, H, W, C] images made from the first 64 MNIST digits."""
    from PIL import Image

    from gan_contract.grid import make_grid
    from training.data import load_dataset

    digits = load_dataset(f"mnist-idx:{mnist_dir}", 28, 1, conditional=False).images[:64]
    tint = np.array([255, 180, 60], np.float32) / 255.0
    colour = np.stack([
        np.asarray(Image.fromarray(d[..., 0]).resize((64, 64), Image.Resampling.BICUBIC))
        for d in digits
    ])[..., None] * tint  # fmt: skip
    colour = colour.astype(np.uint8)
    grid = make_grid(colour[:16], columns=4)  # 4 x 64 plus padding: about 256 pixels a side
    return {
        "28x28 grey": digits,
        "64x64 RGB": colour,
        f"{grid.shape[0]}x{grid.shape[1]} RGB grid": grid[None],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_mnist_dir(parser)
    parser.add_argument("--seconds", type=float, default=2.0, help="per encoder and image set")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    checked_mnist_dir(parser, args)

    from service.imaging import encode_png

    rows = []
    for name, images in test_images(args.mnist_dir).items():
        service_us = per_image_us(encode_png, images, args.seconds)
        pillow_us = per_image_us(pillow_png, images, args.seconds)
        rows.append({
            "images": name,
            "service_us": round(service_us, 1),
            "pillow_us": round(pillow_us, 1),
            "pillow_over_service": round(pillow_us / service_us, 2),
            "service_bytes": int(np.mean([len(encode_png(i)) for i in images])),
            "pillow_bytes": int(np.mean([len(pillow_png(i)) for i in images])),
        })  # fmt: skip
    print(f"CPU: {cpu_model()}")
    print(f"{'images':22s} {'service µs':>11s} {'Pillow µs':>10s} {'ratio':>6s} "
          f"{'service B':>10s} {'Pillow B':>9s}")  # fmt: skip
    for r in rows:
        times = f"{r['service_us']:11.1f} {r['pillow_us']:10.1f} {r['pillow_over_service']:6.2f}"
        print(f"{r['images']:22s} {times} {r['service_bytes']:10d} {r['pillow_bytes']:9d}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu": cpu_model(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
