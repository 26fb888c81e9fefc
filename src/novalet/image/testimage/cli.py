"""`novalet image build-test`: build the tiny test image into the state directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from novalet import config
from novalet.common.context import setup_logging
from novalet.image.testimage import builder
from novalet.image.testimage.commands import BuildError


def add_parser(subparsers: Any) -> None:
    """Add `image build-test` to the `novalet` command's subparsers."""
    image = subparsers.add_parser("image", help="image helpers",
                                  description="Image helpers.")
    image_sub = image.add_subparsers(dest="image_command", metavar="ACTION", required=True)
    build = image_sub.add_parser(
        "build-test", help="build the tiny bootable test image from Debian packages",
        description="Build a tiny bootable qcow2 guest (a Debian cloud kernel and busybox, "
                    "CirrOS-like) from Debian packages, with its kernel and initramfs beside "
                    "it for direct kernel boot. Needs no root.")
    build.add_argument("--output", metavar="PATH", type=Path,
                       help="qcow2 to write (default: STATE_DIR/images/"
                            f"{builder.IMAGE_NAME}.qcow2)")
    build.add_argument("--force", action="store_true",
                       help="rebuild even when the image exists")
    build.add_argument("--config-file", metavar="PATH",
                       help="INI file in nova.conf style (see `novalet config sample`)")
    build.add_argument("--state-dir", metavar="DIR",
                       help="directory for every file of the cloud "
                            "(default: the user's data dir)")
    build.add_argument("--debug", action="store_true", help="log at DEBUG level")


def output_path(args: argparse.Namespace) -> Path:
    """The qcow2 the command writes: --output, else the image under the state dir."""
    if args.output is not None:
        return Path(args.output).expanduser()
    conf = config.load(args.config_file)
    if args.state_dir:
        conf.set("DEFAULT", "state_path", args.state_dir)
    return builder.default_output(conf.state_path)


def run(args: argparse.Namespace) -> int:
    """Run `novalet image build-test`; returns the exit status."""
    try:
        output = output_path(args)
    except config.ConfigError as exc:
        print(f"novalet: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.debug:
        setup_logging(debug=True)  # each command the build runs, with its duration
    print(f"Test image: {output}")
    try:
        builder.build_test_image(output, progress=print, force=args.force)
    except BuildError as exc:
        print(f"novalet: {exc.message}", file=sys.stderr)
        return 1
    for upload in builder.uploads(output):
        size = upload.path.stat().st_size / (1024 * 1024)
        print(f"  {upload.disk_format:5} {size:5.1f} MiB  {upload.path}")
    return 0
