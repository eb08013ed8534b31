"""A small registry for console tests: elders in three counties of two cities, a vendor,
and orders in each county (one escalated, one open emergency)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from dispatch.db import make_sync_engine
from dispatch.models import (
    Elder,
    ElderPhone,
    FamilyContact,
    OrderEvent,
    OrderSource,
    OrderStatus,
    PhoneKind,
    ServiceType,
    Vendor,
    VendorPhone,
    WorkOrder,
    vendor_coverage,
    vendor_services,
)
from dispatch.orders import PRIORITY, order_no_for

# (province, city, county, county name)
DONGCHENG = ("110000", "110100", "110101", "东城区")
CHAOYANG = ("110000", "110100", "110105", "朝阳区")
HEPING = ("120000", "120100", "120101", "和平区")
SCRIPT_ADDRESS = ('<script>window.__pwned = 1</script>幸福路1号'
                  '<img src=x onerror="window.__pwned=2">')


@dataclass
class World:
    elders: dict[str, int] = field(default_factory=dict)  # name -> id
    orders: dict[str, str] = field(default_factory=dict)  # label -> order number
    vendor_id: int = 0


def _elder(session: Session, name: str, place: tuple[str, str, str, str], phone: str,
           address: str) -> Elder:
    province, city, county, county_name = place
    elder = Elder(name=name, address=address, province_code=province, city_code=city,
                  county_code=county, county_name=county_name, health_notes="高血压",
                  created_at=datetime.now(UTC))
    elder.phones = [ElderPhone(number_e164=phone, kind=PhoneKind.MOBILE)]
    elder.family = [FamilyContact(name=f"{name}之子", relation="son",
                                  number_e164=f"{phone[:-1]}9", priority=1)]
    session.add(elder)
    session.flush()
    return elder


def _order(session: Session, elder: Elder, service: ServiceType, status: OrderStatus,
           at: datetime) -> str:
    call = f"{int(at.timestamp())}.{elder.id}" if service is ServiceType.EMERGENCY else None
    order = WorkOrder(elder_id=elder.id, service=service, priority=PRIORITY[service],
                      status=status, source=OrderSource.PHONE, requested_by="elder",
                      created_at=at, call_uniqueid=call)
    session.add(order)
    session.flush()
    order.order_no = order_no_for(order.id)
    session.add(OrderEvent(order_id=order.id, at=at, kind="created",
                           detail={"service": service.value}))
    if status is OrderStatus.ESCALATED:
        session.add(OrderEvent(order_id=order.id, at=at + timedelta(minutes=20),
                               kind="dispatch_escalated", detail={"reason": "no_vendor"}))
    return order.order_no


def seed_world(db_url: str) -> World:
    """The registry above, written to a migrated database."""
    world = World()
    now = datetime.now(UTC) - timedelta(hours=1)
    engine = make_sync_engine(db_url)
    try:
        with Session(engine) as session, session.begin():
            chaoyang = [_elder(session, "李秀英", CHAOYANG, "+8613800000011", "朝阳路8号"),
                        _elder(session, "王建国", CHAOYANG, "+8613800000012", SCRIPT_ADDRESS)]
            dongcheng = _elder(session, "赵淑珍", DONGCHENG, "+8613800000021", "东四北大街3号")
            heping = _elder(session, "孙桂兰", HEPING, "+8613800000031", "南京路5号")
            for elder in (*chaoyang, dongcheng, heping):
                world.elders[elder.name] = elder.id
            vendor = Vendor(name="朝阳助餐中心", created_at=now)
            vendor.phones = [VendorPhone(number_e164="+8613900000001")]
            session.add(vendor)
            session.flush()
            world.vendor_id = vendor.id
            session.execute(vendor_coverage.insert(), [{"vendor_id": vendor.id,
                                                        "county_code": CHAOYANG[2]}])
            session.execute(vendor_services.insert(), [{"vendor_id": vendor.id,
                                                        "service": ServiceType.MEAL.value}])
            world.orders = {
                "chaoyang": _order(session, chaoyang[0], ServiceType.MEAL,
                                   OrderStatus.COMPLETED, now),
                "escalated": _order(session, chaoyang[0], ServiceType.MEAL,
                                    OrderStatus.ESCALATED, now + timedelta(minutes=1)),
                "escalated2": _order(session, chaoyang[1], ServiceType.HOUSEKEEPING,
                                     OrderStatus.ESCALATED, now + timedelta(minutes=2)),
                "emergency": _order(session, chaoyang[1], ServiceType.EMERGENCY,
                                    OrderStatus.DISPATCHING, now + timedelta(minutes=3)),
                "dongcheng": _order(session, dongcheng, ServiceType.HEALTH,
                                    OrderStatus.NEW, now + timedelta(minutes=4)),
                "heping": _order(session, heping, ServiceType.MEAL, OrderStatus.ACCEPTED,
                                 now + timedelta(minutes=5)),
            }
    finally:
        engine.dispose()
    return world
