"""An answered outbound call holds its trunk line until its channel hangs up: the channel's
uniqueid and the time it hung up, and an index for the calls finished lately.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_calls") as batch:
        batch.add_column(sa.Column("uniqueid", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hung_up_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_outbound_calls_finished_at", "outbound_calls", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_outbound_calls_finished_at", table_name="outbound_calls")
    with op.batch_alter_table("outbound_calls") as batch:
        batch.drop_column("hung_up_at")
        batch.drop_column("uniqueid")
