"""The command line and the settings at their edges: every bad setting or argument is one line on stderr and
exit status 2 (no traceback); settings are range-checked once, in load_settings; the generator writes all or
nothing, and keeps its state per profile so one home can switch profiles."""

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from core.settings import REPO_ROOT, ConfigError, load_settings
from hybrid_cli.generator import MARKETING_PREFIX, Generator, GeneratorStateError, undo_new_paths
from resources.object_store import ObjectStore
from resources.warehouse import DuckDBWarehouse

TABLES = ("customers", "transactions", "support_tickets")
SMALL = {"n_customers": 300, "days": 10}


def _env(home: Path, **extra: str) -> dict[str, str]:
    """The process environment without the caller's HYBRID_* settings, pointed at ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRID_")}
    return {**env, "HYBRID_HOME": str(home), **extra}


def hybrid(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hybrid_cli.cli", *args],
        env=_env(home, **extra),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# -- settings: one line, exit 2, for every command -------------------------------------------------------
BAD_SETTINGS = [
    ({"HYBRID_PROFILE": "bogus"}, ["HYBRID_PROFILE", "bogus", "embedded, hybrid"]),
    ({"HYBRID_AUC_FLOOR": "abc"}, ["HYBRID_AUC_FLOOR", "abc", "(0.5, 1]"]),
    ({"HYBRID_AUC_FLOOR": "2"}, ["HYBRID_AUC_FLOOR=2", "(0.5, 1]"]),
    ({"HYBRID_MAX_INVALID_SHARE": "-1"}, ["HYBRID_MAX_INVALID_SHARE=-1", "[0, 1]"]),
    ({"HYBRID_MAX_INVALID_SHARE": "abc"}, ["HYBRID_MAX_INVALID_SHARE", "abc", "[0, 1]"]),
    ({"HYBRID_AUC_TOLERANCE": "0.9"}, ["HYBRID_AUC_TOLERANCE=0.9", "[0, 0.5]"]),
    ({"HYBRID_MODEL_POLL_SECONDS": "0"}, ["HYBRID_MODEL_POLL_SECONDS=0", "> 0"]),
    ({"HYBRID_LABEL_HORIZON_DAYS": "0"}, ["HYBRID_LABEL_HORIZON_DAYS='0'", "from 1 to 365"]),
]


@pytest.mark.parametrize("command", ["demo", "status", "generate"])
@pytest.mark.parametrize(("setting", "words"), BAD_SETTINGS, ids=lambda v: str(v)[:40])
def test_a_bad_setting_is_one_line_and_exit_2(tmp_path, command, setting, words):
    home = tmp_path / "home"
    assert_one_line_error(hybrid(home, command, **setting), f"hybrid {command}", *words)
    assert not home.exists(), "nothing is written before the settings are valid"


def test_hybrid_home_that_is_a_file_or_under_one(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    for command in ("demo", "status", "generate", "truth --snapshot 2026-05-01"):
        assert_one_line_error(hybrid(a_file, *command.split()), "HYBRID_HOME", str(a_file), "is a file")
    assert_one_line_error(hybrid(a_file / "home", "generate"), "HYBRID_HOME", "under a file")
    assert a_file.read_text() == "not a folder"


def test_hybrid_home_that_cannot_be_written(tmp_path):
    if os.geteuid() == 0:  # root writes through any mode: a folder of a pseudo file system instead
        homes = [Path("/proc/1"), Path("/proc/hybrid-home")]
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        homes = [locked, locked / "home"]
    for home in homes:
        for command in ("demo", "generate", "backfill --start 2026-05-01 --end 2026-05-02"):
            assert_one_line_error(hybrid(home, *command.split()), "HYBRID_HOME", str(home))


# -- arguments: argparse names the argument, on one line --------------------------------------------------
BAD_ARGUMENTS = [
    ("generate --customers -5", "--customers"),
    ("generate --customers 0", "--customers"),
    ("generate --customers many", "--customers"),
    ("generate --days -3", "--days"),
    ("generate --days 0", "--days"),
    ("generate --seed -1", "--seed"),
    ("generate --start 2026-13-01", "--start"),
    ("demo --customers 0", "--customers"),
    ("demo --days 0", "--days"),
    ("backfill --start 2026-05-40 --end 2026-06-01", "--start"),
    ("backfill --start 2026-05-01 --end yesterday", "--end"),
    ("backfill --start 2026-05-04 --end 2026-05-01", "--end"),
    ("truth --snapshot bad", "--snapshot"),
    ("quarantine --show -1", "--show"),
    ("status --timeout 0", "--timeout"),
    ("ui --port 70000", "--port"),
]


@pytest.mark.parametrize(("command", "argument"), BAD_ARGUMENTS)
def test_a_bad_argument_is_one_line_and_exit_2(tmp_path, command, argument):
    home = tmp_path / "home"
    line = assert_one_line_error(hybrid(home, *command.split()), f"hybrid {command.split()[0]}", argument)
    assert "error" in line
    assert not home.exists()


def test_a_typo_leaves_a_fresh_home_usable(tmp_path):
    home = tmp_path / "home"
    assert_one_line_error(hybrid(home, "generate", "--days", "-3"), "--days")
    assert_one_line_error(hybrid(home, "generate", "--customers", "0"), "--customers")
    assert not home.exists()
    ok = hybrid(home, "generate", "--customers", "300", "--days", "5")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.partition("generated ")[2])["days"] == 5
    again = hybrid(home, "generate", "--days", "2", "--seed", "3")
    assert again.returncode == 0, again.stderr
    assert (
        '"first_date": "2026-04-06"' in again.stdout
        and "ignored" in again.stdout
        and "--seed" in again.stdout
    )


def test_foreign_source_tables_are_refused_in_one_line(tmp_path):
    home = tmp_path / "home"
    DuckDBWarehouse(home / "onprem.duckdb").execute("create table customers (customer_id BIGINT)")
    result = hybrid(home, "generate", "--customers", "300", "--days", "5")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        result.stderr.count("\n") == 1 and "did not write" in result.stderr and "customers" in result.stderr
    )


# -- load_settings: the ranges, as unit tests ------------------------------------------------------------
def _settings(tmp_path, **values: str):
    return load_settings({"HYBRID_HOME": str(tmp_path / "home"), **values}, apply_env_file=False)


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        (
            "HYBRID_MAX_INVALID_SHARE",
            ["0", "0.01", "1", " 0.5 "],
            ["-0.001", "1.01", "nan", "inf", "1e3", "x"],
        ),
        ("HYBRID_AUC_FLOOR", ["0.5001", "0.7", "1"], ["0.5", "0.2", "1.0001", "-1", "nan", "seventy"]),
        ("HYBRID_AUC_TOLERANCE", ["0", "0.01", "0.5"], ["-0.01", "0.51", "inf", "a lot"]),
        ("HYBRID_MODEL_POLL_SECONDS", ["0.01", "2", "3600"], ["0", "-2", "inf", "nan", "soon"]),
    ],
)
def test_numeric_settings_are_range_checked(tmp_path, name, good, bad):
    attr = {
        "HYBRID_MAX_INVALID_SHARE": "max_invalid_share",
        "HYBRID_AUC_FLOOR": "auc_floor",
        "HYBRID_AUC_TOLERANCE": "auc_tolerance",
        "HYBRID_MODEL_POLL_SECONDS": "model_poll_seconds",
    }[name]
    for value in good:
        assert getattr(_settings(tmp_path, **{name: value}), attr) == float(value)
    for value in bad:
        with pytest.raises(ConfigError) as error:
            _settings(tmp_path, **{name: value})
        message = str(error.value)
        assert name in message and value.strip() in message and "\n" not in message, message


def test_defaults_and_empty_values(tmp_path):
    settings = _settings(tmp_path, HYBRID_AUC_FLOOR="", HYBRID_PROFILE="")
    assert (settings.profile, settings.max_invalid_share, settings.auc_floor) == ("embedded", 0.01, 0.70)
    assert (settings.auc_tolerance, settings.model_poll_seconds) == (0.01, 2.0)


def test_profile_must_be_one_of_the_profiles(tmp_path):
    assert _settings(tmp_path, HYBRID_PROFILE="hybrid").profile == "hybrid"
    with pytest.raises(
        ConfigError, match="HYBRID_PROFILE='Embedded' is not a profile; allowed: embedded, hybrid"
    ):
        _settings(tmp_path, HYBRID_PROFILE="Embedded")


def test_several_problems_are_one_line_and_a_file_setting_names_the_file(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "services.env").write_text("HYBRID_AUC_TOLERANCE=0.75\n")
    with pytest.raises(ConfigError) as error:
        load_settings({"HYBRID_HOME": str(home), "HYBRID_AUC_FLOOR": "3"}, apply_env_file=False)
    message = str(error.value)
    assert "\n" not in message and "HYBRID_AUC_FLOOR=3" in message and "HYBRID_AUC_TOLERANCE=0.75" in message
    assert f"(set in {home / 'services.env'})" in message


def test_hybrid_home_is_checked(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        load_settings({"HYBRID_HOME": str(a_file)}, apply_env_file=False)
    with pytest.raises(ConfigError, match="under a file"):
        load_settings({"HYBRID_HOME": str(a_file / "x")}, apply_env_file=False)
    # a home that does not exist yet is fine, and checking that it could be written does not create it
    fresh = tmp_path / "a" / "b"
    assert load_settings({"HYBRID_HOME": str(fresh)}, apply_env_file=False, writable=True).home == fresh
    assert not (tmp_path / "a").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
    with pytest.raises(ConfigError, match="HYBRID_HOME=/proc/hybrid-home"):
        load_settings({"HYBRID_HOME": "/proc/hybrid-home"}, apply_env_file=False, writable=True)


# -- the generator: all or nothing -----------------------------------------------------------------------
def _generator(home: Path, profile: str = "embedded", warehouse: str = "onprem.duckdb") -> Generator:
    store = ObjectStore(str(home / ("object_store" if profile == "embedded" else f"{profile}_store")))
    return Generator(home, DuckDBWarehouse(home / warehouse), store, profile=profile)


def _dump(gen: Generator) -> dict[str, pl.DataFrame]:
    out = {t: gen.warehouse.query(f"select * from {t} order by all") for t in gen.tables()}
    keys = [k for k in gen.store.list(MARKETING_PREFIX)]
    out["marketing"] = pl.concat([gen.store.read_parquet(k) for k in keys]).sort(pl.all()) if keys else None
    return out


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (a[k] is None and b[k] is None) or (a[k] is not None and b[k] is not None and a[k].equals(b[k]))
        for k in a
    )


def _listing(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")) if home.exists() else []


class Boom(RuntimeError):
    pass


def _fail(*args, **kwargs):
    raise Boom("injected failure")


def test_a_failed_first_generation_leaves_the_home_as_it_was(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "services.env").write_text("# kept\n")
    before = _listing(home)
    for failing in ("store", "save"):
        with pytest.raises(Boom), undo_new_paths(home):
            gen = _generator(home)
            assert not gen.exists()
            if failing == "store":
                gen.store.write_parquet = _fail
            else:
                gen._save = _fail
            gen.create(**SMALL)
        assert _listing(home) == before, failing
    with pytest.raises(ValueError, match="days must be a whole number of 1 or more"):
        _generator(home).create(n_customers=300, days=-3)
    with pytest.raises(ValueError, match="customers must be"):
        _generator(home).create(n_customers=0, days=3)
    gen = _generator(home)
    assert gen.create(**SMALL)["days"] == 10 and gen.exists()
    assert _same(_dump(gen), _dump(_generator(_fresh(tmp_path, "reference", **SMALL))))


def _fresh(tmp_path: Path, name: str, **sizes) -> Path:
    home = tmp_path / name
    _generator(home).create(**sizes)
    return home


def _failing_on(table: str, append):
    return lambda name, frame: _fail() if name == table else append(name, frame)


def test_a_failed_append_leaves_data_and_state_as_they_were(tmp_path):
    home = _fresh(tmp_path, "home", n_customers=300, days=12)
    gen = _generator(home)
    before, state_before = _dump(gen), (home / "generator" / "embedded" / "meta.json").read_text()
    for where in ("support_tickets", "store", "save"):
        gen = _generator(home)
        if where == "support_tickets":
            gen.warehouse.append = _failing_on("support_tickets", gen.warehouse.append)
        elif where == "store":
            gen.store.write_parquet = _fail
        else:
            gen._save = _fail
        with pytest.raises(Boom):
            gen.append(days=9)  # crosses a weekly campaign: a marketing file too
        assert _same(_dump(_generator(home)), before), where
        assert (home / "generator" / "embedded" / "meta.json").read_text() == state_before
        assert not (home / "generator" / "embedded" / "pending.json").exists()
    _generator(home).append(days=9)
    assert _same(
        _dump(_generator(home)), _dump(_generator(_fresh(tmp_path, "one-go", n_customers=300, days=21)))
    )


def test_a_killed_append_is_undone_by_the_next_command(tmp_path):
    home = _fresh(tmp_path, "home", n_customers=300, days=12)
    before = _dump(_generator(home))
    gen = _generator(home)
    gen._save = _fail
    gen._rollback = lambda journal: None  # as if the process died before it could undo anything
    with pytest.raises(Boom):
        gen.append(days=9)
    assert (home / "generator" / "embedded" / "pending.json").exists()
    assert not _same(_dump(_generator(home)), before)  # the half-written rows are there
    assert _generator(home).exists()  # ... and the next command undoes them first
    assert _same(_dump(_generator(home)), before)
    assert not (home / "generator" / "embedded" / "pending.json").exists()


def test_each_profile_keeps_its_own_state_and_switching_works_both_ways(tmp_path):
    """The issue's repro in miniature: one home, two profiles (two warehouses and stores)."""
    home = tmp_path / "home"
    embedded = _generator(home)
    embedded.create(**SMALL)
    other = _generator(home, profile="hybrid", warehouse="other.duckdb")
    assert not other.exists(), "the other profile's warehouse is empty: its data does not exist"
    other.create(n_customers=300, days=7)
    assert _generator(home).exists() and _generator(home, "hybrid", "other.duckdb").exists()
    assert _generator(home).append(days=2)["first_date"] == "2026-04-11"
    assert _generator(home, "hybrid", "other.duckdb").append(days=2)["first_date"] == "2026-04-08"
    assert sorted(p.name for p in (home / "generator").iterdir()) == ["embedded", "hybrid"]


def test_a_home_from_before_per_profile_state_is_adopted(tmp_path):
    home = _fresh(tmp_path, "home", **SMALL)
    state = home / "generator" / "embedded"
    meta = json.loads((state / "meta.json").read_text())
    (state / meta.pop("state_file")).rename(home / "generator" / "customers_latent.parquet")
    (home / "generator" / "meta.json").write_text(json.dumps(meta))
    (state / "meta.json").unlink()
    assert _generator(home).exists(), "the shared state describes this warehouse's data"
    assert not _generator(home, "hybrid", "other.duckdb").exists()
    assert _generator(home).append(days=3)["first_date"] == "2026-04-11"
    assert (state / "meta.json").exists()


def test_tables_without_state_are_refused(tmp_path):
    home = _fresh(tmp_path, "home", **SMALL)
    for path in (home / "generator" / "embedded").iterdir():
        path.unlink()
    gen = _generator(home)
    assert not gen.exists()
    with pytest.raises(GeneratorStateError, match="did not write"):
        gen.create(**SMALL)


def test_lost_marketing_files_are_replayed(tmp_path):
    home = _fresh(tmp_path, "home", **SMALL)
    gen = _generator(home)
    gen.append(days=5)
    before = _dump(gen)
    for key in gen.store.list(MARKETING_PREFIX):
        gen.store.delete(key)
    assert gen.exists() and gen.marketing_missing()
    gen.restore_marketing()
    assert not gen.marketing_missing() and _same(_dump(gen), before)
