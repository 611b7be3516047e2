"""The registry service's routers, mounted under ``/v1``."""

from fastapi import APIRouter

from registry.feeds.router import router as feeds_router

ROUTERS: list[APIRouter] = [feeds_router]
