"""AGI and EAGI applications: run the engine (or a script) and set AGISTATUS."""

from __future__ import annotations

import logging

from sim.agi.client import HANGUP, run_agi
from sim.apps.registry import AppContext, application
from sim.dialplan.args import split_args

log = logging.getLogger(__name__)


async def _agi(ctx: AppContext, data: str, enhanced: bool) -> int:
    if not data.strip():
        log.warning("AGI requires an argument (script)")
        return -1
    args = split_args(data)
    status, _record = await run_agi(ctx.pbx, ctx.chan, ctx.runner, args[0], args[1:], enhanced)
    ctx.chan.set_var("AGISTATUS", status)
    return -1 if status == HANGUP else 0


@application("AGI")
async def agi(ctx: AppContext, data: str) -> int:
    return await _agi(ctx, data, enhanced=False)


@application("EAGI")
async def eagi(ctx: AppContext, data: str) -> int:
    if ctx.chan.hungup:
        log.error("EAGI cannot be run on a dead/hungup channel, please use AGI.")
        return 0
    return await _agi(ctx, data, enhanced=True)
