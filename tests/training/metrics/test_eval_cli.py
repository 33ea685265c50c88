"""gan-eval's errors are one clear line and exit code 2; a run prints the table and writes JSON."""

import json
from pathlib import Path

import numpy as np
import pytest

from training.eval_cli import main
from training.metrics.real_images import RealImages


def _npz(tmp_path: Path) -> str:
    path = tmp_path / "tiny.npz"
    np.savez(path, x=np.zeros((20, 28, 28), np.uint8), y=np.arange(20) % 10)
    return f"npz:{path}"


def test_missing_dataset(bank_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exc:
        main([str(bank_model), "--dataset", f"mnist-idx:{tmp_path / 'nowhere'}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "nowhere" in err
    assert "Traceback" not in err


def test_folder_without_idx_files(
    bank_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    with pytest.raises(SystemExit) as exc:
        main([str(bank_model), "--dataset", f"mnist-idx:{tmp_path}"])
    assert exc.value.code == 2
    assert "no *-images-idx3-ubyte" in capsys.readouterr().err


def test_missing_inception_weights(
    bank_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    weights = tmp_path / "inception_v3_notop.h5"
    argv = [str(bank_model), "--dataset", _npz(tmp_path), "--extractor", f"inception:{weights}"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "InceptionV3 weights not found" in err and str(weights) in err


def test_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "models" / "x"), "--dataset", _npz(tmp_path)])
    assert exc.value.code == 2
    assert "model directory not found" in capsys.readouterr().err


def test_run_prints_floor_and_ceiling_and_writes_json(
    bank_model: Path, mnist: RealImages, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    data = tmp_path / "mnist-part.npz"
    np.savez(data, x=mnist.images[:1000, ..., 0], y=mnist.labels[:1000])
    out = tmp_path / "report.json"
    argv = [str(bank_model), "--dataset", f"npz:{data}", "--num", "300"]
    assert main([*argv, "--kid-subsets", "3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "floor: real vs real" in printed and "ceiling: untrained G" in printed
    report = json.loads(out.read_text())
    assert set(report["rows"]) == {"model", "model_half", "real_vs_real", "untrained"}
    assert report["rows"]["real_vs_real"]["num_real"] == 500
