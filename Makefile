# Two entry points for a fresh machine: `make up` and `make test`.
# Variables (`make up PORT=8780`): see `make help`.
STATE ?= $(CURDIR)/.state
PORT ?= 8774
CONFIG ?=
PYTEST_ARGS ?=
PROFILE ?= nova
GROW ?=
# Per-file progress with an honest count ([done/total]) and the slowest tests at the end.
PYTEST_PROGRESS ?= -o console_output_style=count --durations=15
# Processes for the unit and functional tests in `make test` (pytest-xdist's -n).
TEST_WORKERS ?= 2

.PHONY: help install up down test unit functional fuzz integration conformance bench lint clean services services-stop

help:            ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
	@printf '\nVariables (make up PORT=8780 ...):\n'
	@printf '  STATE=DIR\tthe cloud'"'"'s state dir (default .state)\n'
	@printf '  PORT=N\t\tthe API'"'"'s port (default 8774; novalet up --port)\n'
	@printf '  CONFIG=FILE\ta novalet.conf for `up`: other metadata or console proxy ports\n'
	@printf '\t\t([metadata] port, [vnc] novncproxy_port, xvpvncproxy_port,\n'
	@printf '\t\t[spice] html5proxy_port, [serial_console] serialproxy_port; 0 picks one)\n'
	@printf '  PYTEST_ARGS=...\textra pytest arguments for `test`, e.g. "-x -k fuzz"; each\n'
	@printf '\t\tphase gets them (-k, -m and paths select within a phase; -x,\n'
	@printf '\t\t--maxfail: no later phase runs after a failure)\n'
	@printf '  TEST_WORKERS=N\tprocesses for `test`'"'"'s first phase (default 2)\n'
	@printf '  PROFILE=nova|full|network\tthe tempest.conf flags and tests for `conformance`\n\t\t(default nova; network: tempest.api.network on what it serves)\n'
	@printf '  GROW=1\t\tlet `conformance` add the tests that newly pass to its list\n'
	@printf '\n`make test` runs in two phases: the unit and functional tests on TEST_WORKERS\n'
	@printf 'processes, then one at a time the integration, multihost and conformance tests\n'
	@printf 'and those marked serial (they time answers). Both run (but see -x above); it fails\n'
	@printf 'if either failed, and ends with a total line and stops the servers it started.\n'

install:         ## install system packages and the Python environment
	@scripts/install.sh

up: install      ## install, build the test guest image if missing, run a whole cloud (PORT=N)
	@.venv/bin/novalet up --check-ports --port $(PORT) $(if $(CONFIG),--config-file $(CONFIG))
	.venv/bin/novalet image build-test --state-dir $(STATE)
	.venv/bin/novalet up --state-dir $(STATE) --port $(PORT) $(if $(CONFIG),--config-file $(CONFIG))

down:            ## after Ctrl-C: stop the cloud's guests, bridges, DHCP, firewall and backing servers
	@if [ -x .venv/bin/novalet ]; then .venv/bin/novalet down --state-dir $(STATE) \
	  $(if $(CONFIG),--config-file $(CONFIG)); fi
	@if [ "$$(id -u)" -eq 0 ]; then scripts/backing-services.sh stop; \
	  else echo "backing servers: stop them as root (scripts/backing-services.sh stop)"; fi

test: install lint  ## install, then lint and run every test, Tempest's included (stops what it started)
	.venv/bin/python -m tests.phases --workers $(TEST_WORKERS) -- $(PYTEST_PROGRESS) $(PYTEST_ARGS)

unit: install    ## unit tests only
	.venv/bin/python -m pytest -q tests/unit

functional: install  ## whole cloud in one process, fake driver
	.venv/bin/python -m pytest -q tests/functional

fuzz: install    ## schemathesis over the compute API (NOVALET_FUZZ_EXAMPLES=N: more cases)
	.venv/bin/python -m pytest -q tests/functional/test_fuzz_compute_api.py

integration: install  ## real clients against a running `novalet up`
	.venv/bin/python -m pytest -q tests/integration

conformance: install  ## Tempest 47's compute (PROFILE=network: network) API tests on a 3-host fake cloud (PROFILE, GROW)
	.venv/bin/python -m tests.conformance --profile $(PROFILE) --state $(STATE)/conformance \
	  $(if $(GROW),--grow)

bench: install   ## benchmarks (print figures; not tests)
	.venv/bin/python bench/boot_fake.py
	.venv/bin/python bench/boot_real.py
	.venv/bin/python bench/network.py
	.venv/bin/python bench/network_api.py --qemu
	.venv/bin/python bench/schedule_scale.py
	.venv/bin/python bench/console_proxy.py
	.venv/bin/python bench/migrate.py

services:        ## start RabbitMQ, PostgreSQL and MariaDB on loopback (data in .state/backing)
	@scripts/backing-services.sh start

services-stop:   ## stop the servers `make services` started (their data stays)
	@scripts/backing-services.sh stop

lint: install    ## ruff, mypy (strict) and the import contracts of .importlinter
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

clean:           ## remove the local state dir
	rm -rf $(STATE)
