"""Caring calls ride on the outbound-call table: an attempt need not belong to an order.

``order_id`` becomes optional, ``round_id`` names the caring call's round (unique with its
``seq``, as (order, purpose, seq) is for orders), and ``care_call`` joins the purposes. An
elder a check-in never reached gets a welfare-check order: ``care_check`` joins the sources,
and an order the engine opens for a business event carries its unique ``business_key``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PURPOSES = ("vendor_offer", "quality_callback")
SOURCES = ("phone", "handset", "web", "operator")


def _purpose(values: Sequence[str]) -> sa.Enum:
    return sa.Enum(*values, name="callpurpose", native_enum=False, create_constraint=True,
                   length=24)


def _source(values: Sequence[str]) -> sa.Enum:
    return sa.Enum(*values, name="ordersource", native_enum=False, create_constraint=True,
                   length=16)


def _sources(values: Sequence[str]) -> None:
    """The CHECK of ``work_orders.source`` allows ``values``. PostgreSQL alters it in place
    (other tables refer to work_orders); SQLite rebuilds the table."""
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_work_orders_ordersource"), "work_orders", type_="check")
        listed = ", ".join(f"'{value}'" for value in values)
        op.create_check_constraint(op.f("ck_work_orders_ordersource"), "work_orders",
                                   f"source IN ({listed})")
        return
    with op.batch_alter_table("work_orders", recreate="always") as batch:
        batch.alter_column("source", existing_type=_source(SOURCES),
                           type_=_source(values), existing_nullable=False)


def upgrade() -> None:
    _sources((*SOURCES, "care_check"))
    op.add_column("work_orders", sa.Column("business_key", sa.String(80), nullable=True))
    op.create_index("ux_work_orders_business_key", "work_orders", ["business_key"],
                    unique=True)
    with op.batch_alter_table("outbound_calls", recreate="always") as batch:
        batch.alter_column("order_id", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("purpose", existing_type=_purpose(PURPOSES),
                           type_=_purpose((*PURPOSES, "care_call")), existing_nullable=False)
        batch.add_column(sa.Column("round_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_outbound_calls_round_id_care_rounds"), "care_rounds",
                                 ["round_id"], ["id"], ondelete="CASCADE")
        batch.create_unique_constraint(op.f("uq_outbound_calls_round_id_seq"),
                                       ["round_id", "seq"])
        batch.create_index(op.f("ix_outbound_calls_round_id"), ["round_id"])


def downgrade() -> None:
    with op.batch_alter_table("outbound_calls", recreate="always") as batch:
        batch.drop_index(op.f("ix_outbound_calls_round_id"))
        batch.drop_constraint(op.f("uq_outbound_calls_round_id_seq"), type_="unique")
        batch.drop_constraint(op.f("fk_outbound_calls_round_id_care_rounds"),
                              type_="foreignkey")
        batch.drop_column("round_id")
        batch.alter_column("purpose", existing_type=_purpose((*PURPOSES, "care_call")),
                           type_=_purpose(PURPOSES), existing_nullable=False)
        batch.alter_column("order_id", existing_type=sa.Integer(), nullable=False)
    op.drop_index("ux_work_orders_business_key", "work_orders")
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("business_key")
    _sources(SOURCES)
