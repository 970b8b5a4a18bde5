# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv from pyproject.toml.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cogma-installed
# One torch thread: on 2 cores torch's default threading is erratic and much slower (TOOLCHAIN.md).
export OMP_NUM_THREADS := 1
export KIVY_NO_ARGS := 1
export KIVY_NO_CONSOLELOG := 1

.PHONY: setup demo test test-gpu bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	$(BIN)/python -m mobile_app.pose.build_model
	touch $(STAMP)

demo: setup
	$(BIN)/python -m cogma.demo

test: setup
	$(BIN)/python -m pytest -q -m "not gpu"

test-gpu: setup
	$(BIN)/python -m pytest -q -m gpu

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
