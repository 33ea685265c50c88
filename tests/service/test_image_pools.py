"""The two image pools: a backlog of PNG encoding never holds up the decoding of uploads."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from tests.service.conftest import make_settings


def test_stalled_png_encoding_does_not_starve_score_decoding(model_dir: Path) -> None:
    app = create_app(make_settings(model_dir, warmup=False, codec_threads=1))
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(buffer, format="PNG")
    with TestClient(app) as client:
        engine: Any = app.state.engine
        batcher: Any = engine.batcher(engine.repository.get("uncond"), "generate")
        release, released = threading.Event(), threading.Event()

        def stall() -> None:
            release.wait(5)  # set free after 5 s at the latest
            released.set()

        # Fill every thread that encodes generated images.
        batcher._post_executor.submit(stall)
        try:
            response = client.post(
                "/score?model=uncond",
                content=buffer.getvalue(),
                headers={"content-type": "image/png"},
            )
            answered_while_stalled = not released.is_set()
        finally:
            release.set()
    assert response.status_code == 200, response.text
    assert answered_while_stalled
