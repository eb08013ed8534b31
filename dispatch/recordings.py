"""The index of recordings: callers' messages and recorded calls, by call, elder and order.

A recording's file lives in the recordings folder Asterisk writes into (``[recordings] dir``);
the row keeps its path relative to that folder, so the folder can move. A recording is
reached only through its random token, and only by an account whose region covers its elder
(a caller nobody knows: every region, as on the worklist): the condition is in the query.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import Elder, QueueCall, Recording, RecordingKind
from dispatch.regions import RegionScope

TOKEN_BYTES = 16
MAX_TOKEN = 32


def new_token() -> str:
    """A recording's public name: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def relative_file(root: Path, path: Path) -> str:
    """``path`` as stored: relative to the recordings folder ``root``; ValueError if outside."""
    return PurePosixPath(Path(path).resolve().relative_to(Path(root).resolve())).as_posix()


_SAFE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def safe_relative(name: str) -> str | None:
    """``name`` if it is a plain relative path (``calls/20261204/1796400000.12.wav``): no root,
    no ``..``, no odd characters; else None."""
    parts = name.split("/")
    if len(name) > 255 or len(parts) > 8 or not all(_SAFE_PART.match(p) for p in parts):
        return None
    return name


def file_in(root: Path, relative: str) -> Path | None:
    """The stored ``relative`` path inside ``root``, or None if it would leave the folder."""
    resolved_root = Path(root).resolve()
    path = (resolved_root / relative).resolve()
    return path if path.is_relative_to(resolved_root) and path != resolved_root else None


@dataclass(frozen=True, slots=True)
class NewRecording:
    """What the engine learned of a recording it (or Asterisk) just wrote."""

    kind: RecordingKind
    uniqueid: str
    file: str  # relative to the recordings folder
    started_at: datetime
    duration_s: float | None
    elder_id: int | None = None
    order_id: int | None = None
    caller_number: str | None = None


def call_answered() -> Any:
    """The condition that a recording's call was answered by an operator (a call nobody
    answered has no MixMonitor file: option b keeps only bridged audio)."""
    return select(QueueCall.id).where(QueueCall.uniqueid == Recording.uniqueid,
                                      QueueCall.answered_at.is_not(None)).exists()


async def add_recording(session: AsyncSession, new: NewRecording) -> Recording:
    """Index a recording; COMMITs."""
    row = Recording(token=new_token(), kind=new.kind, uniqueid=new.uniqueid, file=new.file,
                    started_at=new.started_at, duration_s=new.duration_s,
                    elder_id=new.elder_id, order_id=new.order_id,
                    caller_number=new.caller_number)
    session.add(row)
    await session.commit()
    return row


async def playable(session: AsyncSession, scope: RegionScope, token: str) -> Recording | None:
    """The recording named ``token`` if ``scope`` may hear it and its file is not deleted."""
    if not token or len(token) > MAX_TOKEN:
        return None
    return await session.scalar(
        select(Recording).outerjoin(Elder, Elder.id == Recording.elder_id)
        .where(Recording.token == token, Recording.deleted_at.is_(None),
               or_(Recording.elder_id.is_(None), scope.elder_condition())))


async def exists_elsewhere(session: AsyncSession, token: str) -> bool:
    """Whether ``token`` names a recording at all (for the audit of a refusal)."""
    if not token or len(token) > MAX_TOKEN:
        return False
    return await session.scalar(select(Recording.id).where(Recording.token == token)) is not None


async def messages_since(session: AsyncSession, since: datetime,
                         scope: RegionScope | None = None) -> list[Recording]:
    """Callers' messages left since ``since`` and not deleted, oldest first; with ``scope``,
    those of its elders and of callers nobody knows."""
    in_scope = [] if scope is None else [or_(Recording.elder_id.is_(None),
                                             scope.elder_condition())]
    return list((await session.scalars(
        select(Recording).outerjoin(Elder, Elder.id == Recording.elder_id)
        .where(Recording.kind == RecordingKind.MESSAGE, Recording.started_at >= since,
               Recording.deleted_at.is_(None), *in_scope)
        .order_by(Recording.started_at, Recording.id))).all())
