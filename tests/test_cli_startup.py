"""Every console script starts well: a bad argument or a missing package is one line and exit
code 2, reported before TensorFlow is imported (so at once, not after seconds of loading).

Each case runs in a fresh interpreter (this one has TensorFlow loaded already) and reports whether
``tensorflow`` reached ``sys.modules``; a missing package is simulated by a ``None`` entry in
``sys.modules``, which is how Python marks a module as not importable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from training.config import TrainConfig

ENTRY_POINTS = {
    "gan-train": "training.cli.train:main",
    "gan-export": "training.cli.export:main",
    "gan-sample": "training.cli.sample:main",
    "gan-eval": "training.cli.eval:main",
    "gan-serve": "service.cli:main",
}

SCRIPT = """
import json, sys
for name in {blocked!r}:
    sys.modules[name] = None  # as if the package were not installed
from {module} import {function} as main
try:
    code = main({argv!r})
except SystemExit as stop:
    code = stop.code
print(json.dumps({{"code": code, "tensorflow": sys.modules.get("tensorflow") is not None}}))
"""


def run_tool(
    tool: str, argv: list[str], blocked: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> tuple[dict, str]:
    """Run ``tool``'s entry point in a fresh interpreter.

    Returns its exit code, whether TensorFlow was imported and what it printed (``"out"``), and
    its stderr.
    """
    module, function = ENTRY_POINTS[tool].split(":")
    code = SCRIPT.format(blocked=list(blocked), module=module, function=function, argv=argv)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert done.stdout.strip(), done.stderr
    *printed, last = done.stdout.strip().splitlines()
    return {**json.loads(last), "out": "\n".join(printed)}, done.stderr


@pytest.mark.parametrize(
    ("tool", "blocked", "package"),
    [
        ("gan-train", ("sklearn",), "scikit-learn"),
        ("gan-export", ("scipy",), "scipy"),
        ("gan-sample", ("tensorflow",), "tensorflow-cpu"),
        ("gan-eval", ("tqdm", "tensorboard"), "tqdm, tensorboard"),
        ("gan-serve", ("fastapi",), "fastapi"),
    ],
)
def test_a_missing_package_is_one_line_naming_the_install_command(
    tool: str, blocked: tuple[str, ...], package: str, tmp_path: Path
):
    # A run directory as gan-train writes it: gan-export reads it before anything else.
    (tmp_path / "options.json").write_text(json.dumps(TrainConfig(dataset="digits").to_dict()))
    (tmp_path / "run.json").write_text("{}")
    argv = {
        "gan-train": ["--dataset", "digits", "--resolution", "16"],
        "gan-export": [str(tmp_path), "--name", "x"],
        "gan-sample": ["models/mnist", "--grid", "x.png"],
        "gan-eval": ["models/mnist", "--dataset", "digits"],
        "gan-serve": [],
    }[tool]
    result, stderr = run_tool(tool, argv, blocked)
    assert result == {"code": 2, "tensorflow": False, "out": ""}, stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith(f"{tool}: error: missing {package}")
    install = "make run" if tool == "gan-serve" else "make train-setup"
    assert install in line and "pip install -e" in line


@pytest.mark.parametrize(
    ("tool", "argv", "message"),
    [
        ("gan-train", ["--dataset", "folder:/nonexistent/pictures"], "does not exist"),
        ("gan-train", ["--dataset", "digits", "--steps", "0"], "steps must be at least 1"),
        ("gan-export", ["/nonexistent/run", "--name", "x"], "not a run directory"),
        ("gan-sample", ["/nonexistent/model", "--grid", "x.png"], "not found"),
        ("gan-eval", ["models/mnist", "--dataset", "mnist-idx:/nonexistent"], "does not exist"),
        ("gan-eval", ["/nonexistent/model", "--dataset", "digits"], "not found"),
        ("gan-serve", ["--model-dir", "/nonexistent/models"], "does not exist"),
    ],
)
def test_an_argument_error_comes_before_tensorflow(tool: str, argv: list[str], message: str):
    result, stderr = run_tool(tool, argv)
    assert result == {"code": 2, "tensorflow": False, "out": ""}, stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith(f"{tool}: error: ") and message in line


@pytest.mark.parametrize("tool", ["gan-train", "gan-eval", "gan-serve"])
def test_a_dry_run_needs_no_tensorflow(tool: str):
    argv = {
        "gan-train": ["--dataset", "digits", "--resolution", "16"],
        "gan-eval": ["models/mnist", "--dataset", "digits"],
        "gan-serve": ["--model-dir", "models"],
    }[tool]
    result, stderr = run_tool(tool, [*argv, "--dry-run"], env={"GAN_API_KEYS": "secret-key"})
    assert result["code"] in (0, None) and not result["tensorflow"], stderr
    resolved = json.loads(result["out"])  # the resolved options, as JSON
    if tool == "gan-serve":
        assert resolved["models"] == {"mnist": [1, 2]}  # 2: version 1 with an encoder
        assert resolved["settings"]["poll_seconds"] == 10.0
        assert "secret-key" not in result["out"] and resolved["settings"]["api_keys"] == "1 key(s)"
    else:
        assert resolved["dataset"] == "digits"


@pytest.mark.slow
def test_loading_tensorflow_is_one_line_without_its_native_notices():
    code = "from training.cli.startup import load_tensorflow; load_tensorflow('gan-x', ', then y')"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    # TensorFlow's C++ notices (oneDNN, CPU features, absl's pre-init warning) would follow here.
    assert done.stderr.splitlines() == ["gan-x: loading TensorFlow, then y..."]
