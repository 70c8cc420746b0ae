"""`hybrid sources check` and `hybrid import`, as a user runs them (the CLI in a subprocess, on a real DuckDB
warehouse): a generated warehouse passes, a missing table, a missing column, an unexpected one and a wrong type
are each one line naming the table and the column with a non-zero exit, and a CSV export of the source tables
imported back passes the same check (the contract's types are applied)."""

import os
import subprocess
import sys
import warnings
from datetime import date, datetime, timedelta

import polars as pl
import pytest

from core.contracts import CONTRACTS
from tests.conftest import Platform, build_platform, hybrid_env


def _hybrid(home, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYBRID_HOME": str(home), "HYBRID_PROFILE": "embedded", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hybrid_cli.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return build_platform(tmp_path_factory.mktemp("sources"), customers=150, days=100, run=False)


def test_a_generated_warehouse_matches_every_contract(generated):
    result = _hybrid(generated.home, "sources", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    for table in CONTRACTS:
        assert f"ok  {table}: {len(CONTRACTS[table].columns)} columns" in result.stdout
    assert "!!" not in result.stdout


def test_each_problem_is_one_line_naming_the_table_and_column_and_the_exit_is_non_zero(generated, tmp_path):
    wh = generated.warehouse()
    home = tmp_path / "broken"
    home.mkdir()
    (home / "onprem.duckdb").write_bytes((generated.home / "onprem.duckdb").read_bytes())
    from resources.warehouse import DuckDBWarehouse

    broken = DuckDBWarehouse(home / "onprem.duckdb")
    broken.execute("drop table support_tickets")
    broken.execute("alter table transactions rename column channel to sales_channel")
    broken.execute("alter table transactions alter column amount type varchar")
    result = _hybrid(home, "sources", "check")
    assert result.returncode == 1, result.stdout + result.stderr
    problems = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("!!")]
    assert problems == [
        "!!  transactions.amount: type VARCHAR, expected DECIMAL (DECIMAL or NUMERIC)",
        "!!  transactions.channel: column missing (expected VARCHAR)",
        "!!  support_tickets: table not found in the warehouse",
    ], result.stdout
    assert "ok  customers" in result.stdout
    assert "Traceback" not in result.stderr
    assert wh.scalar("select count(*) from support_tickets") > 0  # the original home is untouched


def test_csv_files_imported_into_an_empty_warehouse_pass_the_check_with_every_row(generated, tmp_path):
    wh = generated.warehouse()
    home = tmp_path / "imported"
    home.mkdir()
    for table in CONTRACTS:
        frame = wh.query(f"select * from {table}")
        frame.write_csv(tmp_path / f"{table}.csv")
        result = _hybrid(home, "import", table, str(tmp_path / f"{table}.csv"))
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{frame.height} rows of" in result.stdout
    check = _hybrid(home, "sources", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    from resources.warehouse import DuckDBWarehouse

    imported = DuckDBWarehouse(home / "onprem.duckdb", read_only=True)
    for table, contract in CONTRACTS.items():
        original = wh.query(f"select * from {table} order by {contract.key}")
        again = imported.query(f"select * from {table} order by {contract.key}")
        assert again.equals(original), table  # every row and value, in the contract's types
    del imported  # (read-only connection closed before the run writes)
    import dagster as dg

    from core.settings import load_settings

    with hybrid_env(home):
        settings = load_settings()
    onprem = Platform(home, settings, dg.DagsterInstance.ephemeral()).run("onprem")
    assert onprem.success, onprem.step_failures  # the on-prem location runs on the imported tables
    assert onprem.checks and all(c.status != "FAIL" for c in onprem.checks)


def test_an_import_that_cannot_complete_says_why_and_changes_nothing(generated, tmp_path):
    wh = generated.warehouse()
    home = tmp_path / "home"
    home.mkdir()
    customers = wh.query("select * from customers")
    customers.write_parquet(tmp_path / "customers.parquet")
    assert _hybrid(home, "import", "customers", str(tmp_path / "customers.parquet")).returncode == 0

    again = _hybrid(home, "import", "customers", str(tmp_path / "customers.parquet"))
    assert (
        again.returncode == 1
        and "table customers already exists: --replace it or --append to it" in again.stderr
    )

    bad = customers.head(3).with_columns(signup_date=pl.lit("not a date"))
    bad.write_csv(tmp_path / "bad.csv")
    result = _hybrid(home, "import", "customers", str(tmp_path / "bad.csv"), "--replace")
    assert result.returncode == 1 and "does not convert to the type of customers's contract" in result.stderr

    extra = customers.head(3).with_columns(loyalty=pl.lit(1))
    extra.write_parquet(tmp_path / "extra.parquet")
    result = _hybrid(home, "import", "customers", str(tmp_path / "extra.parquet"), "--append")
    assert result.returncode == 1 and "column(s) loyalty not in table customers" in result.stderr

    for args, message in (
        (("import", "customers", str(tmp_path / "missing.csv")), "no such file"),
        (("import", "1customers", str(tmp_path / "customers.parquet")), "is not a table name"),
    ):
        result = _hybrid(home, *args)
        assert result.returncode == 1 and message in result.stderr, result.stderr
    from resources.warehouse import DuckDBWarehouse

    kept = DuckDBWarehouse(home / "onprem.duckdb", read_only=True).query("select * from customers")
    assert kept.sort("customer_id").equals(customers.sort("customer_id"))  # as the first import left it


@pytest.mark.hybrid
def test_import_and_check_on_postgresql(generated, tmp_path):
    """The same import and check against the hybrid profile's warehouse (a private database on the PostgreSQL of
    `make services`)."""
    from core.sources import identity, parse
    from hybrid_cli.sources import check, import_file
    from resources.warehouse import PostgresWarehouse
    from tests.services import private_database, services, with_db

    wh = generated.warehouse()
    with private_database("sources_t") as database:
        pg = PostgresWarehouse(with_db(services()["HYBRID_ONPREM_DSN"], database))
        for table in CONTRACTS:
            wh.query(f"select * from {table}").write_csv(tmp_path / f"{table}.csv")
            import_file(pg, table, tmp_path / f"{table}.csv", "create")
        problems, fine = check(pg, identity())
        assert problems == [] and len(fine) == len(CONTRACTS), problems
        for table, contract in CONTRACTS.items():
            original = wh.query(f"select * from {table} order by {contract.key}")
            again = pg.query(f"select * from {table} order by {contract.key}")
            assert again.equals(original), table
        # a table of yours in another schema, under other names: read through a mapping
        pg.execute("create schema sales")
        pg.execute(
            'create table sales.orders as select transaction_id as order_id, customer_id as "ClientId", amount, '
            "category, channel, event_ts, ingested_at, 1 as note from transactions"
        )
        renamed = parse(
            {
                "sources": {
                    "customers": None,
                    "support_tickets": None,
                    "transactions": {
                        "table": "sales.orders",
                        "columns": {"transaction_id": "order_id", "customer_id": "ClientId"},
                    },
                }
            }
        )
        problems, fine = check(pg, renamed)
        assert problems == [], problems
        assert any(
            line.startswith("sales.orders (transactions): 7 columns") and "not read: note" in line
            for line in fine
        )
        pg.execute("alter table transactions drop column channel")
        problems, _ = check(pg, identity())
        assert problems == ["transactions.channel: column missing (expected VARCHAR)"]
        # purchases only, without a key or a channel: the same SQL reads them in PostgreSQL, numbered in arrival
        # order, and the tables left out read as no rows of the contract's types
        minimal = parse({"sources": {"transactions": {"columns": {"transaction_id": None, "channel": None}}}})
        assert check(pg, minimal)[0] == []
        rows = pg.query(f"select * from ({minimal['transactions'].relation()}) t order by transaction_id")
        assert rows["transaction_id"].to_list() == list(range(1, rows.height + 1))
        assert rows["channel"].null_count() == rows.height
        assert rows["ingested_at"].is_sorted()  # numbered by arrival
        for table in ("customers", "support_tickets"):
            empty = pg.query(f"select * from ({minimal[table].relation()}) t")
            assert empty.height == 0 and empty.columns == list(CONTRACTS[table].columns)


RENAMED_MAPPING = """
sources:
  customers:
    table: crm.clients
    columns: {customer_id: client_id, email: mail, signup_date: "Joined"}
    pii: [region]
  transactions:
    table: sales.orders
    columns: {transaction_id: order_id, customer_id: client_id, amount: total, event_ts: ordered_at,
              ingested_at: loaded_at}
  support_tickets: {}
"""


def test_tables_of_your_own_under_other_names_run_through_the_mapping(generated, tmp_path):
    """The generator's tables moved into schemas of their own and renamed, with a column the platform does not
    know: `hybrid sources check` passes through HYBRID_SOURCES, and the on-prem location reads every row under
    the contract's names."""
    home = tmp_path / "renamed"
    home.mkdir()
    (home / "onprem.duckdb").write_bytes((generated.home / "onprem.duckdb").read_bytes())
    from resources.warehouse import DuckDBWarehouse

    wh = DuckDBWarehouse(home / "onprem.duckdb")
    source_ids = wh.query("select transaction_id from transactions")["transaction_id"]
    wh.execute("create schema crm")
    wh.execute(
        "create table crm.clients as select customer_id as client_id, full_name, email as mail, phone, "
        'birth_date, signup_date as "Joined", region, plan, 0 as loyalty_points from customers'
    )
    wh.execute("create schema sales")
    wh.execute(
        "create table sales.orders as select transaction_id as order_id, customer_id as client_id, "
        "amount as total, category, channel, event_ts as ordered_at, ingested_at as loaded_at, "
        "'web' as note from transactions"
    )
    wh.execute("drop table customers")
    wh.execute("drop table transactions")
    del wh
    mapping = tmp_path / "my-sources.yaml"
    mapping.write_text(RENAMED_MAPPING)

    unmapped = _hybrid(home, "sources", "check")
    assert unmapped.returncode == 1 and "!!  customers: table not found in the warehouse" in unmapped.stdout

    env = {"HYBRID_SOURCES": str(mapping)}
    result = _hybrid(home, "sources", "check", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok  crm.clients (customers): 8 columns as the contract says" in result.stdout
    assert "ok  sales.orders (transactions): 7 columns as the contract says" in result.stdout
    assert "not read: note" in result.stdout and "not read: loyalty_points" in result.stdout

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(RENAMED_MAPPING.replace("amount: total", "amount: amount_usd"))
    result = _hybrid(home, "sources", "check", env={"HYBRID_SOURCES": str(wrong)})
    assert result.returncode == 1
    assert "!!  sales.orders.amount_usd (amount): column missing (expected DECIMAL)" in result.stdout
    for text, message in (
        ("sources: {customers: {}}", "sources.transactions: missing"),
        (
            RENAMED_MAPPING.replace("amount: total", "amout: total"),
            "sources.transactions.columns.amout: not a column",
        ),
        (RENAMED_MAPPING.replace("table: sales.orders", "table: sales.orders; drop"), "is not a table"),
    ):
        wrong.write_text(text)
        result = _hybrid(home, "sources", "check", env={"HYBRID_SOURCES": str(wrong)})
        assert result.returncode == 2 and f"HYBRID_SOURCES: {wrong}: " in result.stderr, result.stderr
        assert message in result.stderr, result.stderr

    import dagster as dg

    from core.settings import load_settings

    with hybrid_env(home, **env):
        settings = load_settings()
    assert settings.sources_file == mapping
    onprem = Platform(home, settings, dg.DagsterInstance.ephemeral(), env=env).run("onprem")
    assert onprem.success, onprem.step_failures
    assert onprem.checks and all(c.status != "FAIL" for c in onprem.checks)
    wh = DuckDBWarehouse(home / "onprem.duckdb", read_only=True)
    accepted = wh.query("select * from platform.transactions")
    assert accepted.columns == list(CONTRACTS["transactions"].columns)  # the contract's names from here on
    quarantined = wh.query("select row_key from platform.quarantine where source_table = 'transactions'")
    assert sorted(accepted["transaction_id"].to_list() + [int(k) for k in quarantined["row_key"]]) == sorted(
        source_ids.to_list()
    )  # every source row read: accepted or quarantined
    assert wh.scalar("select count(*) from platform.customer_features") > 0


def test_a_purchases_table_with_dates_and_no_arrival_time_arrives_when_it_happened(generated, tmp_path):
    """Purchases as many sales tables keep them (CDNOW's among them): a DATE for the event time and no arrival
    column (`ingested_at: ~` in the mapping). `hybrid sources check` says what stands in for the arrival and
    that dates read as midnight; the on-prem location reads every row, arrival = event time = the day."""
    home = tmp_path / "no-arrival"
    home.mkdir()
    (home / "onprem.duckdb").write_bytes((generated.home / "onprem.duckdb").read_bytes())
    from resources.warehouse import DuckDBWarehouse

    wh = DuckDBWarehouse(home / "onprem.duckdb")
    source_ids = wh.query("select transaction_id from transactions")["transaction_id"]
    wh.execute(
        "create table orders as "
        "select * exclude (ingested_at, event_ts), cast(event_ts as date) as event_ts from transactions"
    )
    wh.execute("drop table transactions")
    del wh
    mapping = tmp_path / "no-arrival.yaml"
    mapping.write_text(
        "sources:\n  customers: {}\n  support_tickets: {}\n"
        "  transactions: {table: orders, columns: {ingested_at: ~}}\n"
    )
    env = {"HYBRID_SOURCES": str(mapping)}
    result = _hybrid(home, "sources", "check", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"ok  orders (transactions): 6 columns as the contract says, {len(source_ids)} rows; "
        "no arrival column, so ingested_at = event_ts (event_ts); dates read as midnight: orders.event_ts"
    ) in result.stdout

    import dagster as dg

    from core.settings import load_settings

    with hybrid_env(home, **env):
        settings = load_settings()
    onprem = Platform(home, settings, dg.DagsterInstance.ephemeral(), env=env).run("onprem")
    assert onprem.success, onprem.step_failures
    wh = DuckDBWarehouse(home / "onprem.duckdb", read_only=True)
    accepted = wh.query("select transaction_id, event_ts, ingested_at from platform.transactions")
    assert accepted.height > 1000 and (accepted["ingested_at"] == accepted["event_ts"]).all()
    assert (accepted["event_ts"] == accepted["event_ts"].dt.truncate("1d")).all()  # midnight
    quarantined = wh.query("select row_key from platform.quarantine where source_table = 'transactions'")
    assert sorted(accepted["transaction_id"].to_list() + [int(k) for k in quarantined["row_key"]]) == sorted(
        source_ids.to_list()
    )
    assert wh.scalar("select count(*) from platform.customer_features") > 0


def test_the_mapping_renames_quotes_and_can_only_add_pii():
    from core.contracts import PII_COLUMNS
    from core.sources import SourcesError, identity, parse

    def mapping(**customers) -> dict:
        return {"sources": {"customers": customers, "transactions": None, "support_tickets": None}}

    mine = parse(mapping(table="crm.Clients", columns={"signup_date": "Joined"}, pii=["region"]))
    relation = mine["customers"].relation()
    assert relation.startswith('select "customer_id" as customer_id, ')
    assert '"Joined" as signup_date' in relation and relation.endswith('from "crm"."Clients"')
    assert mine["customers"].schema_and_table == ("crm", "Clients")
    assert mine.pii_columns == PII_COLUMNS | {"region"} and identity().pii_columns == PII_COLUMNS
    assert mine["customers"].where("signup_date") == "crm.Clients.Joined (signup_date)"
    assert mine["customers"].column_problems({"customer_id": "BIGINT"})[0] == (
        "crm.Clients.full_name: column missing (expected VARCHAR)"
    )
    assert "the table has joined" in mine["customers"].column_problems({"joined": "DATE"})[5]
    no_arrival = parse(
        {
            "sources": {
                "customers": None,
                "support_tickets": None,
                "transactions": {"columns": {"ingested_at": None}},
            }
        }
    )["transactions"]
    assert (
        no_arrival.derived == {"ingested_at": "event_ts"} and no_arrival.columns["ingested_at"] == "event_ts"
    )
    # a TIMESTAMP column is read through a cast, so a DATE column reads as midnight; nothing else is a TIMESTAMP
    assert (
        no_arrival.relation("ingested_at")
        == 'select cast("event_ts" as timestamp) as ingested_at from "transactions"'
    )
    found = dict(CONTRACTS["transactions"].columns)  # every column of the contract's own type
    assert not no_arrival.column_problems({**found, "event_ts": "DATE"})
    assert no_arrival.column_problems({**found, "event_ts": "VARCHAR"}) == [
        "transactions.event_ts: type VARCHAR, expected TIMESTAMP "
        "(TIMESTAMP or TIMESTAMP WITHOUT TIME ZONE or DATETIME or DATE (read as midnight))"
    ]
    for wrong, message in (
        (
            {
                "sources": {
                    "customers": {"columns": {"signup_date": None}},
                    "transactions": None,
                    "support_tickets": None,
                }
            },
            r"sources.customers.columns.signup_date: expected the name of a column of customers \(signup_date "
            r"is required; only full_name, email, phone, birth_date, region, plan may be ~: no such column\)$",
        ),
        (mapping(pii=["salary"]), "sources.customers.pii: 'salary' is not a column of the contract"),
        (mapping(columns={"email": "contact", "phone": "contact"}), "contact is mapped to more than one"),
        (mapping(owner="me"), "sources.customers.owner: unknown key"),
        ({"sources": {"orders": {}}}, "sources.orders: not a source table of the platform"),
        ({"tables": {}}, "expected a top-level `sources:`"),
    ):
        with pytest.raises(SourcesError, match=message):
            parse(wrong)


def test_only_purchases_are_required_and_what_is_left_out_switches_its_features_off():
    """A mapping may leave out customers, support tickets, marketing events and optional columns: they read as
    no rows and typed nulls (a key left out: the row's number in arrival order), and the features that need
    them are off, each saying what it lacks; the generator's mapping keeps every feature. Purchases and their
    customer id, event time and amount cannot be left out."""
    from core import catalog
    from core.settings import DEFAULT_SOURCES
    from core.sources import SourcesError, identity, load, parse

    assert identity().switched_off() == {} and load(DEFAULT_SOURCES).features == catalog.FEATURES
    assert catalog.feature_names() == [f.name for f in catalog.FEATURES]  # the repository's sources.yaml
    assert catalog.active_views() == [catalog.ACTIVITY_VIEW, catalog.ENGAGEMENT_VIEW]
    mine = parse(
        {
            "marketing_events": False,
            "sources": {
                "transactions": {
                    "table": "sales",
                    "columns": {
                        "transaction_id": None,
                        "category": None,
                        "ingested_at": None,
                        "amount": "amt",
                    },
                },
                "support_tickets": {"columns": {"severity": None}},
            },
        }
    )
    off = mine.switched_off()
    assert off == {
        "category_diversity_60d": "transactions.category",
        "max_severity_60d": "support_tickets.severity",
        "tenure_days": "customers",
        "plan_tier": "customers.plan",
        "emails_sent_30d": "marketing_events",
        "open_rate_60d": "marketing_events",
        "click_rate_60d": "marketing_events",
        "days_since_last_click": "marketing_events",
    }
    assert [f.name for f in mine.features] == [f.name for f in catalog.FEATURES if f.name not in off]
    assert "online_share_60d" in {f.name for f in mine.features}  # channel is mapped: on
    assert not mine["customers"].has() and mine["support_tickets"].has()
    assert mine["support_tickets"].has("resolved_ts") and not mine["support_tickets"].has("severity")
    assert mine["customers"].relation("customer_id", "plan") == (
        "select cast(null as bigint) as customer_id, cast(null as varchar) as plan where false"
    )
    sales = mine["transactions"]
    assert sales.relation("transaction_id", "category") == (
        'select cast(row_number() over (order by cast("event_ts" as timestamp), "customer_id", "amt", "channel") '
        'as bigint) as transaction_id, cast(null as varchar) as category from "sales"'
    )
    assert sales.column_problems({"customer_id": "BIGINT", "amt": "DECIMAL(12,2)", "event_ts": "DATE"}) == [
        "sales.channel: column missing (expected VARCHAR)"  # mapped by default: it must be there
    ]
    assert mine["customers"].column_problems({}) == []  # not in the mapping: nothing to find
    assert "features: 14 of 22 on" in "\n".join(__import__("hybrid_cli.sources").sources.feature_lines(mine))
    assert catalog.features_markdown(off).count("\n| `") == len(catalog.FEATURES) - len(off)
    assert "- `tenure_days`: needs customers" in catalog.features_markdown(off)
    for wrong, message in (
        ({"sources": {"transactions": {"columns": {"amount": None}}}}, "columns.amount: expected the name"),
        ({"sources": {"transactions": False}}, "sources.transactions: missing"),
        ({"sources": {"customers": {}}}, "sources.transactions: missing"),
        ({"marketing_events": "no", "sources": {"transactions": {}}}, "marketing_events: 'no': true"),
    ):
        with pytest.raises(SourcesError, match=message):
            parse(wrong)


def test_the_first_partition_day_comes_from_the_mapping():
    """`first_day` (default 2026-01-01) is a day, not in the future; the on-prem location's daily assets and its
    job move to partitions that start on it, and the default day leaves the definitions as they are."""
    import dagster as dg

    from core.days import DEFAULT_FIRST_DAY
    from core.sources import SourcesError, identity, parse
    from hybrid_assets.onprem.definitions import group_defs
    from hybrid_assets.partitions import DAILY, starting_on

    every = {"customers": None, "transactions": None, "support_tickets": None}
    assert (
        identity().first_day == parse({"sources": every}).first_day == DEFAULT_FIRST_DAY == date(2026, 1, 1)
    )
    assert parse({"first_day": date(1997, 1, 1), "sources": every}).first_day == date(1997, 1, 1)
    assert parse({"first_day": "2019-03-01", "sources": every}).first_day == date(2019, 3, 1)
    tomorrow = date.today() + timedelta(days=1)
    for value, message in (
        ("March 1997", "first_day: 'March 1997' is not a day"),
        (datetime(1997, 1, 1, 12), "is not a day"),
        (tomorrow, f"first_day: {tomorrow} is in the future"),
    ):
        with pytest.raises(SourcesError, match=message):
            parse({"first_day": value, "sources": every})
    with pytest.raises(SourcesError, match="first_dy: unknown key"):
        parse({"first_dy": "1997-01-01", "sources": every})

    defs = group_defs()
    assert starting_on(defs, DEFAULT_FIRST_DAY) is defs
    old = starting_on(defs, date(1997, 1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from hybrid_assets.resources import executor_for, onprem_resources

        repo = dg.Definitions.merge(
            old, dg.Definitions(resources=onprem_resources(), executor=executor_for("onprem"))
        ).get_repository_def()
    calendars = {node.key.to_user_string(): node.partitions_def for node in repo.asset_graph.asset_nodes}
    daily = {name for name, p in calendars.items() if p is not None}
    assert daily == {"transactions", "customer_features", "customer_feature_export"}
    assert {calendars[name].start.date() for name in daily} == {date(1997, 1, 1)}
    assert calendars["customers"] is None
    assert repo.get_job("onprem_refresh").partitions_def.start.date() == date(1997, 1, 1)
    assert DAILY.start.date() == DEFAULT_FIRST_DAY  # the declared calendar is left alone


def test_history_years_before_2026_is_partitioned_and_used(tmp_path):
    """Four and a half months of 2019: with the default mapping nothing has a partition, and `sources check`
    and the run say so and which `first_day` loads it; with that first day in the mapping, every day is a
    partition, every row is loaded, and the cloud trains and deploys a model on 2019's snapshots."""
    import re

    import dagster as dg

    from core.settings import load_settings
    from resources.warehouse import DuckDBWarehouse

    start = date(2019, 3, 1)
    # the quick start's size: a model above the AUC floor with the default label definition
    platform = build_platform(tmp_path / "old", customers=1000, days=140, run=False, start=start)
    home = platform.home
    total = DuckDBWarehouse(home / "onprem.duckdb", read_only=True).scalar(
        "select count(*) from transactions"
    )

    result = _hybrid(home, "sources", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    note = re.search(
        rf"{total} transactions rows arrived before the first partition day 2026-01-01 and are not loaded "
        r"\(the earliest on (\d{4}-\d\d-\d\d): `first_day: \1` in the source mapping loads them\)",
        result.stdout,
    )
    assert note, result.stdout
    earliest = date.fromisoformat(note.group(1))
    assert start <= earliest < start + timedelta(days=7)
    with pytest.raises(RuntimeError, match="from the first partition day 2026-01-01 on"):
        platform.run("onprem")

    mapping = tmp_path / "since-2019.yaml"
    mapping.write_text(
        f"first_day: {earliest}\nsources:\n  customers: {{}}\n  transactions: {{}}\n  support_tickets: {{}}\n"
    )
    platform.env["HYBRID_SOURCES"] = str(mapping)
    with hybrid_env(home, **platform.env):
        platform.settings = load_settings()
    assert "rows arrived before" not in _hybrid(home, "sources", "check", env=platform.env).stdout

    onprem = platform.run("onprem")
    assert onprem.success, onprem.step_failures + [c.description for c in onprem.blocking_failures]
    assert onprem.materialized["transactions"]["rows_before_first_day"] == 0
    first, last = platform.arrival_days()
    assert first == earliest and last.year == 2019
    loaded = platform.instance.get_materialized_partitions(dg.AssetKey("customer_features"))
    assert min(loaded) == first.isoformat() and len(loaded) == (last - first).days + 1
    wh = DuckDBWarehouse(home / "onprem.duckdb", read_only=True)
    accepted = wh.scalar("select count(*) from platform.transactions")
    quarantined = wh.scalar("select count(*) from platform.quarantine where source_table = 'transactions'")
    assert accepted + quarantined == total  # every row read, none left before the first day
    # the generator's clock-skewed rows are 400 days ahead: in the past by now, but after their arrival
    reasons = wh.query("select distinct reason from platform.quarantine where source_table = 'transactions'")
    assert "event_ts after ingested_at" in reasons["reason"].to_list()

    cloud = platform.run("cloud")
    assert cloud.success, cloud.step_failures + [c.description for c in cloud.blocking_failures]
    from core import catalog

    snapshots = platform.object_store().read_parquet(catalog.TRAINING_SET_KEY)[catalog.EVENT_TS]
    assert snapshots.dt.year().unique().to_list() == [2019]
    assert platform.registry().production() is not None
