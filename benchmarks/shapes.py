"""Procedural colour scenes of five shape classes, with known answers, for measuring training.

Usage::

    python benchmarks/shapes.py --out /tmp/shapes --count 5000            # 64x64, seed 0
    gan-train --dataset folder:/tmp/shapes --conditional --resolution 64 --channels 3 ...

    from shapes import make_shapes                # benchmarks/ on sys.path
    images, labels, scenes = make_shapes(count=100, seed=0)     # uint8 [100, 64, 64, 3]

Each image is one shape (circle, cross, square, star or triangle: :data:`CLASSES`) of a random
colour, size, position and rotation on a textured background (soft stripes, checks or blotches
in two nearby colours), the shape's colour far enough from both background colours in luminance
to stay legible. ``write_dataset`` saves them as PNG files in one subfolder per class, the kind
of folder ``gan-train --dataset folder:`` reads, with ``scenes.json`` beside them: every
image's class, centre, radius, rotation, colours and texture (the known answers).

The same seed gives the same images on any machine: image ``i`` draws its parameters from
numpy's ``Generator`` seeded with ``(seed, i)`` (so the first images do not depend on how many
are made), and every pixel is integer arithmetic: rotations by rational cosines and sines
(``(q^2 - p^2, 2pq) / (q^2 + p^2)``, no trigonometry), shapes as unions of convex polygons
tested with integer cross products at 4x4 samples per pixel, colours mixed in sixteenths.
``tests/test_shapes.py`` pins a digest of the pixels.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Sorted, as the folder loader numbers its subfolders: a label means the same in both.
CLASSES = ("circle", "cross", "square", "star", "triangle")
TEXTURES = ("stripes", "checks", "blotches")
SUB = 8  # sub-pixel units per pixel: the 4x4 samples sit at odd multiples of 1/8 pixel
ROTATION_Q = 64  # rotations are 2 atan(p / 64) for p in -64..64: -90 to 90 degrees
MIN_CONTRAST = 80  # luminance (0..255) between the shape and each background colour

# Each class as convex polygons around the origin, circumradius 1024 (the circle is exact).
# Integer vertices, so that no machine's trigonometry enters the pixels.
_ARM = 328  # the cross's half width: 0.32 of its arm
_STAR_TIPS = ((0, 1024), (-974, 316), (-602, -828), (602, -828), (974, 316))  # 90 + 72k degrees
_STAR_INNER = ((-271, 373), (-438, -142), (0, -461), (438, -142), (271, 373))  # 0.45, 126 + 72k
_PIECES: dict[str, tuple[tuple[tuple[int, int], ...], ...]] = {
    "square": (((724, 724), (-724, 724), (-724, -724), (724, -724)),),
    "triangle": (((0, 1024), (-887, -512), (887, -512)),),
    "star": (
        _STAR_INNER,
        *((_STAR_INNER[k - 1], tip, _STAR_INNER[k]) for k, tip in enumerate(_STAR_TIPS)),
    ),
    "cross": (
        ((_ARM, 1024), (-_ARM, 1024), (-_ARM, -1024), (_ARM, -1024)),
        ((1024, _ARM), (-1024, _ARM), (-1024, -_ARM), (1024, -_ARM)),
    ),
}


@dataclass(frozen=True)
class Scene:
    """One image's parameters: its known answers (lengths in 1/8 pixel)."""

    label: int
    centre: tuple[int, int]  # x, y
    radius: int  # circumradius
    rotation: int  # p of the rational rotation (cos, sin) = (q^2 - p^2, 2pq) / (q^2 + p^2)
    colour: tuple[int, int, int]
    background: tuple[tuple[int, int, int], tuple[int, int, int]]
    texture: str
    texture_params: tuple[int, ...]

    @property
    def name(self) -> str:
        return CLASSES[self.label]

    def describe(self) -> dict[str, Any]:
        """JSON-ready, in pixels and degrees (the degrees for people only: pixels use p)."""
        p, q = self.rotation, ROTATION_Q
        degrees = float(np.degrees(2 * np.arctan2(p, q)))
        return {
            **asdict(self),
            "class": self.name,
            "centre_px": [self.centre[0] / SUB, self.centre[1] / SUB],
            "radius_px": self.radius / SUB,
            "degrees": round(degrees, 2),
        }


def luma(rgb: np.ndarray) -> np.ndarray:
    """Integer luminance 0..255 (ITU-R 601 weights in thousandths) of RGB triples [..., 3]."""
    rgb = np.asarray(rgb, np.int64)
    return (299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2]) // 1000


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The background's two colours (near each other) and the shape's, legible on both."""
    first = rng.integers(0, 256, 3)
    second = np.clip(first + rng.integers(-64, 65, 3), 0, 255)
    for _ in range(1000):
        colour = rng.integers(0, 256, 3)
        if min(abs(luma(colour) - luma(first)), abs(luma(colour) - luma(second))) >= MIN_CONTRAST:
            return first, second, colour
    # Unreachable in practice (most colours pass); black or white always contrasts enough.
    dark = max(luma(first), luma(second)) >= 128
    return first, second, np.zeros(3, np.int64) if dark else np.full(3, 255, np.int64)


def draw_scene(seed: int, index: int, size: int = 64) -> tuple[np.ndarray, Scene]:
    """Image ``index`` of the set ``seed``: uint8 [size, size, 3] and its parameters."""
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    rng = np.random.default_rng([seed, index])
    label = int(rng.integers(len(CLASSES)))
    radius = int(rng.integers(size * SUB * 10 // 64, size * SUB * 24 // 64 + 1))
    margin = radius * 11 // 10 + SUB  # the cross reaches 1.05 radii from its centre
    centre = (
        int(rng.integers(margin, size * SUB - margin + 1)),
        int(rng.integers(margin, size * SUB - margin + 1)),
    )
    rotation = int(rng.integers(-ROTATION_Q, ROTATION_Q + 1))
    first, second, colour = _colours(rng)
    texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
    if texture == "stripes":  # direction, period (pixels), phase
        direction = [0, 0]
        while direction == [0, 0]:
            direction = [int(v) for v in rng.integers(-2, 3, 2)]
        params: tuple[int, ...] = (*direction, int(rng.integers(6, 17)), int(rng.integers(0, 64)))
    elif texture == "checks":  # cell side (pixels), offsets
        params = (int(rng.integers(4, 13)), *(int(v) for v in rng.integers(0, 16, 2)))
    else:  # blotches: a coarse grid of weights 0..16, one every 8 pixels
        cells = size // 8 + 2
        params = tuple(int(v) for v in rng.integers(0, 17, cells * cells))
    scene = Scene(
        label, centre, radius, rotation, _rgb(colour), (_rgb(first), _rgb(second)), texture,
        params,
    )  # fmt: skip
    return render(scene, size), scene


def _rgb(colour: np.ndarray) -> tuple[int, int, int]:
    red, green, blue = (int(v) for v in colour)
    return red, green, blue


def render(scene: Scene, size: int) -> np.ndarray:
    """The scene's pixels, uint8 [size, size, 3]: the shape's coverage mixes its colour over
    the background in sixteenths."""
    pattern = texture_pattern(scene, size)[..., None]  # 0..16: the second colour's share
    first, second = (np.array(c, np.int64) for c in scene.background)
    background = (first * (16 - pattern) + second * pattern + 8) // 16
    cover = coverage(scene, size)[..., None]  # 0..16
    pixels = (background * (16 - cover) + np.array(scene.colour, np.int64) * cover + 8) // 16
    return pixels.astype(np.uint8)


def texture_pattern(scene: Scene, size: int) -> np.ndarray:
    """int64 [size, size] in 0..16: how much of the second background colour each pixel has."""
    y, x = np.mgrid[0:size, 0:size].astype(np.int64)
    params = scene.texture_params
    if scene.texture == "stripes":
        u, v, period, phase = params
        wave = (u * x + v * y + phase) % period  # soft stripes: a triangle wave
        return np.abs(2 * wave - period) * 16 // period
    if scene.texture == "checks":
        side, dx, dy = params
        return 16 * (((x + dx) // side + (y + dy) // side) % 2)
    cells = size // 8 + 2
    grid = np.array(params, np.int64).reshape(cells, cells)
    gx, fx, gy, fy = x // 8, x % 8, y // 8, y % 8
    top = grid[gy, gx] * (8 - fx) + grid[gy, gx + 1] * fx
    bottom = grid[gy + 1, gx] * (8 - fx) + grid[gy + 1, gx + 1] * fx
    return (top * (8 - fy) + bottom * fy + 32) // 64  # bilinear, in integers


def coverage(scene: Scene, size: int) -> np.ndarray:
    """int64 [size, size] in 0..16: how many of each pixel's 4x4 samples the shape covers."""
    axis = np.arange(size * 4, dtype=np.int64) * 2 + 1  # sample positions in 1/8 pixel
    y, x = np.meshgrid(axis, axis, indexing="ij")
    cx, cy = scene.centre
    if scene.name == "circle":
        inside = (x - cx) ** 2 + (y - cy) ** 2 <= scene.radius**2
    else:
        inside = np.zeros(x.shape, bool)
        for piece in _PIECES[scene.name]:
            inside |= _in_convex(x, y, placed(piece, scene))
    return inside.reshape(size, 4, size, 4).sum(axis=(1, 3))


def placed(piece: tuple[tuple[int, int], ...], scene: Scene) -> list[tuple[int, int]]:
    """A unit polygon rotated, scaled to the scene's radius and moved to its centre (integer
    vertices in 1/8 pixel, rounded half up)."""
    p, q = scene.rotation, ROTATION_Q
    cos, sin, den = q * q - p * p, 2 * p * q, (q * q + p * p) * 1024
    cx, cy = scene.centre
    r = scene.radius
    return [
        (
            cx + ((ux * cos - uy * sin) * r * 2 + den) // (2 * den),
            cy + ((ux * sin + uy * cos) * r * 2 + den) // (2 * den),
        )
        for ux, uy in piece
    ]


def _in_convex(x: np.ndarray, y: np.ndarray, polygon: list[tuple[int, int]]) -> np.ndarray:
    """Which points lie inside the convex ``polygon`` (or on its edge), in either winding."""
    edges = list(zip(polygon, polygon[1:] + polygon[:1], strict=True))
    sign = 1 if sum(ax * by - bx * ay for (ax, ay), (bx, by) in edges) >= 0 else -1
    inside = np.ones(x.shape, bool)
    for (ax, ay), (bx, by) in edges:
        inside &= sign * ((bx - ax) * (y - ay) - (by - ay) * (x - ax)) >= 0
    return inside


def make_shapes(
    count: int, seed: int = 0, size: int = 64
) -> tuple[np.ndarray, np.ndarray, list[Scene]]:
    """``count`` scenes of the set ``seed``: uint8 images [count, size, size, 3], int32 labels."""
    drawn = [draw_scene(seed, index, size) for index in range(count)]
    images = np.stack([image for image, _ in drawn]) if drawn else np.zeros((0, size, size, 3))
    labels = np.array([scene.label for _, scene in drawn], np.int32)
    return images.astype(np.uint8), labels, [scene for _, scene in drawn]


def write_dataset(out: Path, count: int, seed: int = 0, size: int = 64) -> int:
    """Write ``count`` scenes as ``out/<class>/<index>.png`` and ``out/scenes.json``."""
    from PIL import Image

    records = []
    for index in range(count):
        image, scene = draw_scene(seed, index, size)
        relative = Path(scene.name) / f"{index:05d}.png"
        (out / scene.name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(out / relative)
        records.append({"file": str(relative), **scene.describe()})
    meta = {"seed": seed, "size": size, "count": count, "classes": list(CLASSES)}
    (out / "scenes.json").write_text(json.dumps({**meta, "scenes": records}) + "\n")
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write (one per class)")
    parser.add_argument("--count", type=int, default=5000, help="images (default 5000)")
    parser.add_argument("--seed", type=int, default=0, help="which set (default 0)")
    parser.add_argument("--size", type=int, default=64, help="image side (default 64)")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= 1_000_000:
        parser.error("--count must be 1 to 1,000,000")
    if not 16 <= args.size <= 1024:
        parser.error("--size must be 16 to 1024")
    if args.seed < 0:
        parser.error("--seed must be 0 or more")
    written = write_dataset(args.out, args.count, args.seed, args.size)
    print(f"wrote {written} images of {args.size}x{args.size} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
