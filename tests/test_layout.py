"""The two packages stay independent (the SavedModel is their only contract), and training has no
import circles."""

import ast
from pathlib import Path

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


def _training_imports() -> dict[str, set[str]]:
    """Each module of ``training`` -> the modules of ``training`` it imports, anywhere in it
    (also inside functions: a deferred import closes a circle all the same)."""
    modules: dict[str, Path] = {}
    for source in (ROOT / "training").rglob("*.py"):
        parts = source.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = source
    imports: dict[str, set[str]] = {}
    for name, source in modules.items():
        tree = ast.parse(source.read_text(), filename=str(source))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
        imports[name] = {t for t in targets if t in modules and t != name}
    return imports


def test_training_has_no_import_circles():
    imports = _training_imports()
    circles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(imports[module]):
            if target in path:
                circles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    done: set[str] = set()
    for module in sorted(imports):
        if module not in done:
            visit(module, [module])
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)
