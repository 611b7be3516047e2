"""The registry service's routers, mounted under ``/v1``."""

from fastapi import APIRouter

ROUTERS: list[APIRouter] = []
