"""Dispatch by phone: outbound call attempts, vendors' workers, complaints, order progress.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _check(name: str, values: Sequence[str], length: int) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def upgrade() -> None:
    op.create_table(
        "vendor_workers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("number_e164", sa.String(20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendors.id"], ondelete="CASCADE",
                                name=op.f("fk_vendor_workers_vendor_id_vendors")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vendor_workers")),
        sa.UniqueConstraint("number_e164", name=op.f("uq_vendor_workers_number_e164")),
    )
    op.create_index(op.f("ix_vendor_workers_vendor_id"), "vendor_workers", ["vendor_id"])

    with op.batch_alter_table("vendors") as batch:
        batch.add_column(sa.Column("latitude", sa.Float(), nullable=True))
        batch.add_column(sa.Column("longitude", sa.Float(), nullable=True))
        batch.add_column(sa.Column("max_open_orders", sa.Integer(), nullable=False,
                                   server_default="20"))
    with op.batch_alter_table("vendors") as batch:
        batch.alter_column("max_open_orders", server_default=None)

    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("vendor_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("worker_id", sa.Integer(), nullable=True))
        batch.add_column(_utc("accepted_at"))
        batch.add_column(_utc("arrived_at"))
        batch.add_column(_utc("completed_at"))
        batch.add_column(sa.Column("rating", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_work_orders_vendor_id_vendors"), "vendors",
                                 ["vendor_id"], ["id"])
        batch.create_foreign_key(op.f("fk_work_orders_worker_id_vendor_workers"),
                                 "vendor_workers", ["worker_id"], ["id"])
        batch.create_index(op.f("ix_work_orders_vendor_id"), ["vendor_id"])

    op.create_table(
        "outbound_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", _check("callpurpose", ("vendor_offer", "quality_callback"), 24),
                  nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=True),
        sa.Column("number_e164", sa.String(20), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("state", _check("outboundstate", ("scheduled", "dialing", "answered", "done",
                                                     "cancelled"), 16), nullable=False),
        _utc("due_at", nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        _utc("claimed_at"),
        _utc("answered_at"),
        _utc("finished_at"),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("reason_code", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["work_orders.id"], ondelete="CASCADE",
                                name=op.f("fk_outbound_calls_order_id_work_orders")),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendors.id"],
                                name=op.f("fk_outbound_calls_vendor_id_vendors")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_calls")),
        sa.UniqueConstraint("order_id", "purpose", "seq",
                            name=op.f("uq_outbound_calls_order_id_purpose_seq")),
    )
    op.create_index("ix_outbound_calls_state_due_at", "outbound_calls", ["state", "due_at"])
    op.create_index(op.f("ix_outbound_calls_vendor_id"), "outbound_calls", ["vendor_id"])

    op.create_table(
        "complaints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        _utc("opened_at", nullable=False),
        _utc("closed_at"),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["work_orders.id"], ondelete="CASCADE",
                                name=op.f("fk_complaints_order_id_work_orders")),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendors.id"],
                                name=op.f("fk_complaints_vendor_id_vendors")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
        sa.UniqueConstraint("order_id", name=op.f("uq_complaints_order_id")),
    )
    op.create_index(op.f("ix_complaints_vendor_id"), "complaints", ["vendor_id"])


def downgrade() -> None:
    op.drop_table("complaints")
    op.drop_table("outbound_calls")
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_index(op.f("ix_work_orders_vendor_id"))
        batch.drop_constraint(op.f("fk_work_orders_worker_id_vendor_workers"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_work_orders_vendor_id_vendors"), type_="foreignkey")
        for column in ("rating", "completed_at", "arrived_at", "accepted_at", "worker_id",
                       "vendor_id"):
            batch.drop_column(column)
    with op.batch_alter_table("vendors") as batch:
        for column in ("max_open_orders", "longitude", "latitude"):
            batch.drop_column(column)
    op.drop_table("vendor_workers")
