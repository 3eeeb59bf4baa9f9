"""Imports every domain's models so that ``Base.metadata`` is complete (Alembic, tests)."""

from dancu.audit import models as audit_models
from dancu.db import Base
from dancu.exchange import models as exchange_models
from dancu.geo import models as geo_models
from dancu.officials import models as officials_models
from dancu.reconcile import models as reconcile_models
from dancu.registry import models as registry_models

__all__ = [
    "Base",
    "audit_models",
    "exchange_models",
    "geo_models",
    "officials_models",
    "reconcile_models",
    "registry_models",
]
