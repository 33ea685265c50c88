"""From training to serving: what ``gan-train --export`` writes, the service serves.

A few steps of the SN-ResNet with DiffAugment on the bundled ``digits`` (the scale features'
smallest end-to-end path), exported by the CLI and then served by the app.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.settings import Settings
from training.cli.train import main as train_main


@pytest.mark.slow
def test_a_resnet_diffaugment_export_is_served(tmp_path: Path) -> None:
    models = tmp_path / "models"
    argv = ["--dataset", "digits", "--conditional", "--resolution", "32", "--z-dim", "16"]
    argv += ["--architecture", "resnet", "--augment", "color,translation,cutout"]
    argv += ["--g-width", "4", "--d-width", "4", "--batch-size", "8", "--steps", "3"]
    argv += ["--holdout", "20", "--sample-every", "0", "--checkpoint-every", "0"]
    argv += ["--strategy", "none", "--outdir", str(tmp_path / "runs")]
    argv += ["--export", "digits-resnet", "--models-dir", str(models)]
    assert train_main(argv) in (0, None)
    assert (models / "digits-resnet" / "1" / "model.json").is_file()

    settings = Settings(model_dir=models, allowed_batch_sizes=[2, 4], max_batch_size=4)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        listed = client.get("/v1/models/digits-resnet").json()
        assert listed["metadata"]["architecture"] == "resnet"
        assert listed["metadata"]["training_options"]["augment"] == "color,translation,cutout"

        generated = client.post("/generate", json={"seeds": [3], "class_label": 5})
        assert generated.status_code == 200, generated.text
        image = Image.open(io.BytesIO(generated.content))
        assert image.size == (32, 32) and image.mode == "L"

        scored = client.post(
            "/score?class_label=5", content=generated.content, headers={"Content-Type": "image/png"}
        )
        assert scored.status_code == 200, scored.text
        assert scored.json()["resolution"] == 32
