"""`hybrid sources check` and `hybrid import`, as a user runs them (the CLI in a subprocess, on a real DuckDB
warehouse): a generated warehouse passes, a missing table, a missing column, an unexpected one and a wrong type
are each one line naming the table and the column with a non-zero exit, and a CSV export of the source tables
imported back passes the same check (the contract's types are applied)."""

import os
import subprocess
import sys

import polars as pl
import pytest

from core.contracts import CONTRACTS
from tests.conftest import Platform, build_platform, hybrid_env


def _hybrid(home, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYBRID_HOME": str(home), "HYBRID_PROFILE": "embedded"}
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
        "!!  transactions.channel: column missing (expected VARCHAR)",
        "!!  transactions.amount: type VARCHAR, expected DECIMAL (DECIMAL or NUMERIC)",
        "!!  transactions.sales_channel: column not in the contract (VARCHAR)",
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
    from hybrid_cli.sources import check, import_file
    from resources.warehouse import PostgresWarehouse
    from tests.services import private_database, services, with_db

    wh = generated.warehouse()
    with private_database("sources_t") as database:
        pg = PostgresWarehouse(with_db(services()["HYBRID_ONPREM_DSN"], database))
        for table in CONTRACTS:
            wh.query(f"select * from {table}").write_csv(tmp_path / f"{table}.csv")
            import_file(pg, table, tmp_path / f"{table}.csv", "create")
        problems, fine = check(pg)
        assert problems == [] and len(fine) == len(CONTRACTS), problems
        for table, contract in CONTRACTS.items():
            original = wh.query(f"select * from {table} order by {contract.key}")
            again = pg.query(f"select * from {table} order by {contract.key}")
            assert again.equals(original), table
        pg.execute("alter table transactions drop column channel")
        problems, _ = check(pg)
        assert problems == ["transactions.channel: column missing (expected VARCHAR)"]
