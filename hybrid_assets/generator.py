"""Deterministic synthetic data for the churn case, with a planted churn signal and its ground truth.

The world is simulated day by day. Day ``t`` draws from ``numpy.random.default_rng([seed, t])`` and the
per-customer state (alive or churned) is carried over in ``$HYBRID_HOME/generator/``, so generating 180 days
and then appending 5 gives exactly the same rows as generating 185 days at once.

The planted signal, all of it known to :func:`true_churn_probability`:
- each customer buys at a daily rate that may *decay* from some day on (activity decay),
- a daily churn hazard that rises as the rate decays, with support *friction* (which also drives tickets
  and their severity), falls with marketing *engagement* (which drives opens and clicks), and depends on plan,
- transactions and tickets only happen while a customer is alive; opens/clicks depend on engagement only.

Label: a customer churned at snapshot ``d`` if they have no transaction in ``[d, d + 30 days)``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from expectations.raw import CATEGORIES, CHANNELS, CUSTOMERS, PLANS, REGIONS, SEVERITIES
from hybrid_assets.catalog import ACTIVE_DAYS, LABEL_HORIZON_DAYS
from resources.object_store import ObjectStore

MARKETING_PREFIX = "sources/marketing_events/"

FIRST = "Ada Alan Grace Linus Ken Barbara Edsger Frances Donald Margaret John Radia Tim Sophie Guido Anita".split()
LAST = "Lovelace Turing Hopper Torvalds Thompson Liskov Dijkstra Allen Knuth Hamilton Backus Perlman".split()

DDL = {
    "customers": """create table if not exists customers (
        customer_id BIGINT, full_name VARCHAR, email VARCHAR, phone VARCHAR, birth_date DATE,
        signup_date DATE, region VARCHAR, plan VARCHAR)""",
    "transactions": """create table if not exists transactions (
        transaction_id BIGINT, customer_id BIGINT, amount DECIMAL(12,2), category VARCHAR,
        channel VARCHAR, event_ts TIMESTAMP, ingested_at TIMESTAMP)""",
    "support_tickets": """create table if not exists support_tickets (
        ticket_id BIGINT, customer_id BIGINT, opened_ts TIMESTAMP, severity VARCHAR, resolved_ts TIMESTAMP)""",
}

# Hazard model (logit of the daily churn probability).
H_BASE, H_DECAY, H_FRICTION, H_ENGAGE = -5.3, 0.7, 1.0, 1.2
H_PLAN = {"basic": 0.35, "standard": 0.0, "premium": -0.35}
RATE_FLOOR = 0.02


@dataclass
class GeneratorMeta:
    seed: int
    n_customers: int
    start_date: str
    days_generated: int = 0
    next_transaction_id: int = 1
    next_ticket_id: int = 1
    next_customer_id: int = 1
    dirty_share: float = 0.0005  # share of transactions written broken, as real loaders sometimes do

    @property
    def start(self) -> date:
        return date.fromisoformat(self.start_date)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _new_customers(
    rng: np.random.Generator, ids: np.ndarray, signup_day: np.ndarray, start: date
) -> pl.DataFrame:
    """Latent parameters (kept by the generator only) plus the on-prem customer row (PII included)."""
    n = len(ids)
    plan = rng.choice(PLANS, size=n, p=[0.5, 0.35, 0.15])
    friction = rng.normal(0, 1, n)
    engagement = rng.normal(0, 1, n)
    rate0 = np.exp(rng.normal(np.log(0.78), 0.55, n)) * np.where(plan == "premium", 1.25, 1.0)
    decays = rng.random(n) < 0.45
    decay_rate = np.where(decays, rng.uniform(0.006, 0.035, n), 0.0)
    decay_start = signup_day + rng.integers(0, 200, n)
    first = rng.choice(FIRST, n)
    last = rng.choice(LAST, n)
    birth = [start - timedelta(days=int(d)) for d in rng.integers(18 * 365, 80 * 365, n)]
    return pl.DataFrame(
        {
            "customer_id": ids.astype(np.int64),
            "full_name": [f"{a} {b}" for a, b in zip(first, last, strict=True)],
            "email": [f"{a}.{b}.{i}@example.com".lower() for a, b, i in zip(first, last, ids, strict=True)],
            "phone": [f"+1-555-{i % 1000:03d}-{(i * 7919) % 10000:04d}" for i in ids],
            "birth_date": birth,
            "signup_date": [start + timedelta(days=int(d)) for d in signup_day],
            "region": rng.choice(REGIONS, n),
            "plan": plan,
            # latent: never written to the warehouse
            "signup_day": signup_day.astype(np.int64),
            "rate0": rate0,
            "decay_rate": decay_rate,
            "decay_start": decay_start.astype(np.int64),
            "friction": friction,
            "engagement": engagement,
            "spend_mu": rng.normal(3.3, 0.5, n),
            "fav_category": rng.integers(0, len(CATEGORIES), n),
            "explore": rng.uniform(0.05, 0.9, n),
            "online_pref": rng.uniform(0, 1, n),
            "alive": np.ones(n, dtype=bool),
            "churn_day": np.full(n, -1, dtype=np.int64),
        }
    )


def activity_rate(state: pl.DataFrame | dict, day) -> np.ndarray:
    """Daily purchase rate of each customer on ``day`` (array broadcast over days if ``day`` is 2-D)."""
    rate0 = np.asarray(state["rate0"])
    decay = np.asarray(state["decay_rate"])
    start = np.asarray(state["decay_start"])
    if np.ndim(day) == 2:
        rate0, decay, start = rate0[:, None], decay[:, None], start[:, None]
    return np.maximum(RATE_FLOOR, rate0 * np.exp(-decay * np.maximum(0, day - start)))


def ticket_rate(state) -> np.ndarray:
    return 0.006 * np.exp(0.9 * np.asarray(state["friction"]))


def hazard(state, day) -> np.ndarray:
    rate0 = np.asarray(state["rate0"])
    plan_effect = np.array([H_PLAN[p] for p in state["plan"]])
    friction = np.asarray(state["friction"])
    engagement = np.asarray(state["engagement"])
    rate = activity_rate(state, day)
    if np.ndim(day) == 2:
        rate0, plan_effect = rate0[:, None], plan_effect[:, None]
        friction, engagement = friction[:, None], engagement[:, None]
    logit = (
        H_BASE + H_DECAY * np.log(rate0 / rate) + H_FRICTION * friction - H_ENGAGE * engagement + plan_effect
    )
    return _sigmoid(logit)


class Generator:
    def __init__(self, home: Path, warehouse, store: ObjectStore):
        self.dir = home / "generator"
        self.warehouse = warehouse
        self.store = store

    # -- state ------------------------------------------------------------------------------------
    @property
    def meta_path(self) -> Path:
        return self.dir / "meta.json"

    @property
    def state_path(self) -> Path:
        return self.dir / "customers_latent.parquet"

    def exists(self) -> bool:
        return self.meta_path.exists()

    def load(self) -> tuple[GeneratorMeta, pl.DataFrame]:
        meta = GeneratorMeta(**json.loads(self.meta_path.read_text()))
        return meta, pl.read_parquet(self.state_path)

    def _save(self, meta: GeneratorMeta, state: pl.DataFrame) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        state.write_parquet(tmp)
        tmp.replace(self.state_path)
        self.meta_path.write_text(json.dumps(asdict(meta), indent=2))

    # -- generation -------------------------------------------------------------------------------
    def create(
        self,
        n_customers: int = 20_000,
        days: int = 180,
        seed: int = 7,
        start: date = date(2026, 4, 1),
        dirty_share: float = 0.0005,
    ):
        if self.exists():
            raise FileExistsError(f"synthetic data already exists under {self.dir}; append with --days")
        if any(self.warehouse.table_exists(t) for t in DDL):
            raise FileExistsError(
                f"{self.warehouse.describe()} already holds source tables that the generator did not write"
            )
        rng = np.random.default_rng([seed, 10**6])
        n_existing = int(n_customers * 0.85)
        ids = np.arange(1, n_existing + 1)
        signup = -rng.integers(30, 3 * 365, n_existing)
        state = _new_customers(rng, ids, signup, start)
        # some existing customers churned before the window opened: they never buy again
        pre_churned = rng.random(n_existing) < 0.12
        state = state.with_columns(
            alive=pl.Series(~pre_churned), churn_day=pl.Series(np.where(pre_churned, -1, -1)).cast(pl.Int64)
        )
        meta = GeneratorMeta(
            seed=seed,
            n_customers=n_customers,
            start_date=start.isoformat(),
            next_customer_id=n_existing + 1,
            dirty_share=dirty_share,
        )
        for ddl in DDL.values():
            self.warehouse.execute(ddl)
        self._write_customers(state)
        return self._advance(meta, state, days)

    def append(self, days: int = 1):
        meta, state = self.load()
        return self._advance(meta, state, days)

    def _write_customers(self, new: pl.DataFrame) -> None:
        if new.height:
            self.warehouse.append("customers", new.select(list(CUSTOMERS.columns)))

    def _advance(self, meta: GeneratorMeta, state: pl.DataFrame, days: int) -> dict:
        txns, tickets, marketing, new_customers = [], [], [], []
        signup_rate = 0.15 * meta.n_customers / 180
        for t in range(meta.days_generated, meta.days_generated + days):
            rng = np.random.default_rng([meta.seed, t])
            k = int(rng.poisson(signup_rate))
            if k:
                ids = np.arange(meta.next_customer_id, meta.next_customer_id + k)
                meta.next_customer_id += k
                born = _new_customers(rng, ids, np.full(k, t), meta.start)
                new_customers.append(born)
                state = pl.concat([state, born], how="vertical_relaxed")
            day_txn, day_tix, day_mkt, state = self._simulate_day(rng, meta, state, t)
            txns.append(day_txn)
            tickets.append(day_tix)
            if day_mkt is not None:
                marketing.append(day_mkt)
        first_day = meta.days_generated
        meta.days_generated += days
        transactions = pl.concat(txns) if txns else pl.DataFrame()
        support = pl.concat(tickets) if tickets else pl.DataFrame()
        if new_customers:
            self._write_customers(pl.concat(new_customers))
        self.warehouse.append("transactions", transactions)
        self.warehouse.append("support_tickets", support)
        if marketing:
            key = f"{MARKETING_PREFIX}days-{first_day:05d}-{meta.days_generated - 1:05d}.parquet"
            self.store.write_parquet(key, pl.concat(marketing))
        self._save(meta, state)
        return {
            "days": days,
            "first_date": (meta.start + timedelta(days=first_day)).isoformat(),
            "last_date": (meta.start + timedelta(days=meta.days_generated - 1)).isoformat(),
            "new_customers": sum(f.height for f in new_customers),
            "transactions": transactions.height,
            "support_tickets": support.height,
            "marketing_events": sum(f.height for f in marketing),
        }

    def _simulate_day(self, rng, meta: GeneratorMeta, state: pl.DataFrame, t: int):
        day0 = datetime.combine(meta.start + timedelta(days=t), datetime.min.time())
        signed_up = state["signup_day"].to_numpy() <= t
        alive = state["alive"].to_numpy().copy()
        churn_day = state["churn_day"].to_numpy().copy()
        # churn check at the start of the day, then the day's activity for those still alive
        churns = alive & signed_up & (rng.random(state.height) < hazard(state, t))
        alive &= ~churns
        churn_day[churns] = t
        active = alive & signed_up
        idx = np.flatnonzero(active)

        n_txn = rng.poisson(activity_rate(state, t)[idx])
        owner = np.repeat(idx, n_txn)
        m = len(owner)
        explore = state["explore"].to_numpy()[owner]
        fav = state["fav_category"].to_numpy()[owner]
        category = np.where(rng.random(m) < explore, rng.integers(0, len(CATEGORIES), m), fav)
        online_pref = state["online_pref"].to_numpy()[owner]
        u = rng.random(m)
        channel = np.where(u < online_pref * 0.7, 0, np.where(u < online_pref * 0.7 + 0.3, 2, 1))
        amount = np.round(np.exp(rng.normal(state["spend_mu"].to_numpy()[owner], 0.6)), 2)
        offset = rng.integers(0, 86_400, m)
        lag = rng.integers(60, 6 * 3600, m)
        ids = np.arange(meta.next_transaction_id, meta.next_transaction_id + m)
        meta.next_transaction_id += m
        event_ts = np.datetime64(day0) + offset.astype("timedelta64[s]")
        txn = pl.DataFrame(
            {
                "transaction_id": ids.astype(np.int64),
                "customer_id": state["customer_id"].to_numpy()[owner],
                "amount": amount,
                "category": np.array(CATEGORIES)[category],
                "channel": np.array(CHANNELS)[channel],
                "event_ts": event_ts,
                "ingested_at": event_ts + lag.astype("timedelta64[s]"),
            }
        ).with_columns(
            pl.col("amount").cast(pl.Decimal(12, 2)),
            pl.col("event_ts", "ingested_at").cast(pl.Datetime("us")),
        )

        txn = _dirty(rng, txn, meta.dirty_share)

        friction = state["friction"].to_numpy()
        n_tix = rng.poisson(ticket_rate(state)[idx])
        t_owner = np.repeat(idx, n_tix)
        k = len(t_owner)
        sev_score = friction[t_owner] + rng.normal(0, 1, k)
        severity = np.digitize(sev_score, [-0.3, 0.9, 1.9])
        opened = np.datetime64(day0) + rng.integers(0, 86_400, k).astype("timedelta64[s]")
        hours = rng.exponential(24 * np.exp(0.4 * friction[t_owner]))
        resolved = opened + (hours * 3600).astype("timedelta64[s]")
        unresolved = rng.random(k) < 0.08
        tix_ids = np.arange(meta.next_ticket_id, meta.next_ticket_id + k)
        meta.next_ticket_id += k
        tickets = pl.DataFrame(
            {
                "ticket_id": tix_ids.astype(np.int64),
                "customer_id": state["customer_id"].to_numpy()[t_owner],
                "opened_ts": opened,
                "severity": np.array(SEVERITIES)[severity],
                "resolved_ts": resolved,
            }
        ).with_columns(
            pl.col("opened_ts").cast(pl.Datetime("us")),
            pl.when(pl.Series(unresolved))
            .then(None)
            .otherwise(pl.col("resolved_ts"))
            .cast(pl.Datetime("us"))
            .alias("resolved_ts"),
        )

        marketing = None
        if t % 7 == 0:  # weekly campaign to everyone who has signed up
            rec = np.flatnonzero(signed_up)
            engagement = state["engagement"].to_numpy()[rec]
            opened_mask = rng.random(len(rec)) < _sigmoid(engagement - 0.7)
            clicked_mask = opened_mask & (rng.random(len(rec)) < _sigmoid(engagement - 1.0))
            sent_ts = (
                np.datetime64(day0)
                + np.timedelta64(9, "h")
                + rng.integers(0, 3600, len(rec)).astype("timedelta64[s]")
            )
            open_ts = sent_ts + rng.integers(600, 2 * 86_400, len(rec)).astype("timedelta64[s]")
            click_ts = open_ts + rng.integers(5, 600, len(rec)).astype("timedelta64[s]")
            cust = state["customer_id"].to_numpy()[rec]
            campaign = f"weekly-{(meta.start + timedelta(days=t)).isoformat()}"
            marketing = pl.concat(
                [
                    pl.DataFrame({"customer_id": cust, "event_type": "sent", "event_ts": sent_ts}),
                    pl.DataFrame(
                        {
                            "customer_id": cust[opened_mask],
                            "event_type": "open",
                            "event_ts": open_ts[opened_mask],
                        }
                    ),
                    pl.DataFrame(
                        {
                            "customer_id": cust[clicked_mask],
                            "event_type": "click",
                            "event_ts": click_ts[clicked_mask],
                        }
                    ),
                ]
            ).with_columns(pl.lit(campaign).alias("campaign"), pl.col("event_ts").cast(pl.Datetime("us")))
            marketing = marketing.select("customer_id", "campaign", "event_type", "event_ts")

        state = state.with_columns(alive=pl.Series(alive), churn_day=pl.Series(churn_day))
        return txn, tickets, marketing, state


def _dirty(rng, txn: pl.DataFrame, share: float) -> pl.DataFrame:
    """Break a few rows the way upstream systems do: negative amounts, replayed ids, unknown customers, and
    clock-skewed timestamps a year ahead. The platform must quarantine each of them."""
    k = int(rng.binomial(txn.height, share)) if txn.height and share > 0 else 0
    if k == 0:
        return txn
    rows = rng.choice(txn.height, size=k, replace=False)
    kinds = rng.integers(0, 4, k)
    broken = []
    for row, kind in zip(rows, kinds, strict=True):
        r = txn.row(int(row), named=True)
        if kind == 0:
            r["amount"] = -abs(r["amount"])
        elif kind == 1:
            broken.append(dict(r))  # a replayed copy with the same transaction_id
            continue
        elif kind == 2:
            r["customer_id"] = 10**9 + int(r["customer_id"])
        else:
            r["event_ts"] = r["event_ts"] + timedelta(days=400)
        txn = txn.with_columns(
            pl.when(pl.col("transaction_id") == r["transaction_id"])
            .then(pl.lit(r[c], dtype=txn.schema[c]))
            .otherwise(pl.col(c))
            .alias(c)
            for c in ("amount", "customer_id", "event_ts")
        )
    if broken:
        txn = pl.concat([txn, pl.DataFrame(broken, schema=txn.schema)])
    return txn


def true_churn_probability(home: Path, warehouse, snapshot: date) -> pl.DataFrame:
    """Bayes-optimal P(no transaction in [snapshot, snapshot + 30 days)) for each customer who bought in the
    ``ACTIVE_DAYS`` before ``snapshot``, given the generator's latent parameters and the observed history.

    The only thing the generator does not reveal is whether a customer is still alive; that is inferred
    from the days since their last activity (purchase or ticket), which is exactly what a model can see.
    """
    gen = Generator(home, warehouse, None)  # type: ignore[arg-type]
    meta, state = gen.load()
    d = (snapshot - meta.start).days
    start_ts = datetime.combine(snapshot - timedelta(days=ACTIVE_DAYS), datetime.min.time())
    snap_ts = datetime.combine(snapshot, datetime.min.time())
    last = warehouse.query(
        """
        with activity as (
            select customer_id, event_ts as ts from transactions where event_ts >= ? and event_ts < ?
            union all
            select customer_id, opened_ts from support_tickets where opened_ts < ?
        ), buyers as (
            select distinct customer_id from transactions where event_ts >= ? and event_ts < ?
        )
        select a.customer_id, max(a.ts) as last_ts
        from activity a join buyers b using (customer_id) group by a.customer_id
        """,
        [start_ts, snap_ts, snap_ts, start_ts, snap_ts],
    )
    frame = last.join(state, on="customer_id", how="inner").sort("customer_id")
    last_day = np.array([(ts.date() - meta.start).days for ts in frame["last_ts"]])
    cols = {c: frame[c].to_numpy() for c in ("rate0", "decay_rate", "decay_start", "friction", "engagement")}
    cols["plan"] = frame["plan"].to_list()

    past = last_day[:, None] + 1 + np.arange(ACTIVE_DAYS + 1)[None, :]  # days tau+1 .. d-1 at most
    in_gap = past < d  # only days tau+1 .. d-1 count
    h_past = hazard(cols, past)
    quiet = (1 - h_past) * np.exp(-(activity_rate(cols, past) + ticket_rate(cols)[:, None]))
    quiet = np.where(in_gap, quiet, 1.0)
    survive_prefix = np.cumprod(np.concatenate([np.ones((len(frame), 1)), quiet[:, :-1]], axis=1), axis=1)
    w_churned = np.where(in_gap, survive_prefix * h_past, 0.0).sum(axis=1)
    w_alive = np.prod(quiet, axis=1)

    future = d + np.arange(LABEL_HORIZON_DAYS)[None, :].repeat(len(frame), axis=0)
    h_f = hazard(cols, future)
    step = (1 - h_f) * np.exp(-activity_rate(cols, future))
    prefix = np.cumprod(np.concatenate([np.ones((len(frame), 1)), step[:, :-1]], axis=1), axis=1)
    no_buy_if_alive = (prefix * h_f).sum(axis=1) + np.prod(step, axis=1)
    p = (w_churned + w_alive * no_buy_if_alive) / (w_churned + w_alive)
    return pl.DataFrame({"customer_id": frame["customer_id"], "true_churn_probability": p})
