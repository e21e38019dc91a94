"""The databases the benchmarks keep for themselves, on each server they compare.

Backends are named as in DATABASE_URL's scheme: ``sqlite`` (a file the
caller names), ``postgres`` and ``mysql`` (MySQL or MariaDB). A server
benchmark database lives on DATABASE_URL's server when DATABASE_URL names
that vendor, else on the local default (``postgres://postgres@127.0.0.1:5432``,
``mysql://root@127.0.0.1:3306``); ``POSTGRES_URL`` and ``MYSQL_URL`` name
another server. A MySQL/MariaDB database is made with utf8mb4 and
``utf8mb4_unicode_ci``, as tests/settings.py makes its test database, and
its connections allow ``local_infile`` (the bulk path's LOAD DATA).
``DJANGO_RECS_BENCH_DB_SUFFIX`` is appended to every server database's name,
so two checkouts benchmarking on one server keep apart.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse, urlunparse

__all__ = [
    "BACKENDS",
    "create_database",
    "create_postgres_database",
    "display_name",
    "drop_database",
    "postgres_url",
    "scratch_database",
    "server_cpu_seconds",
    "server_url",
    "unavailable",
]

#: Every backend a benchmark compares, in the order of its table.
BACKENDS = ("sqlite", "postgres", "mysql")

_DEFAULTS = {
    "postgres": "postgres://postgres@127.0.0.1:5432/x",
    "mysql": "mysql://root@127.0.0.1:3306/x",
}


def server_url(backend: str, name: str) -> str:
    """The URL of database ``name`` on ``backend``'s server ("postgres" or "mysql")."""
    if backend not in _DEFAULTS:
        raise ValueError(f"backend must be one of {sorted(_DEFAULTS)}, got {backend!r}")
    url = urlparse(os.environ.get(f"{backend.upper()}_URL") or os.environ.get("DATABASE_URL") or "")
    if not url.scheme.startswith(backend):
        url = urlparse(os.environ.get(f"{backend.upper()}_URL") or _DEFAULTS[backend])
    return urlunparse(url._replace(path=f"/{name}"))


def _named(name: str) -> str:
    return name + os.environ.get("DJANGO_RECS_BENCH_DB_SUFFIX", "")


def postgres_url(name: str) -> str:
    """DATABASE_URL's server and user (default postgres@127.0.0.1:5432), database ``name``."""
    return server_url("postgres", _named(name))


def _mysql_connect(url: str):
    import MySQLdb

    parsed = urlparse(url)
    return MySQLdb.connect(host=parsed.hostname or "127.0.0.1", port=parsed.port or 3306,
                           user=unquote(parsed.username or "root"),
                           password=unquote(parsed.password or ""), charset="utf8mb4")


def _admin(backend: str, sql: str, params=()) -> list:
    url = server_url(backend, "postgres" if backend == "postgres" else "")
    if backend == "postgres":
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    conn = _mysql_connect(url)
    try:
        cursor = conn.cursor()
        cursor.execute(sql, params or None)
        return list(cursor.fetchall()) if cursor.description else []
    finally:
        conn.close()


def unavailable(backend: str) -> str | None:
    """Why ``backend``'s server cannot be reached (its error), or None when it can."""
    if backend == "sqlite":
        return None
    try:
        _admin(backend, "SELECT 1")
    except Exception as error:  # the driver's own error says what is wrong
        return f"{type(error).__name__}: {error}".strip()
    return None


def create_database(backend: str, name: str, *, fresh: bool = False) -> str:
    """Create database ``name`` on ``backend``'s server unless it exists (``fresh``: drop first); its URL."""
    if fresh:
        drop_database(backend, name)
    name = _named(name)
    if backend == "postgres":
        if not _admin("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", [name]):
            _admin("postgres", f'CREATE DATABASE "{name}"')
    else:
        _admin("mysql", f"CREATE DATABASE IF NOT EXISTS `{name}` "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    return server_url(backend, name)


def drop_database(backend: str, name: str) -> None:
    """Drop database ``name`` on ``backend``'s server if it exists."""
    name = _named(name)
    if backend == "postgres":
        _admin("postgres", f'DROP DATABASE IF EXISTS "{name}"')
    else:
        _admin("mysql", f"DROP DATABASE IF EXISTS `{name}`")


@contextlib.contextmanager
def scratch_database(backend: str, name: str, env: dict) -> Iterator[None]:
    """A new, empty database ``name`` on ``backend`` for a child process, removed afterwards.

    Points ``env`` (the child's environment) at it: DATABASE_URL for a server,
    DJANGO_RECS_SQLITE_PATH (a file in the temporary directory) for SQLite.
    """
    sqlite_file = None
    if backend == "sqlite":
        sqlite_file = str(Path(tempfile.gettempdir()) / f"{name}_{os.getpid()}.sqlite3")
        env.pop("DATABASE_URL", None)
        env["DJANGO_RECS_SQLITE_PATH"] = sqlite_file
    elif backend in _DEFAULTS:
        env["DATABASE_URL"] = create_database(backend, name, fresh=True)
    else:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    try:
        yield
    finally:
        if sqlite_file:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(sqlite_file + suffix).unlink(missing_ok=True)
        else:
            drop_database(backend, name)


def create_postgres_database(name: str) -> str:
    """Create database ``name`` unless it exists; its URL."""
    return create_database("postgres", name)


def server_cpu_seconds(connection) -> float | None:
    """CPU seconds of the database server on this machine so far, else None.

    PostgreSQL: every process of the server — the postmaster and its live
    children (backends, WAL writer, checkpointer…), plus what its children
    that have exited used (a run writes its tables on several connections,
    and their backends exit with them). Other clients of the same server
    count too: measure on a quiet server. MariaDB: the connection's thread
    (``information_schema.PROCESSLIST.TID``). SQLite runs in the client's
    process (None).
    """
    if connection.vendor == "postgresql":
        sql = "SELECT pg_backend_pid()"
    elif connection.vendor == "mysql" and connection.mysql_is_mariadb:
        sql = "SELECT TID FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()"
    else:
        return None
    with connection.cursor() as cursor:
        cursor.execute(sql)
        pid = cursor.fetchone()[0]
    ticks = os.sysconf("SC_CLK_TCK")
    stat = _proc_stat(pid)
    if stat is None:
        return None
    if connection.vendor != "postgresql":
        return (int(stat[11]) + int(stat[12])) / ticks  # utime + stime
    postmaster = int(stat[1])
    parent = _proc_stat(postmaster)
    if parent is None:
        return None
    total = sum(int(value) for value in parent[11:15])  # utime, stime, cutime, cstime
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (child := _proc_stat(int(entry))) and int(child[1]) == postmaster:
            total += int(child[11]) + int(child[12])
    return total / ticks


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command (state first), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def display_name(connection) -> str:
    """The server's name and version as a table shows it ("MariaDB 10.11", "PostgreSQL 16")."""
    if connection.vendor == "postgresql":
        major = connection.pg_version // 10000
        return f"PostgreSQL {major}"
    if connection.vendor == "mysql":
        return f"{connection.display_name} {'.'.join(map(str, connection.mysql_version[:2]))}"
    import sqlite3

    return f"SQLite {sqlite3.sqlite_version}"
