# SleepLM Viewer: the two commands of the README are `make run` and `make test`.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FILE ?=
# extra training settings for make model-gpu, e.g. MODEL_SET="--set signal.patch_size=32"
MODEL_SET ?=

.PHONY: run test lint typecheck bench model model-gpu model-cpu wheel app icons clean-venv

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	# one pip call: the pinned CPU torch satisfies every dependency's torch requirement
	$(VPY) -m pip install -q "torch==2.13.0" -e ".[dev]"
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

# The bundled model. `make model` picks the recipe by hardware; both end with the thresholds
# calibrated on held-out synthetic nights (seeds 20000+) and the weights + meta copied to
# resources/models. Real recordings are never used here.
# - CUDA (what made the bundled weights): 48 synthetic 8-h nights (seeds 0-47), batch 64,
#   14 399 steps, lr 1.5e-3 (17.5 min on one H100, ~850 epochs/s).
# - CPU: 20 nights (seeds 0-19), batch 16, 360 steps resumed to 520 (about 25 min on 2 shared
#   cores; resumes if interrupted). A weaker model: see the model card.
# A shard rebuild skips complete shards.
model: $(STAMP)
	@if $(VPY) -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
		$(MAKE) model-gpu; else $(MAKE) model-cpu; fi

model-gpu: $(STAMP)
	$(VENV)/bin/sleeplm shards build synth:48:8 data/shards-gpu --workers $$(nproc)
	$(VENV)/bin/sleeplm train --config sleeplm-tiny --data data/shards-gpu --out runs/tiny-gpu --steps 14399 --batch-size 64 --lr 0.0015 --num-workers 12 --log-every 50 --checkpoint-every 400 --no-progress $(MODEL_SET)
	OMP_NUM_THREADS=2 $(VENV)/bin/sleeplm calibrate --checkpoint runs/tiny-gpu --set signal.merge_size=2 --out resources/models

model-cpu: $(STAMP)
	$(VENV)/bin/sleeplm shards build synth:20:8 data/shards-train
	OMP_NUM_THREADS=1 $(VENV)/bin/sleeplm train --config sleeplm-tiny --data data/shards-train --out runs/tiny-bundled --no-progress
	OMP_NUM_THREADS=1 $(VENV)/bin/sleeplm train --config sleeplm-tiny --data data/shards-train --out runs/tiny-bundled --no-progress --steps 520
	OMP_NUM_THREADS=1 $(VENV)/bin/sleeplm calibrate --checkpoint runs/tiny-bundled --set signal.merge_size=2 --out resources/models

wheel: $(STAMP)
	$(VPY) -m build --wheel --outdir dist .

# One-folder app (dist/sleepviewer/), then a smoke test: it opens the bundled sample night,
# runs a search with the bundled model (torch, MiniLM and MNE inside the bundle), renders the
# window to build/app-smoke.png and exits. PyInstaller is installed here, not in the dev extra.
app: $(STAMP)
	$(VPY) -m pip install -q "pyinstaller>=6.10"
	$(VENV)/bin/pyinstaller packaging/sleepviewer.spec --noconfirm --distpath dist --workpath build/pyinstaller
	QT_QPA_PLATFORM=offscreen dist/sleepviewer/sleepviewer --query "obstructive apnea" --screenshot build/app-smoke.png 2> build/app-smoke.log
	! grep -E "Error|unavailable|not embedded" build/app-smoke.log
	test -s build/app-smoke.png && echo "app smoke test: build/app-smoke.png"

# The per-platform icons from resources/icons/sleepviewer.svg (committed; rerun after editing it).
icons: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(VPY) packaging/make_icons.py

clean-venv:
	rm -rf $(VENV)
