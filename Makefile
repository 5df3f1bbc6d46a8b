# posbench: `make triage` runs the main job on the virtual bench, `make test` the whole test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: deps triage test test-slow bench clean

# The Debian packages the suite uses (.ci/deps): installed as root, else the apt-get line to run.
deps:
	@PYTHON="$(PYTHON)" .ci/deps

$(STAMP): pyproject.toml | deps
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "posbench needs Python 3.11+"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "cannot create $(VENV): on Debian run 'apt-get install python3-venv'" >&2; rm -rf $(VENV); exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

triage: deps $(STAMP)
	$(BIN)/posbench triage $(ARGS)

test: deps $(STAMP)
	$(BIN)/python -m pytest -n 6 --dist worksteal $(ARGS)

test-slow: deps $(STAMP)
	$(BIN)/python -m pytest -m slow $(ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) *.egg-info reports/*.html reports/*.json reports/*.xml
