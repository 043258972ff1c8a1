# provledger: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SEEDS ?= 500
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= events,blocks,tokens,bundles,rest,grpc
FUZZ_ENGINE ?= auto
FUZZ_DIR ?= $(or $(TMPDIR),/tmp)/provledger-fuzz

.PHONY: demo test browser test-fast lint format proto proto-check sim fuzz bench bench-consortium bench-quick \
	bench-rest bench-integrity clean

# The install's own chatter goes to a log; on failure its tail is shown.
$(STAMP): pyproject.toml
	@echo "setting up $(VENV) (pip log: $(VENV)/install.log)"
	@$(PYTHON) -m venv $(VENV)
	@{ $(PY) -m pip install --quiet --upgrade pip && \
	   $(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'; \
	 } > $(VENV)/install.log 2>&1 || { tail -n 30 $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/provledger demo

test: $(STAMP) browser
	$(PY) -m pytest -q tests

# The explorer's browser test drives Debian's Chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian's chromium for the browser test"; \
			DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q chromium >/dev/null 2>&1 || \
			{ apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null 2>&1 && \
			  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q chromium >/dev/null; }; \
		else echo "chromium is missing: install Debian's chromium package for the browser test"; fi; }

test-fast: $(STAMP)
	$(PY) -m pytest -q tests -m "not integration and not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=proto --pyi_out=proto \
		--grpc_python_out=proto proto/provledger/v1/*.proto

# Regenerates into a scratch folder and compares with what is committed.
proto-check: $(STAMP)
	@rm -rf .proto-check && mkdir -p .proto-check
	@$(PY) -m grpc_tools.protoc -Iproto --python_out=.proto-check --pyi_out=.proto-check \
		--grpc_python_out=.proto-check proto/provledger/v1/*.proto
	@for f in .proto-check/provledger/v1/*; do \
		cmp -s $$f proto/provledger/v1/$$(basename $$f) || { echo "stale: proto/provledger/v1/$$(basename $$f) (run make proto)"; rm -rf .proto-check; exit 1; }; \
	done
	@rm -rf .proto-check
	@echo "generated code is up to date"

sim: $(STAMP)
	$(PY) tests/sim/run.py --seeds $(SEEDS)

# Long fuzz runs, FUZZ_SECONDS per target, one target at a time (tests/fuzz/run.py; make test
# runs the same targets briefly). atheris (coverage-guided) is installed here, never for make
# test; where it does not install, the hypothesis targets run alone. FUZZ_ENGINE: auto,
# atheris, hypothesis or both.
fuzz: $(STAMP)
	@$(PY) -c "import atheris" 2>/dev/null || \
		$(PY) -m pip install --quiet --disable-pip-version-check atheris >/dev/null 2>&1 || \
		echo "atheris did not install: the hypothesis targets run alone"
	$(PY) tests/fuzz/run.py --targets $(FUZZ_TARGETS) --seconds $(FUZZ_SECONDS) \
		--engine $(FUZZ_ENGINE) --work-dir $(FUZZ_DIR)

bench: $(STAMP)
	$(PY) bench/single_node.py

bench-consortium: $(STAMP)
	$(PY) bench/consortium.py

bench-quick: $(STAMP)
	$(PY) bench/single_node.py --events 20000

# REST latency: kept alive, a new connection per request, under piles of idle sockets.
bench-rest: $(STAMP)
	$(PY) bench/rest.py

# The open check, `node check`, `node repair` and disk bytes per event (200,000 events).
bench-integrity: $(STAMP)
	$(PY) bench/integrity.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .proto-check build *.egg-info
