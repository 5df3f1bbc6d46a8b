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

# make exits 2 for any failed recipe: the triage's own status (1 fault diagnosed, 2 bench error,
# 3 usage or config error) is printed as the last line; scripts run $(BIN)/posbench triage for it.
triage: deps $(STAMP)
	@$(BIN)/posbench triage $(ARGS); status=$$?; \
	if [ $$status -ne 0 ]; then echo "posbench triage: exit status $$status (1 fault diagnosed, 2 bench error, \
	3 usage or config error); make exits 2 for any failed step: for the status itself run $(BIN)/posbench triage" >&2; fi; \
	exit $$status

test: deps $(STAMP)
	$(BIN)/python -m pytest -n 6 --dist worksteal $(ARGS)

test-slow: deps $(STAMP)
	$(BIN)/python -m pytest -m slow $(ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) *.egg-info reports/*.html reports/*.json reports/*.xml
