# Two entry points for a fresh machine: `make demo` and `make test`.
# Both install everything from the lock file (uv.lock) first; nothing else is needed but
# Python 3.11+ and network access to PyPI.

PYTHON ?= python3
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
UV_VERSION := 0.13.9

.PHONY: demo test install lint typecheck bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

# Bytecode is compiled at install, as pip and uv do for an installed package: without it,
# and with PYTHONDONTWRITEBYTECODE set (as on CI machines), every `dancu` command compiled
# SQLAlchemy, Alembic and dancu from source again (`dancu --help` 8.2 s against 2.0 s).
install: $(UV)
	$(UV) sync --frozen --extra dev --extra spark --quiet --compile-bytecode
	$(VENV)/bin/python -m compileall -q src

## Install and run the platform on SQLite with a synthetic demo population of 10,000.
demo: install
	$(VENV)/bin/dancu serve

## Install and run the whole test suite (SQLite; PostgreSQL when DANCU_TEST_DATABASE_URL is set).
test: install
	$(VENV)/bin/pytest -n auto

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: install
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) $(TOOLS) dancu.db dancu.db-wal dancu.db-shm
