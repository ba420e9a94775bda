# Two entry points: `make demo` (the course, headless, on the embedded sample) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PRESET ?= demo
OUT ?= runs/$(PRESET)

.PHONY: demo test install install-dev lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# constraints.txt pins every package to the tested version; pyproject.toml holds the ranges
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .
	$(BIN)/python -c "import segment_anything, torchvision, cv2; print('seglib environment ready')"
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/python -m seglib course --preset $(PRESET) --out $(OUT)

test: install-dev
	$(BIN)/ruff check seglib tests bench
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check seglib tests bench

bench: install-dev
	for f in $(filter-out bench/seed_sweep.py,$(wildcard bench/*.py)); do \
		$(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
