"""First start: identity, flavors and the clouds.yaml that points clients at the cloud."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import yaml

from novalet import config
from novalet.service.api import ApiServices
from novalet.service.test_image import publish_test_image

LOG = logging.getLogger(__name__)


async def bootstrap(services: ApiServices) -> bool:
    """Create what a new cloud needs; True when this was the first start."""
    conf = services.conf
    created = await services.identity.bootstrap(
        admin_password=conf.get("identity", "admin_password"),
        demo_password=conf.get("identity", "demo_password"))
    await services.identity.bootstrap_service_user(
        conf.get("service_user", "username"), conf.get("service_user", "project_name"),
        service_password(conf))
    await services.flavors.create_defaults()
    await services.network.ensure_defaults()
    await publish_test_image(services)
    write_clouds_yaml(services)
    if created:
        LOG.info("Bootstrapped identity and flavors")
    return created


def service_password(conf: config.Config) -> str:
    """The service user's password: from the config, else generated once and kept
    (0600) in the state dir."""
    configured = conf.get("service_user", "password")
    if configured:
        return str(configured)
    path = conf.state_path / "service-password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24))
    password = path.read_text().strip()
    conf.set("service_user", "password", password)
    return password


def clouds_yaml_path(services: ApiServices) -> Path:
    return services.conf.state_path / "clouds.yaml"


def write_clouds_yaml(services: ApiServices) -> Path:
    conf = services.conf
    auth_url = f"{conf.public_url}/identity/v3"

    def cloud(user: str, password: str, project: str) -> dict[str, object]:
        return {"auth": {"auth_url": auth_url, "username": user, "password": password,
                         "project_name": project, "user_domain_name": "Default",
                         "project_domain_name": "Default"},
                "region_name": conf.get("identity", "region"),
                "identity_api_version": 3, "interface": "public"}

    document = {"clouds": {
        "novalet": cloud("admin", conf.get("identity", "admin_password"), "admin"),
        "novalet-demo": cloud("demo", conf.get("identity", "demo_password"), "demo")}}
    path = clouds_yaml_path(services)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path
