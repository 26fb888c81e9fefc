# Two entry points for a fresh machine: `make up` and `make test`.
STATE ?= $(CURDIR)/.state
PORT ?= 8774
PYTEST_ARGS ?=

.PHONY: help install up test unit functional fuzz integration bench lint clean services services-stop

help:            ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

install:         ## install system packages and the Python environment
	@scripts/install.sh

up: install      ## install, build the test guest image if missing, run a whole cloud
	.venv/bin/novalet image build-test --state-dir $(STATE)
	.venv/bin/novalet up --state-dir $(STATE) --port $(PORT)

test: install lint  ## install, then lint and run every test
	.venv/bin/python -m pytest -q $(PYTEST_ARGS)

unit: install    ## unit tests only
	.venv/bin/python -m pytest -q tests/unit

functional: install  ## whole cloud in one process, fake driver
	.venv/bin/python -m pytest -q tests/functional

fuzz: install    ## schemathesis over the compute API (NOVALET_FUZZ_EXAMPLES=N: more cases)
	.venv/bin/python -m pytest -q tests/functional/test_fuzz_compute_api.py

integration: install  ## real clients against a running `novalet up`
	.venv/bin/python -m pytest -q tests/integration

bench: install   ## benchmarks (print figures; not tests)
	.venv/bin/python bench/boot_fake.py
	.venv/bin/python bench/boot_real.py
	.venv/bin/python bench/network.py
	.venv/bin/python bench/schedule_scale.py
	.venv/bin/python bench/console_proxy.py

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
