"""The notify service's routers, mounted under ``/v1``."""

from fastapi import APIRouter

from notify.blacklist.router import router as blacklist_router
from notify.bulletins.router import router as bulletins_router
from notify.calendar.router import router as calendar_router
from notify.deadlines.router import router as deadlines_router
from notify.delivery.router import router as delivery_router
from notify.documents.router import router as documents_router
from notify.escalation.router import router as escalation_router
from notify.referrals.router import router as referrals_router
from notify.reports.router import router as reports_router

ROUTERS: list[APIRouter] = [
    calendar_router,
    deadlines_router,
    escalation_router,
    documents_router,
    delivery_router,
    bulletins_router,
    blacklist_router,
    referrals_router,
    reports_router,
]
