"""Database access for users' key pairs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from novalet import exceptions
from novalet.db import quotas as db_quotas
from novalet.db.engine import Database
from novalet.db.models import KeyPair
from novalet.db.quotas import Admission


class KeypairNotFound(exceptions.NotFound):
    msg_fmt = "Keypair %(name)s not found for user %(user_id)s"


class KeyPairExists(exceptions.Conflict):
    msg_fmt = "Key pair '%(key_name)s' already exists."


class MarkerNotFound(exceptions.Invalid):
    msg_fmt = "Marker %(marker)s could not be found."


async def create(db: Database, values: Mapping[str, Any],
                 admit: Admission[None] | None = None,
                 project_id: str = "") -> KeyPair:
    """Insert a key pair; KeyPairExists when the user already has one of that name.
    With `admit`, the key_pairs quota is checked in the same transaction under the
    user's and project_id's quota locks (admit raises when the user has no room)."""
    try:
        async with db.transaction() as s:
            if admit is not None:
                # Key pairs count per user across projects: the user's own lock
                # (taken first, and only here) keeps two projects' creates in turn.
                await db_quotas.lock_project(s, f"user:{values['user_id']}")
                await db_quotas.admit_locked(s, project_id, values["user_id"], admit)
            keypair = KeyPair(**values)
            s.add(keypair)
            await s.flush()
            return keypair
    except IntegrityError:
        raise KeyPairExists(key_name=values["name"]) from None


async def get(db: Database, user_id: str, name: str) -> KeyPair:
    async with db.transaction() as s:
        keypair = (await s.execute(select(KeyPair).where(
            KeyPair.user_id == user_id, KeyPair.name == name))).scalar_one_or_none()
    if keypair is None:
        raise KeypairNotFound(name=name, user_id=user_id)
    return keypair


async def list_for_user(db: Database, user_id: str, limit: int | None = None,
                        marker: str | None = None) -> list[KeyPair]:
    """The user's key pairs by name, those after the one named `marker`."""
    async with db.transaction() as s:
        query = select(KeyPair).where(KeyPair.user_id == user_id).order_by(
            KeyPair.name, KeyPair.id)
        if marker is not None:
            found = (await s.execute(select(KeyPair.id).where(
                KeyPair.user_id == user_id, KeyPair.name == marker))).first()
            if found is None:
                raise MarkerNotFound(marker=marker)
            query = query.where(KeyPair.name > marker)
        if limit is not None:
            query = query.limit(limit)
        return list((await s.execute(query)).scalars())


async def count_for_user(db: Database, user_id: str) -> int:
    async with db.transaction() as s:
        return (await s.execute(select(func.count(KeyPair.id)).where(
            KeyPair.user_id == user_id))).scalar_one()


async def destroy(db: Database, user_id: str, name: str) -> None:
    async with db.transaction() as s:
        keypair = (await s.execute(select(KeyPair).where(
            KeyPair.user_id == user_id, KeyPair.name == name))).scalar_one_or_none()
        if keypair is None:
            raise KeypairNotFound(name=name, user_id=user_id)
        await s.delete(keypair)
