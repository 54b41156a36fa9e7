# Two commands do everything: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test-packages run monitor test test-fast lint bench ab down clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the test tiers need, as command:package: partitions (ip, nft), the
# clock tier's wall-clock shim and libfaketime (gcc, faketime), the browser tier
# (chromium, chromedriver), the Prometheus tests, the bench (wrk), the README's
# walk-through (curl, tests/integration/test_readme.py) and the check of `bazar deploy
# systemd`'s units (systemd-analyze). As root, one `apt-get update` and one install of
# those missing. Without root or apt the build goes on (a warning): those
# tiers skip, and under CI=true a skip there fails the run (tests/support/tiers.py).
TEST_PACKAGES := ip:iproute2 nft:nftables gcc:gcc faketime:faketime wrk:wrk chromium:chromium \
	chromedriver:chromium-driver prometheus:prometheus promtool:prometheus curl:curl \
	systemd-analyze:systemd

test-packages:
	@export PATH="$$PATH:/usr/sbin:/sbin"; missing=""; \
	for pair in $(TEST_PACKAGES); do \
		command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	missing=$$(printf '%s\n' $$missing | sort -u | tr '\n' ' '); \
	if [ -z "$${missing% }" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "make: not installed (needs root and apt-get): $$missing- their test tiers will skip"; \
	else \
		echo "make: installing $$missing"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq $$missing >/dev/null; } \
		|| echo "make: could not install $$missing- their test tiers will skip"; \
	fi

run: install  ## start the whole cluster on loopback (Ctrl-C stops it)
	$(BIN)/bazar up

# Detached, with Prometheus on 127.0.0.1:9090; on a running cluster, (re)starts only Prometheus.
monitor: install  ## the cluster with Prometheus scraping every node (`make down` stops both)
	$(BIN)/bazar up --detach --monitor

# Two xdist workers, a test module at a time each: the suite mostly waits on clusters
# (failovers, leases, timeouts): on 2 cores 430-503 s of pytest, one at a time 636 s
# (docs/testing.md, "Suite time"). The slow tiers start first (tests/conftest.py).
test: install test-packages lint  ## the whole suite: lint, unit, integration, end-to-end, faults
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

test-fast: install
	$(BIN)/python -m pytest -q tests/unit

lint: install  ## ruff (lint + format) and bandit, clean
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -q -c pyproject.toml -r common catalog order recovery frontend scripts
	$(BIN)/bandit -q -c pyproject.toml -s B101,B404,B311 -r loadtests  # random: a traffic mix

bench: install  ## every route against the fastest bare Flask endpoint, CPU and RSS per node (needs wrk); BENCH_ARGS="--soak 10"
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python loadtests/bench.py $(BENCH_ARGS)

# A/B of two checkouts side by side: make ab BEFORE=<git revision> (see loadtests/ab.py)
ab: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python loadtests/ab.py --before $(BEFORE)

down: install
	$(BIN)/bazar down

clean:
	rm -rf $(VENV) var .pytest_cache
