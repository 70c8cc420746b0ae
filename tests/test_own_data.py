"""Real data end to end, as the README's walkthrough ("Bring your own data") runs it: CDNOW's purchases (the copy
the `lifetimes` package ships), imported under their own column names with no customers, tickets or marketing
events, through the README's own mapping and settings. The whole graph runs, the features that need what is left
out are off everywhere (Feast, the GX suites, the training set, the model, the endpoint), a model that beats the
recency baseline on the time-based holdout is deployed, and /predict answers over real HTTP.

The walkthrough runs every customer (about 4 minutes); this test takes every fourth customer (all 546 days of
history) to keep the suite short."""

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import polars as pl
import pytest

from tests.conftest import hybrid_env, running_server

README = Path(__file__).resolve().parent.parent / "README.md"
OFF = {  # what the walkthrough's mapping leaves out, and the features that need it
    "customers": {"tenure_days", "plan_tier"},
    "support_tickets": {
        "tickets_30d",
        "tickets_60d",
        "max_severity_60d",
        "open_tickets",
        "avg_resolution_hours_60d",
    },
    "transactions.category": {"category_diversity_60d"},
    "transactions.channel": {"online_share_60d"},
    "marketing_events": {"emails_sent_30d", "open_rate_60d", "click_rate_60d", "days_since_last_click"},
}


def walkthrough() -> tuple[str, dict[str, str]]:
    """The README walkthrough's mapping file and its settings (the exports other than the two paths)."""
    text = README.read_text()
    section = text[text.index("### Bring your own data") :]
    block = section[section.index("```bash") : section.index("```\n", section.index("```bash") + 7)]
    mapping = re.search(r"<<'YAML'\n(.*?)\nYAML\n", block, re.S).group(1) + "\n"
    settings = {}
    for line in block.splitlines():
        if line.startswith("export "):
            for name, value in re.findall(r"(\w+)=(\S+)", line.split("#")[0]):
                if name not in ("HYBRID_HOME", "HYBRID_SOURCES"):
                    settings[name] = value
    return mapping, settings


def _hybrid(env: dict, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hybrid_cli.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    """A home where the walkthrough ran, on every fourth CDNOW customer: (home, env, `hybrid run`'s output)."""
    work = tmp_path_factory.mktemp("cdnow")
    home = work / "home"
    mapping, settings = walkthrough()
    (work / "cdnow-sources.yaml").write_text(mapping)
    env = {
        "HYBRID_HOME": str(home),
        "HYBRID_PROFILE": "embedded",
        "HYBRID_SOURCES": str(work / "cdnow-sources.yaml"),
        **settings,
    }
    sample = _hybrid(env, "sample", "cdnow", str(work / "cdnow.parquet"))
    assert sample.returncode == 0, sample.stdout + sample.stderr
    assert "69659 purchases by 23570 customers, 1997-01-01 to 1998-06-30" in sample.stdout
    every = pl.read_parquet(work / "cdnow.parquet")
    assert every.columns == ["customer_id", "date", "number_of_cds", "dollar_value"]  # its own names
    every.filter(pl.col("customer_id") % 4 == 0).write_parquet(work / "quarter.parquet")
    imported = _hybrid(env, "import", "cdnow_purchases", str(work / "quarter.parquet"))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    check = _hybrid(env, "sources", "check")
    run = _hybrid(env, "run")
    return home, env, check, run


def test_sources_check_says_what_runs_and_which_features_are_off(cdnow):
    _, _, check, _ = cdnow
    assert check.returncode == 0, check.stdout + check.stderr
    out = check.stdout
    assert "features: 9 of 22 on" in out
    for needs, names in OFF.items():
        for name in names:
            assert f"off  {name}: needs {needs}" in out, out
    assert "customers: not in the mapping" in out and "support_tickets: not in the mapping" in out
    assert "left out: transaction_id, category, channel" in out and "not read: number_of_cds" in out


def test_the_whole_graph_runs_and_predicts_over_http(cdnow):
    home, env, _, run = cdnow
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "onprem location: succeeded" in run.stdout and "cloud location: succeeded" in run.stdout
    assert re.search(r"POST http://127\.0\.0\.1:\d+/predict .* -> 200", run.stdout), run.stdout[-2000:]
    # every purchase of the quarter read, none quarantined as of an unknown customer (there is no customers table)
    from resources.warehouse import DuckDBWarehouse

    wh = DuckDBWarehouse(home / "onprem.duckdb", read_only=True)
    total = wh.scalar("select count(*) from cdnow_purchases")
    accepted = wh.scalar("select count(*) from platform.transactions")
    reasons = wh.query("select reason, count(*) n from platform.quarantine group by reason")
    assert accepted + int(reasons["n"].sum() or 0) == total and accepted > 0.99 * total, reasons
    assert "unknown customer_id" not in reasons["reason"].to_list()
    keys = wh.query("select transaction_id from platform.transactions")["transaction_id"]
    assert keys.n_unique() == accepted and keys.null_count() == 0  # the row numbers stand in for the key
    # history from 1997: every day a partition
    days = wh.query("select min(event_timestamp) lo, max(event_timestamp) hi from platform.customer_features")
    assert days["lo"][0].year == 1997 and days["hi"][0].year == 1998


def test_features_that_need_what_is_left_out_are_off_everywhere(cdnow):
    home, env, _, run = cdnow
    assert run.returncode == 0, run.stderr[-4000:]
    from core import catalog
    from resources.model_registry import ModelRegistry
    from resources.object_store import ObjectStore

    off = set().union(*OFF.values())
    on = [f.name for f in catalog.FEATURES if f.name not in off]
    assert len(on) == 9
    with hybrid_env(home, **env):
        assert catalog.feature_names() == on and catalog.active_views() == [catalog.ACTIVITY_VIEW]
        from feast import FeatureStore

        store = FeatureStore(repo_path=str(home / "feast"))
        views = {v.name: [f.name for f in v.features] for v in store.list_feature_views()}
        assert views == {catalog.ACTIVITY_VIEW: on}  # Feast: no engagement view, no switched-off field
        service = store.get_feature_service(catalog.FEATURE_SERVICE)
        assert [f.name for p in service.feature_view_projections for f in p.features] == on
        from expectations.features import feature_suite, training_set_suite

        gx_columns = {e.column for e in training_set_suite().expectations if getattr(e, "column", None)}
        assert set(on) <= gx_columns and not off & gx_columns  # GX: only the features that are on
        export = feature_suite(catalog.ACTIVITY_VIEW, "customer_feature_export")
        exact = next(e for e in export.expectations if type(e).__name__ == "ExpectTableColumnsToMatchSet")
        assert set(exact.column_set) == {catalog.ENTITY_KEY, catalog.EVENT_TS, *on}
    objects = ObjectStore(str(home / "object_store"))
    training = objects.read_parquet(catalog.TRAINING_SET_KEY)
    assert training.columns == [catalog.ENTITY_KEY, catalog.EVENT_TS, "churned", *on]
    assert not objects.list(catalog.ENGAGEMENT_KEY)  # nothing computed for the engagement view
    production = ModelRegistry(objects).production()
    assert production is not None
    meta = ModelRegistry(objects).metadata(production["version"])
    assert meta["features"] == on
    from hybrid_assets.cloud.report import CARD_FILE

    card = ModelRegistry(objects).artifact(production["version"], CARD_FILE).decode()
    assert "**Off in this deployment** (13)" in card and "`tenure_days`" in card  # the model card says so
    assert meta["label_definition"]["label_horizon_days"] == int(env["HYBRID_LABEL_HORIZON_DAYS"])
    # the model learned something a glance at recency does not give, on the later snapshots it never saw
    metrics = meta["metrics"]
    assert metrics["auc"] > metrics["recency_baseline_auc"] + 0.05, metrics
    assert metrics["auc"] >= float(env["HYBRID_AUC_FLOOR"])
    customer = int(training["customer_id"][0])
    with running_server(home, env=env) as base:
        answer = httpx.post(f"{base}/predict", json={"customer_id": customer}, timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body["features"]) == on and 0.0 <= body["churn_probability"] <= 1.0
