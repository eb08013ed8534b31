"""The Lua scripts of ``ivr/live.py``: a call's start and its end, each one command.

Each command of a script is run with ``pcall``: one Redis refuses (a key of the wrong type)
leaves the others done, as separate commands would, and the script answers with the first
refusal. Scripts go by their SHA1 (EVALSHA); ``LiveState`` loads them where Redis lacks them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

_FIRST_REFUSAL = """
local refused = nil
local function run(...)
  local reply = redis.pcall(...)
  if type(reply) == 'table' and reply.err and refused == nil then refused = reply end
  return reply
end
"""


@dataclass(frozen=True)
class LiveScript:
    body: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.body.encode()).hexdigest())


# KEYS: the call's hash, the set of live calls, the stream.
# ARGV: ttl, uniqueid, stream maxlen, n (the hash's fields), n field-value pairs, the entry's.
CALL_STARTED = LiveScript(_FIRST_REFUSAL + """
local n = tonumber(ARGV[4])
if n > 0 then run('HSET', KEYS[1], unpack(ARGV, 5, 4 + 2 * n)) end
run('EXPIRE', KEYS[1], ARGV[1])
run('SADD', KEYS[2], ARGV[2])
local id = run('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 5 + 2 * n))
if refused then return refused end
return id
""")

# KEYS: the call's hash, the set of live calls, the stream.
# ARGV: uniqueid, stream maxlen, the entry's field-value pairs.
CALL_ENDED = LiveScript(_FIRST_REFUSAL + """
run('DEL', KEYS[1])
run('SREM', KEYS[2], ARGV[1])
local id = run('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
if refused then return refused end
return id
""")

SCRIPTS = (CALL_STARTED, CALL_ENDED)
