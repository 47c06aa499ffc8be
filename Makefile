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

# System tools the tests drive for real: headless Chromium (the live page),
# systemd-analyze (the unit) and exiftool (reads the outputs' metadata back; the station never runs it).  Installed with apt-get when missing and we are root;
# otherwise those tests skip and say how to install them.
SYSPKGS ?= chromium systemd libimage-exiftool-perl

$(VENV)/.sysdeps:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	command -v exiftool >/dev/null 2>&1 || missing="$$missing libimage-exiftool-perl"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing system packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null 2>&1 \
	    || echo "could not install$$missing: the tests that need them will skip"; \
	elif [ -n "$$missing" ]; then echo "missing:$$missing (apt-get install$$missing): the tests that need them will skip"; fi
	@mkdir -p $(VENV) && touch $@

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

# Most tests wait on a real daemon, camera or browser, so three test processes share two cores well.
TEST_JOBS ?= 3

test: venv $(VENV)/.sysdeps
	$(PY) -m pytest -q -m "not slow" -n $(TEST_JOBS)

soak: venv $(VENV)/.sysdeps
	$(PY) -m pytest -q -m slow

bench: venv
	$(VENV)/bin/station bench

clean:
	rm -rf $(VENV) demo-output .pytest_cache
