"""The console's own pages, gathered in one route list (``ROUTES``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ivr.console import (
    call_back,
    care_plans,
    elders,
    orders,
    recordings,
    settlement,
    stats,
)
from ivr.console.auth import require
from ivr.console.templating import render


@require()
async def home(request: Request) -> Response:
    return render(request, "home.html")


ROUTES = [
    Route("/", home, methods=["GET"]),
    *orders.ROUTES,
    *elders.ROUTES,
    *care_plans.ROUTES,
    *call_back.ROUTES,
    *settlement.ROUTES,
    *stats.ROUTES,
    *recordings.ROUTES,
]
