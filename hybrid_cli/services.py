"""Local services for the hybrid profile: PostgreSQL (on-prem warehouse and Dagster storage), an S3 API
server (moto_server) and Redis, on loopback with their data under $HYBRID_HOME/services.

`hybrid services up` is idempotent: it starts what is down, leaves what is up, creates the role, databases
and bucket, and writes $HYBRID_HOME/services.env (mode 0600; never committed), which is also the environment
the Feast CLI needs in the hybrid profile (HYBRID_FEAST_REDIS, the AWS_* keys). `hybrid services down` stops
them. On real infrastructure you skip this and set the same variables yourself (README: "Run on real AWS").
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PG_PORT = 55432  # fixed loopback ports, away from the defaults a developer may already run
REDIS_PORT = 56379
S3_PORT = 55000
HOST = "127.0.0.1"
BUCKET = "hybrid-platform"
ROLE = "hybrid"


@dataclass
class Paths:
    root: Path

    @property
    def pg(self) -> Path:
        return self.root / "postgres"

    @property
    def redis(self) -> Path:
        return self.root / "redis"

    @property
    def s3(self) -> Path:
        return self.root / "s3"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets.env"


def _say(message: str) -> None:
    print(f"[services] {message}", flush=True)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise SystemExit(
            "PostgreSQL is not installed: `make services` installs it (apt-get install postgresql)"
        )
    return found[-1]


def _as_postgres(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, **kw)


def _load_secrets(paths: Paths) -> dict[str, str]:
    from core.settings import read_env_file

    values = read_env_file(paths.secrets)
    changed = False
    for key, make in (
        ("PG_PASSWORD", lambda: secrets.token_urlsafe(18)),
        ("REDIS_PASSWORD", lambda: secrets.token_urlsafe(18)),
        ("AWS_ACCESS_KEY_ID", lambda: "AKID" + secrets.token_hex(8).upper()),
        ("AWS_SECRET_ACCESS_KEY", lambda: secrets.token_urlsafe(30)),
    ):
        if key not in values:
            values[key] = make()
            changed = True
    if changed:
        _write_private(paths.secrets, values)
    return values


def _write_private(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


# -- PostgreSQL ------------------------------------------------------------------------------------
def _pg_up(paths: Paths, password: str) -> None:
    data = paths.pg / "data"
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        paths.pg.mkdir(parents=True, exist_ok=True)
        os.chown(paths.pg, pw.pw_uid, pw.pw_gid)
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        r = _as_postgres(
            [
                _pg_bin("initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
            ]
        )
        if r.returncode:
            raise SystemExit(f"initdb failed: {r.stderr[-2000:]}")
    status = _as_postgres([_pg_bin("pg_ctl"), "-D", str(data), "status"])
    if status.returncode == 0:
        _say(f"PostgreSQL already running on {HOST}:{PG_PORT}")
    else:
        r = _as_postgres(
            [
                _pg_bin("pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(paths.pg / "postgres.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {PG_PORT} -k {paths.pg} -c listen_addresses={HOST}",
                "start",
            ]
        )
        if r.returncode:
            log = (
                (paths.pg / "postgres.log").read_text()[-2000:]
                if (paths.pg / "postgres.log").exists()
                else ""
            )
            raise SystemExit(f"PostgreSQL did not start: {r.stderr[-1000:]} {log}")
        _say(f"PostgreSQL started on {HOST}:{PG_PORT}")
    import psycopg

    with psycopg.connect(
        host=str(paths.pg), port=PG_PORT, user="postgres", dbname="postgres", autocommit=True
    ) as con:
        exists = con.execute("select 1 from pg_roles where rolname = %s", [ROLE]).fetchone()
        verb = "alter" if exists else "create"
        secret = "'" + password.replace("'", "''") + "'"
        con.execute(f"{verb} role {ROLE} login createdb password {secret}")  # createdb: tests isolate
        for db in ("onprem", "dagster"):
            if not con.execute("select 1 from pg_database where datname = %s", [db]).fetchone():
                con.execute(f"create database {db} owner {ROLE}")


def _pg_down(paths: Paths) -> None:
    data = paths.pg / "data"
    if not (data / "PG_VERSION").exists():
        return
    r = _as_postgres([_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    _say("PostgreSQL stopped" if r.returncode == 0 else "PostgreSQL was not running")


# -- Redis -----------------------------------------------------------------------------------------
def _redis_client(password: str):
    import redis

    return redis.Redis(
        host=HOST, port=REDIS_PORT, password=password, socket_timeout=2, socket_connect_timeout=2
    )


def _redis_up(paths: Paths, password: str) -> None:
    import redis

    try:
        _redis_client(password).ping()
        _say(f"Redis already running on {HOST}:{REDIS_PORT}")
        return
    except redis.RedisError:
        pass
    server = shutil.which("redis-server")
    if not server:
        raise SystemExit(
            "redis-server is not installed: `make services` installs it (apt-get install redis-server)"
        )
    paths.redis.mkdir(parents=True, exist_ok=True)
    conf = paths.redis / "redis.conf"
    conf.write_text(
        f"bind {HOST}\nport {REDIS_PORT}\ndir {paths.redis}\ndaemonize yes\n"
        f"pidfile {paths.redis / 'redis.pid'}\nlogfile {paths.redis / 'redis.log'}\n"
        f"requirepass {password}\nappendonly yes\nprotected-mode yes\n"
    )
    os.chmod(conf, 0o600)
    subprocess.run([server, str(conf)], check=True)
    _wait(lambda: _redis_client(password).ping(), "Redis", f"{HOST}:{REDIS_PORT}")
    _say(f"Redis started on {HOST}:{REDIS_PORT}")


def _redis_down(paths: Paths, password: str) -> None:
    import redis

    try:
        _redis_client(password).shutdown(nosave=True)
    except redis.ConnectionError:
        pass
    except redis.RedisError:
        pass
    _say("Redis stopped")


# -- S3 API (moto_server) --------------------------------------------------------------------------
def _s3_answers() -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{HOST}:{S3_PORT}/", timeout=2):
            return True
    except Exception:
        return False


def _s3_up(paths: Paths, creds: dict[str, str]) -> None:
    if _s3_answers():
        _say(f"S3 API (moto_server) already running on {HOST}:{S3_PORT}")
    else:
        moto = Path(sys.executable).with_name("moto_server")
        if not moto.exists():
            raise SystemExit("moto_server is missing: it comes with the dev dependencies (`uv sync`)")
        paths.s3.mkdir(parents=True, exist_ok=True)
        with open(paths.s3 / "moto.log", "ab") as log:
            proc = subprocess.Popen(
                [str(moto), "-H", HOST, "-p", str(S3_PORT)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (paths.s3 / "moto.pid").write_text(str(proc.pid))
        _wait(_s3_answers, "S3 API", f"{HOST}:{S3_PORT}")
        _say(f"S3 API (moto_server) started on {HOST}:{S3_PORT}")
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{HOST}:{S3_PORT}",
        region_name="us-east-1",
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
    )
    if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=BUCKET)
        _say(f"bucket {BUCKET} created")


def _s3_down(paths: Paths) -> None:
    pid_file = paths.s3 / "moto.pid"
    if pid_file.exists():
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        pid_file.unlink()
    _say("S3 API stopped")


def _wait(probe, name: str, address: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except Exception:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{name} at {address} did not answer within {timeout:.0f}s")


def services_env(creds: dict[str, str]) -> dict[str, str]:
    from resources.feature_store import REDIS_ENV, redis_connection_string

    redis_url = f"redis://:{creds['REDIS_PASSWORD']}@{HOST}:{REDIS_PORT}/0"
    return {
        "HYBRID_ONPREM_DSN": f"postgresql://{ROLE}:{creds['PG_PASSWORD']}@{HOST}:{PG_PORT}/onprem",
        "HYBRID_DAGSTER_PG_URL": f"postgresql+psycopg2://{ROLE}:{creds['PG_PASSWORD']}@{HOST}:{PG_PORT}/dagster",
        "HYBRID_S3_ENDPOINT": f"http://{HOST}:{S3_PORT}",
        "HYBRID_S3_BUCKET": BUCKET,
        "HYBRID_REDIS_URL": redis_url,
        # the same Redis in Feast's host:port,password=... form: feature_store.yaml refers to it, so a shell with
        # this file's environment (`set -a; . services.env; set +a`) can run `feast -c $HYBRID_HOME/feast ...`
        REDIS_ENV: redis_connection_string(redis_url),
        "AWS_ACCESS_KEY_ID": creds["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": creds["AWS_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def up(home: Path) -> Path:
    paths = Paths(home / "services")
    creds = _load_secrets(paths)
    _pg_up(paths, creds["PG_PASSWORD"])
    _redis_up(paths, creds["REDIS_PASSWORD"])
    _s3_up(paths, creds)
    target = home / "services.env"
    _write_private(target, services_env(creds))
    _say(f"all services up; settings in {target} (HYBRID_PROFILE=hybrid uses them)")
    return target


def down(home: Path) -> None:
    paths = Paths(home / "services")
    creds = _load_secrets(paths) if paths.secrets.exists() else {"REDIS_PASSWORD": ""}
    _s3_down(paths)
    _redis_down(paths, creds["REDIS_PASSWORD"])
    _pg_down(paths)
