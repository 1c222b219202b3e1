"""Schema migrations shipped as ``faultmaven/migrations/<prefix>_<NNNN>_*.sql`` files, applied in name order.

Each store applies its own prefix once, records each file's stem in a ``schema_migrations`` table, and
serialises concurrent starts (PostgreSQL: an advisory lock; SQLite: ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import importlib.resources
import logging
import sqlite3
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    sql: str


def load_migrations(prefix: str) -> list[Migration]:
    """Every ``<prefix>*.sql`` file in the package's migrations folder, in name order."""
    folder = importlib.resources.files("faultmaven").joinpath("migrations")
    found = [
        Migration(version=entry.name.removesuffix(".sql"), sql=entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.startswith(prefix) and entry.name.endswith(".sql")
    ]
    if not found:
        raise RuntimeError(f"No migrations named {prefix}*.sql are packaged in faultmaven/migrations.")
    return sorted(found, key=lambda migration: migration.version)


def split_sqlite_statements(script: str) -> list[str]:
    """Split a script into complete statements (so they can run inside one explicit transaction, which
    ``executescript`` would commit)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if statement and not all(
                part.strip().startswith("--") or not part.strip() for part in statement.splitlines()
            ):
                statements.append(statement)
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise ValueError("The migration script ends with an incomplete SQL statement.")
    return statements


def apply_sqlite_migrations(conn: sqlite3.Connection, prefix: str) -> list[str]:
    """Apply pending migrations in one ``BEGIN IMMEDIATE`` transaction; return the versions applied.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    migrations = load_migrations(prefix)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        applied: list[str] = []
        for migration in migrations:
            if migration.version in done:
                continue
            for statement in split_sqlite_statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ'))",
                (migration.version,),
            )
            applied.append(migration.version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if applied:
        log.info("applied sqlite migrations", extra={"versions": ",".join(applied)})
    return applied
