# The template's own commands. Everything runs from a virtual environment this Makefile makes.
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export UV_PYTHON_DOWNLOADS := never
DEMO := build/demo/iris_classifier
DEMO_PASSWORD := demo-password
PORT ?= 8000

.PHONY: help venv test test-fast demo lint locks clean bench

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r pyproject.toml
	touch $@

venv: $(STAMP)  ## Create .venv with the template's pinned tooling

# Three workers on two cores: the container and model-store tests spend minutes waiting on
# downloads and image builds, and a third worker keeps both cores busy meanwhile.
TEST_WORKERS ?= 3

test: $(STAMP)  ## Every test: bake all variants, lint them, install, boot and probe
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15

test-fast: $(STAMP)  ## Only the static part: bake, leftovers, file sets, linters, hooks
	$(BIN)/python -m pytest -n 2 -m "not slow" --durations=15

lint: $(STAMP)  ## Ruff on the template's own code
	$(BIN)/ruff check hooks tests scripts bench
	$(BIN)/ruff format --check hooks tests scripts bench

locks: $(STAMP)  ## Re-lock every dependency set a bake can ship as uv.lock (UPGRADE=1: newest versions)
	$(BIN)/python scripts/lock.py $(if $(UPGRADE),--upgrade)

demo: $(STAMP)  ## Bake the default project into build/demo, install it and serve the demo model
	rm -rf build/demo
	$(BIN)/cookiecutter . --no-input --output-dir build/demo
	$(BIN)/uv venv --quiet --python $(BIN)/python $(DEMO)/.venv
	cd $(DEMO) && ../../../$(BIN)/uv pip install --quiet --python .venv/bin/python -e .
	cd $(DEMO) && sed "s|^APP_SECRET_KEY=$$|APP_SECRET_KEY=$$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(32))')|" .env.example > .env
	cd $(DEMO) && echo '$(DEMO_PASSWORD)' | .venv/bin/python -m iris_classifier users add demo --scope predict
	@echo
	@echo "Serving the demo model on http://127.0.0.1:$(PORT) (Ctrl-C stops it). In another shell:"
	@echo
	@echo "  TOKEN=\$$(curl -s -X POST http://127.0.0.1:$(PORT)/token -d username=demo -d password=$(DEMO_PASSWORD) | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
	@echo "  curl -s -X POST http://127.0.0.1:$(PORT)/predict -H \"Authorization: Bearer \$$TOKEN\" -H 'Content-Type: application/json' -d '{\"instances\": [[5.1, 3.5, 1.4, 0.2]]}'"
	@echo
	cd $(DEMO) && exec .venv/bin/python -m iris_classifier serve --port $(PORT)

bench: $(STAMP)  ## Load-test the baked default project against a naive baseline (wrk or hey)
	$(BIN)/python bench/compare.py $(BENCH_ARGS)

clean:  ## Remove .venv and build/
	rm -rf $(VENV) build
