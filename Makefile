# aetherscan_ros: every target sets itself up on a fresh machine (make setup is idempotent).
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup test lint pytest bench bench-quick gpu-check demo demo-mapping clean

setup:
	@bash tools/setup_env.sh $(VENV)

lint: setup
	$(PY) -m pytest -q -p no:cacheprovider test/test_lint.py

pytest: setup
	$(PY) -m pytest -q -rs --durations=15

test: setup
	bash tools/run_tests.sh $(PY)

bench: setup
	$(PY) -m bench.run_all

bench-quick: setup
	$(PY) -m bench.run_all --quick

# One-shot check of the Fast3R CUDA path (bf16/fp16 timings, peak memory, parity vs CPU fp64).
gpu-check: setup
	$(PY) -m bench.gpu_check

demo: setup
	$(PY) -m aetherscan_ros.demo.run_demo --output-dir output/demo

# Mapping mode on a 70-view tour of the demo room with TF (a few minutes on 2 cores), scored.
demo-mapping: setup
	$(PY) -m aetherscan_ros.demo.run_demo --mode mapping --output-dir output/demo_mapping

clean:
	rm -rf build install log output bench_results .pytest_cache
