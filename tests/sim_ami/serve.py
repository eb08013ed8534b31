"""Run the simulator's AMI server on a free port (for the tests): prints ``PORT <n>``.

The PBX is the simulator's own, with a small dialplan and phones that answer, are busy,
congested or never answer (``Local/s@callee-<behaviour>/n``).
"""

from __future__ import annotations

import argparse

from twisted.internet import reactor

from sim.ami.server import AmiUser, listen
from sim.clock import SimClock
from sim.dialplan.parser import parse_text
from sim.pbx import Pbx
from sim.sounds import SoundLibrary

DIALPLAN = """
[vendor-offer]
exten => s,1,NoOp(offer)
 same => n(talk),Wait(600)
 same => n,Hangup()
"""
PHONES = {
    "s@callee-answers": {"answer": "answer", "ring_s": 0.5, "hangup_after": None},
    "s@callee-busy": {"answer": "busy", "ring_s": 0.2},
    "s@callee-congestion": {"answer": "congestion", "ring_s": 0.2},
    "s@callee-noanswer": {"answer": "noanswer"},
}
USERS = {
    "hotline": AmiUser("s3cret", read={"system", "call", "user", "security", "dialplan", "agi"},
                       write={"system", "call", "originate", "user", "reporting"}),
    "monitor": AmiUser("watch", read={"call"}, write=set()),
    "noevents": AmiUser("quiet", read={"call", "user"}, write={"call"}),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--auth-timeout", type=float, default=30.0)
    parser.add_argument("--failed-login-delay", type=float, default=1.0)
    parser.add_argument("--speed", type=float, default=20.0)
    args = parser.parse_args()
    pbx = Pbx(reactor, SimClock(reactor, speed=args.speed), parse_text(DIALPLAN),
              SoundLibrary(None), global_overrides={"GREETING": "你好"})
    pbx.phones.update(PHONES)
    port = listen(pbx, reactor, 0, USERS, auth_timeout=args.auth_timeout,
                  failed_login_delay=args.failed_login_delay)
    print(f"PORT {port.getHost().port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
