"""Fixtures for the image service: a migrated SQLite database and a store in tmp."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from novalet import config
from novalet.db import migrate
from novalet.db.engine import Database
from novalet.image.api import ImageService


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'images.sqlite'}")
    await migrate.sync(database)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def service(db: Database, tmp_path: Path) -> ImageService:
    return ImageService(db, tmp_path / "images", config.Config())
