"""gan-export: a run exported again, and one clear message and exit code 2 for bad arguments."""

from pathlib import Path

import pytest

from tests.training.cli.exits import exit_code
from training.cli.export import main as export_main


def test_export_cli(exported_model, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    argv = [str(exported_model.run_dir), "--name", "again", "--models-dir", str(tmp_path)]
    assert export_main([*argv, "--calibration", "16"]) == 0
    assert (tmp_path / "again" / "1" / "saved_model.pb").is_file()
    assert exit_code(export_main, [str(tmp_path), "--name", "x"]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_export_eval_num_must_not_be_negative(
    exported_model, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    argv = [str(exported_model.run_dir), "--name", "x", "--models-dir", str(tmp_path)]
    assert exit_code(export_main, [*argv, "--eval-num", "-1"]) == 2
    assert "--eval-num must be 0" in capsys.readouterr().err


def test_export_eval_num_without_a_fitting_extractor_is_one_clear_error(
    exported_model, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # The tiny model makes 16x16 images; the bundled extractor reads 28x28 digits only.
    argv = [str(exported_model.run_dir), "--name", "x", "--models-dir", str(tmp_path)]
    assert exit_code(export_main, [*argv, "--eval-num", "50", "--calibration", "8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gan-export: ") and "Traceback" not in err
    assert not (tmp_path / "x" / "1").exists()


def test_encoder_training_from_a_run_shows_progress_with_its_losses(
    exported_model, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # An encoder trains for minutes on a real model: a bar says how far it is, and its losses.
    # (An encoder added to an exported version: tests/training/test_export.py.)
    argv = [str(exported_model.run_dir), "--name", "withenc", "--models-dir", str(tmp_path),
            "--encoder-steps", "3", "--calibration", "8"]  # fmt: skip
    assert export_main(argv) == 0
    err = capsys.readouterr().err
    assert "encoder" in err and "3/3" in err, err
    assert "latent=" in err and "image=" in err, err
