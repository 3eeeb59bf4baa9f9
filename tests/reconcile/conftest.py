"""Fixtures shared by the reconciliation tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.reconcile.helpers import REGISTER, load_register


@pytest.fixture
def registered(session: Session, tmp_path: Path) -> Session:
    """The test session with the small synthetic register of ``helpers.REGISTER`` loaded."""
    load_register(session, tmp_path, REGISTER)
    return session
