"""The packages stay independent (the SavedModel is their only contract), none has an import
circle, and the service's layers import downward only."""

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imported_top_level_modules(package: str) -> set[str]:
    names: set[str] = set()
    for source in (ROOT / package).rglob("*.py"):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_service_never_imports_training():
    assert "training" not in _imported_top_level_modules("service")


def test_training_never_imports_service():
    assert "service" not in _imported_top_level_modules("training")


def test_the_contract_needs_neither_package_nor_tensorflow():
    imported = _imported_top_level_modules("gan_contract")
    assert not imported & {"training", "service", "tensorflow", "keras"}


def _module_of(source: Path) -> str:
    parts = source.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (anywhere in it, lazily too)."""
    modules = {_module_of(source): source for source in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, source in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            targets.update(name for name in names if name in modules and name != module)
        graph[module] = targets
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, as the path that closes it (depth-first search)."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            found.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    return found


def test_no_package_has_an_import_circle():
    for package in ("service", "training", "gan_contract"):
        assert _circles(_import_graph(package)) == [], package


def test_the_service_layers_import_downward_only():
    # Each layer may import the ones listed (and the shared modules at the package's top).
    allowed = {
        "service.repository": set(),
        "service.engine": {"service.repository"},
        "service.http": set(),
        "service.server": set(),
        "service.api": {"service.engine", "service.repository"},
    }
    layers = set(allowed)
    for module, targets in _import_graph("service").items():
        layer = next((name for name in layers if module.startswith(name + ".")), None)
        if layer is None:
            continue  # the wiring (app, cli) and the shared modules
        for target in targets:
            other = next((name for name in layers if target.startswith(name + ".")), None)
            if other is not None and other != layer:
                assert other in allowed[layer], f"{module} imports {target}"
            if other is None:
                top = target.split(".")[1] if "." in target else target
                assert top not in {"app", "cli"}, f"{module} imports the wiring: {target}"


# A file this large in git slows every clone for good; the bundled models stay under it.
LARGEST_TRACKED_FILE = 5_000_000


def test_no_tracked_file_is_larger_than_five_megabytes():
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False, text=True
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout: no tracked files to weigh")
    sizes = {
        name: (ROOT / name).stat().st_size
        for name in listed.stdout.split("\0")
        if name and (ROOT / name).is_file()
    }
    large = {name: size for name, size in sizes.items() if size > LARGEST_TRACKED_FILE}
    assert not large, f"tracked files over {LARGEST_TRACKED_FILE:,} bytes: {large}"
