"""The table of model calls: generate rows say whether they want a PNG, and rows with and without
one share a batch, each getting what it asked for."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from service.engine.calls import CALLS, PNG_FLAG
from tests.images import assert_same_image, png_pixels


def test_only_the_flagged_real_rows_are_encoded(png_encodes) -> None:
    images = np.arange(4 * 2 * 2 * 1, dtype=np.uint8).reshape(4, 2, 2, 1)
    post = CALLS["generate"].postprocess(6)
    assert post is not None
    # Rows 0 and 2 asked for a PNG, row 1 did not, row 3 is padding (flag 0, past the real rows).
    out = post({"images": images, PNG_FLAG: np.array([1, 0, 1, 0], np.uint8)}, 3)
    assert len(out["png"]) == 3 and out["png"][1] == b""
    for row in (0, 2):
        np.testing.assert_array_equal(png_pixels(out["png"][row]), images[row, :, :, 0])
    assert len(png_encodes) == 2
    # Outputs without flags (the complete signature's): every real row.
    assert len(post({"images": images}, 3)["png"]) == 3


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
        batches.append(rows["png"].copy())
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
    assert batches[0].tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
    assert walk_pngs == [] and walk_images.shape[0] == 4
    assert len(png_encodes) == 2  # the /generate rows' PNGs, nothing for the walk's
    for png, image in zip(pngs, images, strict=True):
        assert_same_image(png, image)
