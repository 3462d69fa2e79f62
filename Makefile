# Two commands on a fresh machine:  `make run` (the app, on its embedded model)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench screenshots bench-tui clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing memo-shell and its dependencies (the first time compiles llama.cpp: ~5 min)..."
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

run: $(STAMP)
	$(BIN)/memo-shell

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check memo_shell tests bench
	$(BIN)/ruff format --check memo_shell
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/store.py
	$(BIN)/python bench/locomo.py
	$(BIN)/python bench/recall.py
	$(BIN)/python bench/turn.py
	$(BIN)/python bench/tui.py
	$(BIN)/python bench/soak.py

screenshots: $(STAMP)
	$(BIN)/python -m memo_shell.tui.screenshots

bench-tui: $(STAMP)
	$(BIN)/python bench/tui.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
