"""Imports every table module of the registry service so the metadata is complete (for Alembic)."""

from registry.children import models as children_models
from registry.corrections import models as corrections_models
from registry.feeds import models as feeds_models

__all__ = ["children_models", "corrections_models", "feeds_models"]
