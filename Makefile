# Two entry points on a fresh machine: `make demo` (a small CPU pretraining) and `make test`.
# Both create .venv from requirements files first; nothing else needs installing by hand.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: setup test demo bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

test: setup
	$(PY) -m pytest -q tests

demo: setup
	bash demo.sh

bench: setup
	$(PY) bench/tokenizer.py
	$(PY) bench/pipeline.py

clean:
	rm -rf runs
