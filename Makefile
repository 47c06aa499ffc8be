# The two commands a user needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
# CPU build of torch by default (lies on the CI disk); a GPU user can run
#   make TORCH_SPEC="torch==2.13.0" PIP_EXTRA="--index-url https://download.pytorch.org/whl/cu126"
# or simply install CUDA torch into the venv first: the spec below is then already satisfied.
TORCH_SPEC ?= torch==2.13.0

.PHONY: venv demo test soak bench clean

$(VENV)/.installed: pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=...)"; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[test]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/station demo --out demo-output

test: venv
	$(PY) -m pytest -q -m "not slow"

soak: venv
	$(PY) -m pytest -q -m slow

bench: venv
	$(VENV)/bin/station bench

clean:
	rm -rf $(VENV) demo-output .pytest_cache
