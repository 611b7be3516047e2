# Baoxue (保学) — the two commands are `make run` and `make test`; everything else is for developers.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.8
SERVICES := registry enrollment casework notify
STAMP := $(VENV)/.installed
export UV_LINK_MODE := copy

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml shared/pyproject.toml $(foreach s,$(SERVICES),services/$(s)/pyproject.toml)
	@command -v uv >/dev/null || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	uv venv --quiet --allow-existing --python python3 $(VENV)
	uv pip install --quiet --python $(PY) --require-hashes -r requirements.lock
	uv pip install --quiet --python $(PY) --no-deps --no-build-isolation --reinstall-package baoxue -e shared $(foreach s,$(SERVICES),-e services/$(s))
	@touch $@

install: $(STAMP) ## create .venv from the hash-pinned requirements.lock

run: install ## start Baoxue on the embedded default (SQLite + its own NATS under var/)
	$(VENV)/bin/baoxue run

test: install ## run the tests (TEST_DATABASE_URL / TEST_NATS_URL select external infrastructure)
	$(VENV)/bin/pytest -n 2 --dist loadgroup $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && { echo "no tests collected"; exit 1; }; exit $$rc

lint: install ## ruff, mypy and the import-linter contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared/src $(foreach s,$(SERVICES),services/$(s)/src)
	$(VENV)/bin/lint-imports

format: install ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: install ## apply every service's migrations to its configured database
	$(VENV)/bin/baoxue migrate

lock: ## re-resolve dependencies and export the hash-pinned requirements.lock (no registry addresses)
	uv lock
	uv export --format requirements-txt --no-emit-workspace --all-groups --frozen --no-header -o requirements.lock

bench: install ## benchmarks vs same-run baselines → bench/results/latest.json, docs/performance.md (BENCH_ARGS="--full" for 1M)
	$(PY) bench/run.py $(BENCH_ARGS)

demo: install ## one statutory year on a generated district through the four services (DEMO_ARGS="--children 5000")
	$(PY) tools/demo/run.py $(DEMO_ARGS)

fuzz: install ## schemathesis against every operation of every service, 1,000 cases each
	FUZZ_RANDOM=1 FUZZ_EXAMPLES=1000 $(VENV)/bin/pytest tests/security/test_fuzz.py -q -s -p no:cacheprovider

chaos: install ## fault injection at full size: 30,000 events through 20 NATS faults; 30 consumer SIGKILLs; 30 service SIGKILLs
	CHAOS_EVENTS=30000 CHAOS_RESTARTS=20 KILL_EVENTS=20000 KILLS=30 SERVICE_KILLS=30 $(VENV)/bin/pytest tests/reliability -q -s -m slow -p no:cacheprovider

clean: ## remove var/ (embedded databases, NATS store, demo output)
	rm -rf var

.PHONY: help install run test lint format migrate lock clean bench demo fuzz chaos

migration: install ## new Alembic revision from model changes: make migration SERVICE=registry MSG="children"
	$(PY) -m baoxue.devtools makemigration $(SERVICE) "$(MSG)"
.PHONY: migration
