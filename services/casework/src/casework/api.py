"""The casework service's routers, mounted under ``/v1``."""

from fastapi import APIRouter

from casework.cases.followup_router import router as case_followup_router
from casework.cases.router import router as cases_router
from casework.census.router import router as census_router
from casework.visits.router import router as visits_router

ROUTERS: list[APIRouter] = [cases_router, case_followup_router, visits_router, census_router]
