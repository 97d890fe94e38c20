VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench install clean sysdeps

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/quantbot backtest demo

# System tools the tests use (strace watches the writer's fsyncs; systemd-analyze checks
# the units in scripts/; chromium runs the web app's browser tests, driven by Playwright:
# Playwright's own browser download is not reachable here): installed when missing.
# Under CI a test whose tool is missing fails.
sysdeps:
	@command -v strace >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq strace)
	@command -v systemd-analyze >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq systemd)
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

test: $(STAMP) sysdeps
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -n 2 -q

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) runs data/backtest_catalog.duckdb
