# The two commands of the README: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean browser

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Debian's chromium (the report's PDF and browser test) and poppler-utils (pdftoppm), when missing.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium and poppler-utils (report PDF and browser test)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo -n ); \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium poppler-utils fonts-noto-cjk ) >/dev/null 2>&1 \
	  || echo "could not install them: the report stays HTML only and its browser tests are skipped"; }

demo: $(STAMP) browser
	$(VENV)/bin/truckcarbon demo --out demo_out

test: $(STAMP) browser
	$(PY) -m pytest -q

# Everything but the tests marked slow (long accuracy runs, benchmark smoke tests, the Spark engine).
test-fast: $(STAMP) browser
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) benchmarks/bench_locate.py
	$(PY) benchmarks/bench_simulate.py
	$(PY) benchmarks/bench_pipeline.py
	$(PY) benchmarks/bench_kernels.py
	$(PY) benchmarks/bench_forecast.py
	$(PY) benchmarks/bench_engines.py
	$(PY) benchmarks/bench_gateway.py
	$(PY) benchmarks/fuzz_gateway.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .mypy_cache .ruff_cache
