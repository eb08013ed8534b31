"""Dialplan functions and builtin variables, read and written against a channel."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sim.dialplan.args import split_args, split_once
from sim.dialplan.vars import substitute

if TYPE_CHECKING:
    from sim.channel import Channel
    from sim.pbx import Pbx

log = logging.getLogger(__name__)

Reader = Callable[["Pbx", "Channel | None", str], "str | None"]
Writer = Callable[["Pbx", "Channel | None", str, str], bool]


def _truthy(cond: str) -> bool:
    """pbx_checkcondition: empty is false, a leading integer is its value, other text true."""
    cond = cond.strip()
    if not cond:
        return False
    sign = 1
    body = cond
    if body[:1] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    digits = ""
    for ch in body:
        if not ch.isdigit():
            break
        digits += ch
    if digits:
        return sign * int(digits) != 0
    return True


checkcondition = _truthy


def _callerid_read(pbx: Pbx, chan: Channel | None, args: str) -> str | None:
    if chan is None:
        return None
    what = args.strip().lower()
    if what in ("num", "number", "ani"):
        return chan.caller_num
    if what == "name":
        return chan.caller_name
    if what == "all":
        return f'"{chan.caller_name}" <{chan.caller_num}>'
    log.warning("CALLERID: unknown field %r", args)
    return None


def _callerid_write(pbx: Pbx, chan: Channel | None, args: str, value: str) -> bool:
    if chan is None:
        return False
    what = args.strip().lower()
    if what in ("num", "number"):
        chan.set_callerid(num=value)
    elif what == "name":
        chan.set_callerid(name=value)
    elif what == "all":
        name, num = parse_callerid(value)
        chan.set_callerid(num=num, name=name)
    else:
        return False
    return True


def parse_callerid(text: str) -> tuple[str, str]:
    """``"Name" <number>`` / ``Name <number>`` / ``number`` -> (name, number)."""
    text = text.strip()
    if "<" in text and text.endswith(">"):
        name, _, num = text[:-1].rpartition("<")
        return name.strip().strip('"').strip(), num.strip()
    if text and all(c.isdigit() or c in "+*#" for c in text):
        return "", text
    return text.strip('"'), ""


def _channel_read(pbx: Pbx, chan: Channel | None, args: str) -> str | None:
    if chan is None:
        return None
    item = args.strip().lower()
    values = {
        "language": chan.language, "name": chan.name, "uniqueid": chan.uniqueid,
        "linkedid": chan.linkedid, "state": chan.state.desc, "context": chan.context,
        "exten": chan.exten, "priority": str(chan.priority), "accountcode": chan.accountcode,
        "channeltype": chan.tech, "musicclass": chan.musicclass,
    }
    if item in values:
        return values[item]
    log.warning("CHANNEL: unsupported item %r", args)
    return None


def _channel_write(pbx: Pbx, chan: Channel | None, args: str, value: str) -> bool:
    if chan is None:
        return False
    item = args.strip().lower()
    if item == "language":
        chan.language = value
    elif item == "accountcode":
        chan.accountcode = value
    elif item == "musicclass":
        chan.musicclass = value
    else:
        log.warning("CHANNEL: cannot set %r", args)
        return False
    return True


def _len(pbx: Pbx, chan: Channel | None, args: str) -> str:
    return str(len(args))


def _if(pbx: Pbx, chan: Channel | None, args: str) -> str:
    cond, rest = split_once(args, "?")
    if rest is None:
        log.warning("IF: syntax is IF(<expr>?[<true>][:<false>])")
        return ""
    iftrue, iffalse = split_once(rest, ":")
    return iftrue.strip() if _truthy(cond) else (iffalse or "").strip()


def _isnull(pbx: Pbx, chan: Channel | None, args: str) -> str:
    return "1" if args == "" else "0"


def _exists(pbx: Pbx, chan: Channel | None, args: str) -> str:
    return "0" if args == "" else "1"


def _cut(pbx: Pbx, chan: Channel | None, args: str) -> str | None:
    parts = split_args(args)
    if len(parts) < 3:
        log.warning("CUT: syntax is CUT(<varname>,<char-delim>,<range-spec>)")
        return None
    value = pbx.lookup_variable(chan, parts[0]) or ""
    delim = parts[1] or "-"
    pieces = value.split(delim[0])
    chosen: list[str] = []
    for spec in parts[2].split("&"):
        lo, sep, hi = spec.partition("-")
        try:
            start = int(lo) if lo else 1
            end = (int(hi) if hi else len(pieces)) if sep else start
        except ValueError:
            return None
        chosen.extend(pieces[max(0, start - 1) : end])
    return delim[0].join(chosen)


def _upper(pbx: Pbx, chan: Channel | None, args: str) -> str:
    return args.upper()


def _lower(pbx: Pbx, chan: Channel | None, args: str) -> str:
    return args.lower()


def _global_read(pbx: Pbx, chan: Channel | None, args: str) -> str | None:
    return pbx.globals.get(args.strip())


def _global_write(pbx: Pbx, chan: Channel | None, args: str, value: str) -> bool:
    pbx.set_global(args.strip(), value)
    return True


def _db_read(pbx: Pbx, chan: Channel | None, args: str) -> str | None:
    family, _, key = args.strip().partition("/")
    return pbx.astdb.get((family, key))


def _db_write(pbx: Pbx, chan: Channel | None, args: str, value: str) -> bool:
    family, _, key = args.strip().partition("/")
    if not family or not key:
        return False
    pbx.astdb[(family, key)] = value
    return True


def _db_exists(pbx: Pbx, chan: Channel | None, args: str) -> str:
    family, _, key = args.strip().partition("/")
    return "1" if (family, key) in pbx.astdb else "0"


def _rand(pbx: Pbx, chan: Channel | None, args: str) -> str:
    lo_s, _, hi_s = args.partition(",")
    try:
        lo = int(lo_s) if lo_s.strip() else 0
        hi = int(hi_s) if hi_s.strip() else 2147483647
    except ValueError:
        return ""
    return str(random.randint(min(lo, hi), max(lo, hi)))


def _strftime(pbx: Pbx, chan: Channel | None, args: str) -> str:
    parts = split_args(args)
    try:
        epoch = float(parts[0]) if parts and parts[0].strip() else pbx.clock.now()
    except ValueError:
        epoch = pbx.clock.now()
    fmt = parts[2] if len(parts) > 2 and parts[2] else "%c"
    return time.strftime(fmt, time.localtime(epoch))


def _filter(pbx: Pbx, chan: Channel | None, args: str) -> str:
    allowed, _, text = args.partition(",")
    return "".join(c for c in text if c in allowed)


def _queue_waiting(pbx: Pbx, chan: Channel | None, args: str) -> str:
    return str(pbx.queues.waiting_count(args.strip()))


READERS: dict[str, Reader] = {
    "CALLERID": _callerid_read, "CHANNEL": _channel_read, "LEN": _len, "IF": _if,
    "ISNULL": _isnull, "EXISTS": _exists, "CUT": _cut, "TOUPPER": _upper, "TOLOWER": _lower,
    "GLOBAL": _global_read, "DB": _db_read, "DB_EXISTS": _db_exists, "RAND": _rand,
    "STRFTIME": _strftime, "FILTER": _filter, "QUEUE_WAITING_COUNT": _queue_waiting,
}
WRITERS: dict[str, Writer] = {
    "CALLERID": _callerid_write, "CHANNEL": _channel_write, "GLOBAL": _global_write,
    "DB": _db_write,
}


def read_function(pbx: Pbx, chan: Channel | None, name: str, args: str) -> str | None:
    fn = READERS.get(name.upper())
    if fn is None:
        log.warning("Function %s not registered", name)
        return None
    return fn(pbx, chan, args)


def write_function(pbx: Pbx, chan: Channel | None, expr: str, value: str) -> bool:
    """``Set(FUNC(args)=value)``."""
    name, _, args = expr.partition("(")
    fn = WRITERS.get(name.strip().upper())
    if fn is None:
        log.warning("Function %s not registered or not writable", name)
        return False
    return fn(pbx, chan, args[:-1] if args.endswith(")") else args, value)


def builtin_variable(pbx: Pbx, chan: Channel | None, name: str) -> str | None:
    if name == "EPOCH":
        return str(int(pbx.clock.now()))
    if chan is None:
        return None
    builtins = {
        "EXTEN": chan.exten, "CONTEXT": chan.context, "PRIORITY": str(chan.priority),
        "CHANNEL": chan.name, "UNIQUEID": chan.uniqueid, "LANGUAGE": chan.language,
        "CALLINGPRES": "0", "CALLINGANI2": "0", "CALLINGTON": "0", "CALLINGTNS": "0",
    }
    if name == "HANGUPCAUSE":
        return str(chan.hangup_cause) if chan.hungup else None
    return builtins.get(name)


class ChannelResolver:
    """Resolver for ``substitute``: builtins, then channel variables, then globals."""

    def __init__(self, pbx: Pbx, chan: Channel | None) -> None:
        self.pbx = pbx
        self.chan = chan

    def variable(self, name: str) -> str | None:
        return self.pbx.lookup_variable(self.chan, name)

    def function(self, name: str, args: str) -> str | None:
        return read_function(self.pbx, self.chan, name, args)


def expand(pbx: Pbx, chan: Channel | None, text: str) -> str:
    return substitute(text, ChannelResolver(pbx, chan))
