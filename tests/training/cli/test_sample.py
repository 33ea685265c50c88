"""gan-sample: grids, files and walks from an exported model, the service's names for its
flags, and one clear message and exit code 2 for bad arguments."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.training.cli.exits import exit_code
from training.cli.sample import build_parser
from training.cli.sample import main as sample_main


@pytest.mark.parametrize(
    "flags",
    [
        ["--truncation-psi", "0.5", "--class-label", "2"],  # the API's names
        ["--psi", "0.5", "--class", "2"],  # the aliases (StyleGAN's --class)
    ],
)
def test_sample_flags_match_the_api_names(flags: list[str]) -> None:
    args = build_parser().parse_args(["models/x", *flags, "--grid", "g.png"])
    assert args.psi == 0.5 and args.class_label == 2


def test_sample_grid_one_row_per_class(exported_model, tmp_path: Path):
    grid = tmp_path / "grid.png"
    assert (
        sample_main(
            [str(exported_model.models_dir / "tiny"), "--seeds", "0-4", "--grid", str(grid)]
        )
        == 0
    )
    # The contract's grid: 2 black pixels between cells, as the service's grids have.
    assert Image.open(grid).size == (5 * 16 + 4 * 2, 10 * 16 + 9 * 2)


def test_sample_outdir_is_deterministic(exported_model, tmp_path: Path):
    model = str(exported_model.version_dir)
    for out in ("a", "b"):
        argv = [
            model,
            "--seeds",
            "3,5",
            "--class",
            "7",
            "--psi",
            "0.7",
            "--outdir",
            str(tmp_path / out),
        ]
        assert sample_main(argv) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["seed0003-class7.png", "seed0005-class7.png"]
    # Two runs of one command on one machine: the same batch shapes, so the same bytes.
    for name in names:
        assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / name)),
                              np.asarray(Image.open(tmp_path / "b" / name)))  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--class", "10"], "--class must be in 0..9"),
        (["--seeds", "5-1"], "runs backwards"),
        (["--seeds", "0-100000"], "more than 100000 seeds"),
        (["--psi", "0"], "--psi must be positive"),
    ],
)
def test_bad_sample_arguments_exit_2(
    exported_model, tmp_path: Path, extra, message, capsys: pytest.CaptureFixture[str]
):
    argv = [str(exported_model.version_dir), "--grid", str(tmp_path / "g.png"), *extra]
    assert exit_code(sample_main, argv) == 2
    assert message in capsys.readouterr().err


def test_sample_missing_model_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert exit_code(sample_main, [str(tmp_path), "--grid", str(tmp_path / "g.png")]) == 2
    assert "holds any versions" in capsys.readouterr().err


def test_sample_walk_writes_an_animation_starting_on_the_first_seed(exported_model, tmp_path):
    model = str(exported_model.version_dir)
    out = tmp_path / "walk.gif"
    argv = [model, "--walk", "3,5", "--frames", "6", "--class", "7", "--out", str(out)]
    assert sample_main(argv) == 0
    gif = Image.open(out)
    assert gif.n_frames == 6 and gif.size == (16, 16) and gif.info["loop"] == 0
    assert sample_main([model, "--seeds", "3", "--class", "7", "--outdir", str(tmp_path)]) == 0
    still = np.asarray(Image.open(tmp_path / "seed0003-class7.png"), dtype=int)
    gif.seek(0)
    first = np.asarray(gif.convert("L"), dtype=int)
    # The walk's first frame is seed 3's noise after a float64 round trip through slerp: the
    # same image up to one grey level (the service's promise across computations).
    assert np.max(np.abs(first - still)) <= 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--walk", "3", "--out", "w.webp"], "2..64 seeds"),
        (["--walk", "1,2", "--out", "w.mp4"], ".webp or .gif"),
        (["--walk", "1,2", "--frames", "1", "--out", "w.gif"], "--frames must be in 2..1000"),
        (["--walk", "1,2", "--grid", "g.png"], "--walk and --out go together"),
    ],
)
def test_bad_walk_arguments_exit_2(
    exported_model, extra, message, capsys: pytest.CaptureFixture[str]
):
    assert exit_code(sample_main, [str(exported_model.version_dir), *extra]) == 2
    assert message in capsys.readouterr().err
