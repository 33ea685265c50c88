"""The table of model calls: generate rows say which format they want (or none), and rows of
every format share a batch, each getting what it asked for."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from service.engine.calls import CALLS, FORMAT, PARAMETER
from service.imaging import FORMAT_CODES
from tests.images import assert_same_image, png_pixels


def test_only_the_real_rows_that_ask_are_encoded_each_in_its_format(png_encodes) -> None:
    images = np.arange(4 * 2 * 2 * 1, dtype=np.uint8).reshape(4, 2, 2, 1)
    post = CALLS["generate"].postprocess(6)
    assert post is not None
    # Row 0 asked for a PNG at level 9, row 1 for nothing, row 2 for a JPEG at quality 50,
    # row 3 is padding (format 0, past the real rows).
    formats = np.array([FORMAT_CODES["png"], 0, FORMAT_CODES["jpeg"], 0], np.uint8)
    parameters = np.array([9, 0, 50, 0], np.uint8)
    out = post({"images": images, FORMAT: formats, PARAMETER: parameters}, 3)
    assert len(out["encoded"]) == 3 and out["encoded"][1] == b""
    np.testing.assert_array_equal(png_pixels(out["encoded"][0]), images[0, :, :, 0])
    assert out["encoded"][2][:2] == b"\xff\xd8"  # a JPEG's start-of-image marker
    assert png_encodes == [(2, 2, 1)]  # the one PNG, at the row's level
    # The complete signature's post-processing: a PNG of every real row.
    complete = CALLS["complete"].postprocess(6)
    assert complete is not None and len(complete({"images": images}, 3)["png"]) == 3


def test_rows_without_pngs_share_a_batch_with_rows_that_want_them(
    client: TestClient, png_encodes
) -> None:
    app: Any = client.app
    engine = app.state.engine
    model = engine.repository.get("uncond")
    batcher: Any = engine.batcher(model, "generate")
    batches: list[np.ndarray] = []
    real = batcher._fn

    def recorded(rows: Any, shared: Any) -> Any:
        batches.append(rows["format"].copy())
        return real(rows, shared)

    batcher._fn = recorded
    walk_z = np.random.RandomState(3).randn(4, model.z_dim).astype(np.float32)
    labels = np.zeros(4, np.int32)

    async def together() -> Any:
        # Both requests are queued in one turn of the event loop, before the batcher's thread
        # is woken: one batch takes them both (6 rows, within max_batch_size 8).
        return await asyncio.gather(
            engine.generate(model, walk_z, labels, 1.0, encode=False),
            engine.generate_seeds(model, [5, 6], labels[:2], 1.0),
        )

    try:
        (walk_images, walk_pngs), (images, pngs) = client.portal.call(together)
    finally:
        batcher._fn = real
    assert len(batches) == 1, batches  # one batch, padded to 8 rows
    png = FORMAT_CODES["png"]
    assert batches[0].tolist() == [0, 0, 0, 0, png, png, 0, 0]
    assert walk_pngs == [] and walk_images.shape[0] == 4
    assert len(png_encodes) == 2  # the /generate rows' PNGs, nothing for the walk's
    for png, image in zip(pngs, images, strict=True):
        assert_same_image(png, image)


def test_requests_of_different_formats_share_one_model_call(client: TestClient) -> None:
    from service.imaging import Encoding

    app: Any = client.app
    engine = app.state.engine
    model = engine.repository.get("uncond")
    batcher: Any = engine.batcher(model, "generate")
    calls: list[list[int]] = []
    real = batcher._fn

    def recorded(rows: Any, shared: Any) -> Any:
        calls.append(rows["format"].tolist())
        return real(rows, shared)

    batcher._fn = recorded
    labels = np.zeros(1, np.int32)
    kinds = [Encoding("png", level=1), Encoding("webp", quality=80), Encoding("jpeg", quality=70)]

    async def together() -> Any:
        return await asyncio.gather(
            *(engine.generate_seeds(model, [9], labels, 1.0, kind) for kind in kinds)
        )

    try:
        answers = client.portal.call(together)
    finally:
        batcher._fn = real
    assert len(calls) == 1, calls  # one model call for the three formats
    assert calls[0][:3] == [FORMAT_CODES["png"], FORMAT_CODES["webp"], FORMAT_CODES["jpeg"]]
    (png_images, (png,)), (_, (webp,)), (_, (jpeg,)) = answers
    assert png[:4] == b"\x89PNG" and webp[8:12] == b"WEBP" and jpeg[:2] == b"\xff\xd8"
    assert_same_image(png, png_images[0])
