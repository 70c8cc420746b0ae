"""The warehouse's one write primitive, ``replace_window``, on a real DuckDB file and (marked hybrid) on the
PostgreSQL of `make services`: a window replaces only its days and its share of platform.quarantine,
``publish`` is the unbounded window, a failed write leaves the last good state, and the platform's DDL runs
once per client."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import polars as pl
import pytest

from core.days import as_of, day_key
from resources.warehouse import (
    NO_ARRIVAL_DAY,
    PLATFORM_DDL,
    PLATFORM_SCHEMA,
    QUARANTINE_DDL,
    QUARANTINE_MIGRATION,
    QUARANTINE_TABLE,
    SCHEMA_DDL,
    DuckDBWarehouse,
    PostgresWarehouse,
    Warehouse,
    Window,
)

TABLE = "events"
NAME = f"{PLATFORM_SCHEMA}.{TABLE}"
DAYS = [date(2024, 3, 1) + timedelta(days=i) for i in range(5)]


@pytest.fixture(scope="module")
def postgres_dsn():
    """A database of its own on the services' PostgreSQL, the way tests/test_hybrid.py makes one."""
    from tests.services import private_database, services, with_db

    with private_database("warehouse_t") as database:
        yield with_db(services()["HYBRID_ONPREM_DSN"], database)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.hybrid)])
def backend(request, tmp_path):
    """A function that makes a new client of one empty warehouse (each test starts without the platform
    schema)."""
    if request.param == "duckdb":
        path = tmp_path / "warehouse.duckdb"
        return lambda: DuckDBWarehouse(path)
    dsn = request.getfixturevalue("postgres_dsn")
    PostgresWarehouse(dsn).execute(f"drop schema if exists {PLATFORM_SCHEMA} cascade")
    return lambda: PostgresWarehouse(dsn)


def _rows(days: list[date], tag: str) -> pl.DataFrame:
    """One row per day at noon; ``amount`` is DECIMAL like the platform's money columns."""
    return pl.DataFrame(
        {
            "event_ts": [datetime.combine(d, time(12)) for d in days],
            "amount": [Decimal(f"{i}.25") for i in range(len(days))],
            "tag": [tag] * len(days),
        },
        schema={"event_ts": pl.Datetime("us"), "amount": pl.Decimal(12, 2), "tag": pl.String},
    )


def _quarantined(source: str, keys: list[str], run_id: str) -> pl.DataFrame:
    """Quarantine rows in the table's column order and types (hybrid_assets/onprem/rows.py makes them)."""
    n = len(keys)
    frame = pl.DataFrame(
        {
            "source_table": [source] * n,
            "row_key": [f"{run_id}-{i}" for i in range(n)],
            "reason": ["bad"] * n,
            "row_json": ["{}"] * n,
            "detected_at": [datetime(2024, 3, 9)] * n,
            "run_id": [run_id] * n,
            "partition_key": keys,
        }
    )
    # typed even when empty, where Polars would infer Null
    return frame.with_columns(
        pl.exclude("detected_at").cast(pl.String), pl.col("detected_at").cast(pl.Datetime("us"))
    )


def _window(first: date, last: date) -> Window:
    """The window of a daily partition range, as hybrid_assets.onprem.rows.read_window makes it."""
    return Window("event_ts", as_of(first), as_of(last) + timedelta(days=1), day_key(first), day_key(last))


def _table(wh, name: str = NAME) -> list[tuple]:
    return sorted(wh.query(f"select event_ts, amount, tag from {name}").iter_rows())


def _quarantine(wh, source: str = TABLE) -> list[tuple]:
    rows = wh.query(f"select partition_key, run_id from {QUARANTINE_TABLE} where source_table = ?", [source])
    return sorted(rows.iter_rows())


def _write_first_state(wh) -> None:
    """Every day of DAYS from run ``first`` (with a quarantined row per day and one without an arrival day),
    and another table's quarantined rows that no write of ``events`` may touch."""
    keys = [day_key(d) for d in DAYS] + [NO_ARRIVAL_DAY]
    wh.replace_window(
        NAME, _rows(DAYS, "first"), _window(DAYS[0], DAYS[-1]), _quarantined(TABLE, keys, "first")
    )
    wh.publish("other", _rows(DAYS[:1], "other"), _quarantined("other", [day_key(DAYS[0])], "other"))


def test_both_backends_satisfy_the_warehouse_protocol(tmp_path):
    assert isinstance(DuckDBWarehouse(tmp_path / "w.duckdb"), Warehouse)
    assert isinstance(PostgresWarehouse("postgresql://user:secret@localhost:5432/db"), Warehouse)


def test_a_window_replaces_only_its_days_and_their_share_of_the_quarantine(backend):
    wh = backend()
    _write_first_state(wh)
    inside = DAYS[1:3]
    quarantined = _quarantined(TABLE, [day_key(d) for d in inside] + [NO_ARRIVAL_DAY], "second")
    wh.replace_window(NAME, _rows(inside, "second"), _window(inside[0], inside[-1]), quarantined)

    first, second = _rows(DAYS, "first"), _rows(inside, "second")
    outside = first.filter(~pl.col("event_ts").dt.date().is_in(inside))
    assert _table(wh) == sorted([*outside.iter_rows(), *second.iter_rows()])
    assert _quarantine(wh) == sorted(
        [(day_key(d), "first") for d in DAYS if d not in inside]
        + [(day_key(d), "second") for d in inside]
        + [(NO_ARRIVAL_DAY, "second")]  # no day owns them: every run rewrites them
    )
    assert _quarantine(wh, "other") == [(day_key(DAYS[0]), "other")]

    # the same window again replaces it, never duplicates it
    wh.replace_window(NAME, _rows(inside, "second"), _window(inside[0], inside[-1]), quarantined)
    assert len(_table(wh)) == len(DAYS)
    assert len(_quarantine(wh)) == len(DAYS) + 1


def test_a_window_without_quarantined_rows_leaves_the_quarantine_alone(backend):
    wh = backend()
    _write_first_state(wh)
    before = _quarantine(wh)
    wh.replace_window(NAME, _rows(DAYS[:1], "second"), _window(DAYS[0], DAYS[0]))
    assert _quarantine(wh) == before
    assert [tag for _, _, tag in _table(wh)] == ["second"] + ["first"] * (len(DAYS) - 1)


def test_publish_is_the_unbounded_window(backend):
    wh = backend()
    _write_first_state(wh)
    # a new shape (one column more) and fewer rows: the whole table becomes the frame
    accepted = _rows(DAYS[:2], "published").with_columns(extra=pl.lit("x"))
    wh.publish(TABLE, accepted, _quarantined(TABLE, [day_key(DAYS[0])], "published"))

    # rows rather than frames: PostgreSQL's NUMERIC comes back with another precision, the same values
    assert wh.query(f"select * from {NAME} order by event_ts").rows() == accepted.rows()
    assert list(wh.columns(TABLE, PLATFORM_SCHEMA)) == ["event_ts", "amount", "tag", "extra"]
    assert _quarantine(wh) == [(day_key(DAYS[0]), "published")]  # all of the table's quarantined rows
    assert _quarantine(wh, "other") == [(day_key(DAYS[0]), "other")]

    # publish(table, ...) is replace_window(platform.<table>, ..., Window.everything(), ...)
    twin = f"{PLATFORM_SCHEMA}.twin"
    wh.replace_window(
        twin, accepted, Window.everything(), _quarantined("twin", [day_key(DAYS[0])], "published")
    )
    assert wh.query(f"select * from {twin} order by event_ts").rows() == accepted.rows()
    assert _quarantine(wh, "twin") == _quarantine(wh)

    # without quarantined rows it leaves the quarantine alone
    wh.publish(TABLE, _rows(DAYS, "again"))
    assert _table(wh) == sorted(_rows(DAYS, "again").iter_rows())
    assert _quarantine(wh) == [(day_key(DAYS[0]), "published")]


def test_a_frame_that_cannot_be_inserted_leaves_the_last_good_rows(backend):
    wh = backend()
    _write_first_state(wh)
    before, quarantine_before = _table(wh), _quarantine(wh)
    # text where the table has timestamps: the insert fails after the window's rows were deleted
    bad = pl.DataFrame({"event_ts": ["not a time"], "amount": [Decimal("1.00")], "tag": ["bad"]})
    with pytest.raises(Exception):  # noqa: B017 (each backend's driver raises its own type)
        wh.replace_window(
            NAME, bad, _window(DAYS[1], DAYS[1]), _quarantined(TABLE, [day_key(DAYS[1])], "bad")
        )
    assert _table(wh) == before
    assert _quarantine(wh) == quarantine_before


@pytest.mark.parametrize("write", ["window", "publish"])
def test_a_failure_mid_transaction_rolls_back_rows_and_quarantine(backend, monkeypatch, write):
    wh = backend()
    _write_first_state(wh)
    before, quarantine_before = _table(wh), _quarantine(wh)
    insert = wh._insert

    def failing(con, name, frame):
        if name == QUARANTINE_TABLE:  # after the table's rows and the old quarantined rows are gone
            raise RuntimeError("injected")
        insert(con, name, frame)

    monkeypatch.setattr(wh, "_insert", failing)
    quarantined = _quarantined(TABLE, [day_key(DAYS[1])], "failed")
    with pytest.raises(RuntimeError, match="injected"):
        if write == "window":
            wh.replace_window(NAME, _rows(DAYS[1:2], "failed"), _window(DAYS[1], DAYS[1]), quarantined)
        else:
            wh.publish(TABLE, _rows(DAYS[:1], "failed").drop("amount"), quarantined)
    assert _table(wh) == before
    assert list(wh.columns(TABLE, PLATFORM_SCHEMA)) == ["event_ts", "amount", "tag"]
    assert _quarantine(wh) == quarantine_before


def _count_platform_ddl(wh, monkeypatch) -> list[str]:
    ran: list[str] = []
    statement = wh._statement

    def counting(con, sql, params=None):
        if sql in PLATFORM_DDL:
            ran.append(sql)
        statement(con, sql, params)

    monkeypatch.setattr(wh, "_statement", counting)
    return ran


def test_the_platform_ddl_runs_once_per_client(backend, monkeypatch):
    wh = backend()
    ran = _count_platform_ddl(wh, monkeypatch)
    _write_first_state(wh)  # a window and a publish
    wh.replace_window(NAME, _rows(DAYS[:1], "again"), _window(DAYS[0], DAYS[0]))
    wh.replace_tables({f"{PLATFORM_SCHEMA}.labels": _rows(DAYS, "labels")})
    wh.publish(TABLE, _rows(DAYS, "again"), _quarantined(TABLE, [], "again"))
    assert ran == [SCHEMA_DDL, QUARANTINE_DDL, QUARANTINE_MIGRATION]

    # a new client does not know what another one did: it ensures the platform again, once
    other = backend()
    ran_by_other = _count_platform_ddl(other, monkeypatch)
    other.publish(TABLE, _rows(DAYS, "other"), _quarantined(TABLE, [], "other"))
    other.publish(TABLE, _rows(DAYS, "other"), _quarantined(TABLE, [], "other"))
    assert ran_by_other == [SCHEMA_DDL, QUARANTINE_DDL, QUARANTINE_MIGRATION]


def test_replace_tables_creates_the_schema_but_no_quarantine_table(backend, monkeypatch):
    wh = backend()
    ran = _count_platform_ddl(wh, monkeypatch)
    wh.replace_tables(
        {f"{PLATFORM_SCHEMA}.a": _rows(DAYS[:2], "a"), f"{PLATFORM_SCHEMA}.b": _rows(DAYS, "b")}
    )
    assert _table(wh, f"{PLATFORM_SCHEMA}.a") == sorted(_rows(DAYS[:2], "a").iter_rows())
    assert _table(wh, f"{PLATFORM_SCHEMA}.b") == sorted(_rows(DAYS, "b").iter_rows())
    assert not wh.table_exists(
        "quarantine", PLATFORM_SCHEMA
    )  # `hybrid quarantine`: "no quarantine table yet"
    wh.replace_tables({f"{PLATFORM_SCHEMA}.a": _rows(DAYS[:1], "a2")})
    assert _table(wh, f"{PLATFORM_SCHEMA}.a") == sorted(_rows(DAYS[:1], "a2").iter_rows())
    wh.publish(TABLE, _rows(DAYS, "first"), _quarantined(TABLE, [], "first"))
    assert ran == [SCHEMA_DDL, QUARANTINE_DDL, QUARANTINE_MIGRATION]


def test_a_failed_first_write_leaves_the_platform_ddl_to_the_next_one(backend, monkeypatch):
    """In PostgreSQL the DDL is part of the write's transaction, so a rolled-back write takes it back too."""
    wh = backend()
    ran = _count_platform_ddl(wh, monkeypatch)
    insert = wh._insert

    def failing(con, name, frame):
        raise RuntimeError("injected")

    monkeypatch.setattr(wh, "_insert", failing)
    with pytest.raises(RuntimeError, match="injected"):
        wh.publish(TABLE, _rows(DAYS, "failed"), _quarantined(TABLE, [], "failed"))
    monkeypatch.setattr(wh, "_insert", insert)
    wh.publish(TABLE, _rows(DAYS, "first"), _quarantined(TABLE, [day_key(DAYS[0])], "first"))
    assert ran == [SCHEMA_DDL, QUARANTINE_DDL, QUARANTINE_MIGRATION] * 2
    assert _quarantine(wh) == [(day_key(DAYS[0]), "first")]


def test_a_quarantine_table_from_before_partitions_gets_its_partition_key(backend):
    wh = backend()
    wh.execute(f"create schema if not exists {PLATFORM_SCHEMA}")
    wh.execute(
        f"create table {QUARANTINE_TABLE} (source_table VARCHAR, row_key VARCHAR, reason VARCHAR, "
        "row_json VARCHAR, detected_at TIMESTAMP, run_id VARCHAR)"
    )
    wh.replace_window(
        NAME,
        _rows(DAYS, "first"),
        _window(DAYS[0], DAYS[-1]),
        _quarantined(TABLE, [day_key(DAYS[2])], "first"),
    )
    assert list(wh.columns("quarantine", PLATFORM_SCHEMA))[-1] == "partition_key"
    assert _quarantine(wh) == [(day_key(DAYS[2]), "first")]
