"""benchmarks/shapes.py: reproducible scenes whose classes are what their labels say."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def shapes() -> Iterator[ModuleType]:
    """benchmarks/shapes.py, loaded from its file (benchmarks are scripts, not a package)."""
    name = "benchmark_shapes"
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / "shapes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it runs
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


def test_the_same_seed_gives_the_same_pixels_on_any_machine(shapes: ModuleType):
    images, labels, _ = shapes.make_shapes(8, seed=0)
    # Integer arithmetic only, so this digest holds on every machine; it changes only when the
    # generator's rules (or numpy's Generator stream) do, and then the benchmark's data did too.
    digest = hashlib.sha256(images.tobytes() + labels.astype("<i4").tobytes()).hexdigest()
    assert digest == "2074e0890049cc08ab213a6944bc31a255ba80c84542e8855a6b0bfbfa930e91"
    again, _, _ = shapes.make_shapes(3, seed=0)
    assert np.array_equal(again, images[:3])  # image i does not depend on how many are made
    other, _, _ = shapes.make_shapes(3, seed=1)
    assert not np.array_equal(other, images[:3])


def _ideal(shapes: ModuleType, scene, name: str, size: int, scale: int = 16) -> np.ndarray:
    """Where the shape ``name`` with the scene's centre, radius and rotation lies, drawn another
    way: floating-point trigonometry and PIL's polygon filling at ``scale`` times the size."""
    angle = 2 * math.atan2(scene.rotation, shapes.ROTATION_Q)
    cos, sin = math.cos(angle), math.sin(angle)
    factor = scale / shapes.SUB
    cx, cy, r = scene.centre[0] * factor, scene.centre[1] * factor, scene.radius * factor
    canvas = Image.new("L", (size * scale, size * scale), 0)
    draw = ImageDraw.Draw(canvas)
    if name == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    for piece in shapes._PIECES.get(name, ()):
        points = [
            (cx + (x * cos - y * sin) * r / 1024, cy + (x * sin + y * cos) * r / 1024)
            for x, y in piece
        ]
        draw.polygon(points, fill=255)
    return np.asarray(canvas).reshape(size, scale, size, scale).mean(axis=(1, 3)) / 255.0


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two coverage maps in [0, 1]."""
    return float(np.minimum(a, b).sum() / np.maximum(a, b).sum())


@pytest.mark.parametrize("size", [32, 64])
def test_every_image_shows_the_shape_its_label_names(shapes: ModuleType, size: int):
    images, labels, scenes = shapes.make_shapes(30, seed=3, size=size)
    assert set(labels.tolist()) == set(range(len(shapes.CLASSES)))  # every class drawn
    for image, label, scene in zip(images, labels, scenes, strict=True):
        drawn = shapes.coverage(scene, size) / 16.0
        fits = {name: _overlap(drawn, _ideal(shapes, scene, name, size)) for name in shapes.CLASSES}
        # Two renderers of one shape differ only along its edges: at least 0.96 of overlap in
        # 200 scenes at 32x32, where the smallest shapes have the most edge for their area.
        # Another class's shape at the same place overlapped it 0.68 at most.
        named = fits.pop(shapes.CLASSES[label])
        assert named > 0.9 and max(fits.values()) < 0.8, (scene, named, fits)
        # Pixels wholly inside the shape are its colour, which stands out from the background.
        assert (image[drawn == 1.0] == scene.colour).all()
        assert min(abs(int(shapes.luma(scene.colour)) - int(shapes.luma(c)))
                   for c in scene.background) >= shapes.MIN_CONTRAST  # fmt: skip


def test_the_written_folder_is_a_labelled_data_set_with_its_answers(
    shapes: ModuleType, tmp_path: Path
):
    from training.data import load_dataset

    assert shapes.write_dataset(tmp_path, count=12, seed=0) == 12  # every class among them
    data = load_dataset(f"folder:{tmp_path}", 64, 3, conditional=True)
    images, labels, scenes = shapes.make_shapes(12, seed=0)
    answers = json.loads((tmp_path / "scenes.json").read_text())
    # The loader numbers the subfolders in sorted order, as CLASSES is: the labels agree.
    assert data.class_names == list(shapes.CLASSES)
    order = [int(Path(s["file"]).stem) for s in sorted(answers["scenes"], key=lambda s: s["file"])]
    assert np.array_equal(data.images, images[order])  # PNG is lossless: the same pixels
    assert data.labels is not None and np.array_equal(data.labels, labels[order])
    first = answers["scenes"][0]
    assert (first["class"], first["radius_px"]) == (scenes[0].name, scenes[0].radius / shapes.SUB)
