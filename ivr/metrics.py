"""The engine's Prometheus metrics, through the official ``prometheus_client``.

Every metric is defined here, once, with its labels; the code that counts imports the one it
needs. Each engine process serves its own ``/metrics`` (``[metrics]``, loopback unless
configured), as Prometheus expects of separate processes: counters and histograms are that
process's, and Prometheus sums them across the ``instance`` label. The platform-wide gauges
(open emergencies and the oldest one's age, the spool backlog) are read from the database
and the spool folder by every engine alike: aggregate them with ``max``, not ``sum``.
Labels carry only names from closed sets (flows, AGI verbs, dialplan contexts, outcomes),
never a number or a name of a person.
"""

from __future__ import annotations

from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ivr.loop_histogram import LoopHistogram

REGISTRY = CollectorRegistry(auto_describe=True)

CALLS_IN_PROGRESS = Gauge(
    "hotline_calls_in_progress", "FastAGI call flows running now, by flow", ["flow"],
    registry=REGISTRY)
CALLS = Counter(
    "hotline_calls", "FastAGI call flows finished, by flow and how they ended "
    "(served, failed, unknown_route)", ["flow", "ended"], registry=REGISTRY)
AGI_COMMAND_SECONDS = LoopHistogram(
    "hotline_agi_command_seconds", "From an AGI command sent to its reply, by verb (media "
    "commands include the playback)", ["verb"], registry=REGISTRY,  # 16 a call: no lock
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
QUEUE_WAIT_SECONDS = Histogram(
    "hotline_queue_wait_seconds", "A caller's wait in the operator queue, by how it ended "
    "(answered, abandoned)", ["outcome"], registry=REGISTRY,
    buckets=(1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600))
ORIGINATES = Counter(
    "hotline_originates", "Originate actions by dialplan context (the call's purpose) and "
    "outcome (answered, busy, no_answer, failed, not_sent, lost, ...)",
    ["purpose", "outcome"], registry=REGISTRY)
STORAGE_ERRORS = Counter(
    "hotline_storage_errors", "Steps that failed on a storage error, by store", ["store"],
    registry=REGISTRY)
POPS_SHOWN = Counter(
    "hotline_screen_pops_shown", "Screen pops an open live page of the call's region was "
    "waited for, by whether the card reached it before the call was queued (in_time, late)",
    ["outcome"], registry=REGISTRY)
AMI_CONNECTED = Gauge(
    "hotline_ami_connected", "1 while this engine's AMI link is logged in, else 0",
    registry=REGISTRY)
AMI_DISCONNECTS = Counter(
    "hotline_ami_disconnects", "Times this engine's AMI link was lost", registry=REGISTRY)
SPOOL_BACKLOG = Gauge(
    "hotline_spool_backlog", "Calls spooled by the dialplan while no engine answered, not "
    "yet replayed", registry=REGISTRY)
OPEN_EMERGENCIES = Gauge(
    "hotline_open_emergencies", "Emergency orders not closed yet", registry=REGISTRY)
OLDEST_EMERGENCY_SECONDS = Gauge(
    "hotline_oldest_open_emergency_seconds", "Age of the oldest emergency order not closed "
    "yet (0 if none)", registry=REGISTRY)



M = TypeVar("M", Counter, Gauge, Histogram)
_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def labelled(metric: M, *values: str) -> M:
    """``metric.labels(*values)``, looked up once (the library's lookup takes a lock and
    checks every value: about 1.5 µs, twice a call)."""
    key = (id(metric), values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child  # type: ignore[no-any-return]
