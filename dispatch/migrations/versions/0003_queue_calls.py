"""The operator queue: each caller's wait, answer or abandonment.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.create_table(
        "queue_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("linkedid", sa.String(64), nullable=True),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("caller_number", sa.String(32), nullable=True),
        _utc("queued_at"),
        _utc("joined_at"),
        _utc("answered_at"),
        sa.Column("operator", sa.String(80), nullable=True),
        _utc("abandoned_at"),
        _utc("left_at"),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_calls")),
        sa.UniqueConstraint("uniqueid", name=op.f("uq_queue_calls_uniqueid")),
    )
    op.create_index(op.f("ix_queue_calls_linkedid"), "queue_calls", ["linkedid"])
    op.create_index(op.f("ix_queue_calls_queued_at"), "queue_calls", ["queued_at"])


def downgrade() -> None:
    op.drop_table("queue_calls")
