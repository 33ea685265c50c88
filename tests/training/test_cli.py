"""The CLIs: help, dry runs, one clear message and exit code 2 for bad arguments, sampling."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.cli import export_main, sample_main, train_main


def _exit_code(main, argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)


@pytest.mark.parametrize("main", [train_main, export_main, sample_main])
def test_help_has_runnable_examples(main, capsys: pytest.CaptureFixture[str]):
    assert _exit_code(main, ["--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "--dry-run" in out


def test_train_dry_run_prints_the_resolved_options(capsys: pytest.CaptureFixture[str]):
    assert train_main(["--dataset", "digits", "--resolution", "16", "--dry-run"]) == 0
    options = json.loads(capsys.readouterr().out)
    assert options["dataset"] == "digits" and options["resolution"] == 16
    assert options["loss"] == "nonsaturating" and options["lr_g"] == 2e-4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "pictures:/tmp"], "unknown dataset kind"),
        (["--resolution", "48"], "invalid choice"),
        (["--steps", "0"], "steps must be at least 1"),
        (["--beta1", "1.5"], "beta1"),
        (["--resume", "/nonexistent/run"], "not a run directory"),
    ],
)
def test_bad_train_arguments_exit_2(argv, message, capsys: pytest.CaptureFixture[str]):
    assert _exit_code(train_main, [*argv, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_conditional_training_on_unlabeled_data_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    np.savez(tmp_path / "x.npz", x=np.zeros((20, 16, 16), np.uint8))
    argv = ["--dataset", f"npz:{tmp_path / 'x.npz'}", "--resolution", "16", "--conditional"]
    assert _exit_code(train_main, [*argv, "--outdir", str(tmp_path / "runs")]) == 2
    assert "needs labels" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_resume_with_contradicting_options_exits_2(
    exported_model, capsys: pytest.CaptureFixture[str]
):
    argv = ["--resume", str(exported_model.run_dir), "--loss", "hinge", "--dry-run"]
    assert _exit_code(train_main, argv) == 2
    assert "loss='hinge'" in capsys.readouterr().err


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
    assert _exit_code(sample_main, argv) == 2
    assert message in capsys.readouterr().err


def test_sample_missing_model_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert _exit_code(sample_main, [str(tmp_path), "--grid", str(tmp_path / "g.png")]) == 2
    assert "holds any versions" in capsys.readouterr().err


def test_export_cli(exported_model, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    argv = [str(exported_model.run_dir), "--name", "again", "--models-dir", str(tmp_path)]
    assert export_main([*argv, "--calibration", "16"]) == 0
    assert (tmp_path / "again" / "1" / "saved_model.pb").is_file()
    assert _exit_code(export_main, [str(tmp_path), "--name", "x"]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_export_eval_num_must_not_be_negative(
    exported_model, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    argv = [str(exported_model.run_dir), "--name", "x", "--models-dir", str(tmp_path)]
    assert _exit_code(export_main, [*argv, "--eval-num", "-1"]) == 2
    assert "--eval-num must be 0" in capsys.readouterr().err


def test_export_eval_num_without_a_fitting_extractor_is_one_clear_error(
    exported_model, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # The tiny model makes 16x16 images; the bundled extractor reads 28x28 digits only.
    argv = [str(exported_model.run_dir), "--name", "x", "--models-dir", str(tmp_path)]
    assert _exit_code(export_main, [*argv, "--eval-num", "50", "--calibration", "8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gan-export: ") and "Traceback" not in err
    assert not (tmp_path / "x" / "1").exists()


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
    assert _exit_code(sample_main, [str(exported_model.version_dir), *extra]) == 2
    assert message in capsys.readouterr().err


TINY_RUN = [
    "--dataset", "digits", "--resolution", "16", "--z-dim", "8", "--g-width", "4",
    "--d-width", "4", "--max-width", "8", "--batch-size", "8", "--steps", "2",
    "--holdout", "20", "--sample-every", "0", "--checkpoint-every", "0", "--log-every", "1",
]  # fmt: skip


def test_a_mixed_bfloat16_run_exports_and_warns_where_bfloat16_is_emulated(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    restore_policy: None,
):
    from training import distribute

    monkeypatch.setattr(distribute, "cpu_flags", lambda: frozenset({"sse2", "avx2", "fma"}))
    argv = [
        *TINY_RUN, "--precision", "mixed_bfloat16", "--augment", "color,translation,cutout",
        "--outdir", str(tmp_path / "runs"), "--models-dir", str(tmp_path / "models"),
        "--export", "bf",
    ]  # fmt: skip
    assert _exit_code(train_main, argv) == 0
    out, err = capsys.readouterr()
    assert "exported" in out and (tmp_path / "models" / "bf" / "1" / "model.json").exists()
    assert "no native bfloat16" in err and "--precision float32" in err


def test_bfloat16_warning_only_without_native_support(monkeypatch: pytest.MonkeyPatch):
    from training import distribute

    monkeypatch.setattr(distribute, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert distribute.bfloat16_warning("mixed_bfloat16") is None
    monkeypatch.setattr(distribute, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert distribute.bfloat16_warning("mixed_bfloat16") is None
    monkeypatch.setattr(distribute, "cpu_flags", lambda: frozenset({"avx2"}))
    assert "emulates bfloat16" in (distribute.bfloat16_warning("mixed_bfloat16") or "")
    assert distribute.bfloat16_warning("float32") is None
    assert distribute.bfloat16_warning("mixed_float16") is None


def test_cpu_flags_reads_the_flags_line(tmp_path: Path):
    from training.distribute import cpu_flags

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2\n\n")
    assert cpu_flags(str(info)) == frozenset({"fpu", "sse2", "avx2"})
    assert cpu_flags(str(tmp_path / "missing")) is None


def test_a_failed_export_after_training_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    from training import export

    monkeypatch.setattr(export, "verify", lambda path, gan, **kwargs: 9.0)
    argv = [*TINY_RUN, "--outdir", str(tmp_path / "runs"), "--models-dir", str(tmp_path / "m")]
    assert _exit_code(train_main, [*argv, "--export", "x"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # The progress bar shares stderr; the failure is one line, the last.
    errors = [line for line in err.strip().splitlines() if "error" in line]
    assert errors == [err.strip().splitlines()[-1]]
    assert errors[0].startswith("gan-train: error: ")
    assert "the export failed" in errors[0] and "differs" in errors[0]


@pytest.mark.parametrize("main", [train_main, export_main, sample_main])
def test_an_unexpected_error_is_one_line_and_exit_2(
    main, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    import argparse

    def broken(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", broken)
    monkeypatch.delenv("GAN_TRACEBACK", raising=False)
    assert _exit_code(main, []) == 2
    err = capsys.readouterr().err
    prog = "gan-" + main.__name__.split("_")[0]
    assert err.strip().splitlines() == [f"{prog}: error: RuntimeError: disk on fire"]
