#!/usr/bin/env bash
# Installs everything Novalet needs on a fresh Debian machine: system packages
# (when some are missing) and a virtualenv in .venv with the pinned Python
# dependencies. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the cloud and its tests use; empty entries are skipped.
APT_PACKAGES=(git make wrk qemu-system-x86 qemu-utils syslinux syslinux-common mtools dosfstools fdisk e2fsprogs cpio kmod dnsmasq-base nftables iproute2 iputils-ping busybox-static rabbitmq-server postgresql mariadb-server novnc spice-html5 chromium)
VENV=.venv
PYTHON=${PYTHON:-python3}

step() { printf '==> %s\n' "$*"; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "Installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ -f "$stamp" ]; then
  step "Python environment is up to date ($VENV)"
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  step "Creating virtualenv $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
step "Installing Python dependencies (pinned in pyproject.toml; this takes a minute)"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip
"$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar on -e ".[test]" \
  2>&1 | grep -Ev '^(Requirement already satisfied|WARNING: Location)' || true
"$VENV/bin/python" -c "import novalet, openstack, novaclient" \
  || { echo "install failed: see the pip output above" >&2; exit 1; }
rm -f "$VENV"/.installed-*
touch "$stamp"
step "Installed. Run 'make up' for a cloud or 'make test' for the tests."
