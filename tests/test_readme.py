"""The commands of the README and of the manual (docs/*.md, models/README.md) work as written,
so that the documentation cannot drift from the code.

The README stays the front door (at most 400 lines, the two commands), and the manual's index
lists every page. Every command in the pages' ``bash`` blocks is checked: ``make`` targets
exist; every ``gan-*`` command parses with its tool's own argument parser and, when its inputs
exist in a fresh checkout, runs with ``--dry-run`` (which checks paths and options without
TensorFlow); the commands that use an earlier command's model or run run on the session's tiny
exported model instead (``gan-sample`` for real, the others as dry runs); every ``curl`` of a
page runs, in order, against the bundled model in-process. The Python client example
(docs/api.md) runs against the same app, once as is and once with the service answering 503
first. The configuration table (docs/configuration.md) gives every setting of
``service/settings.py`` and its default.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import TypeAdapter

from service.app import create_app
from service.cli import build_parser as build_serve_parser
from service.cli import main as serve_main
from service.settings import Settings
from tests.conftest import REPO_ROOT
from tests.readme_commands import code_blocks, commands, page_name, pages, pipeline
from training.cli.eval import build_extractor_parser
from training.cli.eval import build_parser as build_eval_parser
from training.cli.eval import main as eval_main
from training.cli.export import build_parser as build_export_parser
from training.cli.export import main as export_main
from training.cli.sample import build_parser as build_sample_parser
from training.cli.sample import main as sample_main
from training.cli.train import build_parser as build_train_parser
from training.cli.train import main as train_main

ParserAndMain = tuple[Callable[[], argparse.ArgumentParser], Callable[[list[str]], Any]]
TOOLS: dict[str, ParserAndMain] = {
    "gan-train": (build_train_parser, train_main),
    "gan-export": (build_export_parser, export_main),
    "gan-sample": (build_sample_parser, sample_main),
    "gan-eval": (build_eval_parser, eval_main),
    "gan-serve": (build_serve_parser, serve_main),
}
# Commands the pages show that these tests do not run (installs, containers; benchmarks,
# which are long measurements: test_benchmark_commands_name_existing_scripts checks those).
NOT_RUN = {".venv/bin/pip", "pip", "docker", "kubectl", "nice"}
BASE64_OF = re.compile(r"\$\(base64 -w0 ([\w.-]+)\)")
# Words the pages use for "put your own here".
PLACEHOLDER = re.compile(r"\b(DIR|PATH|NAME|FILE)\b")


README = REPO_ROOT / "README.md"
CONFIGURATION = REPO_ROOT / "docs" / "configuration.md"
MANUAL_INDEX = REPO_ROOT / "docs" / "README.md"
API = REPO_ROOT / "docs" / "api.md"


def _all_commands(page: Path | None = None) -> Iterator[tuple[list[str], dict[str, str]]]:
    for block in code_blocks("bash", page):
        yield from commands(block)


def _tool(argv0: str) -> str | None:
    name = Path(argv0).name
    return name if name in TOOLS and argv0 in (name, f".venv/bin/{name}") else None


TOOL_COMMANDS = [(argv, env) for argv, env in _all_commands() if _tool(argv[0])]
CURL_COMMANDS = [argv for argv, _ in _all_commands() if argv[0] == "curl"]
CURL_PAGES = [page for page in pages() if any(a[0] == "curl" for a, _ in _all_commands(page))]


def test_the_readme_is_the_front_door():
    text = README.read_text()
    assert len(text.splitlines()) <= 400, "the README is the front door; move reference to docs/"
    readme_commands = [argv for argv, _ in _all_commands(README)]
    assert ["make", "run"] in readme_commands and ["make", "test"] in readme_commands
    assert "](docs/README.md)" in text, "the README links the manual's index"
    assert len([argv for argv in readme_commands if argv[0] == "curl"]) >= 8


def test_the_manual_index_lists_every_page():
    index = MANUAL_INDEX.read_text()
    for page in sorted((REPO_ROOT / "docs").glob("*.md")):
        if page != MANUAL_INDEX:
            assert f"]({page.name})" in index, f"docs/README.md does not list {page.name}"


def test_the_pages_have_only_commands_these_tests_know():
    unknown = [
        argv
        for argv, _ in _all_commands()
        if argv[0] not in ("make", "curl", *NOT_RUN) and not _tool(argv[0])
    ]
    assert not unknown, f"add these commands to tests/test_readme.py: {unknown}"
    assert len(TOOL_COMMANDS) >= 8 and len(CURL_COMMANDS) >= 8  # the parsing found them


def test_benchmark_commands_name_existing_scripts():
    scripts = [
        token
        for argv, _ in _all_commands()
        for token in argv
        if token.startswith("benchmarks/") and token.endswith(".py")
    ]
    assert scripts, "the pages show no benchmark command"
    for script in scripts:
        assert (REPO_ROOT / script).is_file(), script


# A row of the configuration table (docs/configuration.md): | `GAN_NAME` | default | meaning |
SETTING_ROW = re.compile(r"^\| `GAN_(\w+)` \| (.+?) \| .+ \|$", re.M)


def test_the_configuration_table_gives_every_setting_and_its_default():
    table = CONFIGURATION.read_text()
    rows = {name.lower(): default for name, default in SETTING_ROW.findall(table)}
    assert set(rows) == set(Settings.model_fields), "the table and service/settings.py differ"
    checked = 0
    for name, default in rows.items():
        literal = re.fullmatch(r"`([^`]*)`", default)
        if literal is None:  # a default said in words, e.g. "(none)" or "`mnist` if present"
            continue
        field = Settings.model_fields[name]
        text = literal.group(1)
        value = json.loads(text) if text[:1] in "[{" else text  # as the environment gives it
        expected = TypeAdapter(field.annotation).validate_python(value)
        assert field.get_default(call_default_factory=True) == expected, f"GAN_{name.upper()}"
        checked += 1
    assert checked >= len(rows) - 5, "most defaults are plain values the table can give"


def test_make_targets_exist():
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w.-]+):", makefile, re.M))
    for argv, _ in _all_commands():
        if argv[0] == "make":
            assert set(argv[1:]) <= targets, f"a page runs {argv}; Makefile has {sorted(targets)}"


def _inputs(args: argparse.Namespace) -> list[str]:
    """The files and folders a parsed command reads (its outputs need not exist)."""
    found = [str(getattr(args, key, None)) for key in ("model_dir", "run_dir", "resume")]
    found = [value for value in found if value != "None"]
    kind, _, path = str(getattr(args, "dataset", "")).partition(":")
    if kind in ("folder", "npz", "mnist-idx"):
        found.append(path)
    return found


def _practical(args: argparse.Namespace, argv: list[str]) -> bool:
    """Whether the command's inputs exist in a fresh checkout (not made by an earlier command)."""
    if any(PLACEHOLDER.search(token) for token in argv):
        return False
    return all((REPO_ROOT / path).exists() for path in _inputs(args))


def _parse(argv: list[str]) -> argparse.Namespace:
    tool = _tool(argv[0])
    assert tool is not None
    build, _ = TOOLS[tool]
    rest = argv[1:]
    if tool == "gan-eval" and rest[:1] == ["train-extractor"]:
        build, rest = build_extractor_parser, rest[1:]
    try:
        return build().parse_args(rest)
    except SystemExit as stop:
        raise AssertionError(f"the documented {' '.join(argv)!r} does not parse") from stop


def _ids(item: tuple[list[str], dict[str, str]]) -> str:
    return " ".join(item[0][:4])


@pytest.mark.parametrize("command", TOOL_COMMANDS, ids=[_ids(c) for c in TOOL_COMMANDS])
def test_tool_command_parses_and_dry_runs(
    command: tuple[list[str], dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    argv, env = command
    args = _parse(argv)
    if not _practical(args, argv):
        return  # its inputs come from an earlier command: parsing is what can be checked
    monkeypatch.chdir(REPO_ROOT)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _, main = TOOLS[_tool(argv[0]) or ""]
    try:
        code = main([*argv[1:], "--dry-run"])
    except SystemExit as stop:
        code = stop.code
    assert code in (0, None), f"{' '.join(argv)} --dry-run: {capsys.readouterr().err}"


def test_several_tool_commands_run_for_real():
    # Guard against a test that only parses: the quick start's and the evaluation's run.
    practical = [argv for argv, _ in TOOL_COMMANDS if _practical(_parse(argv), argv)]
    assert len(practical) >= 3, practical


def test_commands_on_earlier_outputs_run(
    exported_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Paths that earlier documented commands create, and what stands in for them: the session's tiny
    # conditional digits model, trained and exported as the quick start does (fewer steps).
    stand_ins = {
        "models/digits": str(exported_model.models_dir / "tiny"),
        "runs/00001-resumable": str(exported_model.run_dir),
    }
    monkeypatch.chdir(tmp_path)  # outputs such as digits.png and threes/ land here
    ran = []
    for argv, _ in TOOL_COMMANDS:
        if not any(token in stand_ins for token in argv):
            continue
        argv = [stand_ins.get(token, token) for token in argv]
        tool = _tool(argv[0]) or ""
        # gan-sample runs for real (a second each); training and export only as dry runs.
        extra = [] if tool == "gan-sample" else ["--dry-run"]
        if tool == "gan-export":
            extra += ["--models-dir", str(tmp_path / "models")]
        try:
            code = TOOLS[tool][1]([*argv[1:], *extra])
        except SystemExit as stop:
            code = stop.code
        assert code in (0, None), argv
        ran.append(tool)
    assert ran.count("gan-sample") >= 2 and "gan-export" in ran, ran
    assert (tmp_path / "digits.png").is_file() and any((tmp_path / "threes").glob("*.png"))


# -- the API examples -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled_settings() -> Settings:
    """The bundled model as `make run` serves it (without the warm-up, to stay quick)."""
    return Settings(model_dir=REPO_ROOT / "models", warmup=False, poll_seconds=0)


def _curl(client: TestClient, argv: list[str], workdir: Path) -> httpx.Response:
    """Run one documented curl command line through ``client``."""
    method, headers, url, output = "GET", {}, "", None
    body: bytes | None = None
    form: dict[str, str] = {}
    files: dict[str, tuple[str, bytes, str]] = {}
    tokens = iter(argv[1:])
    for token in tokens:
        if token == "-s":
            continue
        if token == "-X":
            method = next(tokens)
        elif token == "-H":
            name, _, value = next(tokens).partition(":")
            headers[name.strip()] = value.strip()
        elif token == "-d":
            # The shell's $(base64 -w0 FILE) in a JSON body: the file's base64, as bash gives it.
            text = BASE64_OF.sub(
                lambda m: base64.b64encode((workdir / m.group(1)).read_bytes()).decode(),
                next(tokens),
            )
            body, method = text.encode(), "POST"
        elif token == "--data-binary":
            body, method = (workdir / next(tokens).lstrip("@")).read_bytes(), "POST"
        elif token == "-F":
            name, _, value = next(tokens).partition("=")
            method = "POST"
            if value.startswith("@"):
                files[name] = (value[1:], (workdir / value[1:]).read_bytes(), "image/png")
            else:
                form[name] = value
        elif token == "-o":
            output = workdir / next(tokens)
        elif token.startswith("-"):
            raise AssertionError(f"tests/test_readme.py cannot run curl option {token}")
        else:
            url = token
    path = "/" + url.split("/", 1)[1] if "/" in url else "/"
    response = client.request(
        method, path, headers=headers, content=body, data=form or None, files=files or None
    )
    if output is not None:
        output.write_bytes(response.content)
    return response


@pytest.mark.parametrize("page", CURL_PAGES, ids=[page_name(p) for p in CURL_PAGES])
def test_every_curl_example_answers(
    page: Path, bundled_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Each page's examples run in order in a directory of their own: a page's curl lines may use
    # the files its earlier lines wrote (seed42.png), never another page's. All of them, those
    # of /complete and /encode too, run against the bundled models as `make run` serves them.
    monkeypatch.chdir(tmp_path)
    with TestClient(create_app(bundled_settings)) as client:
        _readers_images(client, tmp_path)
        for argv in (a for a, _ in _all_commands(page) if a[0] == "curl"):
            curl, later = pipeline(argv)
            response = _curl(client, curl, tmp_path)
            assert response.status_code < 300, f"{' '.join(argv)}: {response.text[:300]}"
            for stage in later:
                assert stage[0] == "grep" and stage[1] in response.text, (argv, stage)


def _readers_images(client: TestClient, workdir: Path) -> None:
    """The images the completion examples say the reader brings, of the model's size:
    ``half-seven.png`` (a 7 whose
    bottom half is transparent, i.e. missing), and ``digit.png`` with ``mask.png`` (black:
    missing)."""
    png = client.get("/generate", params={"seed": 3, "class_label": 7}).content
    digit = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    alpha = np.full(digit.shape, 255, np.uint8)
    alpha[digit.shape[0] // 2 :] = 0
    Image.fromarray(np.dstack([digit, digit, digit, alpha]), "RGBA").save(
        workdir / "half-seven.png"
    )
    (workdir / "digit.png").write_bytes(png)
    Image.fromarray(alpha, "L").save(workdir / "mask.png")


class _Refusing(TestClient):
    """A client whose first request to each path gets 503 + Retry-After, as an overloaded
    service answers; later ones reach the app."""

    refused: ClassVar[list[str]] = []

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        if request.url.path not in self.refused:
            self.refused.append(request.url.path)
            body = {"error": "unavailable", "detail": "the queue is full; retry"}
            return httpx.Response(503, headers={"Retry-After": "0"}, json=body, request=request)
        return super().send(request, **kwargs)


@pytest.mark.parametrize("refuse_first", [False, True], ids=["plain", "503 first"])
def test_the_python_client_example_runs(
    refuse_first: bool,
    bundled_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    [example] = code_blocks("python", API)
    client_class = _Refusing if refuse_first else TestClient
    _Refusing.refused = []

    def connect(base_url: str, timeout: float) -> TestClient:
        assert base_url == "http://127.0.0.1:8000"  # what `make run` serves
        return client_class(create_app(bundled_settings), base_url=base_url)

    monkeypatch.setattr(httpx, "Client", connect)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, f"{page_name(API)} (Python example)", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in printed] == [f"seed {s}" for s in range(4)]
    assert all("logit" in line and "percentile" in line for line in printed)
    assert sorted(p.name for p in tmp_path.glob("seed*.png")) == [f"seed{s}.png" for s in range(4)]
    if refuse_first:
        assert _Refusing.refused == ["/generate", "/score"]
