"""Which versions of a model are served: TensorFlow Serving's model version policy.

Usage::

    policies = VersionPolicies.parse("latest:2", pinned={"mnist": [1, 3]})
    policies.of("digits").select([1, 2, 3, 7])      # [3, 7]: the two latest
    policies.of("mnist").select([1, 2, 3, 7])       # [1, 3]: the pinned ones on disk
    str(policies.of("mnist"))                       # "specific:1,3"

Three policies, as TensorFlow Serving's ``model_version_policy``:

- ``latest:N``: the N highest version numbers on disk (the default is ``latest:2``, so that a
  client holding a URL pinned to ``version=1`` keeps being answered across one upgrade);
- ``all``: every version on disk;
- ``specific``: the versions a model is pinned to (``GAN_MODEL_VERSIONS``), whatever else is on
  disk.

``GAN_VERSION_POLICY`` gives the policy of every model not pinned. Of the versions served, the
highest answers the requests that name no version; the others answer those that name them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

#: The policy of a model no setting names: the two latest versions.
DEFAULT_POLICY = "latest:2"
#: What ``GAN_VERSION_POLICY`` accepts (``Settings`` checks it with this pattern).
POLICY_PATTERN = r"^(all|latest:[1-9][0-9]{0,3})$"


@dataclass(frozen=True)
class VersionPolicy:
    """One model's policy: ``latest`` (its ``count`` highest versions), ``all``, or
    ``specific`` (its ``versions``)."""

    kind: Literal["latest", "all", "specific"]
    count: int = 0
    versions: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str) -> VersionPolicy:
        """``latest:N`` or ``all``; ValueError for anything else."""
        if not re.fullmatch(POLICY_PATTERN, text):
            raise ValueError(f"version policy {text!r}: expected 'latest:N' (N >= 1) or 'all'")
        if text == "all":
            return cls("all")
        return cls("latest", count=int(text.partition(":")[2]))

    @classmethod
    def specific(cls, versions: int | Sequence[int]) -> VersionPolicy:
        """The policy of a model pinned to ``versions`` (one or several)."""
        chosen = (versions,) if isinstance(versions, int) else tuple(versions)
        if not chosen:
            raise ValueError("a pinned model needs at least one version")
        return cls("specific", versions=tuple(sorted(set(chosen))))

    def select(self, available: Sequence[int]) -> list[int]:
        """The versions of ``available`` to serve, ascending."""
        ordered = sorted(set(available))
        if self.kind == "all":
            return ordered
        if self.kind == "latest":
            return ordered[-self.count :]
        return [version for version in ordered if version in self.versions]

    def __str__(self) -> str:
        if self.kind == "latest":
            return f"latest:{self.count}"
        if self.kind == "all":
            return "all"
        return "specific:" + ",".join(map(str, self.versions))


@dataclass(frozen=True)
class VersionPolicies:
    """The policy of every model: ``pinned`` ones by name, ``default`` for the others."""

    default: VersionPolicy = field(default_factory=lambda: VersionPolicy.parse(DEFAULT_POLICY))
    pinned: Mapping[str, VersionPolicy] = field(default_factory=dict)

    @classmethod
    def parse(
        cls, policy: str = DEFAULT_POLICY, pinned: Mapping[str, int | Sequence[int]] | None = None
    ) -> VersionPolicies:
        """From ``GAN_VERSION_POLICY`` and ``GAN_MODEL_VERSIONS``; ValueError when invalid."""
        specific = {name: VersionPolicy.specific(v) for name, v in (pinned or {}).items()}
        return cls(VersionPolicy.parse(policy), specific)

    def of(self, name: str) -> VersionPolicy:
        """The policy of model ``name``."""
        return self.pinned.get(name, self.default)
