"""The province's side of the export: county platforms' batches merged into one database.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAMP = sa.DateTime(timezone=True)


def _table(name: str, key_length: int, *columns: sa.Column) -> None:
    """A merged table: its id, the platform it came from (indexed), its columns, as_of."""
    op.create_table(name, sa.Column("id", sa.String(key_length), primary_key=True),
                    sa.Column("source", sa.String(6), nullable=False), *columns,
                    sa.Column("as_of", STAMP, nullable=False))
    op.create_index(f"ix_{name}_source", name, ["source"])


def upgrade() -> None:
    op.create_table(
        "upstream_batches",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(6), nullable=False),
        sa.Column("since", STAMP, nullable=True),
        sa.Column("until", STAMP, nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("imported_at", STAMP, nullable=False),
    )
    op.create_index("ix_upstream_batches_source", "upstream_batches", ["source"])
    _table("upstream_elders", 32,
           sa.Column("province", sa.String(6)), sa.Column("city", sa.String(6)),
           sa.Column("county", sa.String(6)), sa.Column("category", sa.String(24), nullable=False),
           sa.Column("gender", sa.String(1)), sa.Column("birth_year", sa.Integer()),
           sa.Column("registered_at", STAMP, nullable=False))
    op.create_index("ix_upstream_elders_county", "upstream_elders", ["county"])
    _table("upstream_vendors", 32,
           sa.Column("name", sa.String(128), nullable=False),
           sa.Column("status", sa.String(16), nullable=False),
           sa.Column("counties", sa.JSON(), nullable=False),
           sa.Column("services", sa.JSON(), nullable=False),
           sa.Column("rank_score", sa.Float()),
           sa.Column("registered_at", STAMP, nullable=False))
    _table("upstream_orders", 16,
           sa.Column("order_no", sa.String(8), nullable=False),
           sa.Column("elder", sa.String(32), nullable=False),
           sa.Column("county", sa.String(6)),
           sa.Column("service", sa.String(16), nullable=False),
           sa.Column("status", sa.String(16), nullable=False),
           sa.Column("source_channel", sa.String(16), nullable=False),
           sa.Column("priority", sa.Integer()),
           sa.Column("vendor", sa.String(32)),
           sa.Column("created_at", STAMP, nullable=False),
           sa.Column("accepted_at", STAMP), sa.Column("arrived_at", STAMP),
           sa.Column("completed_at", STAMP), sa.Column("rating", sa.Integer()),
           sa.Column("timeline", sa.JSON(), nullable=False))
    op.create_index("ix_upstream_orders_county", "upstream_orders", ["county"])
    _table("upstream_alarms", 32,
           sa.Column("elder", sa.String(32)), sa.Column("kind", sa.String(24), nullable=False),
           sa.Column("action", sa.String(16), nullable=False), sa.Column("code", sa.String(3)),
           sa.Column("received_at", STAMP, nullable=False), sa.Column("handled_at", STAMP),
           sa.Column("order", sa.String(16)))
    _table("upstream_complaints", 32,
           sa.Column("order", sa.String(16), nullable=False), sa.Column("vendor", sa.String(32)),
           sa.Column("rating", sa.Integer()), sa.Column("opened_at", STAMP, nullable=False),
           sa.Column("closed_at", STAMP), sa.Column("upheld", sa.Boolean()))


def downgrade() -> None:
    for name in ("upstream_complaints", "upstream_alarms", "upstream_orders",
                 "upstream_vendors", "upstream_elders", "upstream_batches"):
        op.drop_table(name)
