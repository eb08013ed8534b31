"""Recordings: callers' messages and recorded calls, indexed to their call, elder and order.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("kind", sa.Enum("message", "call", name="recordingkind", native_enum=False,
                                  create_constraint=True, length=16), nullable=False),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("elder_id", sa.Integer(), sa.ForeignKey("elders.id"), nullable=True),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("work_orders.id"), nullable=True),
        sa.Column("caller_number", sa.String(20), nullable=True),
        sa.Column("file", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("token", name="uq_recordings_token"),
        sa.UniqueConstraint("file", name="uq_recordings_file"),
    )
    op.create_index("ix_recordings_uniqueid", "recordings", ["uniqueid"])
    op.create_index("ix_recordings_elder_id", "recordings", ["elder_id"])
    op.create_index("ix_recordings_order_id", "recordings", ["order_id"])
    op.create_index("ix_recordings_started_at", "recordings", ["started_at"])


def downgrade() -> None:
    op.drop_table("recordings")
