"""FastAGI route ``message``: a caller who is not in an emergency leaves a spoken message.

The dialplan sends a caller here outside the operators' hours (the inbound flow's route
``message``) and when a non-emergency caller's queue wait timed out. The caller hears
``message_invite`` and speaks; RECORD FILE stops at #, after ``[recordings]
message_silence_s`` of quiet, at ``message_max_s`` or when the caller hangs up. The file is
written by Asterisk into the recordings folder both share (``[recordings] dir``). A message
with at least ``MIN_VOICE_S`` of voice in it is indexed to the caller
(``dispatch/recordings.py``; identified by caller ID, or nobody's), announced to the consoles
and listed on the worklist as a caller to call back; the caller hears ``message_thanks`` and
the dialplan gets HOTLINE_MESSAGE=stored.
Anything else (nothing said, a storage failure) leaves HOTLINE_MESSAGE empty, and the dialplan
goes on as without a message: the operators' queue, or the spool. Emergencies never come here.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import wave
from datetime import datetime
from pathlib import Path

from dispatch.console_events import MessageLeft
from dispatch.models import RecordingKind
from dispatch.phones import mask
from dispatch.recordings import NewRecording, add_recording, relative_file
from dispatch.regions import Place
from dispatch.registry import CallerIdentity, identify
from ivr.agi.errors import AgiHangup
from ivr.agi.session import AgiSession
from ivr.audio import voiced_seconds
from ivr.context import EngineContext
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)

MESSAGE_VARIABLE = "HOTLINE_MESSAGE"
STORED = "stored"
END_KEY = "#"
MIN_VOICE_S = 0.5  # of sound above a quiet line's hiss: anything less is no message
SAMPLE_RATE = 8000  # RECORD FILE's endpos counts 8 kHz samples for wav
_UNSAFE = re.compile(r"[^0-9A-Za-z._-]")


class LeaveMessageFlow:
    """Invite, record, index, thank."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings.recordings

    async def __call__(self, agi: AgiSession) -> None:
        identity = await self._identify(agi)
        language = (await agi.get_variable("HOTLINE_LANGUAGE")
                    or (identity.language if identity else None)
                    or self.ctx.settings.ivr.default_language)
        language = self.ctx.prompts.recorded_language(language)
        await agi.answer()
        await agi.stream_file(self.ctx.prompts.path("message_invite", language))
        started_at = self.ctx.now()
        path, seconds = await self._record(agi)
        if path is None or await asyncio.to_thread(voiced_seconds, path) < MIN_VOICE_S:
            if path is not None:
                path.unlink(missing_ok=True)
            log.info("call %s: no message left", agi.env.uniqueid)
            return
        if not await self._index(agi, identity, path, started_at, seconds):
            return
        if not agi.hungup:
            await agi.set_variable(MESSAGE_VARIABLE, STORED)
            await agi.stream_file(self.ctx.prompts.path("message_thanks", language))

    async def _identify(self, agi: AgiSession) -> CallerIdentity | None:
        ivr = self.ctx.settings.ivr
        found = await storage_step(
            self.ctx.sessions,
            lambda session: identify(session, agi.env.callerid, ivr.local_area_code,
                                     default_language=ivr.default_language),
            log, "registry unavailable for caller %s", mask(agi.env.callerid))
        return found.value

    async def _record(self, agi: AgiSession) -> tuple[Path | None, float]:
        """RECORD FILE into a new file of the messages folder: (the file, seconds), or
        (None, 0) if nothing could be recorded."""
        now = self.ctx.now()
        folder = Path(self.settings.dir).resolve() / "messages" / f"{now:%Y}" / f"{now:%m%d}"
        base = folder / (f"{_UNSAFE.sub('_', agi.env.uniqueid)[:64]}-"
                         f"{secrets.token_hex(4)}")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.error("messages folder %s not usable: %s", folder, exc)
            return None, 0.0
        try:
            reply = await agi.command(
                "RECORD FILE", str(base), "wav", END_KEY, self.settings.message_max_s * 1000,
                f"s={self.settings.message_silence_s}")
        except AgiHangup:
            reply = None
        path = base.parent / f"{base.name}.wav"
        if reply is not None and reply.result == "-1" and reply.data != "hangup":
            log.warning("call %s: message not recorded (%s)", agi.env.uniqueid, reply.raw)
            return (path if path.exists() else None), 0.0
        if reply is None or reply.data == "hangup":
            agi.hungup = True
        if not path.exists():
            log.warning("call %s: the recording %s is not in the shared folder",
                        agi.env.uniqueid, path.name)
            return None, 0.0
        samples = reply.endpos if reply is not None and reply.endpos else None
        return path, (samples / SAMPLE_RATE if samples else _wav_seconds(path))

    async def _index(self, agi: AgiSession, identity: CallerIdentity | None, path: Path,
                     started_at: datetime, seconds: float) -> bool:
        new = NewRecording(
            kind=RecordingKind.MESSAGE, uniqueid=agi.env.uniqueid,
            file=relative_file(self.settings.dir, path), started_at=started_at,
            duration_s=round(seconds, 1),
            elder_id=identity.elder_id if identity else None,
            caller_number=identity.number if identity else agi.env.callerid or None)
        stored = await storage_step(self.ctx.writing,
                                    lambda session: add_recording(session, new), log,
                                    "message of call %s not indexed (its file %s stays)",
                                    agi.env.uniqueid, path.name)
        if stored.value is None:
            return False
        log.info("call %s from %s: message left (%.0f s)", agi.env.uniqueid,
                 mask(new.caller_number), seconds)
        await self.ctx.live.publish(MessageLeft(
            uniqueid=agi.env.uniqueid, elder_id=new.elder_id, caller=mask(new.caller_number),
            duration_s=new.duration_s,
            place=identity.place if identity else Place()))
        return True


def _wav_seconds(path: Path) -> float:
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / float(wav.getframerate() or SAMPLE_RATE)
    except (OSError, EOFError, wave.Error):
        return 0.0

