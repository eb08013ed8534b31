"""Runs a channel through the dialplan: priorities, jumps, the ``i`` and ``h`` extensions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sim import events as ev
from sim.apps import AppContext, find_app
from sim.functions import expand

if TYPE_CHECKING:
    from sim.channel import Channel
    from sim.pbx import Pbx

log = logging.getLogger(__name__)

MAX_STEPS = 100_000
YIELD_EVERY = 256


class Runner:
    """The PBX thread of one channel (Asterisk's __ast_pbx_run)."""

    def __init__(self, pbx: Pbx, chan: Channel, on_first_step: Callable[[], None] | None = None):
        self.pbx = pbx
        self.chan = chan
        self.jumped = False
        self.gosub_stack: list[tuple[str, str, int, dict[str, tuple[str, str] | None]]] = []
        self._on_first_step = on_first_step

    def goto(self, context: str | None, exten: str | None, priority: int) -> None:
        """Continue at (context, exten, priority) after the current application returns."""
        if context:
            self.chan.context = context
        if exten:
            self.chan.exten = exten
        self.chan.priority = priority
        self.jumped = True

    def find_label(self, context: str, exten: str, label: str) -> int | None:
        """Priority number of ``label`` (or a numeric priority) in context/exten."""
        label = label.strip()
        if label.isdigit():
            return int(label)
        ext = self.pbx.dialplan.find(context, exten)
        if ext is None:
            return None
        return ext.labels.get(label)

    async def run(self) -> None:
        chan = self.chan
        chan.in_pbx = True
        try:
            await self._loop()
            if self.pbx.dialplan.find(chan.context, "h") is not None and not chan.destroyed:
                if not chan.hungup:
                    chan.request_hangup(16, by="pbx", soft=True)
                chan.exten, chan.priority = "h", 1
                await self._loop(in_h=True)
        except Exception:
            log.exception("dialplan failed on %s", chan.name)
        finally:
            self._fire_first_step()
            if chan.hangup_by is None:
                chan.hangup_by = "pbx"
            chan.destroy()

    def _fire_first_step(self) -> None:
        if self._on_first_step is not None:
            fn, self._on_first_step = self._on_first_step, None
            fn()

    async def _loop(self, in_h: bool = False) -> None:
        chan = self.chan
        steps = 0
        while in_h or not chan.hungup:
            steps += 1
            if steps > MAX_STEPS:
                log.warning("%s: more than %d dialplan steps; hanging up", chan.name, MAX_STEPS)
                return
            if steps % YIELD_EVERY == 0:
                await self.pbx.clock.sleep(0)  # a busy loop must not starve other calls
            ext = self.pbx.dialplan.find(chan.context, chan.exten)
            if ext is None:
                if in_h or not self._invalid_extension():
                    return
                continue
            step = ext.steps.get(chan.priority)
            if step is None:
                if not in_h:
                    log.info("%s: no priority %d at %s,%s; hanging up", chan.name,
                             chan.priority, chan.context, chan.exten)
                return
            res = await self.execute(step.app, step.data)
            if chan.pending_goto is not None and not chan.hungup:  # AMI Redirect
                context, exten, priority = chan.pending_goto
                chan.pending_goto = None
                self.goto(context, exten, priority)
            if res != 0 and not self.jumped:
                return
            if self.jumped:
                self.jumped = False
                continue
            chan.priority += 1

    def _invalid_extension(self) -> bool:
        chan = self.chan
        if chan.exten != "i" and self.pbx.dialplan.find(chan.context, "i") is not None:
            log.info("%s sent to invalid extension %r in %s", chan.name, chan.exten, chan.context)
            chan.set_var("INVALID_EXTEN", chan.exten)
            chan.exten, chan.priority = "i", 1
            return True
        log.warning("%s: extension %r not found in context %r and no 'i'", chan.name,
                    chan.exten, chan.context)
        return False

    async def execute(self, app_name: str, raw_data: str) -> int:
        """Substitute, announce (Newexten) and run one application; its return value."""
        chan = self.chan
        data = expand(self.pbx, chan, raw_data)
        chan.app, chan.appdata = app_name, data
        if chan.observed:
            chan.emit(ev.newexten(chan, app_name, data))
        if chan.record is not None:
            chan.record.apps.append([self.pbx.clock.stamp(), app_name, data])
        self._fire_first_step()
        fn = find_app(app_name)
        if fn is None:
            log.warning("No application '%s' for extension (%s, %s, %d)", app_name,
                        chan.context, chan.exten, chan.priority)
            return -1
        return await run_app(fn, AppContext(chan, self.pbx, self), data)


async def run_app(fn, ctx: AppContext, data: str) -> int:
    """Run an application, turning an unexpected error into a hangup instead of a crash."""
    try:
        result = await fn(ctx, data)
    except Exception:
        log.exception("application failed on %s", ctx.chan.name)
        return -1
    return int(result)
