# robot_wm: two commands on a fresh machine.
#   make demo   pick-and-place on the default scene, headless (writes out/demo/report.json and demo.gif)
#   make test   the whole test suite
# Both bootstrap .venv (and the system library open3d needs) when missing.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
EXTRAS ?= dev,ray
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-slow lint bench sysdeps venv clean

demo: $(STAMP)
	$(VENV)/bin/robot-wm demo --out out/demo

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

test-slow: $(STAMP)
	$(PY) -m pytest -n 2 -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(VENV)/bin/robot-wm bench sim --json

venv: $(STAMP)

# open3d needs libusb-1.0 from the system; torch is pinned to the CPU build (an unpinned torch pulls CUDA).
sysdeps:
	@if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then \
		echo "installing libusb-1.0-0 (needed by open3d)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libusb-1.0-0; \
	fi

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory sysdeps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	@touch $(STAMP)

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache *.egg-info
