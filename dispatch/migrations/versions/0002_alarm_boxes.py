"""Alarm boxes: devices, ingested AlarmReceiver spool files and their events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = (
    "personal_emergency", "medical", "fall", "inactivity", "periodic_test", "manual_test",
    "power_loss", "low_battery", "supervision_loss", "listen_in", "unknown",
)
ACTIONS = ("order", "alert", "test", "record")


def _utc(name: str, nullable: bool) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns))


def upgrade() -> None:
    op.create_table(
        "alarm_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(4), nullable=False),
        sa.Column("model", sa.String(32), nullable=False),
        sa.Column("elder_id", sa.Integer(), nullable=False),
        sa.Column("line_e164", sa.String(20), nullable=True),
        sa.Column("test_interval_hours", sa.Integer(), nullable=False),
        _utc("last_test_at", True),
        _utc("registered_at", False),
        _fk("alarm_devices", "elder_id", "elders", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_devices")),
        sa.UniqueConstraint("account", name=op.f("uq_alarm_devices_account")),
    )
    _index("alarm_devices", "elder_id")
    _index("alarm_devices", "line_e164")

    op.create_table(
        "alarm_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("calling_from", sa.String(32), nullable=True),
        sa.Column("caller_name", sa.String(80), nullable=True),
        sa.Column("timestamp_text", sa.String(80), nullable=True),
        _utc("received_at", False),
        _utc("ingested_at", False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_files")),
        sa.UniqueConstraint("name", "sha256", name=op.f("uq_alarm_files_name_sha256")),
    )

    op.create_table(
        "alarm_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("elder_id", sa.Integer(), nullable=True),
        sa.Column("account", sa.String(4), nullable=False),
        sa.Column("message", sa.String(16), nullable=False),
        sa.Column("qualifier", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(3), nullable=False),
        sa.Column("partition", sa.String(2), nullable=False),
        sa.Column("zone", sa.String(3), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(*KINDS, name="alarmkind", native_enum=False, create_constraint=True,
                    length=24),
            nullable=False,
        ),
        sa.Column(
            "action",
            sa.Enum(*ACTIONS, name="alarmaction", native_enum=False, create_constraint=True,
                    length=16),
            nullable=False,
        ),
        _utc("received_at", False),
        _utc("handled_at", True),
        _utc("claimed_at", True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        _fk("alarm_events", "file_id", "alarm_files", "CASCADE"),
        _fk("alarm_events", "device_id", "alarm_devices", "SET NULL"),
        _fk("alarm_events", "elder_id", "elders", "SET NULL"),
        _fk("alarm_events", "order_id", "work_orders", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_events")),
        sa.UniqueConstraint("file_id", "seq", name=op.f("uq_alarm_events_file_id_seq")),
    )
    op.create_index(
        op.f("ix_alarm_events_action_handled_at"), "alarm_events", ["action", "handled_at"]
    )
    for column in ("device_id", "account", "received_at", "order_id"):
        _index("alarm_events", column)


def downgrade() -> None:
    for table in ("alarm_events", "alarm_files", "alarm_devices"):
        op.drop_table(table)
