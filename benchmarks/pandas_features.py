"""Reference for ``benchmarks/features.py``: the 18 ``customer_activity`` features in plain pandas.

Written the way a competent data scientist would write them in a notebook: boolean masks to cut each window,
one ``groupby().agg()`` per window, ``merge`` onto the customer spine, ``fillna`` for customers without rows.
Deliberately independent of ``core.catalog`` (and of Polars): it is the yardstick the catalog's
computation is checked against, so it restates the definitions instead of importing them.

Definitions (from the catalog's declarations): a snapshot ``as_of`` sees only rows strictly before it; a
row's age is ``(as_of - ts)`` in days, and an ``N``-day window is ``age <= N``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}
PLAN_TIER = {"basic": 0, "standard": 1, "premium": 2}
NO_ACTIVITY_DAYS = 365.0

INT_FEATURES = [
    "txn_count_7d",
    "txn_count_30d",
    "txn_count_60d",
    "active_days_30d",
    "category_diversity_60d",
    "tickets_30d",
    "tickets_60d",
    "max_severity_60d",
    "open_tickets",
    "tenure_days",
    "plan_tier",
]
FEATURES = [  # the catalog's order of the customer_activity view
    "txn_count_7d",
    "txn_count_30d",
    "txn_count_60d",
    "spend_30d",
    "spend_60d",
    "avg_amount_60d",
    "days_since_last_txn",
    "active_days_30d",
    "category_diversity_60d",
    "online_share_60d",
    "tickets_30d",
    "tickets_60d",
    "max_severity_60d",
    "open_tickets",
    "avg_resolution_hours_60d",
    "tenure_days",
    "plan_tier",
    "activity_trend",
]


def transaction_features(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    past = transactions[transactions["event_ts"] < as_of]
    past = past.assign(age_days=(as_of - past["event_ts"]).dt.total_seconds() / 86_400)
    last = past.groupby("customer_id")["age_days"].min().rename("days_since_last_txn")

    d60 = past[past["age_days"] <= 60]
    d60 = d60.assign(online=d60["channel"] == "online")
    f60 = d60.groupby("customer_id").agg(
        txn_count_60d=("amount", "size"),
        spend_60d=("amount", "sum"),
        avg_amount_60d=("amount", "mean"),
        category_diversity_60d=("category", "nunique"),
        online_share_60d=("online", "mean"),
    )
    d30 = d60[d60["age_days"] <= 30]
    d30 = d30.assign(day=np.ceil(d30["age_days"]))
    f30 = d30.groupby("customer_id").agg(
        txn_count_30d=("amount", "size"),
        spend_30d=("amount", "sum"),
        active_days_30d=("day", "nunique"),
    )
    f7 = d30[d30["age_days"] <= 7].groupby("customer_id").size().rename("txn_count_7d")
    return pd.concat([f7, f30, f60, last], axis=1)


def ticket_features(tickets: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    past = tickets[tickets["opened_ts"] < as_of]
    past = past.assign(
        age_days=(as_of - past["opened_ts"]).dt.total_seconds() / 86_400,
        still_open=past["resolved_ts"].isna() | (past["resolved_ts"] >= as_of),
    )
    still_open = past.groupby("customer_id")["still_open"].sum().rename("open_tickets")

    d60 = past[past["age_days"] <= 60]
    d60 = d60.assign(
        severity_rank=d60["severity"].map(SEVERITY_RANK).fillna(0),
        resolution_hours=(d60["resolved_ts"] - d60["opened_ts"]).dt.total_seconds() / 3600,
    )
    f60 = d60.groupby("customer_id").agg(
        tickets_60d=("severity", "size"), max_severity_60d=("severity_rank", "max")
    )
    resolved = d60[d60["resolved_ts"] < as_of]
    resolution = resolved.groupby("customer_id")["resolution_hours"].mean().rename("avg_resolution_hours_60d")
    f30 = d60[d60["age_days"] <= 30].groupby("customer_id").size().rename("tickets_30d")
    return pd.concat([f30, f60, still_open, resolution], axis=1)


def customer_activity(
    spine: pd.DataFrame, transactions: pd.DataFrame, tickets: pd.DataFrame, customers: pd.DataFrame
) -> pd.DataFrame:
    """One row per (customer_id, as_of) of ``spine``: customer_id, event_timestamp and the 18 features."""
    parts = []
    for as_of, rows in spine.groupby("as_of", sort=True):
        part = (
            rows[["customer_id", "as_of"]]
            .merge(
                transaction_features(transactions, as_of), left_on="customer_id", right_index=True, how="left"
            )
            .merge(ticket_features(tickets, as_of), left_on="customer_id", right_index=True, how="left")
        )
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)

    fills = dict.fromkeys(FEATURES, 0) | {"days_since_last_txn": NO_ACTIVITY_DAYS}
    out = out.fillna({k: v for k, v in fills.items() if k in out.columns})

    out = out.merge(customers[["customer_id", "signup_date", "plan"]], on="customer_id", how="left")
    out["tenure_days"] = (out["as_of"].dt.normalize() - pd.to_datetime(out["signup_date"])).dt.days
    out["plan_tier"] = out["plan"].map(PLAN_TIER)
    out["activity_trend"] = out["txn_count_30d"] / np.maximum(out["txn_count_60d"] / 2, 1.0)

    out[INT_FEATURES] = out[INT_FEATURES].astype("int64")
    out = out.rename(columns={"as_of": "event_timestamp"})
    out = out.sort_values(["event_timestamp", "customer_id"], ignore_index=True)
    return out[["customer_id", "event_timestamp", *FEATURES]]
