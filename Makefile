# Two commands for a newcomer: `make demo` (set up, then the main job) and `make test` (set up, then the suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is installed before the rest, so that pip does not pull PyPI's Linux build with its CUDA packages
# (several GB). On Linux it comes from PyTorch's CPU index unless you ask for CUDA:
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cu128   # a CUDA build from PyTorch's index
#   make setup TORCH_INDEX=                                          # pip's own index (PyPI: CUDA on Linux)
# Where TORCH_INDEX cannot be reached (an offline mirror), torch comes from pip's configured index and
# find-links instead: a CPU build only where one is at hand there. macOS and Windows: PyPI's build.
TORCH_CPU ?= torch==2.13.0
TORCH_INDEX ?= $(if $(filter Linux,$(shell uname -s)),https://download.pytorch.org/whl/cpu)
STAMP := $(VENV)/.installed
MODEL ?=
DATA ?= ../shared/data

.PHONY: setup test test-all mutations demo docs lint format clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -n "$(TORCH_INDEX)" ] && $(PY) -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=15)" \
		"$(TORCH_INDEX)/" >/dev/null 2>&1; then \
		echo "torch: $(TORCH_CPU) from $(TORCH_INDEX)"; \
		$(PY) -m pip install --quiet --index-url "$(TORCH_INDEX)" "$(TORCH_CPU)"; \
	else \
		[ -z "$(TORCH_INDEX)" ] || echo "note: $(TORCH_INDEX) cannot be reached; $(TORCH_CPU) from pip's configured index"; \
		$(PY) -m pip install --quiet "$(TORCH_CPU)"; \
	fi || echo "note: $(TORCH_CPU) is not at hand here; torch comes from the package's own requirement"
	$(PY) -m pip install --quiet -e ".[all]" --group test --group docs --group build
	touch $(STAMP)

setup: $(STAMP)

# Two workers, whole files each (fixtures such as the Ray cluster and Chroma servers stay per file).
# `make test`: every test but the `system` tier (a real Ray cluster, servers and ingests killed mid-way,
# 1,000+ abstract corpora), a few minutes; `make test-all`: every test, as CI (.ci/run) runs it.
# --no-loadscope-reorder: files in the order tests/conftest.py gives (the longest first), not by test count.
PYTEST := HF_HUB_OFFLINE=1 INSTRUCTOR_DATA=$(DATA) $(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder

test: setup
	$(PYTEST) -m "not system"

test-all: setup
	$(PYTEST)

# Does the suite fail when the code is wrong? Each bug listed in tools/mutations.toml is applied, one at a
# time, to a copy of the tree, and the tests named for it must fail; exit 1 if any survives or is stale.
mutations: setup
	INSTRUCTOR_DATA=$(abspath $(DATA)) $(PY) tools/mutations.py

demo: setup
	$(PY) examples/demo.py $(if $(MODEL),--model "$(MODEL)")

# The docs site (MkDocs + Material, API pages from the docstrings) into site/; strict, as the test.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy  # the packages under [tool.mypy] in pyproject.toml: instructor_core and integrations/

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache .mypy_cache *.egg-info site
