"""SQLAlchemy 2 models of the registry, vendors, work orders and calls.

All timestamps are timezone-aware UTC (:class:`UtcDateTime`), on SQLite as on PostgreSQL.
Enumerated columns are VARCHAR with a CHECK constraint (no native PostgreSQL enum types),
so both backends store and validate the same values.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ServiceType(StrEnum):
    """Services an order can request; vendors offer the first three."""

    MEAL = "meal"
    HOUSEKEEPING = "housekeeping"
    HEALTH = "health"
    EMERGENCY = "emergency"


class PhoneKind(StrEnum):
    MOBILE = "mobile"
    LANDLINE = "landline"
    HANDSET = "handset"  # a one-key (一键通) handset line: an ordinary number, flagged


class SubsidyCategory(StrEnum):
    """Government-purchased service eligibility (政府购买服务对象)."""

    NONE = "none"
    SANWU = "sanwu"  # 三无老人
    DIBAO = "dibao"  # 低保
    LOW_INCOME = "low_income"  # 低收入
    PRIORITY_CARE = "priority_care"  # 重点优抚对象
    DISABLED_HARDSHIP = "disabled_hardship"  # 失能、半失能困难老人
    MODEL_WORKER = "model_worker"  # 劳动模范


class VendorStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REMOVED = "removed"


class OrderStatus(StrEnum):
    NEW = "new"
    DISPATCHING = "dispatching"
    ACCEPTED = "accepted"
    IN_SERVICE = "in_service"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ESCALATED = "escalated"


class OrderSource(StrEnum):
    PHONE = "phone"
    HANDSET = "handset"
    WEB = "web"
    OPERATOR = "operator"
    CARE_CHECK = "care_check"  # a check-in call nobody answered: a welfare check


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def choice(enum: type[StrEnum], length: int = 24) -> Enum:
    """A VARCHAR column type restricted to the values of ``enum`` by a CHECK constraint."""
    return Enum(
        enum,
        name=enum.__name__.lower(),
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


class Elder(Base):
    """A registered elder (服务对象). Only a masked ID card number is ever stored."""

    __tablename__ = "elders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_ref: Mapped[str | None] = mapped_column(String(64), unique=True)  # elder_ref
    name: Mapped[str] = mapped_column(String(64))
    gender: Mapped[str | None] = mapped_column(String(1))  # "M", "F" or NULL
    birth_date: Mapped[date | None] = mapped_column(Date)
    id_card_masked: Mapped[str | None] = mapped_column(String(18))
    address: Mapped[str | None] = mapped_column(String(255))
    province_code: Mapped[str | None] = mapped_column(String(6))
    province_name: Mapped[str | None] = mapped_column(String(32))
    city_code: Mapped[str | None] = mapped_column(String(6))
    city_name: Mapped[str | None] = mapped_column(String(32))
    county_code: Mapped[str | None] = mapped_column(String(6), index=True)
    county_name: Mapped[str | None] = mapped_column(String(32))
    street_code: Mapped[str | None] = mapped_column(String(12))
    street_name: Mapped[str | None] = mapped_column(String(64))
    community_code: Mapped[str | None] = mapped_column(String(12))
    community_name: Mapped[str | None] = mapped_column(String(64))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    preferred_language: Mapped[str] = mapped_column(String(16), default="zh")
    subsidy_category: Mapped[SubsidyCategory] = mapped_column(
        choice(SubsidyCategory), default=SubsidyCategory.NONE
    )
    health_notes: Mapped[str | None] = mapped_column(Text)
    # cannot work a keypad menu: every call from the elder's phones goes to an operator
    no_menu: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC))

    phones: Mapped[list[ElderPhone]] = relationship(
        back_populates="elder", cascade="all, delete-orphan", passive_deletes=True
    )
    family: Mapped[list[FamilyContact]] = relationship(
        back_populates="elder",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="FamilyContact.priority",
    )


class ElderPhone(Base):
    """A number that identifies the elder when it calls. Several elders may share one (a
    household: a couple's landline); an elder lists a number once."""

    __tablename__ = "elder_phones"
    __table_args__ = (UniqueConstraint("elder_id", "number_e164"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"), index=True)
    number_e164: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[PhoneKind] = mapped_column(choice(PhoneKind, 16))
    label: Mapped[str | None] = mapped_column(String(32))

    elder: Mapped[Elder] = relationship(back_populates="phones")


class FamilyContact(Base):
    """A relative to call in an emergency; calls from this number act for the elder.

    The number is not unique: one child may be the contact of both parents.
    ``priority`` orders an elder's contacts, 1 first.
    """

    __tablename__ = "family_contacts"
    __table_args__ = (UniqueConstraint("elder_id", "number_e164"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    relation: Mapped[str] = mapped_column(String(16))
    number_e164: Mapped[str] = mapped_column(String(20), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=1)

    elder: Mapped[Elder] = relationship(back_populates="family")


vendor_services = Table(
    "vendor_services",
    Base.metadata,
    Column("vendor_id", ForeignKey("vendors.id", ondelete="CASCADE"), primary_key=True),
    Column("service", choice(ServiceType), primary_key=True),
)

vendor_coverage = Table(
    "vendor_coverage",
    Base.metadata,
    Column("vendor_id", ForeignKey("vendors.id", ondelete="CASCADE"), primary_key=True),
    Column("county_code", String(6), primary_key=True),
    Index("ix_vendor_coverage_county_code", "county_code"),
)


class Vendor(Base):
    """A franchised service vendor (加盟企业).

    Opening hours: ``closes_at`` earlier than ``opens_at`` means overnight; equal means 24 h.
    ``rank_score`` (0-100, higher is better) drives priority dispatch; NULL for new vendors.
    """

    __tablename__ = "vendors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    status: Mapped[VendorStatus] = mapped_column(
        choice(VendorStatus, 16), default=VendorStatus.ACTIVE
    )
    opens_at: Mapped[time] = mapped_column(Time, default=time(8, 0))
    closes_at: Mapped[time] = mapped_column(Time, default=time(20, 0))
    rank_score: Mapped[float | None] = mapped_column(Float)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    # Orders accepted and not yet completed beyond which the vendor gets no new offers.
    max_open_orders: Mapped[int] = mapped_column(Integer, default=20)
    created_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC))

    phones: Mapped[list[VendorPhone]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class VendorPhone(Base):
    __tablename__ = "vendor_phones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"), index=True)
    number_e164: Mapped[str] = mapped_column(String(20), index=True)
    label: Mapped[str | None] = mapped_column(String(32))


class WorkOrder(Base):
    """A service order (工单). ``priority``: 0 is the most urgent (emergency)."""

    __tablename__ = "work_orders"
    __table_args__ = (Index("ix_work_orders_status_priority", "status", "priority"),
                      Index("ux_work_orders_business_key", "business_key", unique=True))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Set in the same transaction as the insert (derived from id); never NULL once committed.
    order_no: Mapped[str | None] = mapped_column(String(16), unique=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id"), index=True)
    service: Mapped[ServiceType] = mapped_column(choice(ServiceType))
    priority: Mapped[int] = mapped_column(Integer)
    status: Mapped[OrderStatus] = mapped_column(choice(OrderStatus), default=OrderStatus.NEW)
    source: Mapped[OrderSource] = mapped_column(choice(OrderSource, 16))
    call_uniqueid: Mapped[str | None] = mapped_column(String(64))
    requested_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    accept_deadline: Mapped[datetime | None]
    arrive_deadline: Mapped[datetime | None]
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"), index=True)
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("vendor_workers.id"))
    accepted_at: Mapped[datetime | None]
    arrived_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    rating: Mapped[int | None] = mapped_column(Integer)
    # an order opened by the engine for a business event, once (care_round:<id>...)
    business_key: Mapped[str | None] = mapped_column(String(80))

    events: Mapped[list[OrderEvent]] = relationship(
        order_by="OrderEvent.id", cascade="all, delete-orphan", passive_deletes=True
    )


class OrderEvent(Base):
    """One step of an order's timeline (created, dispatched, accepted, ...)."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class OutboxEntry(Base):
    """An event for the consoles' stream, committed with the state it announces and
    published from here until the stream has it (``published_at`` set after XADD)."""

    __tablename__ = "event_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None] = mapped_column(index=True)


class Call(Base):
    """One call leg as Asterisk saw it (uniqueid) and how the hotline ended it."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uniqueid: Mapped[str] = mapped_column(String(64), unique=True)
    linkedid: Mapped[str | None] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(128))
    direction: Mapped[str] = mapped_column(String(16))
    caller_number: Mapped[str | None] = mapped_column(String(20))
    identity_status: Mapped[str] = mapped_column(String(16))
    elder_id: Mapped[int | None] = mapped_column(ForeignKey("elders.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None]
    order_announced_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    disposition: Mapped[str | None] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(String(32))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))


__all__ = [
    "Base",
    "Call",
    "Elder",
    "ElderPhone",
    "FamilyContact",
    "OrderEvent",
    "OrderSource",
    "OrderStatus",
    "OutboxEntry",
    "PhoneKind",
    "ServiceType",
    "SubsidyCategory",
    "UtcDateTime",
    "Vendor",
    "VendorPhone",
    "VendorStatus",
    "WorkOrder",
    "choice",
    "vendor_coverage",
    "vendor_services",
]


# -- alarm boxes (Contact ID pendants and base units) ------------------------------------


class AlarmKind(StrEnum):
    """What an alarm event means for the hotline, from a per-model code map."""

    PERSONAL_EMERGENCY = "personal_emergency"
    MEDICAL = "medical"
    FALL = "fall"
    INACTIVITY = "inactivity"
    PERIODIC_TEST = "periodic_test"
    MANUAL_TEST = "manual_test"
    POWER_LOSS = "power_loss"
    LOW_BATTERY = "low_battery"
    SUPERVISION_LOSS = "supervision_loss"
    LISTEN_IN = "listen_in"
    UNKNOWN = "unknown"  # a code missing from the map: treated as an emergency


class AlarmAction(StrEnum):
    """What ingestion decided for one event."""

    ORDER = "order"  # an emergency order for the elder
    ALERT = "alert"  # operators must look (unidentified emergency, device trouble)
    TEST = "test"  # a test report: the device is alive
    RECORD = "record"  # recorded only (restores, listen-in)


class AlarmDevice(Base):
    """An alarm box or pendant base unit of an elder, known by its Contact ID account."""

    __tablename__ = "alarm_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(4), unique=True)
    model: Mapped[str] = mapped_column(String(32))
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"), index=True)
    line_e164: Mapped[str | None] = mapped_column(String(20), index=True)
    test_interval_hours: Mapped[int] = mapped_column(Integer, default=24)
    last_test_at: Mapped[datetime | None]
    registered_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC))


class AlarmFile(Base):
    """One AlarmReceiver spool file, ingested once (same name and content = same file)."""

    __tablename__ = "alarm_files"
    __table_args__ = (UniqueConstraint("name", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    calling_from: Mapped[str | None] = mapped_column(String(32))
    caller_name: Mapped[str | None] = mapped_column(String(80))
    timestamp_text: Mapped[str | None] = mapped_column(String(80))
    received_at: Mapped[datetime]
    ingested_at: Mapped[datetime]


class AlarmEvent(Base):
    """One Contact ID event of a spool file and what was done about it."""

    __tablename__ = "alarm_events"
    __table_args__ = (
        UniqueConstraint("file_id", "seq"),
        Index("ix_alarm_events_action_handled_at", "action", "handled_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("alarm_files.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # position in the file, from 0
    device_id: Mapped[int | None] = mapped_column(
        ForeignKey("alarm_devices.id", ondelete="SET NULL"), index=True
    )
    elder_id: Mapped[int | None] = mapped_column(ForeignKey("elders.id", ondelete="SET NULL"))
    account: Mapped[str] = mapped_column(String(4), index=True)
    message: Mapped[str] = mapped_column(String(16))
    qualifier: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(3))
    partition: Mapped[str] = mapped_column(String(2))
    zone: Mapped[str] = mapped_column(String(3))
    kind: Mapped[AlarmKind] = mapped_column(choice(AlarmKind))
    action: Mapped[AlarmAction] = mapped_column(choice(AlarmAction, 16))
    received_at: Mapped[datetime] = mapped_column(index=True)
    handled_at: Mapped[datetime | None]  # order opened or alert handed out; NULL = pending
    claimed_at: Mapped[datetime | None]  # an ingester is opening the order (a lease)
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="SET NULL"), index=True
    )


__all__ += ["AlarmAction", "AlarmDevice", "AlarmEvent", "AlarmFile", "AlarmKind"]


class QueueCall(Base):
    """One caller's wait in the operator queue, from the dialplan's and Asterisk's events."""

    __tablename__ = "queue_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uniqueid: Mapped[str] = mapped_column(String(64), unique=True)
    linkedid: Mapped[str | None] = mapped_column(String(64), index=True)
    queue: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[int | None] = mapped_column(Integer)
    caller_number: Mapped[str | None] = mapped_column(String(32))
    queued_at: Mapped[datetime | None] = mapped_column(index=True)
    joined_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    operator: Mapped[str | None] = mapped_column(String(80))
    abandoned_at: Mapped[datetime | None]
    left_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))  # answered/abandoned/unanswered


__all__ += ["QueueCall"]


# -- dispatch by phone: offers to vendors, workers' reports, quality callbacks ------------


class CallPurpose(StrEnum):
    """Why the engine dials out."""

    VENDOR_OFFER = "vendor_offer"  # offer an order to a vendor: 1 accept, 2 decline
    QUALITY_CALLBACK = "quality_callback"  # ask the elder to rate the service (回访)
    CARE_CALL = "care_call"  # a caring call of a care round: check-in, companion, ...


class OfferOutcome(StrEnum):
    """How an outbound call (a vendor offer, a quality callback, a caring call) ended:
    ``outcome``."""

    ACCEPTED = "accepted"  # the vendor pressed 1
    DECLINED = "declined"  # the vendor pressed 2
    RATED = "rated"  # the elder gave a rating
    NO_KEY = "no_key"  # answered, no usable key
    HANGUP = "hangup"  # hung up in the middle of the call
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"  # hung up while it rang
    CONGESTION = "congestion"
    FAILED = "failed"  # the call or its storage failed on our side
    LOST = "lost"  # no word from Asterisk about the call
    BAD_NUMBER = "bad_number"  # a number that cannot be dialled
    WELL = "well"  # a check-in: the elder pressed 1
    HELP = "help"  # a check-in: the elder pressed 2
    OPERATOR = "operator"  # a caring call: the elder pressed 0 for an operator
    HEARD = "heard"  # a greeting, reminder or companionship call played to its end


class OutboundState(StrEnum):
    """Where an outbound call stands; only ``scheduled`` may be claimed, once."""

    SCHEDULED = "scheduled"
    DIALING = "dialing"  # claimed by one engine; Originate sent (or about to be)
    ANSWERED = "answered"  # the far end answered; the engine's flow is talking
    DONE = "done"  # an outcome is recorded
    CANCELLED = "cancelled"  # no longer needed (order accepted, escalated, ...)


class VendorWorker(Base):
    """A vendor's worker, known by the phone they report arrival and completion from."""

    __tablename__ = "vendor_workers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    number_e164: Mapped[str] = mapped_column(String(20), unique=True)
    active: Mapped[bool] = mapped_column(default=True)


class OutboundCall(Base):
    """One outbound call attempt: the database record that makes dialling exactly-once.

    ``seq`` numbers the attempts of one order and purpose; (order, purpose, seq) is unique, so
    two engines deciding the same next attempt insert it once. An engine dials only after its
    conditional UPDATE moved the row from ``scheduled`` to ``dialing``. An answered attempt
    holds its trunk line until ``hung_up_at``, after its outcome too (``dispatch/outbound.py``).
    """

    __tablename__ = "outbound_calls"
    __table_args__ = (
        UniqueConstraint("order_id", "purpose", "seq"),
        UniqueConstraint("round_id", "seq"),
        Index("ix_outbound_calls_state_due_at", "state", "due_at"),
        Index("ix_outbound_calls_finished_at", "finished_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purpose: Mapped[CallPurpose] = mapped_column(choice(CallPurpose))
    # an order's call (an offer, a quality callback), or a caring call's round
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE"))
    round_id: Mapped[int | None] = mapped_column(
        ForeignKey("care_rounds.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"), index=True)
    number_e164: Mapped[str] = mapped_column(String(20))
    tries: Mapped[int] = mapped_column(Integer, default=1)  # of this party for this order
    state: Mapped[OutboundState] = mapped_column(choice(OutboundState, 16))
    due_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    reason_code: Mapped[int | None] = mapped_column(Integer)
    uniqueid: Mapped[str | None] = mapped_column(String(64))  # the answered channel's
    hung_up_at: Mapped[datetime | None]  # when the answered channel hung up: its line is free


class Complaint(Base):
    """A poor rating (1 or 2) or a caller's grievance, for the operators to follow up."""

    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"),
                                          unique=True)
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"), index=True)
    rating: Mapped[int | None] = mapped_column(Integer)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    upheld: Mapped[bool | None] = mapped_column()  # found justified: deducted at settlement


__all__ += ["CallPurpose", "Complaint", "OutboundCall", "OutboundState", "VendorWorker"]


# -- the operators' console: accounts, failed logins, audit -------------------------------


class ConsoleAccount(Base):
    """A console user. ``password_hash`` is an argon2 hash; there is no default account."""

    __tablename__ = "console_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    region_level: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(String(6))
    seat: Mapped[str | None] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class LoginFailure(Base):
    """One failed login, kept for the throttle's window (by name and by address)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime]


class AuditEntry(Base):
    """Who did what, when, from which address: logins, profile views, dispositions, ..."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("console_accounts.id", ondelete="SET NULL"))
    account_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


__all__ += ["AuditEntry", "ConsoleAccount", "LoginFailure"]


# -- caring calls: the hotline rings the elders first (主动关怀) ---------------------------


class CareKind(StrEnum):
    """What a caring call is for."""

    CHECK_IN = "check_in"  # daily "are you well?": 1 well, 2 help, 0 an operator
    COMPANION = "companion"  # a weekly companionship call (精神慰藉)
    REMINDER = "reminder"  # medication or appointment: the plan's own message
    GREETING = "greeting"  # a holiday greeting of a campaign (节日祝福)


class RoundState(StrEnum):
    """Where one planned caring call of one day stands."""

    DUE = "due"  # waiting for its window and a trunk slot
    CALLING = "calling"  # tries under way
    WELL = "well"  # the elder pressed 1 (or heard the greeting or reminder)
    HELP = "help"  # the elder pressed 2: a callback order for the operators
    OPERATOR = "operator"  # the elder pressed 0 and joined the operator queue
    REACHED = "reached"  # the elder called 12349 or pressed the handset meanwhile
    ESCALATED = "escalated"  # a check-in never answered: the welfare check (family, worklist)
    UNREACHED = "unreached"  # a greeting, reminder or companionship call never answered
    SKIPPED = "skipped"  # a do-not-call day, or the plan was stopped


class CarePlan(Base):
    """An elder's standing caring call: its kind, the local time window, the weekdays."""

    __tablename__ = "care_plans"
    __table_args__ = (UniqueConstraint("elder_id", "kind", "window_start",
                                       name="uq_care_plans_elder_kind_window"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"),
                                          index=True)
    kind: Mapped[CareKind] = mapped_column(choice(CareKind, 16))
    window_start: Mapped[time] = mapped_column(Time)  # local, the platform's time zone
    window_end: Mapped[time] = mapped_column(Time)
    weekdays: Mapped[int] = mapped_column(Integer, default=127)  # bit 0 Monday .. bit 6 Sunday
    message: Mapped[str | None] = mapped_column(String(200))  # a reminder's words
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]


class CareQuietDay(Base):
    """A day the elder asked not to be called (away, in hospital, with family)."""

    __tablename__ = "care_quiet_days"
    __table_args__ = (UniqueConstraint("elder_id", "day", name="uq_care_quiet_days_elder_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)


class CareCampaign(Base):
    """A holiday greeting to a chosen group of elders on one festival of one year."""

    __tablename__ = "care_campaigns"
    __table_args__ = (UniqueConstraint("festival", "year", "county_code", "subsidy_category",
                                       name="uq_care_campaigns_group"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    festival: Mapped[str] = mapped_column(String(24))
    year: Mapped[int] = mapped_column(Integer)
    day: Mapped[date] = mapped_column(Date)  # the festival's date that year
    county_code: Mapped[str | None] = mapped_column(String(6))  # None: every county
    subsidy_category: Mapped[str | None] = mapped_column(String(24))  # None: every elder
    message: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class CareRound(Base):
    """One planned caring call of one elder on one day, with every try and the outcome.
    Unique per plan and day (and per campaign and elder): however many engines plan the
    day, an elder gets one round."""

    __tablename__ = "care_rounds"
    __table_args__ = (
        UniqueConstraint("plan_id", "day", name="uq_care_rounds_plan_day"),
        UniqueConstraint("campaign_id", "elder_id", name="uq_care_rounds_campaign_elder"),
        Index("ix_care_rounds_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("care_plans.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("care_campaigns.id", ondelete="CASCADE"))
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"),
                                          index=True)
    kind: Mapped[CareKind] = mapped_column(choice(CareKind, 16))
    day: Mapped[date] = mapped_column(Date, index=True)
    due_at: Mapped[datetime]  # the window's opening, within the allowed hours
    until: Mapped[datetime]  # the window's end: no try starts after it
    state: Mapped[RoundState] = mapped_column(choice(RoundState, 16), default=RoundState.DUE)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))


__all__ += ["CareCampaign", "CareKind", "CarePlan", "CareQuietDay", "CareRound", "RoundState"]


# -- the money: a double-entry ledger in fen ----------------------------------------------


class AccountKind(StrEnum):
    """What a ledger account holds."""

    ELDER_SUBSIDY = "elder_subsidy"  # an elder's vouchers (助老服务卡 subsidy balance)
    ELDER_OWN = "elder_own"  # an elder's own money on the card; below zero: owed
    VENDOR_PAYABLE = "vendor_payable"  # what the platform owes a vendor
    SUBSIDY_FUND = "subsidy_fund"  # the programme's fund the vouchers come from
    ELDER_DEPOSITS = "elder_deposits"  # money elders paid in (the own funds' source)


class LedgerAccount(Base):
    """One account of the ledger; its balance is the sum of its postings, kept with them."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("kind", "owner_id", name="uq_ledger_accounts_owner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[AccountKind] = mapped_column(choice(AccountKind, 24))
    owner_id: Mapped[int] = mapped_column(Integer)  # elder or vendor id; 0: the platform
    balance_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class LedgerTransaction(Base):
    """One business event in money. ``business_key`` makes posting idempotent: the same
    completed order is charged once, whichever engine sees it first. Nothing is updated in
    place or deleted: a correction is a reversing transaction."""

    __tablename__ = "ledger_transactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime]
    month: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM, local time
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), index=True)
    memo: Mapped[str | None] = mapped_column(String(200))


class LedgerPosting(Base):
    """One leg of a transaction: a signed amount in fen on one account."""

    __tablename__ = "ledger_postings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"),
                                                index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)


__all__ += ["AccountKind", "LedgerAccount", "LedgerPosting", "LedgerTransaction"]


class VendorTariff(Base):
    """A vendor's price of one service over a validity period (``valid_until`` included;
    None: open-ended). The price of an order is the one valid the day it was completed."""

    __tablename__ = "vendor_tariffs"
    __table_args__ = (Index("ix_vendor_tariffs_vendor_service", "vendor_id", "service"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))
    service: Mapped[ServiceType] = mapped_column(choice(ServiceType))
    price_fen: Mapped[int] = mapped_column(BigInteger)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)


__all__ += ["VendorTariff"]


class LedgerMonthClose(Base):
    """A county's month, closed: its settlement is final, and nothing is posted into it."""

    __tablename__ = "ledger_month_closes"
    __table_args__ = (UniqueConstraint("county_code", "month",
                                       name="uq_ledger_month_closes_county_month"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(6))
    month: Mapped[str] = mapped_column(String(7))
    closed_at: Mapped[datetime]
    closed_by: Mapped[str] = mapped_column(String(64))


__all__ += ["LedgerMonthClose"]


# -- recordings: calls (MixMonitor) and callers' messages (RECORD FILE) ---------------------


class RecordingKind(StrEnum):
    MESSAGE = "message"  # a caller's spoken message, left for a call-back
    CALL = "call"  # an answered call, or an emergency conference


class Recording(Base):
    """An audio file in the recordings folder (``[recordings] dir``, shared with Asterisk),
    indexed to its call, elder and order. It is served only by its random ``token``, to an
    account whose region covers the elder. Kept for the retention period, or, for an
    emergency order or an upheld complaint, until ``released_at``; ``deleted_at`` once the
    retention removed the file."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[RecordingKind] = mapped_column(choice(RecordingKind, 16))
    uniqueid: Mapped[str] = mapped_column(String(64), index=True)
    elder_id: Mapped[int | None] = mapped_column(ForeignKey("elders.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), index=True)
    caller_number: Mapped[str | None] = mapped_column(String(20))
    file: Mapped[str] = mapped_column(String(255), unique=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    duration_s: Mapped[float | None] = mapped_column(Float)
    released_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]


__all__ += ["Recording", "RecordingKind"]


# -- the province's side of the export: batches of county platforms, merged ----------------


class UpstreamBatch(Base):
    """A batch of a county platform imported here (``hotline import-upstream``)."""

    __tablename__ = "upstream_batches"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(6), index=True)
    since: Mapped[datetime | None]
    until: Mapped[datetime]
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    records: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime]


class UpstreamElder(Base):
    __tablename__ = "upstream_elders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # pseudonymised
    source: Mapped[str] = mapped_column(String(6), index=True)
    province: Mapped[str | None] = mapped_column(String(6))
    city: Mapped[str | None] = mapped_column(String(6))
    county: Mapped[str | None] = mapped_column(String(6), index=True)
    category: Mapped[str] = mapped_column(String(24))
    gender: Mapped[str | None] = mapped_column(String(1))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    registered_at: Mapped[datetime]
    as_of: Mapped[datetime]  # the watermark of the batch this row came from


class UpstreamVendor(Base):
    __tablename__ = "upstream_vendors"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(6), index=True)
    name: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    counties: Mapped[list[str]] = mapped_column(JSON)
    services: Mapped[list[str]] = mapped_column(JSON)
    rank_score: Mapped[float | None] = mapped_column(Float)
    registered_at: Mapped[datetime]
    as_of: Mapped[datetime]


class UpstreamOrder(Base):
    __tablename__ = "upstream_orders"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # <source>:<order_no>
    source: Mapped[str] = mapped_column(String(6), index=True)
    order_no: Mapped[str] = mapped_column(String(8))
    elder: Mapped[str] = mapped_column(String(32))
    county: Mapped[str | None] = mapped_column(String(6), index=True)
    service: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    source_channel: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int | None] = mapped_column(Integer)
    vendor: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    arrived_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    rating: Mapped[int | None] = mapped_column(Integer)
    timeline: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    as_of: Mapped[datetime]


class UpstreamAlarm(Base):
    __tablename__ = "upstream_alarms"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(6), index=True)
    elder: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(24))
    action: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(3))
    received_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]
    order: Mapped[str | None] = mapped_column(String(16))
    as_of: Mapped[datetime]


class UpstreamComplaint(Base):
    __tablename__ = "upstream_complaints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(6), index=True)
    order: Mapped[str] = mapped_column(String(16))
    vendor: Mapped[str | None] = mapped_column(String(32))
    rating: Mapped[int | None] = mapped_column(Integer)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    upheld: Mapped[bool | None] = mapped_column()
    as_of: Mapped[datetime]


__all__ += ["UpstreamAlarm", "UpstreamBatch", "UpstreamComplaint", "UpstreamElder",
            "UpstreamOrder", "UpstreamVendor"]
