# Two commands for a newcomer: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench prompts screenshots clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,speech-test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hotline demo

lint: $(STAMP)
	$(BIN)/ruff check .

# Test modules are shared among one worker per CPU (pytest-xdist), each module whole on
# one worker, so its module-scoped stack is built once.
test: $(STAMP) lint
	$(BIN)/pytest -n auto --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m tests.bench

# The README's console pictures (docs/console/), taken by the console's browser tests.
screenshots: $(STAMP)
	HOTLINE_SCREENSHOTS=docs/console $(BIN)/pytest -q tests/test_console_*.py

prompts: $(STAMP)
	$(BIN)/hotline prompts build

clean:
	rm -rf $(VENV) var build *.egg-info
