# edgekit: `make demo` runs the main job, `make test` runs the suite.
# Both create the virtual environments they need on first use and reuse them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST_STAMP := $(VENV)/.installed-host
DEVICE_VENV := .venv-device
DEVICE_STAMP := $(DEVICE_VENV)/.installed-device
PI_VENV := .venv-pi214
PI_STAMP := $(PI_VENV)/.installed-pi
PIP_FLAGS := --disable-pip-version-check -q

.PHONY: demo test test-car lint env device-env pi-env pi-env-or-warn car-rootfs car-rootfs-start car-rootfs-for-tests browser ssh-car bench-data bench-train bench-convert bench-edge bench-faults bench-small bench-scale clean

env: $(HOST_STAMP)

$(HOST_STAMP): pyproject.toml
	@echo "setting up $(VENV) (host + dev extras; first run only)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install $(PIP_FLAGS) --upgrade pip
	@$(BIN)/pip install $(PIP_FLAGS) -e '.[host,dev]'
	@touch $@

# The car's environment: the device extra alone, no TensorFlow.
device-env: $(DEVICE_STAMP)
$(DEVICE_STAMP): pyproject.toml
	@echo "setting up $(DEVICE_VENV) (device extra only)"
	@test -x $(DEVICE_VENV)/bin/python || $(PYTHON) -m venv $(DEVICE_VENV)
	@$(DEVICE_VENV)/bin/pip install $(PIP_FLAGS) -e '.[device]'
	@touch $@

# An environment like Raspberry Pi OS Bookworm's usual one: tflite-runtime 2.14, numpy<2.
pi-env: $(PI_STAMP)
$(PI_STAMP):
	@echo "setting up $(PI_VENV) (tflite-runtime 2.14 + numpy<2)"
	@test -x $(PI_VENV)/bin/python || $(PYTHON) -m venv $(PI_VENV)
	@$(PI_VENV)/bin/pip install $(PIP_FLAGS) 'tflite-runtime==2.14.0' 'numpy<2'
	@touch $@

pi-env-or-warn:
	@$(MAKE) --no-print-directory pi-env || echo "warning: could not build $(PI_VENV); runtime-compatibility tests will skip"

demo: $(HOST_STAMP)
	@$(BIN)/edgekit demo $(ARGS)

# The emulated arm64 car (tests/car, and the SSH car inside it) is built in the background while the
# rest runs (about 2 min for the userland, 3-6 for the README's two venvs under emulation), and so is
# the bundle its tests use (tests/car/bundle.py); its tests run last. Not root: they skip with one line; CI=true: they fail instead of skipping.
# The Pi-like venv (no editable install, so no shared build folder) is made alongside the host's, and
# the apt packages of the browser and SSH-car tests are installed meanwhile (after car-rootfs-start's
# own apt step, one apt at a time; waited for before the tests).
test: car-rootfs-start
	@nohup sh -c '$(MAKE) --no-print-directory browser; $(MAKE) --no-print-directory ssh-car' > .apt-tools.log 2>&1 & echo $$! > .apt-tools.pid
	@$(MAKE) --no-print-directory -j2 $(HOST_STAMP) pi-env-or-warn
	@$(MAKE) --no-print-directory $(DEVICE_STAMP)
	@if [ "$$(id -u)" = 0 ]; then nohup $(BIN)/python -m tests.car.bundle > .car-bundle.log 2>&1 & fi
	@while kill -0 "$$(cat .apt-tools.pid)" 2>/dev/null; do sleep 1; done; grep -i "warning\|error" .apt-tools.log || true
	@$(BIN)/ruff check edge train convert tests examples bench
	@$(BIN)/pytest -n 2 --timeout 600 -q --durations=15 -m "not car"
	@$(MAKE) --no-print-directory car-rootfs-for-tests
	@$(BIN)/pytest -n 2 --timeout 1200 -q --durations=10 -m car

# Only the emulated car's tests.
test-car: $(HOST_STAMP) $(DEVICE_STAMP)
	@-$(MAKE) --no-print-directory ssh-car
	@$(MAKE) --no-print-directory car-rootfs-for-tests
	@$(BIN)/pytest -n 2 --timeout 1200 -q --durations=10 -m car

# The emulated car: arm64 Debian Bookworm (Raspberry Pi OS's base) under qemu-user, with the README's
# venvs for both interpreters (tests/car/rootfs.py). Built once, cached in ~/.cache/edgekit.
car-rootfs:
	@$(PYTHON) -m tests.car.rootfs

# Host tools first (apt, so it does not race the other apt installs), then the build in the background.
car-rootfs-start:
	@if [ "$$(id -u)" != 0 ]; then echo "warning: not root: the emulated-car tests (tests/car) will skip"; \
	elif $(PYTHON) -m tests.car.rootfs host-tools; then \
	  nohup $(PYTHON) -m tests.car.rootfs > .car-rootfs.log 2>&1 & \
	  echo "emulated car: building in the background (log: .car-rootfs.log)"; \
	else echo "warning: cannot emulate arm64 here: tests/car will skip"; fi

# Waits for a build in progress (a lock), or builds. Not root: tests/car skips (fails if CI=true).
car-rootfs-for-tests:
	@if [ "$$(id -u)" != 0 ]; then echo "warning: not root: the emulated-car tests (tests/car) will skip"; \
	elif ! $(PYTHON) -m tests.car.rootfs >/dev/null; then \
	  if [ "$$CI" = true ]; then exit 1; else echo "warning: no emulated car: tests/car will skip"; fi; fi

lint: $(HOST_STAMP)
	@$(BIN)/ruff check edge train convert tests examples bench

bench-data: $(HOST_STAMP)
	@$(BIN)/python -m bench.data

bench-train: $(HOST_STAMP)
	@$(BIN)/python -m bench.training $(ARGS)

bench-convert: $(HOST_STAMP)
	@$(BIN)/python -m bench.convert_modes $(ARGS)

bench-edge: $(HOST_STAMP)
	@$(BIN)/python -m bench.edge_loop $(ARGS)
	@$(BIN)/python -m bench.view $(ARGS)

# issue 12: the car default on small, imbalanced CIFAR-10 subsets and the synthetic set (resumable; hours on 2 cores)
bench-small: $(HOST_STAMP)
	@nice -n 10 $(BIN)/python -m bench.small_data $(ARGS)

# issue 18: 50k/100k/200k synthetic 96x96 frames as a shard set: build, index-only ops, streamed epoch vs
# in-memory, peak RSS, two workers (21 min on 2 busy cores; ARGS="--frames 2000" for a try-out)
bench-scale: $(HOST_STAMP)
	@nice -n 15 $(BIN)/python -m bench.scale $(ARGS)

# Replays of attacks and failures (tests/faults, issue 14): a table per class in bench/results/faults.md.
bench-faults: $(HOST_STAMP)
	@EDGEKIT_FAULTS_REPORT=bench/results/faults.md $(BIN)/pytest tests/faults -m fault -n 2 --timeout 600 -q -p no:cacheprovider

# Debian's chromium for the labeling page's end-to-end test (Playwright drives it; no `playwright install`).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	else echo "warning: /usr/bin/chromium missing and not root: the browser test will skip (sudo apt-get install chromium)"; fi

# Debian's OpenSSH server and rsync for the SSH-car tests (tests/sshcar; they install these too when run alone).
ssh-car:
	@if [ -x /usr/sbin/sshd ] && command -v rsync >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 openssh-server rsync \
	  || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server rsync; }; \
	else echo "warning: sshd or rsync missing and not root: the SSH-car tests will skip (sudo apt-get install openssh-server rsync)"; fi

clean:
	rm -rf $(VENV) $(DEVICE_VENV) $(PI_VENV) .pytest_cache
