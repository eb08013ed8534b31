"""A deterministic synthetic city for demos, tests and benchmarks: Lanzhou-like.

Gansu (62), Lanzhou (6201), area code 0931, its eight real counties; streets/towns and
communities/villages under them are synthetic, with 12-digit codes in the style of the
statistical division codes (county + 3-digit street + 3-digit community; communities
001-199, villages 201-399). Elders get Chinese names, 1-2 phones (mobiles 13x/15x/17x/18x/
19x and 0931 landlines), about 15 % a one-key handset line, 1-3 family contacts, coordinates
near their county, a realistic subsidy mix and short health notes. About 12 % of elders
are couples: both registered, same address, each the other's first contact (老伴), sharing
their children's numbers, which is the one intentional number overlap. Preferred language:
about 97 % "zh" (Mandarin), 2 % "yue" (Cantonese) and 1 % "en", so that non-default prompt
sets get exercised; the codes are prompt directory names.

Every phone number comes from a counter run through a bijective scramble, so numbers are
unique without remembering them. Rows go in by SQLAlchemy Core executemany in chunks.
"""

from __future__ import annotations

import bisect
import itertools
import random
import time as clock
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, exists, func, insert, select, text

from dispatch.db import make_sync_engine, write_transaction
from dispatch.models import (
    Elder,
    ElderPhone,
    FamilyContact,
    PhoneKind,
    ServiceType,
    Vendor,
    VendorPhone,
    VendorWorker,
    vendor_coverage,
    vendor_services,
)

PROVINCE = ("620000", "甘肃省")
CITY = ("620100", "兰州市")
AREA_CODE = "931"


@dataclass(frozen=True)
class County:
    code: str
    name: str
    weight: float  # share of the city's elders
    lat: float
    lon: float
    urban: bool


COUNTIES: tuple[County, ...] = (
    County("620102", "城关区", 0.33, 36.0573, 103.8343, True),
    County("620103", "七里河区", 0.15, 36.0660, 103.7856, True),
    County("620104", "西固区", 0.10, 36.0885, 103.6280, True),
    County("620105", "安宁区", 0.08, 36.1040, 103.7190, True),
    County("620111", "红古区", 0.04, 36.3452, 102.8600, False),
    County("620121", "永登县", 0.11, 36.7360, 103.2600, False),
    County("620122", "皋兰县", 0.04, 36.3320, 103.9470, False),
    County("620123", "榆中县", 0.15, 35.8450, 104.1130, False),
)

MOBILE_PREFIXES = (
    *range(130, 140), 150, 151, 152, 153, 155, 156, 157, 158, 159,
    170, 171, 172, 173, 175, 176, 177, 178, *range(180, 190),
    190, 191, 192, 193, 195, 196, 197, 198, 199,
)  # fmt: skip
LANDLINE_FIRST_DIGITS = "824567"

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
    "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵"
)
SURNAME_WEIGHTS = tuple(max(1.0, 40.0 - i) for i in range(len(SURNAMES)))
ELDER_GIVEN = {
    "M": ("建国", "国华", "志强", "德明", "永福", "万里", "世荣", "振华", "文斌", "玉林",
          "学军", "长青", "广才", "有福", "建民", "国庆", "宝山", "金海", "守仁", "正义",
          "福", "林", "明", "军", "忠", "海", "山", "贵", "华", "强"),
    "F": ("秀英", "桂兰", "玉兰", "淑珍", "凤英", "秀兰", "桂英", "兰英", "玉珍", "翠花",
          "金凤", "素芳", "淑英", "丽华", "春梅", "玉梅", "秀珍", "桂芳", "月娥", "爱英",
          "芳", "英", "兰", "珍", "梅", "霞", "琴", "华", "敏", "娟"),
}  # fmt: skip
YOUNG_GIVEN = (
    "伟", "磊", "勇", "静", "丽", "洋", "艳", "杰", "娜", "涛", "明", "超", "秀梅", "海燕",
    "建华", "晓东", "丽娟", "志刚", "红霞", "文静", "浩然", "子涵", "雨轩", "佳怡", "俊杰",
)  # fmt: skip
CHILD_RELATIONS = (
    ("儿子", 30), ("女儿", 30), ("儿媳", 8), ("女婿", 6), ("孙子", 8), ("孙女", 7),
    ("侄子", 4), ("外甥女", 3), ("邻居", 4),
)  # fmt: skip
SUBSIDIES = (
    ("none", 70), ("dibao", 10), ("low_income", 8), ("disabled_hardship", 6),
    ("priority_care", 3), ("sanwu", 2), ("model_worker", 1),
)  # fmt: skip
HEALTH_NOTES = (
    "高血压", "糖尿病", "行动不便", "冠心病", "慢阻肺", "听力下降", "视力差", "轻度认知障碍",
    "关节炎", "独居", "术后康复", "骨质疏松", "脑梗后遗症", "需助行器", "夜间易跌倒",
)  # fmt: skip
PLACE_WORDS = (
    "东岗", "雁滩", "五泉", "金城", "黄河", "兴隆", "安康", "和平", "幸福", "团结", "建设", "民主",
    "光明", "红星", "向阳", "东风", "新华", "胜利", "育才", "文化", "青年", "劳动", "永安", "长乐",
    "皋兰", "白塔", "伏龙", "西湖", "桃林", "柳泉", "龙泉", "石岗", "盐池", "焦家", "马滩", "刘家",
    "张苏", "彭家", "崔家", "晏家", "土门", "深沟", "杏花", "枣林", "梨园", "花园", "北山", "南河",
)  # fmt: skip
STREET_SUFFIX = {True: ("街道", "路街道"), False: ("镇", "乡")}
COMMUNITY_SUFFIX = {True: ("社区", "新村社区", "里社区"), False: ("村",)}
LANGUAGES = (("zh", 97), ("yue", 2), ("en", 1))
VENDOR_CORES = (
    "康乐", "夕阳红", "福寿", "安康", "颐养", "乐龄", "金城", "黄河", "春晖", "康宁", "孝和",
    "福满堂", "百合", "仁爱", "松鹤", "温馨", "暖阳", "益康", "惠民", "邻里",
)  # fmt: skip
VENDOR_SUFFIX = {
    ServiceType.MEAL: "助餐服务中心",
    ServiceType.HOUSEKEEPING: "家政服务有限公司",
    ServiceType.HEALTH: "健康护理服务站",
}
VENDOR_SERVICES = (ServiceType.MEAL, ServiceType.HOUSEKEEPING, ServiceType.HEALTH)

REFERENCE_DATE = date(2025, 1, 1)
REGISTRATION_START = datetime(2009, 6, 1, tzinfo=UTC)
REGISTRATION_END = datetime(2024, 12, 31, tzinfo=UTC)
REGISTRATION_SPAN_S = int((REGISTRATION_END - REGISTRATION_START).total_seconds())
COUPLE_SHARE = 0.12
HANDSET_SHARE = 0.15
CHUNK = 20_000
SQLITE_CACHE_KIB = 131_072  # page cache while loading: index inserts stay in memory


@dataclass(frozen=True)
class CitySummary:
    elders: int
    elder_phones: int
    handsets: int
    family_contacts: int
    vendors: int
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"{self.elders:,} elders, {self.elder_phones:,} elder phones "
            f"({self.handsets:,} one-key handsets), {self.family_contacts:,} family contacts, "
            f"{self.vendors} vendors in {self.seconds:.1f} s"
        )


class RegistryNotEmptyError(RuntimeError):
    """generate_city() refuses to mix a synthetic city into an existing registry."""


def _registered(fraction: float) -> datetime:
    """A registration time, ``fraction`` of the way through the programme's history."""
    return REGISTRATION_START + timedelta(seconds=int(fraction * REGISTRATION_SPAN_S))


class _Picker:
    """Weighted choice by bisection on cumulative weights (faster than random.choices)."""

    def __init__(self, items: Sequence[Any], weights: Sequence[float]) -> None:
        self.items = tuple(items)
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]

    def __call__(self, rng: random.Random) -> Any:
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.total)]


def _coprime_multiplier(rng: random.Random, modulus: int) -> int:
    while True:
        candidate = rng.randrange(modulus // 10, modulus)
        if candidate % 2 and candidate % 5 and candidate % 3:
            return candidate


class NumberAllocator:
    """Unique mobile and 0931 landline numbers: counters through bijective scrambles."""

    def __init__(self, rng: random.Random) -> None:
        self._mobiles = itertools.count()
        self._landlines = itertools.count()
        self._m_mul, self._m_add = _coprime_multiplier(rng, 10**8), rng.randrange(10**8)
        self._l_mul, self._l_add = _coprime_multiplier(rng, 10**6), rng.randrange(10**6)

    def mobile(self) -> str:
        k = next(self._mobiles)
        block, slot = divmod(k, len(MOBILE_PREFIXES))
        if block >= 10**8:
            raise OverflowError("mobile number space exhausted")
        subscriber = (block * self._m_mul + self._m_add) % 10**8
        return f"+86{MOBILE_PREFIXES[slot]}{subscriber:08d}"

    def landline(self) -> str:
        k = next(self._landlines)
        block, slot = divmod(k, len(LANDLINE_FIRST_DIGITS))
        if block >= 10**6:
            raise OverflowError("landline number space exhausted")
        rest = (block * self._l_mul + self._l_add) % 10**6
        return f"+86{AREA_CODE}{LANDLINE_FIRST_DIGITS[slot]}{rest:06d}"


@dataclass
class _Community:
    code: str
    name: str


@dataclass
class _Street:
    code: str
    name: str
    communities: list[_Community] = field(default_factory=list)


def _unique_names(rng: random.Random, count: int, suffixes: Sequence[str]) -> list[str]:
    pool = [w + s for w in PLACE_WORDS for s in suffixes]
    return rng.sample(pool, min(count, len(pool)))


def build_regions(rng: random.Random) -> dict[str, list[_Street]]:
    """Synthetic streets/towns and communities/villages under each real county."""
    regions: dict[str, list[_Street]] = {}
    for county in COUNTIES:
        streets = []
        names = _unique_names(rng, rng.randint(8, 14), STREET_SUFFIX[county.urban])
        for s_index, s_name in enumerate(names, start=1):
            street = _Street(f"{county.code}{s_index:03d}000", s_name)
            first = 1 if county.urban else 201
            c_names = _unique_names(rng, rng.randint(5, 12), COMMUNITY_SUFFIX[county.urban])
            for c_index, c_name in enumerate(c_names, start=first):
                street.communities.append(_Community(f"{street.code[:9]}{c_index:03d}", c_name))
            streets.append(street)
        regions[county.code] = streets
    return regions


class _CityBuilder:
    """Produces elder, phone and family rows, deterministically from one seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.numbers = NumberAllocator(self.rng)
        self.regions = build_regions(self.rng)
        self.county = _Picker(COUNTIES, [c.weight for c in COUNTIES])
        self.surname = _Picker(SURNAMES, SURNAME_WEIGHTS)
        self.subsidy = _Picker(*zip(*SUBSIDIES, strict=True))
        self.language = _Picker(*zip(*LANGUAGES, strict=True))
        self.relation = _Picker(*zip(*CHILD_RELATIONS, strict=True))
        self.note_count = _Picker((0, 1, 2, 3), (25, 40, 25, 10))
        self.relative_count = _Picker((1, 2, 3), (35, 45, 20))
        self.elders: list[dict[str, Any]] = []
        self.phones: list[dict[str, Any]] = []
        self.family: list[dict[str, Any]] = []

    def _int(self, n: int) -> int:
        """Uniform in [0, n): cheaper than randrange on the hot path."""
        return int(self.rng.random() * n)

    def _one(self, items: Sequence[Any]) -> Any:
        return items[int(self.rng.random() * len(items))]

    # -- one elder ---------------------------------------------------------------------
    def _birth_date(self) -> date:
        age = 60 + min(39, int(self.rng.gammavariate(2.0, 6.0)))
        return REFERENCE_DATE - timedelta(days=age * 365 + self._int(365))

    def _id_card(self, county: str, gender: str) -> str:
        sequence = self._int(500) * 2 + (1 if gender == "M" else 0)
        return f"{county}********{sequence:03d}{self._one('0123456789X')}"

    def _health_notes(self) -> str | None:
        count = self.note_count(self.rng)
        return "；".join(self.rng.sample(HEALTH_NOTES, count)) or None

    def _home(self) -> dict[str, Any]:
        county: County = self.county(self.rng)
        street = self._one(self.regions[county.code])
        community = self._one(street.communities)
        if county.urban:
            detail = (f"{self._int(30) + 1}号楼{self._int(6) + 1}单元"
                      f"{self._int(18) + 1}0{self._int(4) + 1}室")
        else:
            detail = f"{self._int(12) + 1}社{self._int(180) + 1}号"
        spread = 0.03 if county.urban else 0.12
        return {
            "address": f"{CITY[1]}{county.name}{street.name}{community.name}{detail}",
            "province_code": PROVINCE[0],
            "province_name": PROVINCE[1],
            "city_code": CITY[0],
            "city_name": CITY[1],
            "county_code": county.code,
            "county_name": county.name,
            "street_code": street.code,
            "street_name": street.name,
            "community_code": community.code,
            "community_name": community.name,
            "latitude": round(county.lat + self.rng.gauss(0, spread), 6),
            "longitude": round(county.lon + self.rng.gauss(0, spread), 6),
        }

    def _elder(self, elder_id: int, gender: str, home: dict[str, Any], surname: str) -> str | None:
        """Append an elder and its phones; return its mobile number, if any."""
        rng = self.rng
        self.elders.append({
            "id": elder_id,
            "name": surname + self._one(ELDER_GIVEN[gender]),
            "gender": gender,
            "birth_date": self._birth_date(),
            "id_card_masked": self._id_card(home["county_code"], gender),
            **home,
            "preferred_language": self.language(rng),
            "subsidy_category": self.subsidy(rng),
            "health_notes": self._health_notes(),
            "created_at": _registered(rng.random()),
        })  # fmt: skip
        roll = rng.random()
        mobile = self.numbers.mobile() if roll < 0.80 else None
        if mobile:
            self._phone(elder_id, mobile, PhoneKind.MOBILE, "手机")
        if roll >= 0.45:
            self._phone(elder_id, self.numbers.landline(), PhoneKind.LANDLINE, "家庭座机")
        if rng.random() < HANDSET_SHARE:
            line = self.numbers.landline() if rng.random() < 0.6 else self.numbers.mobile()
            self._phone(elder_id, line, PhoneKind.HANDSET, "一键通")
        return mobile

    def _phone(self, elder_id: int, number: str, kind: PhoneKind, label: str) -> None:
        self.phones.append(
            {"elder_id": elder_id, "number_e164": number, "kind": kind.value, "label": label}
        )

    def _relatives(self, surname: str) -> list[tuple[str, str, str]]:
        relatives = []
        for _ in range(self.relative_count(self.rng)):
            relation = self.relation(self.rng)
            same_family = relation in ("儿子", "女儿", "孙子", "孙女", "侄子")
            name = (surname if same_family else self.surname(self.rng)) + self._one(YOUNG_GIVEN)
            relatives.append((name, relation, self.numbers.mobile()))
        return relatives

    def _contacts(self, elder_id: int, contacts: list[tuple[str, str, str]]) -> None:
        for priority, (name, relation, number) in enumerate(contacts, start=1):
            self.family.append({"elder_id": elder_id, "name": name, "relation": relation,
                                "number_e164": number, "priority": priority})

    def household(self, next_id: int, remaining: int) -> int:
        """Append one household (an elder, or a couple); return how many elders it holds."""
        rng = self.rng
        home = self._home()
        surname = self.surname(rng)
        if remaining >= 2 and rng.random() < COUPLE_SHARE:
            m_mobile = self._elder(next_id, "M", home, surname)
            f_mobile = self._elder(next_id + 1, "F", home, self.surname(rng))
            children = self._relatives(surname)
            his = [(self.elders[-1]["name"], "老伴", f_mobile)] if f_mobile else []
            hers = [(self.elders[-2]["name"], "老伴", m_mobile)] if m_mobile else []
            self._contacts(next_id, his + children)
            self._contacts(next_id + 1, hers + children)
            return 2
        gender = "F" if rng.random() < 0.55 else "M"
        self._elder(next_id, gender, home, surname)
        self._contacts(next_id, self._relatives(surname))
        return 1

    def take(self) -> tuple[list[dict[str, Any]], ...]:
        batch = (self.elders, self.phones, self.family)
        self.elders, self.phones, self.family = [], [], []
        return batch


def _vendor_rows(rng: random.Random, numbers: NumberAllocator, count: int) -> Iterator[tuple]:
    county_picker = _Picker(COUNTIES, [c.weight for c in COUNTIES])
    names: set[str] = set()
    for vendor_id in range(1, count + 1):
        services = rng.sample(VENDOR_SERVICES, rng.choices((1, 2, 3), (50, 35, 15))[0])
        home: County = county_picker(rng)
        coverage = {home.code}
        for _ in range(rng.choices((0, 1, 2, 3), (40, 30, 20, 10))[0]):
            coverage.add(county_picker(rng).code)
        suffix = VENDOR_SUFFIX[services[0]] if len(services) == 1 else "养老服务有限公司"
        name = f"兰州{home.name}{rng.choice(VENDOR_CORES)}{suffix}"
        while name in names:
            name = f"兰州{rng.choice(VENDOR_CORES)}{rng.choice(VENDOR_CORES)}{suffix}"
        names.add(name)
        if ServiceType.HEALTH in services and rng.random() < 0.3:
            hours = (time(0, 0), time(0, 0))  # round the clock
        elif ServiceType.MEAL in services:
            hours = (time(6, 30), time(19, 30))
        else:
            hours = (time(8, 0), time(18, 0) if rng.random() < 0.5 else time(20, 0))
        status = rng.choices(("active", "suspended", "removed"), (90, 7, 3))[0]
        vendor = {
            "id": vendor_id,
            "name": name,
            "status": status,
            "opens_at": hours[0],
            "closes_at": hours[1],
            "rank_score": None if rng.random() < 0.1 else round(rng.uniform(55, 98), 1),
            "latitude": round(home.lat + rng.gauss(0, 0.02), 6),
            "longitude": round(home.lon + rng.gauss(0, 0.02), 6),
            "max_open_orders": rng.choice((10, 20, 30)),
            "created_at": _registered(rng.random()),
        }
        phones = [{"vendor_id": vendor_id, "number_e164": numbers.landline(), "label": "调度电话"}]
        if rng.random() < 0.5:
            phones.append(
                {"vendor_id": vendor_id, "number_e164": numbers.mobile(), "label": "负责人手机"}
            )
        workers = [
            {"vendor_id": vendor_id, "name": f"{rng.choice(SURNAMES)}师傅",
             "number_e164": numbers.mobile(), "active": True}
            for _ in range(rng.randint(1, 4))
        ]
        yield (
            vendor,
            [{"vendor_id": vendor_id, "service": s.value} for s in services],
            [{"vendor_id": vendor_id, "county_code": c} for c in sorted(coverage)],
            phones,
            workers,
        )


def _insert(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(table), rows)


def _reset_sequences(conn: Connection) -> None:
    """After explicit ids, move PostgreSQL's id sequences past them."""
    if conn.dialect.name != "postgresql":
        return
    for table in ("elders", "vendors"):
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
            )
        )


def generate_city(
    url: str,
    *,
    elders: int = 10_000,
    vendors: int = 40,
    seed: int = 12349,
    progress: Callable[[int], None] | None = None,
) -> CitySummary:
    """Fill an empty, migrated registry with a synthetic city; same seed, same city."""
    if elders < 0 or vendors < 0:
        raise ValueError("elders and vendors must not be negative")
    started = clock.perf_counter()
    builder = _CityBuilder(seed)
    vendor_rng = random.Random(seed + 1)
    engine = make_sync_engine(url)
    try:
        with write_transaction(engine) as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            if conn.scalar(select(func.count()).select_from(Elder)) or conn.scalar(
                select(func.count()).select_from(Vendor)
            ):
                raise RegistryNotEmptyError("the registry already holds elders or vendors")
            made = 0
            while made < elders:
                target = min(elders, made + CHUNK)
                while made < target:
                    made += builder.household(made + 1, elders - made)
                elder_rows, phone_rows, family_rows = builder.take()
                _insert(conn, Elder.__table__, elder_rows)
                _insert(conn, ElderPhone.__table__, phone_rows)
                _insert(conn, FamilyContact.__table__, family_rows)
                if progress:
                    progress(made)
            for vendor, services, coverage, phones, workers in _vendor_rows(
                vendor_rng, builder.numbers, vendors
            ):
                _insert(conn, Vendor.__table__, [vendor])
                _insert(conn, vendor_services, services)
                _insert(conn, vendor_coverage, coverage)
                _insert(conn, VendorPhone.__table__, phones)
                _insert(conn, VendorWorker.__table__, workers)
            _reset_sequences(conn)
            summary = _count(conn)
    finally:
        engine.dispose()
    return CitySummary(**{**summary.__dict__, "seconds": clock.perf_counter() - started})


def _count(conn: Connection) -> CitySummary:
    def count(table: Any, *where: Any) -> int:
        return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)

    return CitySummary(
        elders=count(Elder),
        elder_phones=count(ElderPhone),
        handsets=count(ElderPhone, ElderPhone.kind == PhoneKind.HANDSET),
        family_contacts=count(FamilyContact),
        vendors=count(Vendor),
    )


def summarize(url: str) -> CitySummary:
    """Counts of what a registry holds (whatever produced it)."""
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            return _count(conn)
    finally:
        engine.dispose()


def _pick(conn: Connection, column: Any, where: Sequence[Any], n: int,
          rng: random.Random) -> list[str]:
    """Up to ``n`` distinct values of ``column`` from rows picked at random by id."""
    table = column.table
    low, high = conn.execute(select(func.min(table.c.id), func.max(table.c.id))).one()
    if low is None:
        return []
    found: list[str] = []
    seen: set[str] = set()
    for _ in range(50):
        if len(found) >= n:
            break
        ids = [rng.randint(low, high) for _ in range(max(16, 2 * (n - len(found))))]
        rows = conn.execute(select(table.c.id, column).where(table.c.id.in_(ids), *where))
        by_id = {row.id: row[1] for row in rows}
        for row_id in ids:
            value = by_id.get(row_id)
            if value and value not in seen:
                seen.add(value)
                found.append(value)
    return found[:n]


def _unknown(conn: Connection, n: int, rng: random.Random) -> list[str]:
    found: list[str] = []
    attempts = 0
    while len(found) < n and attempts < 100 * (n + 1):
        attempts += 1
        number = f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
        if number in found:
            continue
        taken = conn.scalar(
            select(
                exists().where(ElderPhone.number_e164 == number)
                | exists().where(FamilyContact.number_e164 == number)
            )
        )
        if not taken:
            found.append(number)
    return found


def sample_numbers(url: str, n: int = 20, seed: int = 12349) -> dict[str, list[str]]:
    """Up to ``n`` E.164 numbers per kind, deterministic for a registry and seed.

    Keys: ``elders`` (an elder's mobile or landline), ``handsets`` (one-key handset lines),
    ``family`` (family contacts' numbers that are not an elder's phone, so they identify as
    family), ``unknown`` (valid mobiles in no registry table).
    """
    rng = random.Random(seed)
    phones = ElderPhone.__table__
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            not_elder_phone = ~exists().where(
                ElderPhone.number_e164 == FamilyContact.number_e164
            )
            return {
                "elders": _pick(conn, phones.c.number_e164,
                                [ElderPhone.kind != PhoneKind.HANDSET], n, rng),
                "handsets": _pick(conn, phones.c.number_e164,
                                  [ElderPhone.kind == PhoneKind.HANDSET], n, rng),
                "family": _pick(conn, FamilyContact.__table__.c.number_e164, [not_elder_phone], n,
                                rng),
                "unknown": _unknown(conn, n, rng),
            }  # fmt: skip
    finally:
        engine.dispose()
