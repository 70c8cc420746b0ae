"""The one place where the profile is chosen.

``embedded`` (default) keeps everything in files under ``HYBRID_HOME``; ``hybrid`` talks to PostgreSQL,
an S3 API endpoint and Redis. Nothing here runs at import time: callers ask for ``load_settings()``
when they are about to do work, so definitions load in any profile without a server.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROFILES = ("embedded", "hybrid")
REPO_ROOT = Path(__file__).resolve().parent.parent
FEATURE_REPO = REPO_ROOT / "feature_repo"


def object_uri(root: str, key: str) -> str:
    """The address of ``key`` in the object store at ``root`` (``s3://bucket/prefix`` or a local folder) that a
    reader outside the platform (Feast, Polars) uses."""
    root = root.rstrip("/")
    base = root if root.startswith("s3://") else str(Path(root).resolve())
    return f"{base}/{key.lstrip('/')}"


class ConfigError(ValueError):
    """The configuration is incomplete or contradictory; the message says which variable to set."""


def read_env_file(path: Path) -> dict[str, str]:
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


# The default source mapping: the generator's tables under the contracts' names (HYBRID_SOURCES: another file).
DEFAULT_SOURCES = REPO_ROOT / "sources.yaml"


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
    # the endpoint's interval between two reads of the registry's production pointer
    model_poll_seconds: float = 2.0
    # Dask schedulers, one per site (unset: in-process). Raw rows only ever go to the on-prem one.
    dask_scheduler: str | None = None  # the cloud location's: training-set join, LightGBM
    onprem_dask_scheduler: str | None = None  # the on-prem location's: daily feature partitions
    # the source mapping (core/sources.py): which tables and columns of the warehouse the platform reads
    sources_file: Path = DEFAULT_SOURCES
    # what a churn label means (core/catalog.py has the defaults): active = a purchase in the active_days
    # before a snapshot; churned = no purchase in the label_horizon_days after it; a snapshot every
    # snapshot_every_days (from a Monday)
    label_horizon_days: int = 30
    active_days: int = 14
    snapshot_every_days: int = 7
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def labels(self):
        """The churn label definition these settings give (a ``core.catalog.LabelDefinition``)."""
        from core.catalog import LabelDefinition

        return LabelDefinition(self.label_horizon_days, self.active_days, self.snapshot_every_days)

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
        """The synthetic data generator's state for this profile (its data lives in this profile's warehouse
        and object store, so each profile keeps its own)."""
        return self.home / "generator" / self.profile


# Numeric settings: (variable, default, low, high, low inclusive, high inclusive, the allowed range in words).
NUMERIC_SETTINGS = {
    # a share of rows: 0 blocks on any quarantined row, 1 never blocks
    "HYBRID_MAX_INVALID_SHARE": ("max_invalid_share", 0.01, 0.0, 1.0, True, True, "[0, 1]"),
    # an AUC of 0.5 is a coin toss: a floor at or below it would deploy a model that knows nothing
    "HYBRID_AUC_FLOOR": ("auc_floor", 0.70, 0.5, 1.0, False, True, "(0.5, 1]"),
    # more than 0.5 below production would accept any model, however much worse
    "HYBRID_AUC_TOLERANCE": ("auc_tolerance", 0.01, 0.0, 0.5, True, True, "[0, 0.5]"),
    # an interval: 0 or less would spin
    "HYBRID_MODEL_POLL_SECONDS": ("model_poll_seconds", 2.0, 0.0, math.inf, False, False, "> 0"),
}


def _source(name: str, env: Mapping[str, str], env_file: Path) -> str:
    return "" if name in env else f" (set in {env_file})"


def _numbers(merged: Mapping[str, str], env: Mapping[str, str], env_file: Path) -> tuple[dict, list[str]]:
    values, problems = {}, []
    for name, (attr, default, low, high, low_in, high_in, allowed) in NUMERIC_SETTINGS.items():
        raw = (merged.get(name) or "").strip()
        if not raw:  # unset or empty: the default
            values[attr] = default
            continue
        try:
            value = float(raw)
        except ValueError:
            problems.append(
                f"{name}={raw!r} is not a number; allowed: {allowed}{_source(name, env, env_file)}"
            )
            continue
        above = value >= low if low_in else value > low
        below = value <= high if high_in else value < high
        if not (math.isfinite(value) and above and below):
            problems.append(f"{name}={raw} is out of range; allowed: {allowed}{_source(name, env, env_file)}")
            continue
        values[attr] = value
    return values, problems


# Whole numbers of days: (variable, default, low, high), both inclusive. A horizon or window of a year or
# more would leave no labelled snapshot in any history the platform is meant for.
DAY_SETTINGS = {
    "HYBRID_LABEL_HORIZON_DAYS": ("label_horizon_days", 30, 1, 365),
    "HYBRID_ACTIVE_DAYS": ("active_days", 14, 1, 365),
    "HYBRID_SNAPSHOT_EVERY_DAYS": ("snapshot_every_days", 7, 1, 91),
}


def _days(merged: Mapping[str, str], env: Mapping[str, str], env_file: Path) -> tuple[dict, list[str]]:
    values, problems = {}, []
    for name, (attr, default, low, high) in DAY_SETTINGS.items():
        raw = (merged.get(name) or "").strip()
        if not raw:
            values[attr] = default
            continue
        allowed = f"a whole number of days from {low} to {high}"
        if not raw.isdigit() or not low <= int(raw) <= high:
            problems.append(f"{name}={raw!r} is not {allowed}{_source(name, env, env_file)}")
            continue
        values[attr] = int(raw)
    return values, problems


DASK_SETTINGS = {
    "HYBRID_DASK_SCHEDULER": "dask_scheduler",
    "HYBRID_ONPREM_DASK_SCHEDULER": "onprem_dask_scheduler",
}
DASK_SCHEMES = ("tcp://", "tls://", "ucx://")


def _schedulers(merged: Mapping[str, str]) -> tuple[dict, list[str]]:
    values, problems = {}, []
    for name, attr in DASK_SETTINGS.items():
        raw = (merged.get(name) or "").strip()
        if raw and not (raw.startswith(DASK_SCHEMES) and raw.rpartition(":")[2].isdigit()):
            problems.append(
                f"{name}={raw!r} is not a Dask scheduler address; allowed: tcp://HOST:PORT or tls://HOST:PORT"
            )
            continue
        values[attr] = raw or None
    return values, problems


def _sources_file(
    merged: Mapping[str, str], env: Mapping[str, str], env_file: Path
) -> tuple[Path, list[str]]:
    """HYBRID_SOURCES (default: the repository's sources.yaml), checked: the file must be a valid mapping."""
    from core.sources import SourcesError, load

    raw = (merged.get("HYBRID_SOURCES") or "").strip()
    path = Path(raw).expanduser().resolve() if raw else DEFAULT_SOURCES
    try:
        load(path)
    except SourcesError as exc:
        return path, [f"HYBRID_SOURCES: {exc}{_source('HYBRID_SOURCES', env, env_file) if raw else ''}"]
    return path, []


def _home_problem(home: Path, writable: bool) -> str | None:
    """Why ``home`` cannot be HYBRID_HOME (a file, under a file, or, when ``writable``, not writable)."""
    nearest = home
    try:
        while not nearest.exists() and nearest.parent != nearest:
            nearest = nearest.parent
        is_dir = nearest.is_dir()
    except OSError as exc:
        return f"HYBRID_HOME={home} cannot be read: {exc.strerror or exc}"
    if not is_dir:
        where = "is a file" if nearest == home else f"is under a file ({nearest})"
        return f"HYBRID_HOME={home} {where}; it must be a folder (or a path where one can be created)"
    if writable:
        try:  # access() says yes to root even on read-only file systems: really write
            fd, probe = tempfile.mkstemp(prefix=".hybrid-write-probe-", dir=nearest)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            what = "is not writable" if nearest == home else f"cannot be created in {nearest}"
            return f"HYBRID_HOME={home} {what}: {exc.strerror or exc}"
    return None


def load_settings(
    env: Mapping[str, str] | None = None, apply_env_file: bool = True, writable: bool = False
) -> Settings:
    """Build settings from the environment, then ``$HYBRID_HOME/services.env`` (the environment wins).

    Every value is checked here, once: a problem raises :class:`ConfigError` with one line naming the
    variable, its value and what is allowed (several problems: one line, separated by ``;``). With
    ``writable``, HYBRID_HOME must also be a folder this process can write (or create)."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("HYBRID_HOME") or REPO_ROOT / ".hybrid").expanduser().resolve()
    problem = _home_problem(home, writable)
    if problem:
        raise ConfigError(problem)
    env_file = home / "services.env"
    from_file = read_env_file(env_file)
    # the local Dask clusters of `hybrid cluster up` (hybrid_cli/cluster.py), read like services.env
    merged = {**from_file, **read_env_file(home / "cluster.env"), **env}
    problems = []
    profile = (merged.get("HYBRID_PROFILE") or "").strip() or "embedded"
    if profile not in PROFILES:
        problems.append(
            f"HYBRID_PROFILE={profile!r} is not a profile; allowed: {', '.join(PROFILES)}"
            + _source("HYBRID_PROFILE", env, env_file)
        )
    numbers, bad = _numbers(merged, env, env_file)
    problems += bad
    days, bad = _days(merged, env, env_file)
    problems += bad
    schedulers, bad = _schedulers(merged)
    problems += bad
    sources_file, bad = _sources_file(merged, env, env_file)
    problems += bad
    if problems:
        raise ConfigError("; ".join(problems))
    if apply_env_file:
        for key, value in from_file.items():  # the AWS SDKs and Dagster's EnvVar read the process env
            os.environ.setdefault(key, value)
    return Settings(
        profile=profile,
        home=home,
        onprem_dsn=merged.get("HYBRID_ONPREM_DSN"),
        s3_endpoint=merged.get("HYBRID_S3_ENDPOINT") or None,
        s3_bucket=merged.get("HYBRID_S3_BUCKET"),
        redis_url=merged.get("HYBRID_REDIS_URL"),
        sources_file=sources_file,
        **numbers,
        **days,
        **schedulers,
    )


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
