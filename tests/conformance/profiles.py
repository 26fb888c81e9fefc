"""tempest.conf for a profile: the flags real Nova 34 passed its 264 tests under
(tempest-nova34-flags.conf, kept as measured), with this run's paths, URLs,
images and microversion filled in, and the profile's own feature flags on top."""

from __future__ import annotations

import configparser
import io
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOVA_FLAGS = HERE / "tempest-nova34-flags.conf"

# What this cloud serves beyond Nova's reference run, whose fake driver and missing
# Neutron could not: snapshots (createImage), and the VNC, SPICE and serial consoles
# through our own proxies (the fake driver answers RFB on VNC and echoes on the
# others). Interface attach we have too, though Tempest's tests of it also need
# Neutron, so they still skip.
FULL_FEATURES = {"snapshot": "true", "vnc_console": "true", "spice_console": "true",
                 "serial_console": "true", "interface_attach": "true",
                 # the moves the conductor runs (conductor/tasks/), on the fake driver
                 "shelve_migrate": "true", "live_migrate_back_and_forth": "true",
                 "block_migration_for_live_migration": "true"}
PROFILES: dict[str, dict[str, dict[str, str]]] = {
    "nova": {},
    "full": {"compute-feature-enabled": FULL_FEATURES},
}


@dataclass(frozen=True)
class Run:
    """What one run's tempest.conf points at."""
    workdir: Path
    identity_url: str
    admin_password: str
    images: tuple[str, str]
    max_microversion: str


def tempest_conf(profile: str, run: Run) -> str:
    parser = configparser.RawConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(NOVA_FLAGS)
    filled = {
        "DEFAULT": {"log_dir": str(run.workdir / "logs")},
        "oslo_concurrency": {"lock_path": str(run.workdir / "locks")},
        "identity": {"uri_v3": run.identity_url},
        "auth": {"admin_password": run.admin_password,
                 "test_accounts_file": str(run.workdir / "accounts.yaml")},
        # The cloud's own range: tests of later microversions skip rather than fail.
        "compute": {"image_ref": run.images[0], "image_ref_alt": run.images[1],
                    "max_microversion": run.max_microversion},
    }
    for overrides in (filled, PROFILES[profile]):
        for section, values in overrides.items():
            for key, value in values.items():
                parser.set(section, key, value)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()
