"""Settings read from the environment (prefix ``STRATFORGE_``) and overridable from the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide configuration.

    Every field can be set with an environment variable ``STRATFORGE_<FIELD>``, for example
    ``STRATFORGE_HOME=/data/sf`` or ``STRATFORGE_DATABASE_URL=postgresql://...``.
    """

    model_config = SettingsConfigDict(env_prefix="STRATFORGE_", extra="ignore")

    home: Path = Field(default=Path("~/.stratforge"),
                       description="Folder holding the atlas, caches, runs and the database.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of a shared database; the embedded SQLite file when unset.")
    executor: Literal["serial", "local", "ray"] = Field(
        default="local", description="Where parallel jobs run: local processes, a Ray cluster, "
                                     "or the calling process (serial).")
    workers: int = Field(default=0, ge=0,
                         description="Local worker processes; 0 means one per CPU core.")
    ray_address: str | None = Field(default=None,
                                    description="Address of a Ray cluster; a local one if unset.")

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def atlas_dir(self) -> Path:
        """Root folder of the multi-timeframe store."""
        return self.home / "atlas"

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the shared one, else SQLite inside the home folder."""
        return self.database_url or f"sqlite:///{self.home / 'stratforge.db'}"


_settings: Settings | None = None


def get_settings() -> Settings:
    """The current settings (read from the environment once, then cached)."""
    global _settings
    if _settings is None:
        _settings = Settings()
    return _settings


def configure(**overrides: object) -> Settings:
    """Replace the cached settings with the environment's values plus ``overrides``.

    The CLI calls this for options such as ``--home``; tests call it to point at a temp folder.
    """
    global _settings
    clean = {key: value for key, value in overrides.items() if value is not None}
    _settings = Settings(**clean)
    return _settings


def resolve_home(home: Path | str | None = None) -> Path:
    """The home folder to use: ``home`` when given, else the configured one."""
    return Path(home).expanduser() if home is not None else get_settings().home
