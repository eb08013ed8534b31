"""Caring calls: care plans, quiet days, holiday campaigns and the day's rounds.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CARE_KINDS = ("check_in", "companion", "reminder", "greeting")
ROUND_STATES = ("due", "calling", "well", "help", "operator", "reached", "escalated",
                "unreached", "skipped")


def _utc(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _kind() -> sa.Column:
    return sa.Column("kind", sa.Enum(*CARE_KINDS, name="carekind", native_enum=False,
                                     create_constraint=True, length=16), nullable=False)


def _elder(ondelete: str = "CASCADE") -> sa.Column:
    return sa.Column("elder_id", sa.Integer(), sa.ForeignKey("elders.id", ondelete=ondelete),
                     nullable=False)


def upgrade() -> None:
    op.create_table(
        "care_plans",
        sa.Column("id", sa.Integer(), primary_key=True),
        _elder(),
        _kind(),
        sa.Column("window_start", sa.Time(), nullable=False),
        sa.Column("window_end", sa.Time(), nullable=False),
        sa.Column("weekdays", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(200), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        _utc("created_at", nullable=False),
        _utc("stopped_at"),
        sa.UniqueConstraint("elder_id", "kind", "window_start",
                            name="uq_care_plans_elder_kind_window"),
    )
    op.create_index(op.f("ix_care_plans_elder_id"), "care_plans", ["elder_id"])
    op.create_table(
        "care_quiet_days",
        sa.Column("id", sa.Integer(), primary_key=True),
        _elder(),
        sa.Column("day", sa.Date(), nullable=False),
        sa.UniqueConstraint("elder_id", "day", name="uq_care_quiet_days_elder_day"),
    )
    op.create_table(
        "care_campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("festival", sa.String(24), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("county_code", sa.String(6), nullable=True),
        sa.Column("subsidy_category", sa.String(24), nullable=True),
        sa.Column("message", sa.String(200), nullable=True),
        _utc("created_at", nullable=False),
        sa.UniqueConstraint("festival", "year", "county_code", "subsidy_category",
                            name="uq_care_campaigns_group"),
    )
    op.create_table(
        "care_rounds",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("plan_id", sa.Integer(), sa.ForeignKey("care_plans.id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("campaign_id", sa.Integer(),
                  sa.ForeignKey("care_campaigns.id", ondelete="CASCADE"), nullable=True),
        _elder(),
        _kind(),
        sa.Column("day", sa.Date(), nullable=False),
        _utc("due_at", nullable=False),
        _utc("until", nullable=False),
        sa.Column("state", sa.Enum(*ROUND_STATES, name="roundstate", native_enum=False,
                                   create_constraint=True, length=16), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        _utc("finished_at"),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.UniqueConstraint("plan_id", "day", name="uq_care_rounds_plan_day"),
        sa.UniqueConstraint("campaign_id", "elder_id", name="uq_care_rounds_campaign_elder"),
    )
    op.create_index("ix_care_rounds_state_due", "care_rounds", ["state", "due_at"])
    op.create_index(op.f("ix_care_rounds_elder_id"), "care_rounds", ["elder_id"])
    op.create_index(op.f("ix_care_rounds_day"), "care_rounds", ["day"])


def downgrade() -> None:
    op.drop_table("care_rounds")
    op.drop_table("care_campaigns")
    op.drop_table("care_quiet_days")
    op.drop_table("care_plans")
