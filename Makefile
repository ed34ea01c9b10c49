# Each target does its own set-up: it creates .venv if missing and installs the
# pinned environment (constraints.txt) once, then runs.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.augkit-installed
ARGS   ?=

.PHONY: run search test bench lint setup gpu-check docs

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m experiments.ablate $(ARGS)

# The augmentation search (docs/search.md); default: the search-quick preset.
search: $(STAMP)
	$(PY) -m experiments.search $(if $(ARGS),$(ARGS),--preset search-quick)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

bench: $(STAMP)
	@mkdir -p .benchmarks
	$(PY) -m pytest benchmarks -q --benchmark-columns=median,ops,rounds \
		--benchmark-json=.benchmarks/latest.json $(ARGS)
	$(PY) -m benchmarks.report .benchmarks/latest.json

lint: $(STAMP)
	$(PY) -m ruff check augkit experiments tools benchmarks tests docs

# The documentation site into site/ (open site/index.html): the gallery is generated first
# (docs/gallery/, git-ignored), then mkdocs fails on any warning. CI: GALLERY_ARGS=--quick.
GALLERY_ARGS ?=

docs: $(STAMP)
	$(PY) -m docs.gallery $(GALLERY_ARGS)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

# On the GPU machine: its own python3 (no .venv), plus the wheels in .whl/ that its image
# lacks (torch-audiomentations and its dependencies, soundfile; see .whl/README.md),
# installed into /tmp/site offline when it cannot import them. Sections with their own time
# boxes, at most 6 minutes, at most 6 files in $(OUT) (benchmarks/gpu_check.py). Without a
# GPU (CI): make gpu-check GPU_CHECK_ARGS=--allow-cpu (tiny sizes, with .venv's python).
GPU_PY         ?= $(if $(wildcard $(PY)),$(PY),python3)
OUT            ?= .gpu-check
GPU_CHECK_ARGS ?=

gpu-check:
	@site=; if ls .whl/*.whl >/dev/null 2>&1 \
	    && ! $(GPU_PY) -c "import torch_audiomentations, soundfile" 2>/dev/null; then \
	  if PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 $(GPU_PY) -m pip install \
	      -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
	      .whl/*.whl; then site=/tmp/site; \
	  else echo "gpu-check: could not install .whl/*.whl; going on without them" >&2; fi; fi; \
	PYTHONPATH="$${PYTHONPATH:+$$PYTHONPATH$${site:+:}}$$site" \
	  $(GPU_PY) -m benchmarks.gpu_check --out $(OUT) $(GPU_CHECK_ARGS)
