# Two commands for a newcomer: `make demo` (the main job) and `make test`.
# Each creates its virtual environment from scratch when it is missing.
VENV ?= .venv
VENV_CORE ?= .venv311
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: demo test test-core venv venv-core clean

venv:
	@scripts/venv.sh $(VENV) 3.10 all,dev

venv-core:
	@scripts/venv.sh $(VENV_CORE) 3.11 nir,data,dev .ci/constraints-core.txt

demo: venv
	$(VENV)/bin/cmru-neuro demo $(DEMO_ARGS)

test: venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The core (everything but the Lava adapter) on Python 3.11: CI's second leg.
test-core: venv-core
	$(VENV_CORE)/bin/python -m pytest -m "not lava" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(VENV_CORE) .pytest_cache
