"""gan-eval's errors are one clear line and exit code 2; a run prints the table and writes JSON."""

import json
from pathlib import Path

import numpy as np
import pytest

from training.cli.eval import main
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
    bank_model: Path,
    mnist: RealImages,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):
    data = tmp_path / "mnist-part.npz"
    np.savez(data, x=mnist.images[:1000, ..., 0], y=mnist.labels[:1000])
    monkeypatch.chdir(tmp_path)  # the report goes to the default path that --help names
    argv = [str(bank_model), "--dataset", f"npz:{data}", "--num", "300"]
    assert main([*argv, "--kid-subsets", "3"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    [out] = (tmp_path / "runs" / "eval").glob("*.json")
    assert out.name == "bank-1-classifier_mnist_classifier.json"  # NAME-VERSION-EXTRACTOR
    assert f"report: runs/eval/{out.name}" in printed
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "runs/eval/NAME-VERSION-EXTRACTOR.json" in "".join(capsys.readouterr().out.split())
    assert "floor: real vs real" in printed and "ceiling: untrained G" in printed
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert set(rows) == {"model", "model_matched", "real_vs_real", "untrained"}
    # The floor is measured at the model's size (300 of one real half against the other half),
    # and the row compared with it has exactly its sizes; the table says so.
    sizes = {key: (rows[key]["num_generated"], rows[key]["num_real"]) for key in rows}
    assert sizes["real_vs_real"] == sizes["model_matched"] == (300, 500)
    assert sizes["model"] == (300, 1000)
    assert "| model, floor's sizes |" in printed and "300 / 500 |" in printed
    # 300 images (30 per class) are too few for several figures: said on stderr, and in JSON.
    warnings = [line for line in captured.err.splitlines() if "gan-eval: warning:" in line]
    assert len(warnings) == len(report["warnings"]) >= 2
    assert any("KID subsets hold only 300" in w for w in warnings)
    assert any("30 per class" in w for w in warnings)
