# One entry point for people and CI. `make demo` and `make test` work as root on a
# fresh Debian machine: they install what they need (venv, Docker engine, registry).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: venv testbed-deps testbed testbed-down lint unit test demo bench reliability clean lock

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

# The action image's Python dependencies, pinned with hashes (the Dockerfile installs them
# with --require-hashes --no-deps). Regenerate after changing [project.dependencies]; a unit
# test fails while the lock does not satisfy them. cryptography is left out: PyGithub pulls
# it in for GitHub App JWTs, which the action never signs (PyJWT imports it only then).
LOCK_FLAGS := --generate-hashes --python-version 3.13 --python-platform linux \
	--no-emit-package cryptography --quiet

lock: venv
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) -o requirements.lock

testbed-deps:
	bash scripts/install-testbed-deps.sh

testbed: venv testbed-deps
	$(PY) -m tests.testbed up --print-env

testbed-down: venv
	$(PY) -m tests.testbed down

# Schemas first (cheap, and zizmor trusts the structure); zizmor with no severity floor:
# every finding fails, unless suppressed inline with `# zizmor: ignore[audit] -- reason`.
# --offline: no token or network needed; the online audits (known-vulnerable-actions,
# ref-version-mismatch, ...) are skipped, so Dependabot keeps the pins fresh instead.
WORKFLOWS := $(wildcard .github/workflows/*.yml)

lint: venv
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions action.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/zizmor --offline --no-progress $(WORKFLOWS) action.yml .github/dependabot.yml
	$(BIN)/actionlint $(WORKFLOWS)   # suppressions, each with its reason: .github/actionlint.yaml
	$(BIN)/hadolint Dockerfile       # suppressions: inline `# hadolint ignore=` with a reason
	$(PY) scripts/check_dist.py      # sdist + wheel build without a warning; pyroma >= 8/10
	$(BIN)/ruff check src tests entrypoint.py
	$(BIN)/mypy src
	$(BIN)/lint-imports

unit: venv
	$(BIN)/pytest tests/unit

test: venv testbed lint
	$(BIN)/pytest tests --ignore=tests/reliability
	$(MAKE) reliability

# Faults, bad inputs, secret hunting and concurrent runs (tests/reliability), then one table
# from their records in .testbed-reports/; fails when any category fails.
reliability: venv testbed
	rm -f .testbed-reports/reliability-*.json
	$(BIN)/pytest -q tests/reliability; status=$$?; \
	$(PY) scripts/reliability_table.py && exit $$status

demo: venv testbed
	$(PY) -m tests.e2e.demo

# B1-B6 of the BuildKit issues on the test bed (bench/README.md); writes bench/results.json
# and prints the table for README.md. Sensitive to other load on the machine.
bench: venv testbed
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) build dist src/*.egg-info
