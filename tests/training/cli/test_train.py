"""gan-train: dry runs, one clear message and exit code 2 for bad arguments, a mixed-precision
run, and a failed export after training."""

import json
from pathlib import Path

import numpy as np
import pytest

from tests.training.cli.exits import exit_code
from training.cli.train import main as train_main


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
        (["--architecture", "resnet", "--resolution", "28"], "resolutions 32, 64, 128, not 28"),
    ],
)
def test_bad_train_arguments_exit_2(argv, message, capsys: pytest.CaptureFixture[str]):
    assert exit_code(train_main, [*argv, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_conditional_training_on_unlabeled_data_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    np.savez(tmp_path / "x.npz", x=np.zeros((20, 16, 16), np.uint8))
    argv = ["--dataset", f"npz:{tmp_path / 'x.npz'}", "--resolution", "16", "--conditional"]
    assert exit_code(train_main, [*argv, "--outdir", str(tmp_path / "runs")]) == 2
    assert "needs labels" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_resume_with_contradicting_options_exits_2(
    exported_model, capsys: pytest.CaptureFixture[str]
):
    argv = ["--resume", str(exported_model.run_dir), "--loss", "hinge", "--dry-run"]
    assert exit_code(train_main, argv) == 2
    assert "loss='hinge'" in capsys.readouterr().err


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
    assert exit_code(train_main, argv) == 0
    out, err = capsys.readouterr()
    assert "exported" in out and (tmp_path / "models" / "bf" / "1" / "model.json").exists()
    assert "no native bfloat16" in err and "--precision float32" in err


def test_a_failed_export_after_training_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    from training import export

    monkeypatch.setattr(export, "verify", lambda path, gan, **kwargs: 9.0)
    argv = [*TINY_RUN, "--outdir", str(tmp_path / "runs"), "--models-dir", str(tmp_path / "m")]
    assert exit_code(train_main, [*argv, "--export", "x"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # The progress bar shares stderr; the failure is one line, the last.
    errors = [line for line in err.strip().splitlines() if "error" in line]
    assert errors == [err.strip().splitlines()[-1]]
    assert errors[0].startswith("gan-train: error: ")
    assert "the export failed" in errors[0] and "differs" in errors[0]


def test_a_time_budget_ends_checkpoints_and_exports_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # TINY_RUN without --steps: the budget alone ends the run, however fast the machine is.
    argv = [arg for arg in TINY_RUN if arg not in ("--steps", "2")]
    argv += ["--minutes", "0.03", "--outdir", str(tmp_path / "runs"), "--models-dir",
             str(tmp_path / "models")]  # fmt: skip
    assert exit_code(train_main, [*argv, "--export", "timed"]) == 0
    out = capsys.readouterr().out
    run = next((tmp_path / "runs").iterdir())
    options = json.loads((run / "options.json").read_text())
    assert (options["minutes"], options["steps"]) == (0.03, 0)  # no step limit
    steps = json.loads((tmp_path / "models" / "timed" / "1" / "model.json").read_text())["steps"]
    assert steps >= 1 and f"finished at step {steps}, the 0.03-minute budget spent" in out
    assert (run / "checkpoints" / f"ckpt-{steps}.index").is_file()
    trained = json.loads((run / "run.json").read_text())["train_seconds"]
    assert trained >= 1.8  # 0.03 minutes: the clock ends the run once they are spent

    # The budget is the run's in total: resumed, it has nothing left; a larger one continues.
    assert exit_code(train_main, ["--resume", str(run)]) == 0
    assert f"finished at step {steps} (its 0.03 minutes of training were spent" in (
        capsys.readouterr().out
    )
    more = f"{trained / 60 + 0.01:.4f}"  # a second more than it has trained, on any machine
    assert exit_code(train_main, ["--resume", str(run), "--minutes", more]) == 0
    assert int(capsys.readouterr().out.split("finished at step ")[1].split(",")[0]) > steps


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--minutes", "-1"], "minutes must be 0"),
        (["--minutes", "nan"], "minutes must be 0"),
        (["--minutes", "1e9"], "minutes must be 0"),
        (["--steps", "0", "--minutes", "0"], "steps must be at least 1"),
    ],
)
def test_bad_time_budgets_exit_2(argv, message, capsys: pytest.CaptureFixture[str]):
    assert exit_code(train_main, ["--dataset", "digits", *argv, "--dry-run"]) == 2
    assert message in capsys.readouterr().err


def test_a_folder_of_colour_pictures_trained_in_grey_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from PIL import Image

    pictures = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    for index, picture in enumerate(pictures):
        Image.fromarray(picture).save(tmp_path / f"{index}.png")
    argv = [arg if arg != "digits" else f"folder:{tmp_path}" for arg in TINY_RUN]
    assert exit_code(train_main, [*argv, "--steps", "1", "--outdir", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "gan-train: warning: 40 of the pictures in folder:" in err and "--channels 3" in err
