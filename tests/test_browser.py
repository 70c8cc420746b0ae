"""The Dagster UI in a real (headless) browser, end to end, as a newcomer uses it (docs/ui-walkthrough.md).

`dagster dev -w workspace.yaml` (webserver + daemon) runs on a temporary HYBRID_HOME with small synthetic
data. Chromium shows both code locations and every asset group, backfills the on-prem assets over the data's
arrival days (one run, as the single-run backfill policy makes it), and after that run succeeded, the
daemon's automation condition sensor carries the cloud side through to a deployed model; the test then
opens a GX check result, the model's metadata and plots, the deployment and the sensors. Screenshots land
in $HYBRID_ARTIFACTS (default artifacts/browser/; not committed); `python -m tests.browser_screenshots`
copies them into docs/img/.

Dagster's GraphQL API serves the waiting and the assertions where clicking is not the point. The test
skips without /usr/bin/chromium, except under CI=true, where that is a failure.
"""

import contextlib
import os
import sys
import time
from datetime import date

import pytest

from tests.browser_helpers import (
    ASSET_NODES,
    CHECK_EXECUTIONS,
    CHROMIUM,
    DAEMONS,
    RUNS,
    TERMINAL,
    UI_TIMEOUT_MS,
    VIEWPORT,
    DagsterDev,
    artifacts_dir,
    browser_page,
    latest_materialization,
    launch_onprem_materialization,
    park,
    prepare_home,
    shot,
    stop_sensor,
    tags_of,
    wait_for_run,
    wait_until,
)
from tests.conftest import free_port

# small data: the whole graph (on-prem backfill run plus five automation ticks) in about ten minutes on 2
# cores, every step in its own process
CUSTOMERS, DAYS = 2000, 150
LOCATIONS = {"onprem", "cloud"}
# the on-prem run is a backfill of every arrival day in one run, its steps in separate processes
ONPREM_RUN_TIMEOUT = 600
CLOUD_TIMEOUT = 540
# plots and the card that churn_model may carry as markdown metadata; each one present is opened
MODEL_MARKDOWN = ("roc_curve", "calibration_plot", "feature_importance_plot", "model_card")

pytestmark = pytest.mark.browser


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} not found (Debian: apt-get install chromium, or `make services`)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser test must run under CI: {message}")
    pytest.skip(message)


def _arrival_days(home) -> tuple[date, date]:
    """First and last arrival day (``ingested_at``) of the source transactions, within the partitions'
    range: what a newcomer backfills on a fresh home. Read before dagster dev holds the DuckDB file."""
    from core.days import DEFAULT_FIRST_DAY, clamp
    from resources.warehouse import DuckDBWarehouse

    first, last = (
        DuckDBWarehouse(home / "onprem.duckdb", read_only=True)
        .query("select min(ingested_at)::date, max(ingested_at)::date from main.transactions")
        .row(0)
    )
    assert first is not None, "no transactions generated"
    days = clamp(first, last, DEFAULT_FIRST_DAY)  # the default mapping's first day
    assert days, f"the arrival days {first}..{last} have no partitions"
    return days


def _expected_groups() -> dict[str, set[str]]:
    from hybrid_assets.cloud.definitions import group_defs as cloud_groups
    from hybrid_assets.onprem.definitions import group_defs as onprem_groups

    return {
        location: {spec.group_name for asset in groups().assets for spec in asset.specs}
        for location, groups in (("onprem", onprem_groups), ("cloud", cloud_groups))
    }


@pytest.mark.timeout(1200, method="signal")  # signal, not thread: the finally below still stops dagster dev
def test_ui_materialize_onprem_and_watch_the_cloud_follow(tmp_path):
    _require_chromium()
    from playwright.sync_api import sync_playwright

    out = artifacts_dir()
    (out / "failure.png").unlink(missing_ok=True)
    started = time.monotonic()

    def step(what: str) -> None:
        print(f"[browser test {time.monotonic() - started:4.0f}s] {what}", flush=True)

    env = prepare_home(tmp_path / "home", CUSTOMERS, DAYS)
    days = _arrival_days(tmp_path / "home")
    # the on-prem sensor would launch the on-prem graph on its first tick; here the click does it
    stop_sensor(env, "onprem", "new_onprem_data")
    step(f"data generated (arrival days {days[0]}..{days[1]}), new_onprem_data stopped; starting dagster dev")
    dev = DagsterDev(env, free_port(), out / "dagster-dev.log").start()
    try:
        dev.wait_ready(LOCATIONS)
        step(f"both code locations loaded on {dev.url}")
        with sync_playwright() as playwright, browser_page(playwright) as page:
            try:
                _walk_through(dev, page, step, days)
            except BaseException:
                with contextlib.suppress(Exception):  # the browser may be gone already
                    page.screenshot(path=str(out / "failure.png"), timeout=10_000)
                    print(f"failed on {page.url}; see {out / 'failure.png'}", file=sys.stderr)
                raise
        step(f"done; screenshots in {out}")
    except BaseException:
        print(f"---- tail of {dev.log} ----\n{dev.tail()}", file=sys.stderr)
        raise
    finally:
        dev.stop()
        step("dagster dev stopped")


def _walk_through(dev: DagsterDev, page, step, days: tuple[date, date]) -> None:
    """What a newcomer does in the UI (docs/ui-walkthrough.md), with a screenshot of each stop."""
    from playwright.sync_api import expect

    base = dev.url

    # 1. both code locations loaded
    page.goto(f"{base}/locations")
    for location in sorted(LOCATIONS):
        # the row: the nearest ancestor of the location's link that has its own Reload button
        link = page.locator(f'a[href="/locations/{location}/"]')
        row = link.locator("xpath=ancestor::*[.//button[normalize-space(.)='Reload']][1]")
        expect(row).to_contain_text(f"hybrid_assets.{location}.definitions")
        expect(row).to_contain_text("Loaded")
    shot(page, "01-code-locations")

    # 2. every asset group, in GraphQL and in the global lineage's sidebar
    expected = _expected_groups()
    nodes = dev.graphql(ASSET_NODES)["assetNodes"]
    found = {
        location: {n["groupName"] for n in nodes if n["repository"]["location"]["name"] == location}
        for location in LOCATIONS
    }
    assert found == expected
    page.goto(f"{base}/asset-groups")
    for group in sorted(set().union(*expected.values())):
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    page.get_by_role("button", name="Materialize all").wait_for()
    page.wait_for_timeout(1500)
    box = page.locator("body").bounding_box()
    page.mouse.click(box["width"] * 0.7, box["height"] * 0.8, button="right")  # the graph's menu
    page.get_by_role("menuitem", name="Expand all groups").click()
    _frame_lineage(page)
    shot(page, "02-asset-lineage")

    # 3. the daemon is up: the automation below depends on it
    def daemons_healthy():
        statuses = dev.graphql(DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        need = [s for s in statuses if s["daemonType"] in ("SENSOR", "ASSET")]
        return len(need) == 2 and all(s["healthy"] for s in need)

    wait_until(daemons_healthy, 120, "the sensor and asset daemons to report healthy")

    # 4. backfill the on-prem assets over the data's arrival days in the browser (Jobs -> onprem_refresh ->
    # Materialize all -> the partition range -> Launch backfill); the backfill daemon makes one run of it
    page.goto(f"{base}/locations/onprem/jobs/onprem_refresh")
    expect(page.get_by_role("button", name="Materialize all")).to_be_visible()
    shot(page, "03-onprem-job")
    launched_at = time.time()
    run_id = launch_onprem_materialization(
        page,
        dev,
        days,
        dialog_shot="03b-onprem-backfill-dialog",
        backfill_shot="03c-onprem-backfill",
    )
    shot(page, "04-onprem-run-launched")
    step(f"launched the backfill of {days[0]}..{days[1]} from the UI: run {run_id}")
    run_page = page.url
    park(page)
    run = wait_for_run(dev, run_id, ONPREM_RUN_TIMEOUT)
    step("the on-prem run succeeded")
    assert run["jobName"] == "onprem_refresh"
    tags = tags_of(run)
    assert "dagster/sensor_name" not in tags, "launched from the UI, not by a sensor"
    assert tags.get("dagster/asset_partition_range_start") == days[0].isoformat(), tags
    assert tags.get("dagster/asset_partition_range_end") == days[1].isoformat(), tags
    backfill_runs = dev.graphql(
        RUNS, filter={"tags": [{"key": "dagster/backfill", "value": tags["dagster/backfill"]}]}
    )["runsOrError"]["results"]
    assert [r["runId"] for r in backfill_runs] == [run_id], "a single-run backfill policy: one run"
    onprem_assets = {a["path"][-1] for a in run["assetSelection"]}
    assert onprem_assets == {
        n["assetKey"]["path"][-1] for n in nodes if n["repository"]["location"]["name"] == "onprem"
    }
    for asset in ("customer_feature_export", "churn_label_export"):
        assert latest_materialization(dev, asset)["runId"] == run_id
    page.goto(run_page)
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    with contextlib.suppress(AssertionError):  # cosmetic: the event log fills in after the header
        expect(page.get_by_text("Finished execution of run").first).to_be_visible(timeout=15_000)
    shot(page, "05-onprem-run")

    # 5. the cloud follows through the automation condition sensor, up to the deployment
    def automation_runs() -> list[dict]:
        runs = dev.graphql(
            RUNS,
            filter={
                "tags": [{"key": "dagster/sensor_name", "value": "cloud_automation"}],
                "createdAfter": launched_at,
            },
        )["runsOrError"]["results"]
        failed = [r for r in runs if r["status"] in TERMINAL - {"SUCCESS"}]
        assert not failed, f"automated cloud run(s) did not succeed: {failed}"
        return runs

    def deployed():
        automation_runs()
        event = latest_materialization(dev, "churn_model_deployment")
        if not event or float(event["timestamp"]) / 1000 < launched_at:
            return None
        return event

    park(page)
    deployment = wait_until(deployed, CLOUD_TIMEOUT, "the automation to deploy a model", 5)
    wait_for_run(dev, deployment["runId"], 60)
    step(f"the automation deployed a model in run {deployment['runId']}")
    runs = automation_runs()
    assert deployment["runId"] in {r["runId"] for r in runs}, "deployed by the automation"
    followed = {a["path"][-1] for r in runs for a in (r["assetSelection"] or [])}
    assert {"training_set", "churn_model", "churn_model_deployment"} <= followed, followed
    model = latest_materialization(dev, "churn_model")
    assert model["runId"] in {r["runId"] for r in runs}
    page.set_viewport_size({"width": 1440, "height": 800})  # room for the "Launched by" column
    page.goto(f"{base}/runs")
    expect(page.get_by_text("Manually launched").first).to_be_visible()
    shot(page, "06-runs")
    page.set_viewport_size(VIEWPORT)

    # 6. a GX check's result: the transactions gate (it warns about the quarantined broken rows)
    page.goto(f"{base}/assets/transactions?view=checks")
    page.get_by_text("transactions_contract", exact=True).first.click()
    expect(page.get_by_text("Latest execution")).to_be_visible()
    expect(page.get_by_text("Evaluation result")).to_be_visible()
    expect(page.get_by_text("rows_quarantined", exact=True).first).to_be_visible()
    shot(page, "07-gx-check")
    execution = dev.graphql(CHECK_EXECUTIONS, path=["transactions"], check="transactions_contract")[
        "assetCheckExecutions"
    ][0]
    assert execution["runId"] == run_id
    evaluation = execution["evaluation"]
    assert evaluation["success"] or evaluation["severity"] == "WARN", evaluation
    _open_markdown(page, "expectations", "08-gx-expectations")

    # 7. the model: the latest materialization's metadata, and its plots where present
    page.goto(f"{base}/assets/churn_model?view=events")
    expect(page.get_by_text("Materialized in run")).to_be_visible()
    for label in ("version", "auc", "holdout_snapshots"):
        expect(page.get_by_text(label, exact=True).first).to_be_visible()
    shot(page, "09-churn-model")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 3000})  # the whole metadata table
    shot(page, "churn-model-metadata-full")
    page.set_viewport_size(VIEWPORT)
    opened = [label for label in MODEL_MARKDOWN if _open_markdown(page, label, f"10-churn-model-{label}")]
    print(f"churn_model markdown metadata opened: {opened or 'none'}")

    # 8. the deployment, and the sensors
    page.goto(f"{base}/assets/churn_model_deployment")
    expect(page.get_by_text("served_version", exact=True)).to_be_visible()
    shot(page, "11-deployment")
    page.goto(f"{base}/automation")
    for sensor in ("new_onprem_data", "new_marketing_events", "cloud_automation"):
        expect(page.get_by_text(sensor, exact=True)).to_be_visible()
    shot(page, "12-automation")


def _frame_lineage(page) -> None:
    """Cosmetic, for the screenshot only: hide the groups sidebar, then pan and zoom the graph into the
    freed space. Dagster does not refit the graph by itself; if its controls change, this is skipped."""
    from playwright.sync_api import Error

    try:
        toggle = page.locator("button:has([aria-label=panel_show_right])")
        toggle.filter(has_not_text="Hide navigation").click(timeout=5000)
        page.mouse.move(1100, 700)
        page.mouse.down()
        page.mouse.move(1250, 729, steps=10)
        page.mouse.up()
        page.locator("button:has([aria-label=zoom_in])").click(timeout=5000)
    except Error as exc:
        print(f"lineage screenshot not framed: {exc.message.splitlines()[0]}")


def _open_markdown(page, label: str, name: str) -> bool:
    """Open the "[Show Markdown]" of a metadata row ``label``, screenshot the dialog, close it."""
    from playwright.sync_api import expect

    row = page.get_by_role("row").filter(has=page.get_by_text(label, exact=True))
    link = row.get_by_text("[Show Markdown]")
    if not link.count():
        return False
    link.first.click()
    dialog = page.get_by_role("dialog").filter(has_text=label)
    expect(dialog).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[role=dialog] img')].every(i => i.complete)",
        timeout=UI_TIMEOUT_MS,
    )
    # a dialog taller than the window (the model card) scrolls inside: then the window is the picture
    fits = dialog.bounding_box()["height"] <= page.viewport_size["height"]
    shot(page, name, element=dialog if fits else None)
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    return True
