# Two entry points for a fresh machine: `make run` (install + launch the app) and
# `make test` (install + run the whole suite). Everything lives in .venv.
PYTHON ?= python3
VENV ?= .venv
# CPU wheel by default (fast, small). For NVIDIA GPUs: make run TORCH=torch
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/acseg $(ARGS)

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q $(PYTEST_ARGS)
	$(BIN)/ruff check acseg_core app tests resources

lint: $(STAMP)
	$(BIN)/ruff check acseg_core app tests resources

clean:
	rm -rf $(VENV) build *.egg-info
