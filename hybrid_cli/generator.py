"""Deterministic synthetic data for the churn case, with a planted churn signal and its ground truth.

The world is simulated day by day. Day ``t`` draws from ``numpy.random.default_rng([seed, t])`` and the
per-customer state (alive or churned) is carried over in ``$HYBRID_HOME/generator/<profile>/``, so generating
180 days and then appending 5 gives exactly the same rows as generating 185 days at once. Each profile keeps
its own state, next to its own warehouse and object store; a create or append is all or nothing
(:class:`Generator`).

The planted signal, all of it known to :func:`true_churn_probability`:
- each customer buys at a daily rate that may *decay* from some day on (activity decay),
- a daily churn hazard that rises as the rate decays, with support *friction* (which also drives tickets
  and their severity), falls with marketing *engagement* (which drives opens and clicks), and depends on plan,
- transactions and tickets only happen while a customer is alive; opens/clicks depend on engagement only.

Label: a customer churned at snapshot ``d`` if they have no transaction in ``[d, d + 30 days)``.
"""

from __future__ import annotations

import json
import numbers
import os
import re
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from core.catalog import ACTIVE_DAYS, LABEL_HORIZON_DAYS
from core.contracts import CATEGORIES, CHANNELS, CUSTOMERS, PLANS, REGIONS, SEVERITIES
from hybrid_assets.cloud.marketing import MARKETING_PREFIX
from resources.object_store import ObjectStore

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
    # the state file (customer latents) this meta belongs to, next to it; homes from before it have this name
    state_file: str = "customers_latent.parquet"

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


class GeneratorStateError(RuntimeError):
    """The active profile's warehouse and the generator's state disagree, or another process is writing them;
    the message says what to do."""


STATE_PREFIX = "customers_latent"
# marketing files the generator writes: days-<first day>-<last day>.parquet (day numbers from the start date)
MARKETING_KEY = re.compile(re.escape(MARKETING_PREFIX) + r"days-\d{5}-\d{5}\.parquet")


def _profile_of(warehouse) -> str:
    from resources.warehouse import PostgresWarehouse

    return "hybrid" if isinstance(warehouse, PostgresWarehouse) else "embedded"


def _read_meta(path: Path) -> GeneratorMeta:
    return GeneratorMeta(**json.loads(path.read_text()))


def _write_json(path: Path, payload: dict) -> None:
    """Write aside, then rename: a reader (or a process killed half-way) sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(path)


def check_sizes(**values: int) -> None:
    """``customers`` and ``days`` must be whole numbers of 1 or more, ``seed`` of 0 or more."""
    for name, value in values.items():
        low = 0 if name == "seed" else 1
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be a whole number of {low} or more, not {value!r}")


def _initial(
    n_customers: int, seed: int, start: date, dirty_share: float
) -> tuple[GeneratorMeta, pl.DataFrame]:
    """The world on the day before the first generated day: the customers who signed up before it."""
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
    return meta, state


@dataclass
class _Batch:
    """What one create or append writes, computed in memory before anything is written."""

    first_day: int
    customers: pl.DataFrame  # customer rows (with PII) new in this batch
    transactions: pl.DataFrame
    support: pl.DataFrame
    marketing: pl.DataFrame | None


@contextmanager
def undo_new_paths(
    home: Path,
    names=(
        "onprem.duckdb",
        "onprem.duckdb.wal",
        "object_store",
        "generator",
        "generator/embedded",
        "generator/hybrid",
    ),
):
    """On an error inside the block, remove what the block created in ``home`` among ``names`` (the
    generator's files and folders), or ``home`` itself if it did not exist: a failed first `hybrid generate`
    leaves the home as it found it. (The data the block wrote is undone by the generator itself.)"""
    home = Path(home)
    existed = home.exists()
    before = {name for name in names if (home / name).exists()}
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(home, ignore_errors=True)
        else:
            for name in set(names) - before:
                path = home / name
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise


class Generator:
    """Writes the synthetic source tables into the active profile's warehouse and the marketing files into its
    object store, and keeps the simulation's state under ``$HYBRID_HOME/generator/<profile>/``.

    *Whether data exists* is asked of the warehouse: the three source tables present with this profile's
    state -> it exists; absent -> :meth:`create` writes them; present without state -> :meth:`create` refuses
    them (someone else's data). So one home can switch between profiles both ways.

    *All or nothing*: everything a create or append writes is computed first; then a journal
    (``pending.json``) records what is about to be written (the tables it creates, or the id ranges it
    appends, and the marketing object), the writes happen, and the state is saved last (``meta.json``,
    replaced atomically, names the new state file: that rename is the commit). An error undoes the writes
    from the journal at once; a killed process leaves the journal, and the next command undoes it first.
    """

    def __init__(self, home: Path, warehouse, store: ObjectStore, profile: str | None = None):
        self.home = Path(home)
        self.warehouse = warehouse
        self.store = store
        self.profile = profile or _profile_of(warehouse)
        self.dir = self.home / "generator" / self.profile
        # homes from before per-profile state kept one state for every profile here
        self.legacy_dir = self.home / "generator"

    # -- state ------------------------------------------------------------------------------------
    @property
    def meta_path(self) -> Path:
        return self.dir / "meta.json"

    @property
    def journal_path(self) -> Path:
        return self.dir / "pending.json"

    def tables(self) -> list[str]:
        """The generator's source tables present in the active warehouse."""
        return [t for t in DDL if self.warehouse.table_exists(t)]

    def _holds(self, meta: GeneratorMeta) -> bool:
        """Do the warehouse's source tables end where ``meta`` says the generator stopped?"""
        if len(self.tables()) != len(DDL):
            return False
        last_txn = self.warehouse.scalar("select max(transaction_id) from transactions")
        last_ticket = self.warehouse.scalar("select max(ticket_id) from support_tickets")
        return (last_txn or 0) == meta.next_transaction_id - 1 and (
            last_ticket or 0
        ) == meta.next_ticket_id - 1

    def _state_dir(self) -> Path | None:
        """This profile's state folder; for a home from before per-profile state, the shared folder if the
        active warehouse holds the data it describes; None if there is no state for this profile."""
        if self.meta_path.exists():
            return self.dir
        legacy = self.legacy_dir / "meta.json"
        if legacy.exists() and self._holds(_read_meta(legacy)):
            return self.legacy_dir
        return None

    def exists(self) -> bool:
        """Does the active profile hold synthetic data: the source tables in its warehouse, with this profile's
        state for them? Finishes undoing an interrupted create or append first."""
        if self.journal_path.exists():
            with self._lock():
                self._recover()
        return len(self.tables()) == len(DDL) and self._state_dir() is not None

    def load(self) -> tuple[GeneratorMeta, pl.DataFrame]:
        where = self._state_dir()
        if where is None:
            raise GeneratorStateError(
                f"no synthetic data for the {self.profile} profile in {self.home}: run `hybrid generate` first"
            )
        meta = _read_meta(where / "meta.json")
        return meta, pl.read_parquet(where / meta.state_file)

    def _save(self, meta: GeneratorMeta, state: pl.DataFrame) -> None:
        """The commit: the state goes to a new file, then meta.json (naming it) replaces the old one at once."""
        target = self.dir / meta.state_file
        tmp = target.with_name(f".{target.name}.tmp")
        state.write_parquet(tmp)
        tmp.replace(target)
        _write_json(self.meta_path, asdict(meta))

    def _prune(self, keep: str) -> None:
        for path in self.dir.iterdir():
            stale_state = path.name.startswith(STATE_PREFIX) and path.name != keep
            if stale_state or ".tmp" in path.name:
                path.unlink(missing_ok=True)

    @contextmanager
    def _lock(self):
        """One writer per profile and home; a second one is told, not made to wait or to undo the first's work."""
        import fcntl

        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise GeneratorStateError(
                    f"another process is writing the {self.profile} profile's synthetic data of {self.home}; "
                    "try again when it has finished"
                ) from None
            yield

    def _rollback(self, journal: dict) -> None:
        """Undo what the journal's create or append may have written (each step is harmless if not done)."""
        if journal.get("marketing_key"):
            self.store.delete(journal["marketing_key"])
        present = set(self.tables())
        if journal["created_tables"]:
            for table in journal["created_tables"]:
                if table in present:
                    self.warehouse.execute(f"drop table {table}")
        else:
            for table, (column, low, high) in journal["ranges"].items():
                if high > low and table in present:
                    self.warehouse.execute(
                        f"delete from {table} where {column} >= ? and {column} < ?", [low, high]
                    )
        (self.dir / journal["commits"]).unlink(missing_ok=True)
        self.journal_path.unlink(missing_ok=True)

    def _recover(self) -> None:
        """A journal left by a killed create or append: undo its writes, unless it had committed."""
        if not self.journal_path.exists():
            return
        journal = json.loads(self.journal_path.read_text())
        if self.meta_path.exists() and _read_meta(self.meta_path).state_file == journal["commits"]:
            self.journal_path.unlink()  # killed after the commit: nothing to undo
            return
        self._rollback(journal)

    # -- generation -------------------------------------------------------------------------------
    def create(
        self,
        n_customers: int = 20_000,
        days: int = 180,
        seed: int = 7,
        start: date = date(2026, 4, 1),
        dirty_share: float = 0.0005,
    ):
        check_sizes(customers=n_customers, days=days, seed=seed)
        with self._lock():
            self._recover()
            present = self.tables()
            if len(present) == len(DDL) and self._state_dir() is not None:
                raise GeneratorStateError(
                    f"synthetic data already exists in the {self.warehouse.describe()}; "
                    "append with `hybrid generate --days N`"
                )
            if present:
                raise GeneratorStateError(
                    f"{self.warehouse.describe()} already holds source tables ({', '.join(present)}) that the "
                    f"generator did not write (no state for them under {self.dir}); drop them or use another "
                    "warehouse"
                )
            before, state = _initial(n_customers, seed, start, dirty_share)
            initial_customers = state.select(list(CUSTOMERS.columns))
            meta = replace(before)
            state, batch = self._simulate(meta, state, days)
            batch.customers = pl.concat([initial_customers, batch.customers])
            self._commit(before, meta, state, batch, create=True)
            return self._report(meta, batch)

    def append(self, days: int = 1):
        check_sizes(days=days)
        with self._lock():
            self._recover()
            if len(self.tables()) != len(DDL):
                raise GeneratorStateError(
                    f"the {self.warehouse.describe()} has no synthetic source tables to append to: "
                    "run `hybrid generate` first"
                )
            meta, state = self.load()
            before = replace(meta)
            state, batch = self._simulate(meta, state, days)
            self._commit(before, meta, state, batch, create=False)
            return self._report(meta, batch)

    def marketing_missing(self) -> bool:
        """The object store has none of the marketing files (moto_server keeps its objects in memory, so a
        restart empties the bucket while PostgreSQL keeps the source tables)."""
        return not any(MARKETING_KEY.fullmatch(key) for key in self.store.list(MARKETING_PREFIX))

    def restore_marketing(self) -> dict:
        """Write the marketing files again by replaying the simulation from its seed (it is deterministic: the
        same rows as the files that were lost, in one file)."""
        with self._lock():
            meta, _ = self.load()
            replay, state = _initial(meta.n_customers, meta.seed, meta.start, meta.dirty_share)
            _, batch = self._simulate(replay, state, meta.days_generated)
            if (replay.next_transaction_id, replay.next_customer_id) != (
                meta.next_transaction_id,
                meta.next_customer_id,
            ):
                raise GeneratorStateError(
                    f"replaying the generator's state under {self.dir} does not give the data in the "
                    f"{self.warehouse.describe()}; the marketing files cannot be restored"
                )
            key = f"{MARKETING_PREFIX}days-00000-{meta.days_generated - 1:05d}.parquet"
            if batch.marketing is not None:
                self.store.write_parquet(key, batch.marketing)
            return {"marketing_events": 0 if batch.marketing is None else batch.marketing.height, "key": key}

    def _commit(
        self, before: GeneratorMeta, meta: GeneratorMeta, state: pl.DataFrame, batch: _Batch, create: bool
    ) -> None:
        """Write a computed batch all or nothing (see the class docstring)."""
        key = None
        if batch.marketing is not None:
            key = f"{MARKETING_PREFIX}days-{batch.first_day:05d}-{meta.days_generated - 1:05d}.parquet"
        meta.state_file = f"{STATE_PREFIX}-{uuid.uuid4().hex[:12]}.parquet"
        journal = {
            "commits": meta.state_file,
            "created_tables": list(DDL) if create else [],
            "ranges": {
                "customers": ["customer_id", before.next_customer_id, meta.next_customer_id],
                "transactions": ["transaction_id", before.next_transaction_id, meta.next_transaction_id],
                "support_tickets": ["ticket_id", before.next_ticket_id, meta.next_ticket_id],
            },
            "marketing_key": key,
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        _write_json(self.journal_path, journal)
        try:
            if create:
                for ddl in DDL.values():
                    self.warehouse.execute(ddl)
            if batch.customers.height:
                self.warehouse.append("customers", batch.customers.select(list(CUSTOMERS.columns)))
            self.warehouse.append("transactions", batch.transactions)
            self.warehouse.append("support_tickets", batch.support)
            if key:
                self.store.write_parquet(key, batch.marketing)
            if create:  # files of data that is no longer in the warehouse
                for old in self.store.list(MARKETING_PREFIX):
                    if old != key and MARKETING_KEY.fullmatch(old):
                        self.store.delete(old)
            self._save(meta, state)
        except BaseException as exc:
            try:
                self._rollback(journal)
            except Exception as again:
                exc.add_note(
                    f"undoing the partial write failed too ({again}); the next `hybrid generate` or "
                    f"`hybrid demo` undoes it (journal {self.journal_path})"
                )
            raise
        self.journal_path.unlink()
        self._prune(keep=meta.state_file)

    def _simulate(self, meta: GeneratorMeta, state: pl.DataFrame, days: int) -> tuple[pl.DataFrame, _Batch]:
        """Advance the world ``days`` days in memory (``meta``'s counters move on); nothing is written."""
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
        customers = (
            pl.concat(new_customers).select(list(CUSTOMERS.columns))
            if new_customers
            else state.head(0).select(list(CUSTOMERS.columns))
        )
        return state, _Batch(
            first_day=first_day,
            customers=customers,
            transactions=pl.concat(txns),
            support=pl.concat(tickets),
            marketing=pl.concat(marketing) if marketing else None,
        )

    def _report(self, meta: GeneratorMeta, batch: _Batch) -> dict:
        return {
            "days": meta.days_generated - batch.first_day,
            "first_date": (meta.start + timedelta(days=batch.first_day)).isoformat(),
            "last_date": (meta.start + timedelta(days=meta.days_generated - 1)).isoformat(),
            "new_customers": batch.customers.height,
            "transactions": batch.transactions.height,
            "support_tickets": batch.support.height,
            "marketing_events": 0 if batch.marketing is None else batch.marketing.height,
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
