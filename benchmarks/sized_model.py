"""A generator of the size people train, for the serving benchmarks: an SN-ResNet at 128x128 RGB.

Usage (benchmarks run as scripts, so this folder is on ``sys.path``)::

    from sized_model import export_resnet

    version_dir = export_resnet(Path("/tmp/models"), resolution=128)   # .../resnet128/1

    python benchmarks/sized_model.py /tmp/models --resolution 128       # the same, as a command

The networks come from the training package's factory (``training.nets``, the SN-ResNet at its
default widths, ``g_width = d_width = 64``: BigGAN's 128x128 layout, 1024 channels at 4x4) and
are exported as any trained model is (``training.export.export_model``: both signatures and a
checked ``model.json``). The weights are **untrained** (Keras's initialisation, seed 0): the
speed of a model call does not depend on them. Its images are textured colour noise (a standard
deviation of about 35 grey levels, none saturated), neither flat nor as smooth as a trained
model's, so their encoding costs about what a real image's does. (Kernels scaled up to spread
the images further saturate nearly every pixel, which makes images flat instead, and moves
pixels across batch shapes by more than the one grey level warm-up accepts.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def export_resnet(
    models_dir: Path,
    *,
    resolution: int = 128,
    channels: int = 3,
    width: int = 64,
    name: str | None = None,
) -> Path:
    """Export an untrained SN-ResNet generator and discriminator as ``models_dir/NAME/1``
    (``NAME``: ``resnet<resolution>``) and return the version directory; an existing version
    directory is returned as it is."""
    name = name or f"resnet{resolution}"
    existing = models_dir / name / "1"
    if (existing / "saved_model.pb").is_file():
        return existing
    sys.path.insert(0, str(ROOT))
    import keras

    from training.config import TrainConfig
    from training.export import export_model
    from training.loop import build_gan

    keras.utils.set_random_seed(0)
    config = TrainConfig(
        dataset="digits",
        architecture="resnet",
        resolution=resolution,
        channels=channels,
        g_width=width,
        d_width=width,
        z_dim=128,
    )
    gan = build_gan(config.validate(), num_classes=0)
    return export_model(
        gan, models_dir, name, calibration_count=8, command="benchmarks/sized_model.py (untrained)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models_dir", type=Path)
    parser.add_argument("--resolution", type=int, default=128, choices=(32, 64, 128))
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3))
    parser.add_argument("--width", type=int, default=64, help="g_width and d_width")
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    path = export_resnet(
        args.models_dir,
        resolution=args.resolution,
        channels=args.channels,
        width=args.width,
        name=args.name,
    )
    print(path)


if __name__ == "__main__":
    main()
