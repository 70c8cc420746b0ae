"""The feature catalog: every feature is declared here once.

A declaration holds the name, type, computation (a Polars expression), valid range, nullability and a
description. Everything else is derived from it: the on-prem and cloud feature computations
(:func:`compute_features`), the Feast schemas (``feature_repo/``), the Great Expectations suites
(``expectations/``) and the feature table in ``docs/features.md``. Adding a feature is one entry here
plus its test.

Point-in-time rule: a feature ``as_of`` a timestamp only sees source rows strictly before it, and (for sources
with an arrival time, see ``SOURCE_KNOWN_TS``) only rows that had arrived before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

# Feast feature views; the export view is computed on-prem, the engagement view in the cloud.
ACTIVITY_VIEW = "customer_activity"
ENGAGEMENT_VIEW = "marketing_engagement"
FEATURE_SERVICE = "churn_prediction"
ENTITY = "customer"
ENTITY_KEY = "customer_id"
EVENT_TS = "event_timestamp"
NO_ACTIVITY_DAYS = 365.0  # value of a "days since" feature when nothing happened yet
# What a churn label means, by default (settings: HYBRID_LABEL_HORIZON_DAYS, HYBRID_ACTIVE_DAYS,
# HYBRID_SNAPSHOT_EVERY_DAYS; the label definition a model was trained on is in its metadata)
LABEL_HORIZON_DAYS = 30  # churned at d: no purchase in [d, d + 30 days)
ACTIVE_DAYS = 14  # the scored population at d: customers with a purchase in the 14 days before d
SNAPSHOT_EVERY_DAYS = 7  # a labelled snapshot every 7 days, from a Monday


@dataclass(frozen=True)
class LabelDefinition:
    """Who is labelled at a snapshot (a purchase in the ``active_days`` before it), what churned means (no
    purchase in the ``horizon_days`` from it), and how often a snapshot is taken."""

    horizon_days: int = LABEL_HORIZON_DAYS
    active_days: int = ACTIVE_DAYS
    every_days: int = SNAPSHOT_EVERY_DAYS

    def as_metadata(self) -> dict[str, int]:
        return {
            "label_horizon_days": self.horizon_days,
            "active_days": self.active_days,
            "snapshot_every_days": self.every_days,
        }

    @classmethod
    def from_metadata(cls, meta: dict | None) -> LabelDefinition:
        """The definition ``as_metadata`` wrote; the defaults for what it lacks (models registered before the
        definition was a setting)."""
        meta = meta or {}
        return cls(
            horizon_days=int(meta.get("label_horizon_days", LABEL_HORIZON_DAYS)),
            active_days=int(meta.get("active_days", ACTIVE_DAYS)),
            every_days=int(meta.get("snapshot_every_days", SNAPSHOT_EVERY_DAYS)),
        )


# Object-store keys of everything that crosses the boundary or lives in the cloud. The two feature views'
# sources are folders of daily objects (``<prefix><YYYY-MM-DD>.parquet``, one per partition day); Feast reads
# each folder as one dataset.
ACTIVITY_EXPORT_KEY = "exports/customer_activity/"
LABELS_EXPORT_KEY = "exports/churn_labels.parquet"
ENGAGEMENT_KEY = "offline/marketing_engagement/"
TRAINING_SET_KEY = "training/churn_training_set.parquet"
VIEW_SOURCE_KEY = {ACTIVITY_VIEW: ACTIVITY_EXPORT_KEY, ENGAGEMENT_VIEW: ENGAGEMENT_KEY}  # daily objects
# Feast's offline sources: each view's daily objects compacted into one object. Feast's file offline store
# (dask) makes one partition per object, and its point-in-time join over 181 daily objects took 40 s where
# one object took 2.4 s (docs/decisions.md, "Partitions").
VIEW_OFFLINE_KEY = {view: f"offline/{view}.parquet" for view in VIEW_SOURCE_KEY}
FEATURE_TTL_DAYS = 14  # a snapshot older than this is not served or joined

SOURCE_TS = {"transactions": "event_ts", "support_tickets": "opened_ts", "marketing_events": "event_ts"}
# When a source row became known to the platform: a feature as of t also ignores rows that arrived after t.
SOURCE_KNOWN_TS = {"transactions": "ingested_at"}


def day_object(prefix: str, day: date) -> str:
    """Key of one day's object in a daily feature folder."""
    return f"{prefix}{day.isoformat()}.parquet"


def object_day(key: str) -> date:
    """The day of a daily feature object (inverse of :func:`day_object`)."""
    return date.fromisoformat(key.rsplit("/", 1)[-1].removesuffix(".parquet"))


SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}
PLAN_TIER = {"basic": 0, "standard": 1, "premium": 2}

Agg = Callable[[pl.Expr], pl.Expr]  # in-window mask -> aggregation over one customer's rows


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str  # "int64" or "float64"
    description: str
    source: str  # a key of SOURCE_TS, or "derived" (computed from other features and the customer row)
    view: str
    agg: Agg | None = None
    window_days: int | None = None  # None: all history before as_of
    derive: pl.Expr | None = None
    fill: float = 0.0  # value when the customer has no rows in the window
    min_value: float | None = 0.0
    max_value: float | None = None
    nullable: bool = False
    # source columns it needs beyond its source table (``customers.plan``); optional ones may be left out of a
    # deployment's mapping (core/sources.py), which switches the feature off
    needs: tuple[str, ...] = ()

    @property
    def requires(self) -> tuple[str, ...]:
        """What a deployment must have for this feature: its source, unless that is the purchases every
        deployment has, and the columns it ``needs``."""
        optional_source = () if self.source in ("transactions", "derived") else (self.source,)
        return optional_source + self.needs


def _in(window: pl.Expr) -> Callable[[pl.Expr], pl.Expr]:
    return lambda expr: expr.filter(window)


_txn, _tix, _mkt = "transactions", "support_tickets", "marketing_events"


def _is(kind: str) -> pl.Expr:
    return pl.col("event_type") == kind


FEATURES: tuple[Feature, ...] = (
    Feature(
        "txn_count_7d",
        "int64",
        "Purchases in the 7 days before the snapshot.",
        _txn,
        ACTIVITY_VIEW,
        agg=lambda w: w.sum(),
        window_days=7,
    ),
    Feature(
        "txn_count_30d",
        "int64",
        "Purchases in the 30 days before the snapshot.",
        _txn,
        ACTIVITY_VIEW,
        agg=lambda w: w.sum(),
        window_days=30,
    ),
    Feature(
        "txn_count_60d",
        "int64",
        "Purchases in the 60 days before the snapshot.",
        _txn,
        ACTIVITY_VIEW,
        agg=lambda w: w.sum(),
        window_days=60,
    ),
    Feature(
        "spend_30d",
        "float64",
        "Total spend in the 30 days before the snapshot.",
        _txn,
        ACTIVITY_VIEW,
        agg=lambda w: pl.col("amount").filter(w).sum(),
        window_days=30,
    ),
    Feature(
        "spend_60d",
        "float64",
        "Total spend in the 60 days before the snapshot.",
        _txn,
        ACTIVITY_VIEW,
        agg=lambda w: pl.col("amount").filter(w).sum(),
        window_days=60,
    ),
    Feature(
        "avg_amount_60d",
        "float64",
        "Average purchase amount over 60 days (0 when none).",
        _txn,
        ACTIVITY_VIEW,
        agg=lambda w: pl.col("amount").filter(w).mean(),
        window_days=60,
    ),
    Feature(
        "days_since_last_txn",
        "float64",
        f"Days from the last purchase to the snapshot ({NO_ACTIVITY_DAYS:.0f} when none).",
        _txn,
        ACTIVITY_VIEW,
        agg=lambda w: pl.col("_age_days").min(),
        fill=NO_ACTIVITY_DAYS,
        max_value=NO_ACTIVITY_DAYS * 10,
    ),
    Feature(
        "active_days_30d",
        "int64",
        "Distinct days with a purchase in the last 30 days.",
        _txn,
        ACTIVITY_VIEW,
        agg=lambda w: pl.col("_age_days").ceil().filter(w).n_unique(),
        window_days=30,
        max_value=30,
    ),
    Feature(
        "category_diversity_60d",
        "int64",
        "Distinct product categories bought in 60 days.",
        _txn,
        ACTIVITY_VIEW,
        agg=lambda w: pl.col("category").filter(w).n_unique(),
        window_days=60,
        needs=("transactions.category",),
    ),
    Feature(
        "online_share_60d",
        "float64",
        "Share of 60-day purchases made online (0 when none).",
        _txn,
        ACTIVITY_VIEW,
        agg=lambda w: (pl.col("channel") == "online").filter(w).mean(),
        window_days=60,
        max_value=1.0,
        needs=("transactions.channel",),
    ),
    Feature(
        "tickets_30d",
        "int64",
        "Support tickets opened in the last 30 days.",
        _tix,
        ACTIVITY_VIEW,
        agg=lambda w: w.sum(),
        window_days=30,
    ),
    Feature(
        "tickets_60d",
        "int64",
        "Support tickets opened in the last 60 days.",
        _tix,
        ACTIVITY_VIEW,
        agg=lambda w: w.sum(),
        window_days=60,
    ),
    Feature(
        "max_severity_60d",
        "int64",
        "Worst ticket severity in 60 days (0 none, 1 low .. 4 critical).",
        _tix,
        ACTIVITY_VIEW,
        window_days=60,
        max_value=4,
        agg=lambda w: pl.col("severity").replace_strict(SEVERITY_RANK, default=0).filter(w).max(),
        needs=("support_tickets.severity",),
    ),
    Feature(
        "open_tickets",
        "int64",
        "Tickets opened before the snapshot and not resolved by then.",
        _tix,
        ACTIVITY_VIEW,
        agg=lambda w: (pl.col("resolved_ts").is_null() | (pl.col("resolved_ts") >= pl.col("_as_of"))).sum(),
        needs=("support_tickets.resolved_ts",),
    ),
    Feature(
        "avg_resolution_hours_60d",
        "float64",
        "Mean hours to resolve tickets opened in 60 days (resolved before the snapshot; 0 when none).",
        _tix,
        ACTIVITY_VIEW,
        window_days=60,
        # whole seconds first: sums of integers are exact in any order, so reruns give the same bits
        agg=lambda w: (
            (pl.col("resolved_ts") - pl.col("opened_ts"))
            .dt.total_seconds()
            .filter(w & (pl.col("resolved_ts") < pl.col("_as_of")))
            .mean()
            / 3600.0
        ),
        needs=("support_tickets.resolved_ts",),
    ),
    Feature(
        "tenure_days",
        "int64",
        "Days since signup.",
        "derived",
        ACTIVITY_VIEW,
        derive=(pl.col("_as_of").dt.date() - pl.col("signup_date")).dt.total_days(),
        needs=("customers",),
    ),
    Feature(
        "plan_tier",
        "int64",
        "Subscription plan: 0 basic, 1 standard, 2 premium.",
        "derived",
        ACTIVITY_VIEW,
        derive=pl.col("plan").replace_strict(PLAN_TIER, default=None),
        max_value=2,
        needs=("customers.plan",),
    ),
    Feature(
        "activity_trend",
        "float64",
        "30-day purchases against the 60-day monthly average (below 1: slowing down).",
        "derived",
        ACTIVITY_VIEW,
        derive=pl.col("txn_count_30d") / pl.max_horizontal(pl.col("txn_count_60d") / 2.0, pl.lit(1.0)),
    ),
    # Cloud side: marketing engagement, computed next to the marketing events in the object store.
    Feature(
        "emails_sent_30d",
        "int64",
        "Marketing emails sent in the last 30 days.",
        _mkt,
        ENGAGEMENT_VIEW,
        agg=lambda w: (_is("sent") & w).sum(),
        window_days=30,
    ),
    Feature(
        "open_rate_60d",
        "float64",
        "Opened / sent marketing emails over 60 days.",
        _mkt,
        ENGAGEMENT_VIEW,
        agg=lambda w: (_is("open") & w).sum() / pl.max_horizontal((_is("sent") & w).sum(), pl.lit(1)),
        window_days=60,
        max_value=None,
    ),
    Feature(
        "click_rate_60d",
        "float64",
        "Clicked / sent marketing emails over 60 days.",
        _mkt,
        ENGAGEMENT_VIEW,
        window_days=60,
        max_value=None,
        agg=lambda w: (_is("click") & w).sum() / pl.max_horizontal((_is("sent") & w).sum(), pl.lit(1)),
    ),
    Feature(
        "days_since_last_click",
        "float64",
        f"Days since the last email click ({NO_ACTIVITY_DAYS:.0f} when none).",
        _mkt,
        ENGAGEMENT_VIEW,
        agg=lambda w: pl.col("_age_days").filter(_is("click")).min(),
        fill=NO_ACTIVITY_DAYS,
        max_value=NO_ACTIVITY_DAYS * 10,
    ),
)

BY_NAME = {f.name: f for f in FEATURES}


def active_features() -> tuple[Feature, ...]:
    """This deployment's features: the catalog's, less those whose inputs the source mapping leaves out
    (core/sources.py). Asked at run time, never on import; with the generator's tables, every feature."""
    from core.sources import configured

    return configured().features


def features_of(view: str) -> list[Feature]:
    """This deployment's features of ``view``, in the catalog's order."""
    return [f for f in active_features() if f.view == view]


def feature_names(view: str | None = None) -> list[str]:
    """This deployment's feature names (of ``view``), in the catalog's order: the Feast schemas, the GX
    suites, the training columns and the served features."""
    return [f.name for f in active_features() if view is None or f.view == view]


def active_views() -> list[str]:
    """The feature views with at least one feature in this deployment (without marketing events, only the
    on-prem one)."""
    views = {f.view for f in active_features()}
    return [v for v in VIEW_SOURCE_KEY if v in views]


def polars_dtype(feature: Feature) -> pl.DataType:
    return pl.Int64() if feature.dtype == "int64" else pl.Float64()


def features_markdown(off: dict[str, str] | None = None) -> str:
    """docs/features.md, generated from the declarations (`hybrid docs`): the features of a deployment whose
    source mapping switches ``off`` (name -> what it lacks) some of them; by default every feature."""
    off = off or {}
    lines = [
        "# Features",
        "",
        "Generated from `core/catalog.py` by `hybrid docs`; do not edit by hand.",
        "",
        f"Feature service `{FEATURE_SERVICE}` = every feature below; entity `{ENTITY}` ({ENTITY_KEY}). "
        "A feature that needs a source table or column the source mapping leaves out (`sources.yaml`; "
        "`hybrid sources check` says which) is off in that deployment: not computed, not in Feast, the GX "
        "suites, the training set or the endpoint. Purchases (customer id, event time, amount) are always there.",
        "",
        "| feature | view (computed) | type | window | valid range | needs | description |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in FEATURES:
        if f.name in off:
            continue
        where = "on-prem" if f.view == ACTIVITY_VIEW else "cloud"
        window = (
            f"{f.window_days} d" if f.window_days else ("derived" if f.derive is not None else "all history")
        )
        lo = "" if f.min_value is None else f"{f.min_value:g}"
        hi = "" if f.max_value is None else f"{f.max_value:g}"
        needs = ", ".join(f"`{r}`" for r in f.requires) or "purchases"
        lines.append(
            f"| `{f.name}` | {f.view} ({where}) | {f.dtype} | {window} | [{lo}, {hi}] | {needs} | "
            f"{f.description} |"
        )
    if off:
        lines += ["", "Off in this deployment (the source mapping leaves out what they need):", ""]
        lines += [f"- `{name}`: needs {needs}" for name, needs in off.items()]
    return "\n".join(lines) + "\n"


# -- snapshots --------------------------------------------------------------------------------------
SNAPSHOT_WEEKDAY = 0  # Mondays
WARMUP_DAYS = 60  # the longest window: earlier snapshots would see truncated history


def snapshots(data_start: date, data_end: date, every_days: int = SNAPSHOT_EVERY_DAYS) -> list[date]:
    """Every ``every_days`` days from the first Monday with a full feature history (``WARMUP_DAYS``) before
    it, strictly before ``data_end``."""
    first = data_start + timedelta(days=WARMUP_DAYS)
    first += timedelta(days=(SNAPSHOT_WEEKDAY - first.weekday()) % 7)
    out, day = [], first
    while day < data_end:
        out.append(day)
        day += timedelta(days=every_days)
    return out


def feature_snapshots(data_start: date, data_end: date) -> list[datetime]:
    """The default snapshots for training plus ``data_end`` itself: the freshest values, which serving uses."""
    days = snapshots(data_start, data_end)
    if data_end not in days:
        days.append(data_end)
    return [datetime.combine(d, datetime.min.time()) for d in days]


# -- computation ------------------------------------------------------------------------------------
def compute_features(
    features: Iterable[Feature],
    spine: pl.DataFrame,
    sources: dict[str, pl.DataFrame],
    customers: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Features for every (customer_id, as_of) row of ``spine``, each from source rows before ``as_of``.

    ``sources`` maps a source name to its rows (customer_id, the timestamp in ``SOURCE_TS`` and the
    columns the aggregations use). ``customers`` gives signup_date and plan for derived features.
    """
    features = list(features)
    spine = spine.select(ENTITY_KEY, pl.col("as_of").cast(pl.Datetime("us")))
    parts: list[pl.DataFrame] = []
    for as_of in spine["as_of"].unique().sort():
        rows = spine.filter(pl.col("as_of") == as_of)
        for source, frame in sources.items():
            wanted = [f for f in features if f.source == source]
            if not wanted:
                continue
            ts = SOURCE_TS[source]
            longest = max((f.window_days or 10**6) for f in wanted)
            lower = as_of - timedelta(days=min(longest, 10**5))
            known = SOURCE_KNOWN_TS.get(source)
            seen = pl.col(known) < as_of if known in frame.columns else pl.lit(True)
            window_rows = (
                frame.lazy()
                .filter((pl.col(ts) < as_of) & (pl.col(ts) >= lower) & seen)
                .with_columns(
                    _as_of=pl.lit(as_of, dtype=pl.Datetime("us")),
                    _age_days=(pl.lit(as_of, dtype=pl.Datetime("us")) - pl.col(ts)).dt.total_seconds()
                    / 86_400.0,
                )
            )
            aggs = [
                f.agg(pl.col("_age_days") <= (f.window_days or 10**6)).alias(f.name)  # type: ignore[misc]
                for f in wanted
            ]
            # (a DECIMAL amount is summed exactly, whatever the row order, and becomes a float only here)
            aggs = [
                a.cast(pl.Float64) if f.dtype == "float64" else a for a, f in zip(aggs, wanted, strict=True)
            ]
            grouped = window_rows.group_by(ENTITY_KEY).agg(aggs).collect()
            rows = rows.join(grouped, on=ENTITY_KEY, how="left")
        parts.append(rows)
    out = pl.concat(parts, how="diagonal_relaxed") if parts else spine
    wanted_agg = [f for f in features if f.source != "derived"]
    out = out.with_columns(
        [
            pl.col(f.name).fill_null(f.fill).fill_nan(f.fill)
            if f.dtype == "float64"
            else pl.col(f.name).fill_null(f.fill)
            for f in wanted_agg
            if f.name in out.columns
        ]
    )
    derived = [f for f in features if f.source == "derived"]
    if derived:
        if customers is None:
            raise ValueError("derived features need the customers frame (signup_date, plan)")
        out = out.join(customers.select(ENTITY_KEY, "signup_date", "plan"), on=ENTITY_KEY, how="left")
        out = out.with_columns(_as_of=pl.col("as_of"))
        for f in derived:  # declared in dependency order
            out = out.with_columns(f.derive.alias(f.name))  # type: ignore[union-attr]
    out = out.with_columns([pl.col(f.name).cast(polars_dtype(f)) for f in features])
    return out.select(ENTITY_KEY, pl.col("as_of").alias(EVENT_TS), *[f.name for f in features]).sort(
        EVENT_TS, ENTITY_KEY
    )
