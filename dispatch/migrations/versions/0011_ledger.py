"""The money: a double-entry ledger in fen (accounts, transactions, postings), and the
vendors' tariffs.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCOUNT_KINDS = ("elder_subsidy", "elder_own", "vendor_payable", "subsidy_fund",
                 "elder_deposits")


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.Enum(*ACCOUNT_KINDS, name="accountkind", native_enum=False,
                                  create_constraint=True, length=24), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("balance_fen", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("kind", "owner_id", name="uq_ledger_accounts_owner"),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("business_key", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("reverses_id", sa.Integer(), sa.ForeignKey("ledger_transactions.id"),
                  nullable=True),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("work_orders.id"), nullable=True),
        sa.Column("memo", sa.String(200), nullable=True),
        sa.UniqueConstraint("business_key", name=op.f("uq_ledger_transactions_business_key")),
    )
    op.create_index(op.f("ix_ledger_transactions_month"), "ledger_transactions", ["month"])
    op.create_index(op.f("ix_ledger_transactions_order_id"), "ledger_transactions",
                    ["order_id"])
    op.create_table(
        "ledger_postings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("transaction_id", sa.Integer(), sa.ForeignKey("ledger_transactions.id"),
                  nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("ledger_accounts.id"),
                  nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
    )
    op.create_index(op.f("ix_ledger_postings_transaction_id"), "ledger_postings",
                    ["transaction_id"])
    op.create_index(op.f("ix_ledger_postings_account_id"), "ledger_postings", ["account_id"])


    op.create_table(
        "vendor_tariffs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("vendor_id", sa.Integer(), sa.ForeignKey("vendors.id"), nullable=False),
        sa.Column("service", sa.Enum("meal", "housekeeping", "health", "emergency",
                                     name="servicetype", native_enum=False,
                                     create_constraint=True, length=24), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
    )
    op.create_index("ix_vendor_tariffs_vendor_service", "vendor_tariffs",
                    ["vendor_id", "service"])
    op.create_table(
        "ledger_month_closes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("county_code", sa.String(6), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(64), nullable=False),
        sa.UniqueConstraint("county_code", "month", name="uq_ledger_month_closes_county_month"),
    )
    op.add_column("complaints", sa.Column("upheld", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        batch.drop_column("upheld")
    op.drop_table("ledger_month_closes")
    op.drop_table("vendor_tariffs")
    op.drop_table("ledger_postings")
    op.drop_table("ledger_transactions")
    op.drop_table("ledger_accounts")
