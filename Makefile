# Two commands on a fresh machine:  `make run` (the app, on its embedded model)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# llama.cpp is compiled for this CPU (-march=native) but never with Intel AMX: its AMX kernels
# die with SIGILL (illegal instruction) on Xeons that report AMX. With GGML_NATIVE (the default)
# ggml ignores the GGML_AMX_* options and passes only -march=native, so the AMX extensions are
# also switched off in the compiler flags (GCC and Clang keep an explicit -mno-X over -march).
LLAMA_NO_AMX     := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CMAKE_ARGS := -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
                    -DCMAKE_C_FLAGS='$(LLAMA_NO_AMX)' -DCMAKE_CXX_FLAGS='$(LLAMA_NO_AMX)'
export CMAKE_ARGS := $(LLAMA_CMAKE_ARGS) $(CMAKE_ARGS)  # a user's own CMAKE_ARGS (GPU...) come after
# Built once per virtualenv with those flags. --no-cache-dir: pip's wheel cache is keyed by the
# package version only, so a wheel built earlier with other flags would be reused silently.
LLAMA_STAMP := $(VENV)/.llama-cpp-no-amx

.PHONY: run test lint bench screenshots bench-tui clean llama-cpp

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(LLAMA_STAMP): | $(VENV)/bin/python
	@echo "Compiling llama.cpp for this CPU, without AMX (once per virtualenv: ~5 min)..."
	$(BIN)/python -m pip install --quiet --no-cache-dir --force-reinstall --no-deps \
		"$$(sed -n 's/^ *"\(llama-cpp-python[^"]*\)",*/\1/p' pyproject.toml | head -n 1)"
	@touch $@

$(STAMP): pyproject.toml $(LLAMA_STAMP)
	@echo "Installing memo-shell and its dependencies..."
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# Rebuild llama-cpp-python without AMX (e.g. in a virtualenv made before this rule existed).
llama-cpp:
	rm -f $(LLAMA_STAMP)
	$(MAKE) $(LLAMA_STAMP)

run: $(STAMP)
	$(BIN)/memo-shell

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check memo_shell tests bench
	$(BIN)/ruff format --check memo_shell
	$(BIN)/lint-imports
	$(BIN)/mypy

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
