"""Animated WebP and GIF files hold every frame, scaled, with the asked timing and looping."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageSequence

from gan_contract.animation import encode_animation, upscale


def _frames(count: int, channels: int) -> np.ndarray:
    return np.random.RandomState(1).randint(0, 256, (count, 6, 6, channels), dtype=np.uint8)


def _decoded(data: bytes, mode: str) -> tuple[Image.Image, list[np.ndarray]]:
    image = Image.open(io.BytesIO(data))
    frames = [np.asarray(f.convert(mode)) for f in ImageSequence.Iterator(image)]
    return image, frames


@pytest.mark.parametrize("channels", [1, 3])
def test_webp_is_lossless_and_scaled(channels):
    images = _frames(5, channels)
    data = encode_animation(images, "webp", fps=10, scale=3)
    image, frames = _decoded(data, "L" if channels == 1 else "RGB")
    assert image.format == "WEBP" and image.size == (18, 18) and len(frames) == 5
    expected = upscale(images, 3)
    for frame, want in zip(frames, expected, strict=True):
        assert np.array_equal(frame.reshape(want.shape), want)


def test_gif_keeps_grayscale_frames_exact_and_loops_forever():
    images = _frames(4, 1)
    data = encode_animation(images, "gif", fps=20, loop=True)
    image, frames = _decoded(data, "L")
    assert image.format == "GIF" and len(frames) == 4
    assert image.info["loop"] == 0 and image.info["duration"] == 50
    for frame, want in zip(frames, images, strict=True):
        assert np.array_equal(frame, want[..., 0])


def test_without_loop_the_animation_plays_once():
    gif = Image.open(io.BytesIO(encode_animation(_frames(3, 1), "gif", fps=5, loop=False)))
    assert "loop" not in gif.info
    webp = Image.open(io.BytesIO(encode_animation(_frames(3, 3), "webp", fps=5, loop=False)))
    assert webp.info.get("loop") == 1


def test_bad_frames_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        encode_animation(np.zeros((2, 4, 4, 2), np.uint8), "webp", fps=1)
    with pytest.raises(ValueError, match="format"):
        encode_animation(_frames(2, 1), "avi", fps=1)  # type: ignore[arg-type]
