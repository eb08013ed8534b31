"""Initial schema: registry, vendors, work orders, calls.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERVICES = ("meal", "housekeeping", "health", "emergency")


def _choice(name: str, values: Sequence[str], length: int = 24) -> sa.Enum:
    return sa.Enum(
        *values, name=name, native_enum=False, create_constraint=True, length=length
    )


def _utc(nullable: bool) -> dict[str, object]:
    return {"type_": sa.DateTime(timezone=True), "nullable": nullable}


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}"))


def _fk(table: str, column: str, target: str, cascade: bool) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE" if cascade else None,
    )


def _index(table: str, *columns: str, unique: bool = False, name: str | None = None) -> None:
    op.create_index(
        op.f(name or f"ix_{table}_{columns[0]}"), table, list(columns), unique=unique
    )


def upgrade() -> None:
    op.create_table(
        "elders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("gender", sa.String(1), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("id_card_masked", sa.String(18), nullable=True),
        sa.Column("address", sa.String(255), nullable=True),
        sa.Column("province_code", sa.String(6), nullable=True),
        sa.Column("province_name", sa.String(32), nullable=True),
        sa.Column("city_code", sa.String(6), nullable=True),
        sa.Column("city_name", sa.String(32), nullable=True),
        sa.Column("county_code", sa.String(6), nullable=True),
        sa.Column("county_name", sa.String(32), nullable=True),
        sa.Column("street_code", sa.String(12), nullable=True),
        sa.Column("street_name", sa.String(64), nullable=True),
        sa.Column("community_code", sa.String(12), nullable=True),
        sa.Column("community_name", sa.String(64), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("preferred_language", sa.String(16), nullable=False),
        sa.Column(
            "subsidy_category",
            _choice(
                "subsidycategory",
                (
                    "none",
                    "sanwu",
                    "dibao",
                    "low_income",
                    "priority_care",
                    "disabled_hardship",
                    "model_worker",
                ),
            ),
            nullable=False,
        ),
        sa.Column("health_notes", sa.Text(), nullable=True),
        sa.Column("created_at", **_utc(False)),
        _pk("elders"),
    )
    _index("elders", "county_code")

    op.create_table(
        "vendors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column(
            "status",
            _choice("vendorstatus", ("active", "suspended", "removed"), 16),
            nullable=False,
        ),
        sa.Column("opens_at", sa.Time(), nullable=False),
        sa.Column("closes_at", sa.Time(), nullable=False),
        sa.Column("rank_score", sa.Float(), nullable=True),
        sa.Column("created_at", **_utc(False)),
        _pk("vendors"),
    )

    op.create_table(
        "elder_phones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("elder_id", sa.Integer(), nullable=False),
        sa.Column("number_e164", sa.String(20), nullable=False),
        sa.Column(
            "kind", _choice("phonekind", ("mobile", "landline", "handset"), 16), nullable=False
        ),
        sa.Column("label", sa.String(32), nullable=True),
        _fk("elder_phones", "elder_id", "elders", cascade=True),
        _pk("elder_phones"),
        sa.UniqueConstraint("number_e164", name=op.f("uq_elder_phones_number_e164")),
    )
    _index("elder_phones", "elder_id")

    op.create_table(
        "family_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("elder_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("relation", sa.String(16), nullable=False),
        sa.Column("number_e164", sa.String(20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        _fk("family_contacts", "elder_id", "elders", cascade=True),
        _pk("family_contacts"),
        sa.UniqueConstraint(
            "elder_id", "number_e164", name=op.f("uq_family_contacts_elder_id_number_e164")
        ),
    )
    _index("family_contacts", "number_e164")

    op.create_table(
        "vendor_coverage",
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("county_code", sa.String(6), nullable=False),
        sa.ForeignKeyConstraint(
            ["vendor_id"],
            ["vendors.id"],
            name=op.f("fk_vendor_coverage_vendor_id_vendors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vendor_id", "county_code", name=op.f("pk_vendor_coverage")),
    )
    _index("vendor_coverage", "county_code")

    op.create_table(
        "vendor_phones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("number_e164", sa.String(20), nullable=False),
        sa.Column("label", sa.String(32), nullable=True),
        _fk("vendor_phones", "vendor_id", "vendors", cascade=True),
        _pk("vendor_phones"),
    )
    _index("vendor_phones", "number_e164")
    _index("vendor_phones", "vendor_id")

    op.create_table(
        "vendor_services",
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("service", _choice("servicetype", SERVICES), nullable=False),
        sa.ForeignKeyConstraint(
            ["vendor_id"],
            ["vendors.id"],
            name=op.f("fk_vendor_services_vendor_id_vendors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vendor_id", "service", name=op.f("pk_vendor_services")),
    )

    op.create_table(
        "work_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_no", sa.String(16), nullable=True),
        sa.Column("elder_id", sa.Integer(), nullable=False),
        sa.Column("service", _choice("servicetype", SERVICES), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            _choice(
                "orderstatus",
                (
                    "new",
                    "dispatching",
                    "accepted",
                    "in_service",
                    "completed",
                    "cancelled",
                    "escalated",
                ),
            ),
            nullable=False,
        ),
        sa.Column(
            "source",
            _choice("ordersource", ("phone", "handset", "web", "operator"), 16),
            nullable=False,
        ),
        sa.Column("call_uniqueid", sa.String(64), nullable=True),
        sa.Column("requested_by", sa.String(64), nullable=True),
        sa.Column("created_at", **_utc(False)),
        sa.Column("accept_deadline", **_utc(True)),
        sa.Column("arrive_deadline", **_utc(True)),
        _fk("work_orders", "elder_id", "elders", cascade=False),
        _pk("work_orders"),
        sa.UniqueConstraint("order_no", name=op.f("uq_work_orders_order_no")),
    )
    _index("work_orders", "elder_id")
    _index("work_orders", "status", "priority", name="ix_work_orders_status_priority")

    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("linkedid", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("caller_number", sa.String(20), nullable=True),
        sa.Column("identity_status", sa.String(16), nullable=False),
        sa.Column("elder_id", sa.Integer(), nullable=True),
        sa.Column("started_at", **_utc(False)),
        sa.Column("answered_at", **_utc(True)),
        sa.Column("order_announced_at", **_utc(True)),
        sa.Column("ended_at", **_utc(True)),
        sa.Column("disposition", sa.String(24), nullable=True),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        _fk("calls", "elder_id", "elders", cascade=False),
        _fk("calls", "order_id", "work_orders", cascade=False),
        _pk("calls"),
        sa.UniqueConstraint("uniqueid", name=op.f("uq_calls_uniqueid")),
    )
    _index("calls", "elder_id")
    _index("calls", "linkedid")
    _index("calls", "started_at")

    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("at", **_utc(False)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        _fk("order_events", "order_id", "work_orders", cascade=True),
        _pk("order_events"),
    )
    _index("order_events", "order_id")


def downgrade() -> None:
    for table in (
        "order_events",
        "calls",
        "work_orders",
        "vendor_services",
        "vendor_phones",
        "vendor_coverage",
        "family_contacts",
        "elder_phones",
        "vendors",
        "elders",
    ):
        op.drop_table(table)
