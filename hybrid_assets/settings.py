"""The one place where the profile is chosen.

``embedded`` (default) keeps everything in files under ``HYBRID_HOME``; ``hybrid`` talks to PostgreSQL,
an S3 API endpoint and Redis. Nothing here runs at import time: callers ask for ``load_settings()``
when they are about to do work, so definitions load in any profile without a server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROFILES = ("embedded", "hybrid")
REPO_ROOT = Path(__file__).resolve().parent.parent
FEATURE_REPO = REPO_ROOT / "feature_repo"


class ConfigError(ValueError):
    """The configuration is incomplete or contradictory; the message says which variable to set."""


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


@dataclass(frozen=True)
class Settings:
    profile: str
    home: Path
    # hybrid profile only
    onprem_dsn: str | None = None
    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    redis_url: str | None = None
    # data-quality and deployment policy
    max_invalid_share: float = 0.01
    auc_floor: float = 0.70
    auc_tolerance: float = 0.01
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def warehouse_path(self) -> Path:
        return self.home / "onprem.duckdb"

    @property
    def object_store_root(self) -> str:
        """Local folder (embedded) or s3://bucket (hybrid) that holds everything that crosses to the cloud."""
        if self.profile == "hybrid":
            return f"s3://{self.s3_bucket}"
        return str(self.home / "object_store")

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def feast_dir(self) -> Path:
        return self.home / "feast"

    @property
    def generator_dir(self) -> Path:
        return self.home / "generator"


def load_settings(env: Mapping[str, str] | None = None, apply_env_file: bool = True) -> Settings:
    """Build settings from the environment, then ``$HYBRID_HOME/services.env`` (the environment wins)."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("HYBRID_HOME") or REPO_ROOT / ".hybrid").expanduser().resolve()
    from_file = _read_env_file(home / "services.env")
    merged = {**from_file, **env}
    if apply_env_file:
        for key, value in from_file.items():  # the AWS SDKs and Dagster's EnvVar read the process env
            os.environ.setdefault(key, value)
    profile = merged.get("HYBRID_PROFILE", "embedded").strip() or "embedded"
    if profile not in PROFILES:
        raise ConfigError(f"HYBRID_PROFILE={profile!r} is not one of {', '.join(PROFILES)}")
    settings = Settings(
        profile=profile,
        home=home,
        onprem_dsn=merged.get("HYBRID_ONPREM_DSN"),
        s3_endpoint=merged.get("HYBRID_S3_ENDPOINT") or None,
        s3_bucket=merged.get("HYBRID_S3_BUCKET"),
        redis_url=merged.get("HYBRID_REDIS_URL"),
        max_invalid_share=float(merged.get("HYBRID_MAX_INVALID_SHARE", "0.01")),
        auc_floor=float(merged.get("HYBRID_AUC_FLOOR", "0.70")),
        auc_tolerance=float(merged.get("HYBRID_AUC_TOLERANCE", "0.01")),
    )
    return settings


def require_services(settings: Settings) -> Settings:
    """Fail with the variables to set when the hybrid profile lacks its service addresses."""
    if settings.profile == "hybrid":
        missing = [
            name
            for name, value in (
                ("HYBRID_ONPREM_DSN", settings.onprem_dsn),
                ("HYBRID_S3_BUCKET", settings.s3_bucket),
                ("HYBRID_REDIS_URL", settings.redis_url),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"the hybrid profile needs {', '.join(missing)} (set them, or run `make services` "
                f"to write {settings.home / 'services.env'})"
            )
    return settings
