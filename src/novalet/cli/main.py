"""The `novalet` command: run a cloud, manage its database, print a sample config."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from novalet import __version__, config
from novalet.image.testimage import cli as testimage_cli


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-file", metavar="PATH", action="append",
                        help="INI file in nova.conf style (see `novalet config sample`); "
                             "repeat it to layer files, later ones winning")
    parser.add_argument("--state-dir", metavar="DIR",
                        help="directory for every file of the cloud "
                             "(default: the user's data dir)")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG level")


_SERVICES = {
    "api": "the HTTP APIs (compute, identity, image) over the database and the bus.",
    "conductor": "the build flow, and the compute hosts' only way to the database.",
    "scheduler": "picks a host for each build and claims its resources.",
    "compute": "one hypervisor host: runs its guests through the virt driver; needs no "
               "database URL.",
    "network": "one host's bridges, DHCP and firewall rules; needs no database URL.",
    "novncproxy": "the noVNC websocket proxy and web client ([vnc] novncproxy_host, "
                  "novncproxy_port; /usr/share/novnc from Debian's novnc); tokens are "
                  "checked by the conductor, so it needs only the bus.",
    "spicehtml5proxy": "the SPICE HTML5 websocket proxy and web client ([spice] "
                       "html5proxy_host, html5proxy_port; /usr/share/spice-html5 from "
                       "Debian's spice-html5); needs only the bus.",
    "serialproxy": "the serial console websocket proxy ([serial_console] serialproxy_host, "
                   "serialproxy_port); needs only the bus.",
    "xvpvncproxy": "the proxy for native VNC clients, whose console token is the VNC "
                   "password ([vnc] xvpvncproxy_host, xvpvncproxy_port); needs only the bus.",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="novalet", description="A compute cloud that speaks the OpenStack Compute API.",
        epilog="Start with `novalet up` (from a source tree: `make up`), stop it with "
               "Ctrl-C, take its guests and host networking down with `novalet down`. "
               "`novalet COMMAND --help` describes each command.")
    parser.add_argument("--version", action="version", version=f"novalet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = sub.add_parser("up", help="run a whole cloud in one process",
                        description="Run api, conductor, scheduler and one compute host "
                                    "in one process over SQLite and an in-process bus.",
                        epilog="Before anything else it checks that every port it will "
                               "listen on is free: --port, --metadata-port and the console "
                               "proxies' [vnc] novncproxy_port and xvpvncproxy_port, [spice] "
                               "html5proxy_port and [serial_console] serialproxy_port (set "
                               "in a --config-file; 0 picks a free port). Ctrl-C stops it; "
                               "its guests keep running until `novalet down`.")
    _common(up)
    up.add_argument("--listen", metavar="ADDR", help="address to bind (default 127.0.0.1)")
    up.add_argument("--port", type=int,
                    help="port of the API (default [api] port, 8774; `make up PORT=N`)")
    up.add_argument("--metadata-port", type=int, metavar="PORT",
                    help="port of the metadata service guests reach through "
                         "169.254.169.254 (default 8775; 0: don't run it)")
    up.add_argument("--check-ports", action="store_true",
                    help="only check that every port it would listen on is free, then "
                         "exit (1, naming the busy ones, if not)")
    up.add_argument("--driver", choices=["qemu", "fake"],
                    help="virt driver: qemu runs real guests (default), fake keeps them "
                         "in memory")

    down = sub.add_parser(
        "down", help="end a stopped cloud's guests and host networking",
        description="After Ctrl-C of `novalet up` its guests keep running (the next start "
                    "re-attaches to them). `down` force-stops the state dir's QEMU guests "
                    "(their disks stay; they come back SHUTOFF) and, as root, removes the "
                    "bridges, taps, dnsmasq and nftables tables Novalet made. It refuses "
                    "while a novalet process serves the state dir, leaves the host "
                    "networking alone while another cloud runs on this host, and is safe "
                    "to run again. The backing servers (RabbitMQ, PostgreSQL, MariaDB) are "
                    "scripts/backing-services.sh's: `make down` stops them too.")
    _common(down)

    for name, what in _SERVICES.items():
        service = sub.add_parser(
            name, help=f"run only the {name} service (multi-host clouds)",
            description=f"Run the {name} service alone, until SIGTERM or Ctrl-C: {what} "
                        "With transport_url = rabbit://… and a server database, services "
                        "on many hosts form one cloud (docs/multi-host.md).")
        _common(service)
        service.add_argument("--host", metavar="NAME",
                             help="this host's name as services report it "
                                  "(default [DEFAULT] host)")

    metadata = sub.add_parser(
        "metadata", help="run only the metadata service",
        description="Serve instance metadata (what guests reach at 169.254.169.254) "
                    "from the cloud's database, until Ctrl-C.")
    _common(metadata)
    metadata.add_argument("--listen", dest="metadata_listen", metavar="ADDR",
                          help="address to bind (default [metadata] listen, 127.0.0.1)")
    metadata.add_argument("--port", dest="metadata_port", type=int, metavar="PORT",
                          help="port (default [metadata] port, 8775)")

    manage = sub.add_parser("manage", help="administer the cloud's database",
                            description="Administer the cloud: its database schema, "
                                        "and the documents its API and policy are built "
                                        "from.")
    manage_sub = manage.add_subparsers(dest="manage_command", metavar="AREA", required=True)
    db = manage_sub.add_parser("db", help="database schema",
                               description="Database schema commands.")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    sync = db_sub.add_parser("sync", help="migrate the schema to the newest revision",
                             description="Create or migrate the schema to the newest "
                                         "revision.")
    _common(sync)
    down = db_sub.add_parser(
        "downgrade", help="migrate the schema back to an older revision",
        description="Migrate the schema back to REVISION (e.g. 0013), dropping what the "
                    "older release cannot hold. Stop the cloud first.")
    down.add_argument("revision", metavar="REVISION")
    _common(down)
    openapi = manage_sub.add_parser(
        "openapi", help="print the compute API's OpenAPI document (JSON)",
        description="Print the OpenAPI 3.1 document of the compute API, generated from "
                    "its routes and request schemas (what GET /compute/v2.1/openapi.json "
                    "serves).")
    openapi.add_argument("--microversion", metavar="VERSION", default="latest",
                         help="the compute microversion it describes (default latest)")
    manage_sub.add_parser(
        "policy-sample", help="print every policy rule and its default (YAML)",
        description="Print every policy rule with its default check string, commented, "
                    "as a policy.yaml to start overrides from.")

    conf = sub.add_parser("config", help="configuration helpers",
                          description="Configuration helpers: `novalet config sample` "
                                      "prints every option, with its default and help, as "
                                      "a novalet.conf to start from.")
    conf_sub = conf.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    conf_sub.add_parser("sample", help="print a sample novalet.conf",
                        description="Print a sample novalet.conf with every option.")
    testimage_cli.add_parser(sub)
    return parser


def load_conf(args: argparse.Namespace) -> config.Config:
    conf = config.load(args.config_file)
    if args.state_dir:
        conf.set("DEFAULT", "state_path", args.state_dir)
    if args.debug:
        conf.set("DEFAULT", "debug", True)
    for section, name, attr in (("api", "listen", "listen"), ("api", "port", "port"),
                                ("DEFAULT", "host", "host"),
                                ("DEFAULT", "compute_driver", "driver"),
                                ("metadata", "port", "metadata_port"),
                                ("metadata", "listen", "metadata_listen")):
        value = getattr(args, attr, None)
        if value is not None:
            conf.set(section, name, value)
    return conf


def main(argv: list[str] | None = None) -> int:
    started_at = time.monotonic()
    args = build_parser().parse_args(argv)
    if args.command == "config":
        sys.stdout.write(config.sample())
        return 0
    if args.command == "image":
        return testimage_cli.run(args)
    if args.command == "manage" and args.manage_command == "openapi":
        return _openapi(args.microversion)
    if args.command == "manage" and args.manage_command == "policy-sample":
        from novalet import policy
        sys.stdout.write(policy.sample())
        return 0
    try:
        conf = load_conf(args)
    except config.ConfigError as exc:
        print(f"novalet: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command in ("up", "api"):
        from novalet import policy
        try:
            policy.configure(policy.policy_file_path(
                conf.get("oslo_policy", "policy_file"), conf.state_path))
        except policy.PolicyFileError as exc:
            print(f"novalet: {exc}", file=sys.stderr)
            return 2
    from novalet.common.context import setup_logging
    setup_logging(conf.get("DEFAULT", "debug"))
    if args.command == "up" and args.check_ports:
        from novalet.service import preflight
        try:
            preflight.check_ports(conf)
        except preflight.PortsInUse as exc:
            print(f"novalet: cannot start:\n{exc.message}", file=sys.stderr)
            return 1
        return 0
    if args.command == "up":
        from novalet.service.up import run
        run(conf, started_at)  # checks the ports before it makes the state dir
        return 0
    if args.command == "down":
        return _down(conf)
    if args.command in _SERVICES:
        from novalet.service import runner
        return runner.run(conf, args.command)
    if args.command == "metadata":
        from novalet.service.metadata import run as run_metadata
        return run_metadata(conf)
    return _db_sync(conf, getattr(args, "revision", None))


def _openapi(requested: str) -> int:
    import orjson

    from novalet import exceptions
    from novalet.api.compute import microversions, openapi, routes
    try:
        version = microversions.negotiate({"openstack-api-version": f"compute {requested}"})
    except exceptions.NovaletError as exc:
        print(f"novalet: {exc.message}", file=sys.stderr)
        return 2
    document = openapi.build(routes.ROUTES, version)
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _down(conf: config.Config) -> int:
    from novalet.service import down
    try:
        report = asyncio.run(down.down(conf))
    except down.CloudStillRunning as exc:
        print(f"novalet: {exc.message}", file=sys.stderr)
        return 1
    for line in report or ["nothing of this cloud was running"]:
        print(f"novalet down: {line}")
    return 0


def _db_sync(conf: config.Config, downgrade_to: str | None = None) -> int:
    from novalet.db import migrate
    from novalet.db.engine import Database

    async def sync() -> None:
        db = Database(conf.database_url)
        try:
            if downgrade_to is None:
                await migrate.sync(db)
            else:
                await migrate.downgrade(db, downgrade_to)
        finally:
            await db.close()

    conf.state_path.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(sync())
    except migrate.MigrationError as exc:
        print(f"novalet: {exc}", file=sys.stderr)
        return 1
    where = "the newest revision" if downgrade_to is None else f"revision {downgrade_to}"
    print(f"Database at {conf.database_url} is at {where}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
