"""From training to serving: what ``gan-train --export`` writes, the service serves.

A few steps of the SN-ResNet with DiffAugment on the bundled ``digits`` (the scale features'
smallest end-to-end path), exported by the CLI and then served by the app.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.settings import Settings
from training.cli.train import main as train_main


# About 25 s (tracing the ResNet's train step): `make test-extended`, which CI runs too.
@pytest.mark.extended
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


# The DCGAN at 64 runs in `make test`; the other three (about a minute together) in `make
# test-extended`, which CI runs after it.
_EXTENDED = pytest.mark.extended


@pytest.mark.slow
@pytest.mark.parametrize(
    ("architecture", "resolution"),
    [
        ("dcgan", 64),
        pytest.param("dcgan", 128, marks=_EXTENDED),
        pytest.param("resnet", 64, marks=_EXTENDED),
        pytest.param("resnet", 128, marks=_EXTENDED),
    ],
)
def test_both_families_train_resume_export_and_serve_at_64_and_128(
    architecture: str, resolution: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training import loop
    from training.config import TrainConfig
    from training.export import export_model
    from training.loop import train
    from training.rundir import resume_config

    if architecture == "resnet":
        # Tracing the ResNet's train step as a graph takes tens of seconds on a CPU; run eagerly,
        # the same layers meet the same shapes at this size in a few. Its traced step is tested
        # at 32x32 above, the DCGAN's here at both sizes.
        build = loop.build_gan

        def eager(*args: Any, **kwargs: Any) -> Any:
            gan = build(*args, **kwargs)
            gan.run_eagerly = True
            return gan

        monkeypatch.setattr(loop, "build_gan", eager)

    # Colour noise in two classes: what is learnt does not matter here, only that every stage
    # runs at this size.
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (40, resolution, resolution, 3), dtype=np.uint8)
    np.savez(tmp_path / "data.npz", x=pixels, y=np.arange(40) % 2)
    config = TrainConfig(
        dataset=f"npz:{tmp_path / 'data.npz'}", resolution=resolution, channels=3,
        conditional=True, architecture=architecture, z_dim=8, g_width=2, d_width=2,
        max_width=8, batch_size=4, steps=2, holdout=4, sample_every=0, checkpoint_every=0,
        log_every=1, strategy="none",
    )  # fmt: skip
    first = train(config, outdir=tmp_path / "runs", verbose=False)
    resumed = train(resume_config(first.run_dir, {"steps": 3}), resume=first.run_dir,
                    verbose=False)  # fmt: skip
    assert int(resumed.gan.step.numpy()) == 3  # continued from the checkpoint at step 2
    assert int(resumed.gan.images_seen.numpy()) == 3 * 4
    export_model(resumed.gan, tmp_path / "models", "big", holdout=resumed.holdout,
                 run_dir=resumed.run_dir, calibration_count=8)  # fmt: skip

    settings = Settings(model_dir=tmp_path / "models", allowed_batch_sizes=[1, 2],
                        max_batch_size=2)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        info = client.get("/v1/models/big").json()["metadata"]
        assert (info["resolution"], info["architecture"], info["steps"]) == (
            resolution,
            architecture,
            3,
        )
        generated = client.post("/generate", json={"seeds": [3], "class_label": 1})
        assert generated.status_code == 200, generated.text
        image = Image.open(io.BytesIO(generated.content))
        assert image.size == (resolution, resolution) and image.mode == "RGB"
        scored = client.post(
            "/score?class_label=1", content=generated.content, headers={"Content-Type": "image/png"}
        )
        assert scored.status_code == 200, scored.text
        assert scored.json()["resolution"] == resolution
