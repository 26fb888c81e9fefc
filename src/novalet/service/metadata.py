"""`novalet metadata`: the metadata service as a process of its own."""

from __future__ import annotations

import asyncio
import logging

from novalet import config
from novalet.db.engine import Database
from novalet.metadata.cloud_lookup import CloudLookup
from novalet.metadata.service import MetadataServiceError, serve
from novalet.network.api import NetworkAPI

LOG = logging.getLogger(__name__)


async def _serve(conf: config.Config) -> None:
    db = Database(conf.database_url)
    try:
        LOG.info("Metadata service on %s:%s", conf.get("metadata", "listen"),
                 conf.get("metadata", "port"))
        await serve(conf, CloudLookup(db, NetworkAPI(db, conf)))
    finally:
        await db.close()


def run(conf: config.Config) -> int:
    try:
        asyncio.run(_serve(conf))
    except KeyboardInterrupt:
        pass
    except (MetadataServiceError, config.ConfigError) as exc:
        print(f"novalet metadata: {exc}")
        return 1
    return 0
