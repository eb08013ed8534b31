"""The AGI environment block, byte for byte as res_agi.c's setup_env sends it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.channel import Channel

AGI_VERSION = "22.10.1"
THREAD_ID_BASE = 140319959434944


def env_block(
    chan: Channel,
    request: str,
    args: list[str],
    network_script: str | None = None,
    enhanced: bool = False,
    thread_id: int = THREAD_ID_BASE,
) -> bytes:
    """``agi_network``/``agi_network_script`` (FastAGI only), the ``agi_*`` lines, empty line."""
    lines: list[str] = []
    if network_script is not None:
        lines.append("agi_network: yes")
        if network_script:
            lines.append(f"agi_network_script: {network_script}")
    lines += [
        f"agi_request: {request}",
        f"agi_channel: {chan.name}",
        f"agi_language: {chan.language}",
        f"agi_type: {chan.tech}",
        f"agi_uniqueid: {chan.uniqueid}",
        f"agi_version: {AGI_VERSION}",
        f"agi_callerid: {chan.caller_num or 'unknown'}",
        f"agi_calleridname: {chan.caller_name or 'unknown'}",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        f"agi_dnid: {chan.dnid or 'unknown'}",
        "agi_rdnis: unknown",
        f"agi_context: {chan.context}",
        f"agi_extension: {chan.exten}",
        f"agi_priority: {chan.priority}",
        f"agi_enhanced: {'1.0' if enhanced else '0.0'}",
        f"agi_accountcode: {chan.accountcode}",
        f"agi_threadid: {thread_id}",
    ]
    lines += [f"agi_arg_{i}: {arg}" for i, arg in enumerate(args, 1)]
    return ("\n".join(lines) + "\n\n").encode("utf-8")
