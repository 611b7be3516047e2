"""The enrollment service's routers, mounted under ``/v1``."""

from fastapi import APIRouter

from enrollment.children.router import router as children
from enrollment.deferrals.router import router as deferrals
from enrollment.placements.router import router as placements
from enrollment.provincial.router import router as provincial
from enrollment.signals.router import router as signals
from enrollment.students.router import router as students
from enrollment.verification.router import router as verification

ROUTERS: list[APIRouter] = [students, deferrals, placements, verification, signals, provincial, children]
