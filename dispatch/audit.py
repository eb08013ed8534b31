"""The audit log: who did what, when and from which address (``hotline report audit``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from dispatch.accounts import Account
from dispatch.models import AuditEntry

_COLUMNS = ("at", "account_id", "account_name", "action", "target", "address", "detail")
_INSERT = insert(AuditEntry).values({name: bindparam(name) for name in _COLUMNS})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an account (None before sign-in) under a name, from an address."""

    account_id: int | None
    name: str
    address: str | None

    @classmethod
    def of(cls, account: Account, address: str | None) -> Actor:
        return cls(account.id, account.name, address)


def audit_row(actor: Actor, action: str, at: datetime, target: str | None = None,
              detail: dict[str, Any] | None = None) -> tuple[Executable, dict[str, Any]]:
    """The statement that writes one audit row, to add to a transaction."""
    return _INSERT, {
        "at": at, "account_id": actor.account_id, "account_name": actor.name[:64],
        "action": action[:40], "target": target[:64] if target else None,
        "address": (actor.address or "")[:64] or None, "detail": detail}


async def record(session: AsyncSession, actor: Actor, action: str, at: datetime,
                 target: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """Write one audit row and COMMIT."""
    statement, params = audit_row(actor, action, at, target, detail)
    await session.execute(statement, params)
    await session.commit()


async def entries_since(session: AsyncSession, since: datetime, until: datetime | None = None
                        ) -> list[AuditEntry]:
    """Audit rows from ``since`` (to ``until``), oldest first."""
    query = select(AuditEntry).where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    return list((await session.scalars(query.order_by(AuditEntry.at, AuditEntry.id))).all())


def format_entries(rows: list[AuditEntry]) -> str:
    """One line a row: time, who, from where, what, on what, details."""
    lines = [f"{len(rows)} audit entr{'y' if len(rows) == 1 else 'ies'}"]
    for row in rows:
        detail = json.dumps(row.detail, ensure_ascii=False, sort_keys=True) if row.detail else ""
        lines.append(f"{row.at:%Y-%m-%d %H:%M:%S}  {row.account_name}  "
                     f"{row.address or '-'}  {row.action}  {row.target or '-'}  {detail}".rstrip())
    return "\n".join(lines)
