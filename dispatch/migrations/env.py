"""Alembic environment: the connection (or URL) comes from ``config.attributes``.

Run through :func:`dispatch.db.upgrade`; no alembic.ini is needed.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from dispatch.db import make_sync_engine, sync_url
from dispatch.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("offline migration needs config.attributes['url']")
    context.configure(
        url=sync_url(url),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("migration needs config.attributes['connection'] or ['url']")
    engine = make_sync_engine(url)
    try:
        with engine.begin() as conn:
            _configure(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
