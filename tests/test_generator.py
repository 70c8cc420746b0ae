"""The synthetic data: deterministic, appendable day by day, with a planted and reportable churn signal."""

import polars as pl

from tests.conftest import build_platform

TABLES = ("customers", "transactions", "support_tickets")


def _dump(platform) -> dict[str, pl.DataFrame]:
    wh = platform.warehouse()
    out = {t: wh.query(f"select * from {t} order by all") for t in TABLES}
    store = platform.object_store()
    out["marketing"] = pl.concat(
        [store.read_parquet(k) for k in store.list("sources/marketing_events/")]
    ).sort(pl.all())
    return out


def test_same_seed_same_data_and_append_equals_one_go(tmp_path):
    one_go = build_platform(tmp_path / "a", customers=400, days=25, run=False)
    again = build_platform(tmp_path / "b", customers=400, days=25, run=False)
    stepwise = build_platform(tmp_path / "c", customers=400, days=20, run=False)
    report = stepwise.generator().append(days=5)
    assert report["first_date"] == "2026-04-21" and report["days"] == 5
    a, b, c = _dump(one_go), _dump(again), _dump(stepwise)
    for name in a:
        assert a[name].equals(b[name]), name
        assert a[name].equals(c[name]), name
    assert a["transactions"].height > 400 * 25 * 0.2


def test_contract_tables_and_pii_columns(tmp_path):
    platform = build_platform(tmp_path, customers=200, days=10, run=False)
    wh = platform.warehouse()
    assert list(wh.columns("customers")) == [
        "customer_id",
        "full_name",
        "email",
        "phone",
        "birth_date",
        "signup_date",
        "region",
        "plan",
    ]
    assert wh.columns("transactions")["amount"] == "DECIMAL(12,2)"
    assert list(wh.columns("support_tickets")) == [
        "ticket_id",
        "customer_id",
        "opened_ts",
        "severity",
        "resolved_ts",
    ]
