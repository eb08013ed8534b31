"""The seats' SIP side: registrations and device state, from pjsip.conf and modules.conf.

A softphone registers a Contact (the address it says it listens on) from a source address
(where its packets come from). Behind NAT the two differ and only the source is reachable.
``rewrite_contact = yes`` replaces the Contact with the source address, but only when
res_pjsip_nat.so is loaded: without it the Contact is stored as sent, the qualify OPTIONS
(``qualify_frequency``) never get an answer, and the seat is Unavailable (device state
UNAVAILABLE, so a Dial to it is CHANUNAVAIL and its hint shows Unavailable). Digest
authentication is not modelled: a REGISTER for a known endpoint is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.conf import loaded_modules, read_sections
from sim.parties import PartyError

NAT_MODULE = "res_pjsip_nat.so"
REGISTRAR_MODULE = "res_pjsip_registrar.so"
EXTENSION_STATES = {"NOT_INUSE": 0, "INUSE": 1, "BUSY": 2, "UNAVAILABLE": 4, "INVALID": 4,
                    "RINGING": 8}


@dataclass
class Contact:
    address: str  # host:port the PBX sends requests to
    source: str  # host:port the REGISTER came from

    @property
    def reachable(self) -> bool:
        return self.address == self.source


def _address(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise PartyError(f"{what} must be host:port")
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(
            c in host for c in " \r\n;<>@"):
        raise PartyError(f"{what} must be host:port")
    return value


class Seats:
    """PJSIP endpoints that register; empty until a pjsip.conf is loaded."""

    def __init__(self) -> None:
        self.endpoints: dict[str, dict[str, str]] = {}
        self.aors: dict[str, dict[str, str]] = {}
        self.modules: set[str] = set()
        self.contacts: dict[str, Contact] = {}

    def load_conf(self, path: Path) -> int:
        """Read the endpoints and aors of a pjsip.conf and the modules.conf beside it."""
        for section in read_sections(path):
            kind = section.options.get("type")
            if section.template or kind not in ("endpoint", "aor"):
                continue
            (self.endpoints if kind == "endpoint" else self.aors)[section.name] = \
                section.options
        self.modules = loaded_modules(path.parent / "modules.conf")
        return len(self.endpoints)

    def register(self, endpoint: str, contact: Any, source: Any) -> dict[str, Any]:
        """A REGISTER from ``source`` with Contact ``contact``; the SIP status and what was
        stored."""
        contact, source = _address(contact, "contact"), _address(source, "source")
        if REGISTRAR_MODULE not in self.modules:
            return {"status": 405}  # no registrar: REGISTER is not allowed
        options = self.endpoints.get(endpoint)
        if options is None or endpoint not in options.get("aors", "").split(","):
            return {"status": 403}
        rewrite = options.get("rewrite_contact") == "yes" and NAT_MODULE in self.modules
        stored = Contact(source if rewrite else contact, source)
        self.contacts[endpoint] = stored
        return {"status": 200, "contact": stored.address, "reachable": stored.reachable,
                "device_state": self.device_state(f"PJSIP/{endpoint}", [])}

    def knows(self, device: str) -> bool:
        tech, _, name = device.partition("/")
        return tech.upper() == "PJSIP" and name in self.endpoints

    def device_state(self, device: str, channel_states: list[str]) -> str:
        """Asterisk's device state of ``PJSIP/<endpoint>``; ``channel_states`` are those of
        the endpoint's channels in progress (``Ringing``, ``Up``...)."""
        tech, _, name = device.partition("/")
        if tech.upper() != "PJSIP" or name not in self.endpoints:
            return "INVALID"
        contact = self.contacts.get(name)
        qualified = float(self.aors.get(name, {}).get("qualify_frequency", "0") or 0) > 0
        if contact is None or (qualified and not contact.reachable):
            return "UNAVAILABLE"
        if "Ringing" in channel_states:
            return "RINGING"
        busy_at = int(self.endpoints[name].get("device_state_busy_at", "0") or 0)
        if channel_states:
            return "BUSY" if busy_at and len(channel_states) >= busy_at else "INUSE"
        return "NOT_INUSE"


def extension_state(device_states: list[str]) -> int:
    """A hint's state from its devices (ast_devstate_to_extenstate, worst first); -1 for no
    hint."""
    if not device_states:
        return -1
    states = [EXTENSION_STATES.get(state, 4) for state in device_states]
    for wanted in (8, 2, 1, 0):
        if wanted in states:
            return wanted
    return 4
