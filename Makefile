# Two entry points for a fresh machine: `make install` (the tool) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test clean completions bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# A regular install, not an editable one: setuptools' editable finder costs every command ~12 ms
# of start-up. After changing or pulling the code, run `make install` again.
install: $(BIN)/python
	$(BIN)/python -m pip install -q .
	@echo "tpcloud is installed: $(BIN)/tpcloud (add $(abspath $(BIN)) to PATH, or symlink it)"

test: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The shell completion scripts in completions/, made by Typer from the app (after `make install`).
# Leading blank lines go, so that zsh finds `#compdef` on the first line.
COMPLETIONS_DIR ?= completions
completions: $(BIN)/python
	mkdir -p $(COMPLETIONS_DIR)
	for shell in bash zsh fish; do \
	  script=$$(_TPCLOUD_COMPLETE=source_$$shell $(BIN)/python -m tpcloud) || exit 1; \
	  printf '%s\n' "$$script" | sed '/./,$$!d' > $(COMPLETIONS_DIR)/tpcloud.$$shell; \
	done

# The benchmark (bench/run.py): tpcloud from $(VENV) against the test emulators on loopback, beside
# python-kasa, which lives only in its own venv. BENCH_ARGS passes options, e.g. --runs 3.
BENCH_VENV ?= bench/.venv
bench: install
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q -r bench/requirements.txt
	$(BENCH_VENV)/bin/python bench/run.py --tpcloud $(abspath $(BIN))/tpcloud --python $(abspath $(BIN))/python $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
