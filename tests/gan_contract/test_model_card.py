"""The model.json schema and its reader."""

import json
from pathlib import Path

import pytest

from gan_contract.model_card import (
    FIELDS,
    ModelCardError,
    read_model_card,
    validate_model_card,
)


def _card(**changes: object) -> dict:
    card = {
        "name": "m",
        "version": 1,
        "z_dim": 8,
        "resolution": 16,
        "channels": 1,
        "num_classes": 2,
        "class_names": ["a", "b"],
        "architecture": "dcgan",
        "loss": "hinge",
        "dataset": "digits",
        "steps": 10,
        "images_seen": 640,
        "training_options": {},
        "command": "gan-train",
        "metrics": {},
        "calibration": {
            "quantile_levels": [0.0, 0.5, 1.0],
            "real_logits": [-1.0, 0.0, 1.0],
            "generated_logits": [-2.0, -1.0, 0.0],
            "num_real": 10,
            "num_generated": 10,
        },
        "created_at": "2026-01-01T00:00:00Z",
        "project_version": "0.1.0",
        "seed_convention": "RandomState(seed).randn(z_dim)",
        "commands": ["gan-train"],
        "run": "00000-digits",
        "signatures": ["generate", "score"],
    }
    card.update(changes)
    return card


def test_a_complete_card_passes_and_readers_need_only_the_required_fields():
    assert validate_model_card(_card(), complete=True)["name"] == "m"
    required = {key: value for key, value in _card().items() if FIELDS[key].required}
    assert validate_model_card(required) == required
    with pytest.raises(ModelCardError, match="'architecture' is missing"):
        validate_model_card(required, complete=True)


def test_a_field_only_some_models_have_is_checked_when_present():
    assert "completion" not in _card()
    validate_model_card(_card(), complete=True)  # no encoder: no completion entry needed
    validate_model_card(_card(completion={"max_steps": 500}), complete=True)
    with pytest.raises(ModelCardError, match="'completion' is missing or not of type dict"):
        validate_model_card(_card(completion=[]))


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"z_dim": "8"}, "'z_dim' is missing or not of type int"),
        ({"version": True}, "'version' is missing"),  # JSON true is no version number
        ({"channels": 4}, "channels must be 1 or 3"),
        ({"resolution": 0}, "must be positive"),
        ({"class_names": ["a"]}, "1 class_names for 2 classes"),
        ({"calibration": {"quantile_levels": [0.0], "real_logits": [1.0, 2.0]}}, "equal length"),
        ({"calibration": {"real_logits": []}}, "calibration.quantile_levels"),
    ],
)
def test_broken_cards_name_the_field(changes: dict, words: str):
    with pytest.raises(ModelCardError, match=words):
        validate_model_card(_card(**changes))
    assert issubclass(ModelCardError, ValueError)


def test_a_model_without_held_out_images_has_no_real_quantiles():
    calibration = {**_card()["calibration"], "real_logits": [], "num_real": 0}
    validate_model_card(_card(calibration=calibration), complete=True)


def test_reading_from_a_version_directory(tmp_path: Path):
    with pytest.raises(ModelCardError, match=r"model\.json is missing"):
        read_model_card(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ModelCardError, match="not valid JSON"):
        read_model_card(tmp_path)
    (tmp_path / "model.json").write_text("[1, 2]")
    with pytest.raises(ModelCardError, match="expected a JSON object"):
        read_model_card(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps(_card()))
    assert read_model_card(tmp_path)["z_dim"] == 8


def test_the_docs_list_every_field(repo_root: Path):
    text = (repo_root / "docs" / "model-format.md").read_text()
    for key in FIELDS:
        assert f"| `{key}` |" in text, key
