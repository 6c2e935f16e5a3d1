# Two commands on a fresh machine: `make demo` and `make test`. Everything else is a detail.
SHELL := /bin/bash
PY ?= python3
VENV := $(CURDIR)/.venv
STAMP := $(VENV)/.setup-stamp

# Fast DDS must stay on loopback (Kilted ignores the older localhost-only switch).
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export AMENT_PREFIX_PATH := $(VENV)
export PYTHONUNBUFFERED := 1

.PHONY: setup test demo bench clean

# link_share runs every time (about 50 ms): a file added to or removed from launch/, config/ or models/
# changes none of the stamp's prerequisites, and the venv's share/ went stale (test_install_layout failed).
setup: $(STAMP)
	@bash tools/link_share.sh $(VENV)

$(STAMP): requirements.txt requirements-ros.txt requirements-colcon.txt setup.py setup.cfg tools/build_tf2_msgs.sh
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt -r requirements-ros.txt -r requirements-colcon.txt
	bash tools/build_tf2_msgs.sh $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# colcon as ROS users run it: build the package into install/, then `colcon test` runs pytest on
# test/ (setup.cfg testpaths) with install/ sourced. console_direct+ shows pytest's output; the
# other handlers are off so that pytest's summary line is the last line printed, and
# --return-code-on-test-failure makes a failing test fail `make test`.
COLCON := $(VENV)/bin/colcon --log-base $(CURDIR)/log
COLCON_DIRS := --packages-select fourds_ros --base-paths $(CURDIR) --build-base $(CURDIR)/build --install-base $(CURDIR)/install
PYTEST_ARGS ?= -ra
test: setup
	$(VENV)/bin/ruff check $(CURDIR)
	$(COLCON) build $(COLCON_DIRS) --event-handlers console_direct- console_stderr+ console_start_end- summary- status-
	$(COLCON) test $(COLCON_DIRS) --return-code-on-test-failure \
	  --event-handlers console_direct+ console_stderr- console_start_end- summary- status- \
	  --pytest-args $(PYTEST_ARGS)

# The main job on the embedded default: the MIT HoloLens sample shipped in samples/ becomes a bag,
# the real perception node (default model) runs over DDS on it, and the report is scored against
# the classical peers. Output: out/demo/report/{report.md,report.json,*.png}.
DEMO_OUT := $(CURDIR)/out/demo
demo: setup
	rm -rf $(DEMO_OUT) && mkdir -p $(DEMO_OUT)
	$(VENV)/bin/fourds-ros bag convert --format hololens --compressed samples/hololens_000 $(DEMO_OUT)/sample_bag
	FOURDS_PROGRESS=1 $(VENV)/bin/fourds-ros eval $(DEMO_OUT)/sample_bag --model models/fourds_default --out $(DEMO_OUT)/report
	# The live-camera latency figures of docs/benchmarks.md (30 Hz raw, 20 s, separate process).
	$(VENV)/bin/fourds-ros bench node --transports raw --steps --source samples/hololens_000 --json-dir $(DEMO_OUT) --markdown ''

bench: setup
	$(VENV)/bin/fourds-ros bench encoder

clean:
	rm -rf $(VENV) build install log .pytest_cache
