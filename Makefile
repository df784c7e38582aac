# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

# The engine built by tools/setup-engine.sh, and local runs that need no network or account.
# A real user's PULUMI_BACKEND_URL or PULUMI_HOME from the environment wins.
export PATH := $(CURDIR)/.tools/bin:$(PATH)
export PULUMI_SKIP_UPDATE_CHECK := true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION := true
export PULUMI_HOME ?= $(CURDIR)/.tools/pulumi-home
# Upstream source of Pulumi's Go language host for Python, where the machine has it:
# tools/setup-engine.sh builds the host from it (its Go module is not served by every proxy).
export PULUMI_LANGUAGE_PYTHON_SRC ?= $(wildcard $(abspath $(CURDIR)/../shared/pulumi-language-python))
# mypy's cache of what it learned (the third-party packages are most of it) lives outside the
# clone, as Go's caches do: a fresh clone on this machine type-checks in about a second, not ten.
# mypy checks every cached entry against its source's hash, so clones can share it.
export MYPY_CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/margin-special-keys/mypy

.PHONY: help venv lock engine system compiled lint unit sandbox-tests e2e proof test demo demo-destroy bench clean

help:
	@echo "make demo          special keys on the embedded sandbox exchange, by the real Pulumi engine"
	@echo "make demo-destroy  delete the demo's keys and stop the sandbox"
	@echo "make test          ruff, mypy, unit, sandbox and end-to-end tests"
	@echo "make proof         faults, kills, leaks, bad input; figures to docs/reliability.md"
	@echo "make bench         benchmarks, written to bench/RESULTS.md"

venv: $(VENV)/.installed

# Every install is hash-locked (requirements-dev.lock, pip included); the project itself goes in
# editable, with nothing more. `make lock` regenerates the locks from the *.in files.
$(VENV)/.installed: pyproject.toml requirements-dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

lock: venv
	$(PY) -m pip install --quiet --disable-pip-version-check pip-tools
	$(VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-header \
	  --no-emit-find-links -o requirements.lock requirements.in
	$(VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-header \
	  --no-emit-find-links -o requirements-dev.lock requirements-dev.in

engine: venv
	bash tools/setup-engine.sh

# PostgreSQL's server and age, from Debian's packages where missing (tools/setup-system.sh).
system:
	@bash tools/setup-system.sh

GITHUB_WORKFLOWS := $(wildcard examples/github-actions*.yml templates/special-keys/.github/workflows/*.yml)
lint: venv
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows $(GITHUB_WORKFLOWS)
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.gitlab-ci examples/gitlab-ci.yml \
	  templates/special-keys/.gitlab-ci.yml
	@# zizmor, offline (no GitHub API call), at its strictest persona: every finding is fixed, or
	@# ignored in place by a `# zizmor: ignore[...]` comment that gives the reason.
	$(VENV)/bin/zizmor --offline --no-config --persona auditor --no-progress $(GITHUB_WORKFLOWS)
	bash tools/actionlint.sh

unit: venv system
	$(PY) -m pytest -q tests/unit

sandbox-tests: venv
	$(PY) -m pytest -q tests/sandbox

e2e: engine system compiled
	$(PY) -m pytest -q tests/e2e

proof: engine system compiled
	rm -f .proof.jsonl
	PROOF_REPORT=$(CURDIR)/.proof.jsonl $(PY) -m pytest -q tests/proof
	$(PY) -m tools.reliability_report .proof.jsonl docs/reliability.md

# The editable install leaves the package's own modules uncompiled (pip compiles what it copies,
# not a checkout): compiled here, as an install would, so that the engine's many Python
# processes read them even where PYTHONDONTWRITEBYTECODE is set (the tests and the bench alike).
compiled: venv
	@$(PY) -m compileall -q providers >/dev/null

# One test process per core and one more: the engine's commands are CPU-bound, but engine tests
# also wait (exchange latency, rate-limit windows, kill timers). Each test has its own accounts
# and projects. Tests go to whichever process is free, one at a time (--maxschedchunk 1), in the
# order tests/conftest.py gives them: long ones first, in-process ones last, to fill the cores
# while the last engine tests finish.
# The linters run beside the tests (their output follows the tests'); either failing fails.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
test: venv engine system compiled
	@lint_log=$$(mktemp); \
	$(MAKE) --no-print-directory lint >"$$lint_log" 2>&1 & lint_pid=$$!; \
	(umask 077 && $(PY) -m pytest -q -n $(TEST_WORKERS) --dist load --maxschedchunk 1 tests); \
	tests_rc=$$?; wait $$lint_pid; lint_rc=$$?; \
	echo "--- make lint, run beside the tests: exit $$lint_rc ---"; cat "$$lint_log"; rm -f "$$lint_log"; \
	test $$lint_rc -eq 0 && test $$tests_rc -eq 0

demo: engine
	umask 077 && $(PY) tools/demo.py up

demo-destroy: engine
	umask 077 && $(PY) tools/demo.py destroy

bench: engine system compiled
	$(PY) -m bench.run

# Never a state folder holding a stack other than the demo's (tools/clean.py says where to move it).
clean:
	python3 tools/clean.py
