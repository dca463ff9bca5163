# iothub.emq — one entry point for people and CI.
#   make test                 everything, from a fresh machine (what CI runs)
#   make lint | units | sanity | pytest | build | molecule SCENARIO=name
# The first run installs what it needs (virtualenv, Docker engine, base images); later runs skip
# what is already there.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON ?= python3
BIN := $(CURDIR)/$(VENV)/bin
SCENARIO ?= toolchain
# Scenarios `make test` runs, in waves (scripts/molecule-waves.sh): the comma-separated scenarios of a wave,
# at most MOLECULE_JOBS (3) at a time, longest first; the waves in order; "name+value" runs scenario name with
# EMQ_CLUSTER_DISCOVERY=value.
# emq_cluster runs with manual joins (then DNS discovery): static discovery (the default) is what `site`
# deploys and tests. site, which counts failed connects during rollouts, runs alone. toolchain (the container
# host alone) is left out: every scenario here proves the same containers, converge and testinfra.
MOLECULE_WAVES ?= emq_cluster+manual,haproxy_lb,emq_node,nginx_lb site
# The offline EMQX stand-in package the scenarios install through emq_node's package-file path.
STANDIN_VERSION ?= 5.8.9
STANDIN_DEB := tests/output/standin/emqx_$(STANDIN_VERSION)_all.deb
# The release before it: the emq_node scenario upgrades from this one.
STANDIN_PREVIOUS_VERSION ?= 5.8.8
STANDIN_PREVIOUS_DEB := tests/output/standin/emqx_$(STANDIN_PREVIOUS_VERSION)_all.deb
# The enterprise build (emqx-enterprise): the emq_cluster scenario's cores and replicants run it.
STANDIN_EE_VERSION ?= 5.10.4
STANDIN_EE_DEB := tests/output/standin/emqx-enterprise_$(STANDIN_EE_VERSION)_all.deb
STANDIN_SOURCES := $(shell find tests/emqx_standin -type f -not -path '*/__pycache__/*' -not -path '*/dist/*' 2>/dev/null)

export PATH := $(BIN):$(PATH)
export MOLECULE_GLOB := molecule/*/molecule.yml
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections:$(HOME)/.ansible/collections:/usr/share/ansible/collections
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PYTHONDONTWRITEBYTECODE := 1


.PHONY: help test venv host standin sslyze lint yamllint ansible-lint changelog-lint sanity units pytest build molecule lab lab-destroy bench clean

help:
	@echo "make lab                   3 EMQX nodes + HAProxy + NGINX in containers, deployed with site.yml"
	@echo "make lab-destroy           remove the lab"
	@echo "make bench                 converge/no-op/scaling/front door/latency figures -> bench/results"
	@echo "make test                  run every gate (lint, sanity, units, pytest, build, molecule)"
	@echo "make lint                  yamllint + ansible-lint (production profile)"
	@echo "make sanity | units        ansible-test sanity / units"
	@echo "make pytest                the stand-in's and other pytest suites"
	@echo "make build                 build the collection tarball and run galaxy-importer on it"
	@echo "make molecule SCENARIO=x   one Molecule scenario (default: $(SCENARIO))"
	@echo "make host                  install/start the Docker engine and build the base images"
	@echo "make standin               build the offline EMQX stand-in package the scenarios install"

test: venv host lint sanity units pytest build standin sslyze
	@rm -f tests/output/*-figures.txt
	scripts/molecule-waves.sh "$(MOLECULE_WAVES)"
	@for f in tests/output/*-figures.txt; do [ -f "$$f" ] && { echo "==> figures measured by the scenarios ($$f):"; cat "$$f"; }; done; true
	@echo "make test: all gates passed"

# ---- set-up (idempotent) -------------------------------------------------------------------
venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "ERROR: $(PYTHON) not found; install Python 3.11" >&2; exit 1; }
	@test -x $(BIN)/python || { echo "==> creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> installing pinned Python packages into $(VENV)"
	@$(BIN)/pip install --quiet --upgrade pip >/dev/null 2>&1 || true
	@$(BIN)/pip install --quiet -r requirements-dev.txt 2> >(grep -v "is ignored: it is neither" >&2)
	@touch $@

host:
	@scripts/container-host.sh all

# ---- gates ---------------------------------------------------------------------------------
lint: yamllint ansible-lint changelog-lint

yamllint: venv
	yamllint --strict .

ansible-lint: venv
	ansible-lint --profile production --strict

# The fragments of unreleased changes and CHANGELOG.rst (antsibull-changelog release makes it) must parse.
changelog-lint: venv
	antsibull-changelog lint

sanity: venv
	scripts/ansible-test.sh sanity

units: venv
	@if [ -d tests/unit ]; then scripts/ansible-test.sh units; else echo "no unit tests yet (tests/unit)"; fi

# Two workers (pytest-xdist): most of these tests wait on processes they start (stand-in nodes,
# ansible-playbook), and every test keeps to its own loopback addresses and temporary directories.
PYTEST_WORKERS ?= 2
pytest: venv host standin
	IOTHUB_REQUIRE_DOCKER=1 python -m pytest -p no:cacheprovider -n $(PYTEST_WORKERS) $(wildcard tests/emqx_standin/tests tests/preflight tests/roles tests/playbooks tests/bench tests/aws)

build: venv
	@rm -rf build && mkdir -p build
	ansible-galaxy collection build --force --output-path build .
	python -m galaxy_importer.main --print-result build/iothub-emq-*.tar.gz > build/importer.log 2>&1 \
	  || { cat build/importer.log; exit 1; }
	@python scripts/check_importer.py build/importer.log

standin: $(STANDIN_DEB) $(STANDIN_PREVIOUS_DEB) $(STANDIN_EE_DEB)

$(STANDIN_DEB): $(STANDIN_SOURCES)
	tests/emqx_standin/build_deb.sh --version $(STANDIN_VERSION) --output $(dir $@)

$(STANDIN_PREVIOUS_DEB): $(STANDIN_SOURCES)
	tests/emqx_standin/build_deb.sh --version $(STANDIN_PREVIOUS_VERSION) --output $(dir $@)

$(STANDIN_EE_DEB): $(STANDIN_SOURCES)
	tests/emqx_standin/build_deb.sh --edition enterprise --version $(STANDIN_EE_VERSION) --output $(dir $@)

# sslyze (the TLS scanner of the load-balancer scenarios) needs cryptography<47, older than the pin in
# requirements-dev.txt: it gets a virtualenv of its own, $(VENV)/sslyze, from its own pinned list.
SSLYZE_REQUIREMENTS := molecule/_shared/requirements-sslyze.txt
sslyze: $(VENV)/sslyze/.installed

$(VENV)/sslyze/.installed: $(SSLYZE_REQUIREMENTS)
	@test -x $(VENV)/sslyze/bin/python || { echo "==> creating $(VENV)/sslyze"; $(PYTHON) -m venv $(VENV)/sslyze; }
	@$(VENV)/sslyze/bin/pip install --quiet -r $(SSLYZE_REQUIREMENTS) 2> >(grep -v "is ignored: it is neither" >&2)
	@touch $@

molecule: venv host standin sslyze
	molecule test -s $(SCENARIO)

# ---- the lab: the whole deployment on this machine -------------------------------------------
lab: venv host standin
	scripts/lab.sh up $(LAB_ARGS)

lab-destroy: venv
	scripts/lab.sh down

# ---- benchmarks: figures, never pass/fail (bench/run.py) -------------------------------------------
#   make bench                          every measure, the converge and no-op against BENCH_BASELINE
#   make bench BENCH_ONLY=noop          one measure again (converge, noop, scaling, frontdoor, latency; comma-separated)
#   make bench BENCH_BASELINE=none      no baseline run; BENCH_ARGS="--rounds 3" for more
BENCH_ONLY ?=
BENCH_BASELINE ?= bfe6cdf
bench: venv host standin
	@python -c 'import matplotlib' 2>/dev/null || pip install -q -r bench/requirements.txt
	python bench/run.py $(if $(BENCH_ONLY),--only $(BENCH_ONLY)) --baseline $(BENCH_BASELINE) $(BENCH_ARGS)

clean:
	rm -rf build tests/output .cache
