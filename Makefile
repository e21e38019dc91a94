# The two commands of the README: `make demo` and `make test`.
# Both make .venv (with the project's own Python deps) and build the kernels.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL_SOURCES := $(wildcard csrc/*.pyx csrc/*.pxd csrc/*.h)
KERNELS_STAMP := build/.kernels
PYTEST_ARGS ?=
# Port of `make demo` (make demo PORT=8011).
PORT ?= 8000

.PHONY: test demo install kernels lint bench dist clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel "Cython>=3" numpy scipy
	$(PY) -m pip install --quiet --no-build-isolation -e ".[test,bench,mysql]"
	touch $@

install: $(STAMP)

# Rebuild the compiled kernels in place when a source in csrc/ changes.
$(KERNELS_STAMP): $(STAMP) $(KERNEL_SOURCES) setup.py
	$(PY) setup.py --quiet build_ext --inplace
	@mkdir -p build && touch $@

kernels: $(KERNELS_STAMP)

test: $(KERNELS_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(KERNELS_STAMP)
	$(PY) example_project/manage.py demo --addrport 127.0.0.1:$(PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(KERNELS_STAMP)
	for script in benchmarks/bench_*.py; do $(PY) $$script || exit 1; done

dist: $(STAMP)
	$(PY) -m build

clean:
	rm -rf build dist *.egg-info django_recs/kernels/*.so
