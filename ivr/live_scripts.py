"""The Lua script of ``ivr/live.py``: the live-state requests of the calls of the moment,
sent to Redis as one command.

The client's cost is per command (packing it, reading its reply, the pipeline's bookkeeping:
about 30 µs each in redis-py) and per word, so the requests of a batch go as one JSON
argument of one EVALSHA, and Redis runs their commands one after another. Each command runs
under ``pcall``: one Redis refuses (a key of the wrong type) fails only its own request, as
separate commands would; the script answers with each request's first refusal, or an empty
string. A replica refuses writes (READONLY): the whole batch answers with that error, so the
client sees the node it writes to is no primary. The script goes by its SHA1; ``LiveState``
loads it where Redis lacks it.

The keys are arguments, not declared in KEYS: the live state runs on one Redis primary
(with Sentinel), never on a Redis Cluster, where a script must name the keys it touches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

Command = tuple[str | int, ...]  # a Redis command and its arguments
Commands = tuple[Command, ...]  # one request's, run in order


@dataclass(frozen=True)
class LiveScript:
    body: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.body.encode()).hexdigest())


# ARGV[1]: the requests, as JSON: a list of requests, each a list of commands, each a list
# of words (strings and integers).
REQUESTS = LiveScript("""
local answers = {}
for r, commands in ipairs(cjson.decode(ARGV[1])) do
  local refused = ''
  for _, command in ipairs(commands) do
    local reply = redis.pcall(unpack(command))
    if type(reply) == 'table' and reply.err then
      if string.sub(reply.err, 1, 8) == 'READONLY' then return reply end
      if refused == '' then refused = reply.err end
    end
  end
  answers[r] = refused
end
return answers
""")


def arguments(requests: Sequence[Commands]) -> str:
    """The script's ARGV[1] for ``requests``: one word for the client to send, not hundreds
    (redis-py encodes each word in Python, about 0.5 µs each; ``json`` is written in C)."""
    return json.dumps(requests)  # the default encoder: built once, not at every call
