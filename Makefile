# cait_fem: `make demo` sets up .venv and runs the main CAIT demo; `make test` sets up and
# runs the whole suite (serial and `mpirun -n 2`); `make test-fast` the tests that need no
# DOLFINx, with DOLFINx blocked.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
RESULTS ?= results/k_cait

.PHONY: demo demo-spot paper test test-fast lint bench bench-fit bench-3d bench-poling bench-demos bench-accuracy setup clean

setup: $(STAMP)

$(PY):
	@PYTHON_BIN=$$(sh tools/find-python.sh) && echo "using $$PYTHON_BIN" && $$PYTHON_BIN -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e ".[wheel,test]"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) demos/k_cait.py --output $(RESULTS) --overwrite

demo-spot: $(STAMP)
	$(PY) demos/beam_spot_axisymmetric.py --output results/beam_spot_axisymmetric --overwrite

# two processes: the fit's and the sensitivity study's solves run two at a time
paper: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" mpirun -n 2 $(PY) demos/paper_li3b7o12.py --output results/paper_li3b7o12 --overwrite

test: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q

# The tier without DOLFINx (pure physics, case files, analysis, output, fit config, the
# architecture): DOLFINx, PETSc, MPI, UFL and Basix are made unimportable, so a pass proves
# these tests and the modules they cover need none of them.
test-fast: $(STAMP)
	CAIT_FEM_BLOCK_DOLFINX=1 $(PY) -m pytest -q -m "not dolfinx and not mpi"

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) bench/b1.py

bench-fit: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bench/fit3.py

bench-accuracy: $(STAMP)
	$(PY) bench/accuracy.py

bench-demos: $(STAMP)
	$(PY) bench/demos.py

bench-3d: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bench/scale3d.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bench/scale3d.py --size direct --solver mumps

bench-poling: $(STAMP)
	$(PY) bench/poling_aps.py

clean:
	rm -rf $(VENV) results .pytest_cache
