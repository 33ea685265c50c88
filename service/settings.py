"""The service's configuration: one pydantic-settings class, read from ``GAN_*`` variables.

Usage::

    settings = Settings()                      # from the environment
    settings = Settings(max_batch_size=16)     # explicit values win over the environment
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service. Each field is read from ``GAN_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix="GAN_", frozen=True, extra="ignore")

    model_dir: Path = Path("models")
    """The model repository: ``<model_dir>/<name>/<integer version>/``."""
