"""Engines, sessions and schema upgrades for the one database Godel uses."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from godel.errors import ServiceUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the CLI read while worker threads write; the busy timeout
    # turns short write contention into a wait instead of "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@functools.lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One pooled engine per URL per process."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def alembic_config(url: str) -> Config:
    # Alembic is imported only to migrate: it is a third of the CLI's start-up time.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["engine"] = get_engine(url)
    return config


def current_revision(url: str) -> str | None:
    with get_engine(url).connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (OperationalError, ProgrammingError) as exc:
            if "alembic_version" in str(exc):  # no table yet: an empty database
                return None
            raise


def head_revision() -> str:
    """The newest migration; revisions are numbered ``0001``, ``0002``... by convention."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations; what is stored is kept, as Alembic only moves forward."""
    from alembic import command

    try:
        command.upgrade(alembic_config(url), revision)
    except OperationalError as exc:
        raise ServiceUnavailable(f"database {safe_url(url)} is unreachable: {exc.orig}") from None


def ensure_schema(url: str) -> None:
    """Upgrade when the database is behind, so a fresh SQLite file just works."""
    try:
        behind = current_revision(url) != head_revision()
    except OperationalError as exc:
        raise ServiceUnavailable(f"database {safe_url(url)} is unreachable: {exc.orig}") from None
    if behind:
        upgrade(url)


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and ``godel status``."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@functools.lru_cache(maxsize=8)
def _factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    session = _factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
