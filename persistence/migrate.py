"""Run Alembic migrations programmatically (``python -m persistence.migrate`` upgrades DATABASE_URL to head)."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config

from persistence.settings import PROJECT_ROOT, get_settings


def alembic_config(url: str) -> Config:
    ini = PROJECT_ROOT / "alembic.ini"
    cfg = Config(str(ini) if ini.is_file() else None)
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "persistence" / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    upgrade(get_settings().database_url)
