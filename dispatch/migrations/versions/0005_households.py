"""Households: one phone may belong to several elders (a couple's landline); elders may carry
a stable external reference from the registry file.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("elder_phones") as batch:
        batch.drop_constraint(op.f("uq_elder_phones_number_e164"), type_="unique")
        batch.create_unique_constraint(op.f("uq_elder_phones_elder_id_number_e164"),
                                       ["elder_id", "number_e164"])
        batch.create_index(op.f("ix_elder_phones_number_e164"), ["number_e164"])
    with op.batch_alter_table("elders") as batch:
        batch.add_column(sa.Column("external_ref", sa.String(64), nullable=True))
        batch.create_unique_constraint(op.f("uq_elders_external_ref"), ["external_ref"])


def downgrade() -> None:
    """Refused while a number is shared: which elder would keep it is not ours to decide."""
    shared = op.get_bind().execute(sa.text(
        "SELECT number_e164 FROM elder_phones GROUP BY number_e164 HAVING COUNT(*) > 1"
    )).first()
    if shared is not None:
        raise RuntimeError("cannot downgrade: some phone numbers belong to several elders")
    with op.batch_alter_table("elders") as batch:
        batch.drop_constraint(op.f("uq_elders_external_ref"), type_="unique")
        batch.drop_column("external_ref")
    with op.batch_alter_table("elder_phones") as batch:
        batch.drop_index(op.f("ix_elder_phones_number_e164"))
        batch.drop_constraint(op.f("uq_elder_phones_elder_id_number_e164"), type_="unique")
        batch.create_unique_constraint(op.f("uq_elder_phones_number_e164"), ["number_e164"])
