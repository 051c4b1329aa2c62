PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench paper paper-study clean notebooks notebooks-run

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium prints the report's PDF and the report tests open the HTML in it; poppler-utils
# renders and reads the PDF in the tests. Installed with apt-get when missing (sudo when not root).
BROWSER_SETUP = command -v chromium >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 || { \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	else echo "chromium and poppler-utils are missing: install them (apt-get install chromium poppler-utils)" >&2; exit 1; fi; \
	$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils; }

demo: $(STAMP)
	@$(BROWSER_SETUP)
	$(BIN)/verzuim simulate --scenario default --seed 1 --out output/default --calibration --overwrite
	$(BIN)/verzuim report --scenario default --seed 1 --out reports --overwrite
	@echo "Notebooks (stored with their outputs): make notebooks opens notebooks/ in Jupyter."

test: $(STAMP)
	@$(BROWSER_SETUP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Jupyter on notebooks/ (installs the notebook extra into the same .venv first)
notebooks: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[notebooks]"
	$(BIN)/jupyter lab --notebook-dir=notebooks

# rerun every notebook in place and store its outputs, to commit with them (one to two minutes)
notebooks-run: $(STAMP)
	$(BIN)/python -u notebooks/execute.py

clean:
	rm -rf $(VENV) output reports

# paper.md from the committed study results (seconds)
paper: $(STAMP)
	$(BIN)/python paper/build.py --render-only

# rerun the whole simulation study (about 40 minutes on two cores), then render
paper-study: $(STAMP)
	$(BIN)/python paper/build.py
