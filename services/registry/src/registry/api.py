"""The registry service's routers, mounted under ``/v1``."""

from fastapi import APIRouter

from registry.children.router import router as children_router
from registry.corrections.router import router as corrections_router
from registry.feeds.router import router as feeds_router
from registry.linkage.router import router as linkage_router

ROUTERS: list[APIRouter] = [feeds_router, children_router, corrections_router, linkage_router]
