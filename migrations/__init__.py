"""Alembic migrations, shipped inside the package so an installed server can migrate its own database."""

from pathlib import Path

SCRIPT_LOCATION = str(Path(__file__).parent)
