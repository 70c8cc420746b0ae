"""Helpers of the browser test (tests/test_browser.py): `dagster dev` on a temporary HYBRID_HOME, Dagster's
GraphQL API for waiting, headless Chromium through Playwright, and the screenshots it leaves behind.

Nothing here downloads a browser: Playwright drives the system Chromium (`/usr/bin/chromium`, apt package
`chromium`, installed by `make services`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx

from core.settings import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
UI_TIMEOUT_MS = 30_000  # one UI element; the Dagster UI is slow to render while runs use both cores
BIN = Path(sys.executable).parent


def artifacts_dir() -> Path:
    """Where screenshots and the dagster log go: $HYBRID_ARTIFACTS, default <repo>/artifacts/browser/."""
    path = Path(os.environ.get("HYBRID_ARTIFACTS") or REPO_ROOT / "artifacts" / "browser")
    path.mkdir(parents=True, exist_ok=True)
    return path


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 2.0):
    """Poll ``predicate`` until it returns something truthy (returned); AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def park(page) -> None:
    """Leave the Dagster UI for a blank page while the test waits for runs through the GraphQL API: an open
    UI page polls the webserver and re-renders all the time, which costs Chromium and the webserver about
    half a core, taken from the runs being waited for."""
    page.goto("about:blank")


# --- the platform: data, instance, dagster dev ---------------------------------------------------------


def home_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of every subprocess of the test: the embedded profile on ``home``."""
    env = {
        **os.environ,
        "HYBRID_HOME": str(home),
        "HYBRID_PROFILE": "embedded",
        "GX_ANALYTICS_ENABLED": "false",
        "DAGSTER_DISABLE_TELEMETRY": "1",
        **extra,
    }
    env.pop("DAGSTER_HOME", None)
    return env


def prepare_home(home: Path, customers: int, days: int) -> dict[str, str]:
    """Generate synthetic data with the CLI and create the Dagster instance the way `hybrid ui` does.

    Returns the environment (with DAGSTER_HOME) for `dagster` commands on this home.
    """
    from core.settings import load_settings
    from hybrid_cli.platform import prepare_dagster_home

    env = home_env(home)
    subprocess.run(
        [str(BIN / "hybrid"), "generate", "--customers", str(customers), "--days", str(days)],
        env=env,
        cwd=REPO_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    saved = os.environ.get("DAGSTER_HOME")
    try:  # prepare_dagster_home also points this process's DAGSTER_HOME at the home: undo that
        env["DAGSTER_HOME"] = prepare_dagster_home(load_settings(env, apply_env_file=False))
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved
    return env


def stop_sensor(env: dict[str, str], location: str, sensor: str) -> None:
    """Store the sensor as stopped in the instance before the daemon starts (instigator state is keyed by
    location, repository and sensor name, so the daemon of `dagster dev` honours it)."""
    done = subprocess.run(
        [str(BIN / "dagster"), "sensor", "stop", sensor, "-w", "workspace.yaml", "-l", location],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"dagster sensor stop {sensor} failed:\n{done.stderr[-3000:]}"


class DagsterDev:
    """`dagster dev -w workspace.yaml` (webserver + daemon + both code servers) in its own process group,
    as `hybrid ui` runs it, with the Feast repo in the home's feast/ folder."""

    def __init__(self, env: dict[str, str], port: int, log: Path):
        self.env, self.port, self.log = env, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> DagsterDev:
        command = [str(BIN / "dagster"), "dev", "-w", "workspace.yaml"]  # as `hybrid ui` runs it
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [*command, "-h", "127.0.0.1", "-p", str(self.port)],
                env=self.env,
                cwd=REPO_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends code servers and runs too
                preexec_fn=_default_interrupts,
            )
        return self

    def stop(self, grace: float = 30) -> None:
        """SIGTERM the whole process group (dagster dev shuts its children down), SIGKILL what is left."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is the leader's pid
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _group_alive(pgid):
                if self.proc.poll() is None:
                    try:
                        self.proc.wait(timeout=0.5)
                    except subprocess.TimeoutExpired:
                        pass
                else:
                    time.sleep(0.5)
            if not _group_alive(pgid):
                break
            if sig == signal.SIGTERM:  # say what did not stop in time
                with open(self.log, "a") as log:
                    log.write(f"\n[browser test] still running {grace:.0f}s after SIGTERM, killing:\n")
                    log.writelines(f"  {line}\n" for line in _group_members(pgid))
        self.proc.poll()

    def tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def graphql(self, query: str, **variables) -> dict:
        response = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def wait_ready(self, locations: set[str], timeout: float = 180) -> None:
        """Until the webserver answers and every code location has loaded (a load error fails at once)."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"dagster dev exited with {self.proc.returncode}")
            try:
                entries = self.graphql(WORKSPACE)["workspaceOrError"]["locationEntries"]
            except (httpx.HTTPError, ValueError):
                return False
            loaded = set()
            for entry in entries:
                kind = (entry["locationOrLoadError"] or {}).get("__typename")
                if kind == "PythonError":
                    raise AssertionError(
                        f"code location {entry['name']} failed to load: "
                        f"{entry['locationOrLoadError']['message']}"
                    )
                if kind == "RepositoryLocation" and entry["loadStatus"] == "LOADED":
                    loaded.add(entry["name"])
            return locations <= loaded

        wait_until(ready, timeout, f"dagster dev to load the code locations {sorted(locations)}", 1)


def _default_interrupts() -> None:
    """In the child before exec: SIGINT and SIGTERM back to their defaults. Started from a background
    shell job, pytest inherits an ignored SIGINT; dagster dev maps SIGTERM onto the SIGINT handler, so it
    would ignore SIGTERM too and only die by SIGKILL, without shutting its children down."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _group_members(pgid: int) -> list[str]:
    """The live (not zombie) processes of the group, as "pid command line"; zombies count as gone, since
    the init process of a container may reap orphans late."""
    import psutil

    members = []
    for proc in psutil.process_iter(["status", "cmdline"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                members.append(f"{proc.pid} {' '.join(proc.info['cmdline'] or [])[:200]}")
        except (psutil.Error, ProcessLookupError):
            continue
    return members


def _group_alive(pgid: int) -> bool:
    return bool(_group_members(pgid))


# --- GraphQL -------------------------------------------------------------------------------------------

WORKSPACE = """
query { workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } }
} } } }"""

ASSET_NODES = """
query { assetNodes { assetKey { path } groupName repository { location { name } } } }"""

DAEMONS = """
query { instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"""

RUN = """
query($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run {
  runId status jobName creationTime tags { key value } assetSelection { path }
} } }"""

RUNS = """
query($filter: RunsFilter) { runsOrError(filter: $filter, limit: 100) { ... on Runs { results {
  runId status jobName creationTime tags { key value } assetSelection { path }
} } } }"""

LATEST_MATERIALIZATION = """
query($path: [String!]!) { assetOrError(assetKey: {path: $path}) { ... on Asset {
  assetMaterializations(limit: 1) {
    runId timestamp
    metadataEntries { label ... on TextMetadataEntry { text } ... on FloatMetadataEntry { floatValue } }
  }
} } }"""

CHECK_EXECUTIONS = """
query($path: [String!]!, $check: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 1) {
    runId status evaluation { success severity description }
  }
}"""

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def run_status(dev: DagsterDev, run_id: str) -> dict:
    run = dev.graphql(RUN, runId=run_id)["runOrError"]
    assert run["__typename"] == "Run", run
    return run


def wait_for_run(dev: DagsterDev, run_id: str, timeout: float) -> dict:
    """Until the run ends; fails at once if it ends any other way than SUCCESS."""

    def done():
        run = run_status(dev, run_id)
        if run["status"] in TERMINAL:
            assert run["status"] == "SUCCESS", f"run {run_id} ({run['jobName']}) ended {run['status']}"
            return run
        return None

    return wait_until(done, timeout, f"run {run_id} to succeed")


def latest_materialization(dev: DagsterDev, asset: str) -> dict | None:
    found = dev.graphql(LATEST_MATERIALIZATION, path=[asset])["assetOrError"]
    events = (found or {}).get("assetMaterializations") or []
    return events[0] if events else None


def tags_of(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


# --- the browser -----------------------------------------------------------------------------------------


@contextmanager
def browser_page(playwright):
    """A headless Chromium page on the system browser, with Dagster's first-visit newsletter dialog out of
    the way."""
    from playwright.sync_api import expect

    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    try:
        context = browser.new_context(viewport=VIEWPORT)
        # the "Join the Dagster community" dialog shows once per browser profile; mark it as seen, and
        # should its storage key change, dismiss it whenever it covers the page
        context.add_init_script("window.localStorage.setItem('communityNux', '1')")
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)  # actions and waits
        # assertions have a timeout of their own (5 s unless set): a page of the UI that renders in 6 s on a
        # busy machine would fail an `expect` that an action would have waited for
        expect.set_options(timeout=UI_TIMEOUT_MS)
        page.add_locator_handler(
            page.get_by_text("Join the Dagster community"),
            lambda: page.get_by_role("button", name="Skip").click(),
        )
        yield page
    finally:
        browser.close()


def shot(page, name: str, element=None, full_page: bool = False) -> Path:
    """Save a screenshot as <artifacts>/<name>.png (of ``element`` if given)."""
    path = artifacts_dir() / f"{name}.png"
    page.wait_for_timeout(600)  # let transitions and graph layout settle
    (element or page).screenshot(path=str(path), **({} if element else {"full_page": full_page}))
    return path


def partition_selection(first: date, last: date) -> tuple[str, int]:
    """What to type into the launch dialog's partition selection for the days ``first``..``last``, and how
    many partitions that is: one key, or a range ``[2026-04-01...2026-08-29]`` (Dagster 1.13's syntax)."""
    count = (last - first).days + 1
    if count == 1:
        return first.isoformat(), 1
    return f"[{first.isoformat()}...{last.isoformat()}]", count


def launch_onprem_materialization(
    page,
    dev: DagsterDev,
    days: tuple[date, date] | None = None,
    dialog_shot: str | None = None,
    backfill_shot: str | None = None,
    backfill_timeout: float = 120,
) -> str:
    """Materialize every on-prem asset (and its checks) the way a person does, and return the run id;
    the page is left on the run's page.

    Jobs -> onprem_refresh -> "Materialize all". Unpartitioned assets launch at once: a toast "Launched
    run abcd1234 [View]" appears, and its View link opens the run.

    Daily-partitioned assets open the dialog "Launch runs to materialize N assets" instead, with "Partition
    selection" on "Custom" and 0 partitions, and (with more than 90 days of partitions) a note that only the
    last 90 days are shown. This presses "Show all partitions" (a range before those 90 days is "not found"
    otherwise), then types the days ``first``..``last`` into the selection (see partition_selection), or
    presses "Latest" when ``days`` is None, and checks the partition count. One partition launches with
    "Launch 1 run" and gives the run toast above. Several launch with "Launch backfill": the toast reads
    "Created backfill abcdefgh [View]", View opens the backfill's page (/runs/b/<id>), and the backfill
    daemon creates the run(s) within seconds; with BackfillPolicy.single_run() one run for the whole range,
    tagged dagster/backfill=<id> and dagster/asset_partition_range_start / _end, which this finds through
    GraphQL (and opens). ``dialog_shot`` / ``backfill_shot`` name screenshots of the filled-in dialog and
    of the backfill's page. A job that needs run config would open the launchpad; its launch button is
    pressed the same way. (Checked against Dagster 1.13.27.)
    """
    from playwright.sync_api import expect

    base_url = dev.url
    page.goto(f"{base_url}/locations/onprem/jobs/onprem_refresh")
    button = page.get_by_role("button", name="Materialize all")
    expect(button).to_be_enabled()
    page.wait_for_timeout(1000)  # the button is live before the asset graph has loaded its partitions
    button.click()

    run_toast = page.get_by_text(re.compile(r"^Launched run [0-9a-f]{8}"))
    backfill_toast = page.get_by_text(re.compile(r"^Created backfill [0-9a-z]{8}"))
    launch = re.compile(r"^(Launch|Materialize)")
    # the launch dialog (or a launchpad), not an error dialog on top of it
    dialog = page.get_by_role("dialog").filter(has=page.get_by_role("button", name=launch))
    expect(run_toast.or_(dialog).first).to_be_visible()
    if not run_toast.is_visible() and dialog.is_visible():
        if dialog.get_by_text("Partition selection").count():
            _select_partitions(page, dialog, days)
        if dialog_shot:
            shot(page, dialog_shot)
        dialog.get_by_role("button", name=launch).last.click()
    expect(run_toast.or_(backfill_toast).first).to_be_visible()

    if backfill_toast.is_visible():
        backfill_id = re.search(r"backfill\s+([0-9a-z]{8})", backfill_toast.inner_text()).group(1)
        page.locator(f'a[href="/runs/b/{backfill_id}"]').filter(has_text="View").first.click()
        page.wait_for_url(f"**/runs/b/{backfill_id}*", wait_until="commit")

        def backfill_run():
            runs = dev.graphql(RUNS, filter={"tags": [{"key": "dagster/backfill", "value": backfill_id}]})[
                "runsOrError"
            ]["results"]
            return runs[-1]["runId"] if runs else None  # newest first: the first one it created

        run_id = wait_until(backfill_run, backfill_timeout, f"backfill {backfill_id} to create its run")
        if backfill_shot:
            page.reload()  # the overview: the partitions targeted, in progress, succeeded, failed
            expect(page.get_by_role("row").filter(has_text="onprem_refresh").first).to_be_visible()
            shot(page, backfill_shot)
        page.goto(f"{base_url}/runs/{run_id}")
        expect(page.get_by_text(re.compile(r"^\d+ assets?$")).first).to_be_visible()  # its header
        return run_id

    prefix = re.search(r"[0-9a-f]{8}", run_toast.inner_text()).group(0)
    # the toast's "View" is a link to the run's page; its address carries the full run id
    view = page.locator(f'a[href^="/runs/{prefix}"]').filter(has_text="View").first
    run_id = re.search(r"/runs/([0-9a-f-]{36})", view.get_attribute("href")).group(1)
    view.click()
    page.wait_for_url(f"**/runs/{run_id}*", wait_until="commit")
    return run_id


def _select_partitions(page, dialog, days: tuple[date, date] | None) -> None:
    """Fill the launch dialog's "Partition selection" with ``days`` (None: "Latest"), and check the count.

    The dialog renders before it has loaded the partitions: the dates under the partition bar, and with
    them the note "Showing the last 90 days ... Show all partitions", come a moment later. A range outside
    those 90 days is "not found" (an error dialog) until "Show all partitions" is pressed; should that
    happen anyway, this closes the error, shows all partitions and types the range once more.
    """
    from playwright.sync_api import expect

    if days is None:
        dialog.get_by_role("button", name="Latest", exact=True).click()
        return
    expect(dialog.get_by_text(re.compile(r"^\d{4}-\d{2}-\d{2}$")).first).to_be_visible()
    page.wait_for_timeout(500)
    text, count = partition_selection(*days)
    show_all = dialog.get_by_role("button", name="Show all partitions")
    error = page.get_by_role("dialog").filter(has_text="Could not find partitions")
    wanted = dialog.get_by_text(re.compile(rf"^{count} partitions?$"))
    for _ in range(2):
        if show_all.count():
            show_all.click()
            expect(show_all).to_have_count(0)
        field = dialog.get_by_role("textbox").first
        field.fill(text)
        field.press("Enter")
        expect(wanted.or_(error).first).to_be_visible()
        if not error.count():
            return
        message = error.first.inner_text()
        error.get_by_role("button", name="OK").click()
        expect(error).to_have_count(0)
    raise AssertionError(f"Dagster did not take the partition selection {text}: {message}")
