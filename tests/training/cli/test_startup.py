"""What every training command does alike: help with runnable examples, and an unexpected error
as one line and exit code 2."""

from pathlib import Path

import pytest

from tests.training.cli.exits import exit_code
from training.cli.export import main as export_main
from training.cli.sample import main as sample_main
from training.cli.train import main as train_main

COMMANDS = pytest.mark.parametrize(
    "main", [train_main, export_main, sample_main], ids=["gan-train", "gan-export", "gan-sample"]
)


@COMMANDS
def test_help_has_runnable_examples(main, capsys: pytest.CaptureFixture[str]):
    assert exit_code(main, ["--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "--dry-run" in out


@COMMANDS
def test_an_unexpected_error_is_one_line_and_exit_2(
    main, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    import argparse

    def broken(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", broken)
    monkeypatch.delenv("GAN_TRACEBACK", raising=False)
    assert exit_code(main, []) == 2
    err = capsys.readouterr().err
    prog = "gan-" + main.__module__.rsplit(".", 1)[1]
    assert err.strip().splitlines() == [f"{prog}: error: RuntimeError: disk on fire"]
