"""The shipped seat configuration (pjsip.conf, modules.conf, logger.conf) against the table of
which Asterisk 22 module acts on each pjsip.conf option (tests/data/asterisk_pjsip_options.toml).

Asterisk accepts every endpoint option whether or not the module that acts on it is loaded:
with ``autoload = no`` a missing load line fails silently (a NAT'ed softphone never rings, a
transfer is refused, a busy lamp gets 489). So each option the shipped pjsip.conf sets must
have its modules in modules.conf.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path

import pytest

from sim.conf import Section, loaded_modules, read_sections

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "asterisk_conf"
TABLE = tomllib.loads((ROOT / "tests" / "data" / "asterisk_pjsip_options.toml").read_text())


def pjsip() -> list[Section]:
    return read_sections(CONF / "pjsip.conf")


def needed_modules(section: Section) -> set[str]:
    """The modules the section's type, options and option values need (KeyError if the table
    lacks one: a new option needs its module looked up and written into the table)."""
    kind = section.options["type"]
    needed = set(TABLE["type"][kind])
    for name, value in section.options.items():
        if name == "type":
            continue
        needed |= set(TABLE["option"][kind][name])
        needed |= set(TABLE.get("value", {}).get(kind, {}).get(name, {}).get(value, []))
    return needed


@pytest.mark.parametrize("section", pjsip(), ids=lambda s: f"{s.name}:{s.options.get('type')}")
def test_every_option_has_its_module_loaded(section: Section) -> None:
    try:
        needed = needed_modules(section)
    except KeyError as exc:
        pytest.fail(f"[{section.name}] uses {exc} that the option table does not know")
    missing = needed - loaded_modules(CONF / "modules.conf")
    assert not missing, f"[{section.name}] needs {sorted(missing)} (modules.conf)"


def test_the_table_covers_nat_transfer_and_busy_lamps() -> None:
    endpoint = TABLE["option"]["endpoint"]
    assert endpoint["rewrite_contact"] == endpoint["force_rport"] == ["res_pjsip_nat.so"]
    assert "res_pjsip_refer.so" in endpoint["allow_transfer"]
    assert "res_pjsip_exten_state.so" in endpoint["allow_subscribe"]
    seat = next(s for s in pjsip() if s.name == "seat-endpoint")
    assert seat.options["rewrite_contact"] == "yes"
    assert seat.options["allow_transfer"] == seat.options["allow_subscribe"] == "yes"


def test_user_agent_names_no_product() -> None:
    (glob,) = [s for s in pjsip() if s.options.get("type") == "global"]
    agent = glob.options.get("user_agent", "")
    # unset, Asterisk sends "Asterisk PBX <version>"
    assert agent and "hotline" not in agent.lower() and "asterisk" not in agent.lower()
    assert not re.search(r"\d", agent), "no version number either"


def test_udp_transport_binds_to_loopback_or_lan_as_documented() -> None:
    (udp,) = [s for s in pjsip() if s.options.get("protocol") == "udp"]
    host, _, port = udp.options["bind"].rpartition(":")
    address = ipaddress.ip_address(host)
    assert address.is_loopback or address.is_private, udp.options["bind"]
    assert not address.is_unspecified and port == "5060"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    seats = readme.partition("## Seats (softphones)")[2]
    assert seats and f"bind = {udp.options['bind']}" in seats


def test_tls_seat_template_with_srtp() -> None:
    tls = [s for s in pjsip() if s.template and s.options.get("media_encryption") == "sdes"]
    assert tls, "a seat template with media_encryption = sdes"
    transport = tls[0].options["transport"]
    text = (CONF / "pjsip.conf").read_text(encoding="utf-8")
    # opt-in: shipped commented out, since it needs a certificate
    block = re.search(rf"^;\[{re.escape(transport)}\]\n((?:;.*\n)+)", text, re.M)
    assert block and ";protocol = tls" in block.group(1) and ";cert_file =" in block.group(1)
    assert "res_srtp.so" in loaded_modules(CONF / "modules.conf")


def test_failed_auth_reaches_a_security_log() -> None:
    logfiles = next(s for s in read_sections(CONF / "logger.conf") if s.name == "logfiles")
    channels = [name for name, levels in logfiles.lines
                if "security" in [lv.strip() for lv in levels.split(",")]]
    assert channels, "a logger channel with the security level"
    assert "res_security_log.so" in loaded_modules(CONF / "modules.conf")


def test_acl_example_names_an_acl_that_exists() -> None:
    text = (CONF / "pjsip.conf").read_text(encoding="utf-8")
    named = re.search(r"^;\[[\w-]+\]\n;type = acl\n;acl = ([\w-]+)$", text, re.M)
    assert named, "an opt-in [..] type = acl section in pjsip.conf"
    acls = {s.name: s for s in read_sections(CONF / "acl.conf")}
    rules = acls[named.group(1)].lines
    assert rules[0] == ("deny", "0.0.0.0/0.0.0.0") and ("permit", "127.0.0.1/255.255.255.255") \
        in rules
