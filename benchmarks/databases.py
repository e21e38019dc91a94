"""The PostgreSQL databases the benchmarks keep for themselves."""

from __future__ import annotations

import os
from urllib.parse import urlparse, urlunparse

__all__ = ["create_postgres_database", "postgres_url"]


def postgres_url(name: str) -> str:
    """DATABASE_URL's server and user (default postgres@127.0.0.1:5432), database ``name``."""
    url = urlparse(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/x")
    if not url.scheme.startswith("postgres"):
        url = urlparse("postgres://postgres@127.0.0.1:5432/x")
    return urlunparse(url._replace(path=f"/{name}"))


def create_postgres_database(name: str) -> str:
    """Create database ``name`` unless it exists; its URL."""
    import psycopg

    url = postgres_url(name)
    admin = urlunparse(urlparse(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return url
