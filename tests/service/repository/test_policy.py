"""Version policies, as TensorFlow Serving's: which versions on disk a model serves."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.repository.policy import DEFAULT_POLICY, VersionPolicies, VersionPolicy
from service.settings import Settings

ON_DISK = [7, 1, 3, 2]


def test_latest_serves_the_highest_versions() -> None:
    assert VersionPolicy.parse("latest:2").select(ON_DISK) == [3, 7]
    assert VersionPolicy.parse("latest:1").select(ON_DISK) == [7]
    assert VersionPolicy.parse("latest:10").select(ON_DISK) == [1, 2, 3, 7]


def test_all_serves_every_version() -> None:
    assert VersionPolicy.parse("all").select(ON_DISK) == [1, 2, 3, 7]


def test_specific_serves_the_pinned_versions_on_disk() -> None:
    assert VersionPolicy.specific(2).select(ON_DISK) == [2]
    assert VersionPolicy.specific([7, 1, 5]).select(ON_DISK) == [1, 7]  # 5 is not on disk
    with pytest.raises(ValueError):
        VersionPolicy.specific([])


@pytest.mark.parametrize("text", ["latest", "latest:0", "latest:-1", "newest:2", "all:2", ""])
def test_a_policy_that_means_nothing_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected 'latest:N'"):
        VersionPolicy.parse(text)
    with pytest.raises(ValidationError, match="version_policy"):
        Settings(version_policy=text)


def test_pinned_models_follow_their_pins_and_the_others_the_policy() -> None:
    policies = VersionPolicies.parse("all", {"mnist": [3, 1], "cifar": 2})
    assert policies.of("mnist") == VersionPolicy("specific", versions=(1, 3))
    assert str(policies.of("cifar")) == "specific:2"
    assert str(policies.of("digits")) == "all"


def test_by_default_a_pinned_url_survives_one_upgrade() -> None:
    # The settings' default and the repository's agree: the two latest versions.
    assert Settings().version_policy == DEFAULT_POLICY
    assert VersionPolicies() == VersionPolicies.parse(Settings().version_policy)
    assert str(VersionPolicies().of("any")) == "latest:2"


def test_pins_are_read_as_one_version_or_several(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_MODEL_VERSIONS", '{"mnist": [1, 3], "cifar": 2}')
    monkeypatch.setenv("GAN_VERSION_POLICY", "all")
    settings = Settings()
    assert settings.model_versions == {"mnist": [1, 3], "cifar": 2}
    assert settings.version_policy == "all"
    with pytest.raises(ValidationError, match="model_versions"):
        Settings(model_versions={"mnist": []})
