# The project's commands. Each installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The exact versions the tests ran on (generated from pyproject.toml: `make lock`).
LOCK := requirements.lock
NODE_CLIENT := tests/support/node_client
NODE_STAMP := $(NODE_CLIENT)/node_modules/.package-lock.json

.PHONY: serve test check format lock bench bench-locust

# The locked set first, then the project itself without resolving anything again.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## Refresh requirements.lock after editing pyproject.toml's dependencies: keeps every pin
## that still fits and adds what is new; `make lock ARGS=--upgrade` moves everything to the
## newest versions the bounds allow. Commit the lock with the pyproject.toml change.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--custom-compile-command "make lock" --quiet -o $(LOCK) $(ARGS)

## Run the service (embedded default unless LEADERBOARD_REDIS_URL / LEADERBOARD_DATABASE_URL are set).
serve: $(STAMP)
	$(BIN)/leaderboard serve $(ARGS)

$(NODE_STAMP): $(NODE_CLIENT)/package-lock.json
	npm ci --prefix $(NODE_CLIENT)

## Run the whole test suite against the real Redis and MariaDB of this machine.
test: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m pytest $(ARGS)

## Formatting, lint and types: the one check command (CI runs it too).
check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmarks, on demand (never in CI).
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

## Locust scenario load tests, on demand (e.g. ARGS="--scenario spike --minutes 2").
bench-locust: $(STAMP)
	$(BIN)/python -m benchmarks.locust_run $(ARGS)

.PHONY: image container-test

## The service image leaderboard:local, with podman (or docker): from the official Python
## base when it can be pulled, else from a local Debian base made with debootstrap.
image:
	docker/build-image.sh

## The container test, on demand (podman, runc, debootstrap; several minutes): builds the
## image from a clean clone and runs the stack's shape (docs/containers.md).
container-test: $(STAMP)
	$(BIN)/python -m pip install --quiet 'podman-compose>=1.2,<2'
	LEADERBOARD_CONTAINER_TEST=1 $(BIN)/python -m pytest --timeout 1800 \
	  tests/containers tests/test_docker_files.py tests/test_dashboard.py $(ARGS)
