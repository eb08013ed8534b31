"""Schema, URLs and caller identification on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import SQLAlchemyError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from dispatch.db import (
    alembic_config,
    async_sessionmaker_for,
    async_url,
    make_async_engine,
    make_sync_engine,
    server_settings,
    sync_url,
    upgrade,
    with_schema,
)
from dispatch.models import Base, Call, Elder, ElderPhone, FamilyContact, PhoneKind
from dispatch.registry import (
    CallerIdentity,
    CallerStatus,
    HouseholdMember,
    identify,
    set_no_menu,
)

AREA = "931"


# -- URLs --------------------------------------------------------------------------------

def test_driver_variants_derive_from_one_url() -> None:
    assert sync_url("sqlite:///var/x.sqlite3") == "sqlite:///var/x.sqlite3"
    assert async_url("sqlite:///var/x.sqlite3") == "sqlite+aiosqlite:///var/x.sqlite3"
    pg = "postgresql://hotline:s3cret@db.example:5432/hotline"
    assert sync_url(pg) == "postgresql+psycopg://hotline:s3cret@db.example:5432/hotline"
    assert async_url(pg) == "postgresql+asyncpg://hotline:s3cret@db.example:5432/hotline"
    assert async_url("postgresql+psycopg://u@h/d") == "postgresql+asyncpg://u@h/d"


@pytest.mark.parametrize("bad", ["mysql://u@h/d", "not a url", "", "redis://localhost/0"])
def test_unsupported_urls_are_refused_clearly(bad: str) -> None:
    with pytest.raises(ValueError):
        sync_url(bad)


def test_schema_goes_into_libpq_options_and_asyncpg_settings() -> None:
    url = with_schema("postgresql://u@h/d", "tenant_1")
    assert url == "postgresql://u@h/d?options=-csearch_path%3Dtenant_1"
    assert server_settings("-csearch_path=tenant_1 -c statement_timeout=5000") == {
        "search_path": "tenant_1",
        "statement_timeout": "5000",
    }
    with pytest.raises(ValueError):
        with_schema("postgresql://u@h/d", "x; DROP TABLE elders")
    with pytest.raises(ValueError):
        with_schema("sqlite:///x.db", "s")
    with pytest.raises(ValueError):
        server_settings("--nonsense")


def test_upgrade_creates_the_sqlite_folder(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'er' / 'hotline.sqlite3'}"
    upgrade(url)
    upgrade(url)  # idempotent
    assert (tmp_path / "deep" / "er" / "hotline.sqlite3").exists()


# -- schema ------------------------------------------------------------------------------

def test_migration_matches_the_models(migrated_db_url: str) -> None:
    engine = make_sync_engine(migrated_db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == ["alembic_version"]
    finally:
        engine.dispose()


async def test_timestamps_are_utc_aware_on_every_backend(db_session: AsyncSession) -> None:
    beijing = timezone(timedelta(hours=8))
    started = datetime(2026, 1, 2, 8, 30, 15, 123456, tzinfo=beijing)
    db_session.add(Call(uniqueid="1700000000.1", channel="PJSIP/trunk-00000001",
                        direction="inbound", identity_status="unknown", started_at=started))
    await db_session.commit()
    db_session.expunge_all()
    stored = await db_session.scalar(select(Call.started_at))
    assert stored == started
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored.hour == 0  # 08:30 in Beijing is 00:30 UTC


async def test_naive_timestamps_are_refused(db_session: AsyncSession) -> None:
    db_session.add(Call(uniqueid="1700000000.2", channel="c", direction="inbound",
                        identity_status="unknown", started_at=datetime(2026, 1, 1)))
    with pytest.raises(StatementError, match="naive datetime"):
        await db_session.commit()


# -- caller identification ---------------------------------------------------------------

async def _seed(session: AsyncSession) -> dict[str, int]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    zhang = Elder(name="张秀英", preferred_language="zh", created_at=now, phones=[
        ElderPhone(number_e164="+8613800138000", kind=PhoneKind.MOBILE),
        ElderPhone(number_e164="+869318123456", kind=PhoneKind.LANDLINE),
        ElderPhone(number_e164="+869314567890", kind=PhoneKind.HANDSET, label="一键通"),
    ])  # fmt: skip
    li = Elder(name="李建国", preferred_language="yue", created_at=now, phones=[
        ElderPhone(number_e164="+8613900139000", kind=PhoneKind.MOBILE),
    ], family=[
        FamilyContact(name="李娟", relation="女儿", number_e164="+8618600000001", priority=1),
        FamilyContact(name="张秀英", relation="老伴", number_e164="+8613800138000", priority=2),
    ])  # fmt: skip
    wang = Elder(name="王桂兰", created_at=now, phones=[
        ElderPhone(number_e164="+8613700137000", kind=PhoneKind.MOBILE),
    ], family=[
        FamilyContact(name="王强", relation="儿子", number_e164="+8618600000002", priority=1),
        FamilyContact(name="李娟", relation="女儿", number_e164="+8618600000001", priority=2),
        FamilyContact(name="赵敏", relation="儿媳", number_e164="+8618600000003", priority=3),
    ])  # fmt: skip
    zhao = Elder(name="赵德明", created_at=now, phones=[
        ElderPhone(number_e164="+8613600136000", kind=PhoneKind.MOBILE),
    ], family=[
        FamilyContact(name="赵敏", relation="女儿", number_e164="+8618600000003", priority=3),
    ])  # fmt: skip
    session.add_all([zhang, li, wang, zhao])
    await session.commit()
    return {"zhang": zhang.id, "li": li.id, "wang": wang.id, "zhao": zhao.id}


@pytest.mark.parametrize("raw", ["13800138000", "+86 138 0013 8000", "008613800138000"])
async def test_elder_mobile_identifies_the_elder(db_session: AsyncSession, raw: str) -> None:
    ids = await _seed(db_session)
    who = await identify(db_session, raw, AREA)
    assert who == CallerIdentity(CallerStatus.ELDER, "+8613800138000", ids["zhang"], "张秀英",
                                 "zh", None, False)


async def test_local_landline_without_area_code(db_session: AsyncSession) -> None:
    ids = await _seed(db_session)
    who = await identify(db_session, "8123456", AREA)
    assert (who.status, who.elder_id, who.handset) == (CallerStatus.ELDER, ids["zhang"], False)


async def test_handset_line_is_flagged(db_session: AsyncSession) -> None:
    ids = await _seed(db_session)
    who = await identify(db_session, "0931-4567890", AREA)
    assert (who.status, who.elder_id, who.handset) == (CallerStatus.ELDER, ids["zhang"], True)
    assert who.number == "+869314567890"


async def test_family_phone_acts_for_the_elder(db_session: AsyncSession) -> None:
    ids = await _seed(db_session)
    who = await identify(db_session, "18600000002", AREA)
    assert who == CallerIdentity(CallerStatus.FAMILY, "+8618600000002", ids["wang"], "王桂兰",
                                 "zh", "儿子", False)


async def test_shared_family_number_picks_best_priority(db_session: AsyncSession) -> None:
    ids = await _seed(db_session)
    who = await identify(db_session, "+86 186 0000 0001", AREA, default_language="zh")
    # first contact of 李建国, second of 王桂兰: 李建国 wins, in his language
    assert (who.status, who.elder_id, who.relation, who.language) == (
        CallerStatus.FAMILY, ids["li"], "女儿", "yue"
    )


async def test_shared_family_number_same_priority_picks_lowest_elder_id(
    db_session: AsyncSession,
) -> None:
    ids = await _seed(db_session)
    who = await identify(db_session, "18600000003", AREA)
    assert who.elder_id == min(ids["wang"], ids["zhao"])
    assert who.relation == "儿媳"


async def test_elder_phone_beats_family_phone(db_session: AsyncSession) -> None:
    ids = await _seed(db_session)
    # 张秀英's own mobile is also 李建国's contact (老伴): the call is from 张秀英 herself
    who = await identify(db_session, "13800138000", AREA)
    assert (who.status, who.elder_id) == (CallerStatus.ELDER, ids["zhang"])


async def test_a_shared_landline_identifies_the_household(db_session: AsyncSession) -> None:
    ids = await _seed(db_session)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    wife = Elder(name="刘淑芬", preferred_language="yue", created_at=now, phones=[
        ElderPhone(number_e164="+869318123456", kind=PhoneKind.LANDLINE),  # 张秀英's too
    ])  # fmt: skip
    db_session.add(wife)
    await db_session.commit()
    who = await identify(db_session, "8123456", AREA)
    assert (who.status, who.elder_id, who.handset) == (CallerStatus.ELDER, ids["zhang"], False)
    assert who.household == (HouseholdMember(ids["zhang"], "张秀英", "zh"),
                             HouseholdMember(wife.id, "刘淑芬", "yue"))
    chosen = who.as_member(who.household[1])
    assert (chosen.elder_id, chosen.elder_name, chosen.language, chosen.household) == (
        wife.id, "刘淑芬", "yue", ())
    # a number of one elder only: no household to choose from
    assert (await identify(db_session, "13800138000", AREA)).household == ()


async def test_the_no_menu_flag_is_set_and_marks_the_callers_identity(
    db_session: AsyncSession,
) -> None:
    ids = await _seed(db_session)
    assert (await identify(db_session, "13800138000", AREA)).no_menu is False
    assert await set_no_menu(db_session, ids["zhang"], True) is True
    assert (await identify(db_session, "13800138000", AREA)).no_menu is True
    # a family member calling for her uses the menu; another elder is not touched
    assert (await identify(db_session, "18600000002", AREA)).no_menu is False
    assert await set_no_menu(db_session, ids["zhang"], False) is True
    assert (await identify(db_session, "13800138000", AREA)).no_menu is False
    assert await set_no_menu(db_session, 999_999, True) is False


async def test_one_no_menu_member_takes_a_shared_number_to_an_operator(
    db_session: AsyncSession,
) -> None:
    ids = await _seed(db_session)
    wife = Elder(name="刘淑芬", created_at=datetime(2026, 1, 1, tzinfo=UTC), no_menu=True,
                 phones=[ElderPhone(number_e164="+869318123456", kind=PhoneKind.LANDLINE)])
    db_session.add(wife)
    await db_session.commit()
    who = await identify(db_session, "8123456", AREA)
    assert who.elder_id == ids["zhang"] and who.no_menu is True
    assert [m.no_menu for m in who.household] == [False, True]
    assert who.as_member(who.household[0]).no_menu is False


async def test_one_elder_lists_a_number_once(db_session: AsyncSession) -> None:
    db_session.add(Elder(name="重复", created_at=datetime(2026, 1, 1, tzinfo=UTC), phones=[
        ElderPhone(number_e164="+8613500135000", kind=PhoneKind.MOBILE),
        ElderPhone(number_e164="+8613500135000", kind=PhoneKind.LANDLINE),
    ]))  # fmt: skip
    with pytest.raises(SQLAlchemyError):
        await db_session.commit()


async def test_unknown_number(db_session: AsyncSession) -> None:
    await _seed(db_session)
    who = await identify(db_session, "133 1234 5678", AREA, default_language="zh")
    assert who == CallerIdentity(CallerStatus.UNKNOWN, "+8613312345678", None, None, "zh",
                                 None, False)
    service = await identify(db_session, "12349", AREA)
    assert (service.status, service.number) == (CallerStatus.UNKNOWN, "+8612349")


@pytest.mark.parametrize("raw", [None, "", "anonymous", "Restricted", "<unknown>", "x1y2"])
async def test_withheld_or_unusable_caller_id(db_session: AsyncSession,
                                              raw: str | None) -> None:
    await _seed(db_session)
    who = await identify(db_session, raw, AREA, default_language="yue")
    assert who == CallerIdentity(CallerStatus.WITHHELD, None, None, None, "yue", None, False)


async def test_identify_leaves_the_session_usable(db_session: AsyncSession) -> None:
    ids = await _seed(db_session)
    for _ in range(3):
        assert (await identify(db_session, "13900139000", AREA)).elder_id == ids["li"]
    db_session.add(Call(uniqueid="u-1", channel="c", direction="inbound",
                        identity_status="elder", elder_id=ids["li"],
                        started_at=datetime.now(UTC)))
    await db_session.commit()
    assert await db_session.scalar(select(Call.elder_id)) == ids["li"]


async def test_lookup_sees_writes_committed_after_it_started(db_engine: AsyncEngine) -> None:
    sessions = async_sessionmaker_for(db_engine)
    async with sessions() as session:
        assert (await identify(session, "13500135000", AREA)).status is CallerStatus.UNKNOWN
    async with sessions() as writer:
        ids = await _seed(writer)
        writer.add(ElderPhone(elder_id=ids["wang"], number_e164="+8613500135000",
                              kind=PhoneKind.MOBILE))
        await writer.commit()
    async with sessions() as session:
        who = await identify(session, "13500135000", AREA)
    assert (who.status, who.elder_id) == (CallerStatus.ELDER, ids["wang"])


async def test_session_bound_to_a_connection_sees_its_own_transaction(
    db_engine: AsyncEngine,
) -> None:
    async with db_engine.connect() as conn:
        session = AsyncSession(bind=conn, expire_on_commit=False)
        zhao = Elder(name="赵德明", created_at=datetime.now(UTC), phones=[
            ElderPhone(number_e164="+8613600136000", kind=PhoneKind.HANDSET)])
        session.add(zhao)
        await session.flush()  # not committed: only this transaction can see it
        who = await identify(session, "13600136000", AREA)
        assert (who.status, who.elder_id, who.handset) == (CallerStatus.ELDER, zhao.id, True)
        await session.close()
        await conn.rollback()


def test_concurrent_upgrades_take_turns(db_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=3) as pool:
        for future in [pool.submit(upgrade, db_url) for _ in range(3)]:
            future.result()
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            assert "elders" in inspect(conn).get_table_names()
    finally:
        engine.dispose()


async def test_registry_errors_surface_as_sqlalchemy_errors(db_url: str) -> None:
    engine = make_async_engine(db_url, pool_size=1)
    sessions = async_sessionmaker_for(engine)
    try:
        async with sessions() as session:  # no tables yet
            with pytest.raises(SQLAlchemyError):
                await identify(session, "13800138000", AREA)
        upgrade(db_url)
        async with sessions() as session:  # recovers once the schema exists
            assert (await identify(session, "13800138000", AREA)).status is CallerStatus.UNKNOWN
    finally:
        await engine.dispose()


async def test_lookup_survives_a_dropped_server_connection(pg_url: str) -> None:
    upgrade(pg_url)
    engine = make_async_engine(pg_url, pool_size=1)
    sessions = async_sessionmaker_for(engine)
    try:
        async with sessions() as session:
            ids = await _seed(session)
        async with engine.connect() as conn:
            pid = (await conn.get_raw_connection()).driver_connection.get_server_pid()
        admin = make_sync_engine(pg_url)
        try:
            with admin.begin() as conn:
                assert conn.execute(text("SELECT pg_terminate_backend(:pid)"),
                                    {"pid": pid}).scalar()
        finally:
            admin.dispose()
        async with sessions() as session:
            who = await identify(session, "13800138000", AREA)
        assert (who.status, who.elder_id) == (CallerStatus.ELDER, ids["zhang"])
    finally:
        await engine.dispose()
