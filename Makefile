# Two entry points for a fresh machine: `make run` (install + launch the app) and
# `make test` (install + run the whole suite). Everything lives in .venv.
PYTHON ?= python3
VENV ?= .venv
# CPU wheel by default (fast, small). For NVIDIA GPUs: make run TORCH=torch
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint clean sample sample-strokes

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

# the bundled sample's model and classes, then its strokes and the model learnt from them
sample: $(STAMP)
	$(BIN)/python -m resources.make_sample_model
	$(BIN)/python -m resources.make_sample_strokes

# only the strokes and the learnt model (after the learnt read-out changes)
sample-strokes: $(STAMP)
	$(BIN)/python -m resources.make_sample_strokes

clean:
	rm -rf $(VENV) build *.egg-info
