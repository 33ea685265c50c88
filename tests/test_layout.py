"""The two packages stay independent: the SavedModel is their only contract."""

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
