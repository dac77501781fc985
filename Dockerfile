# One image for every process of the stack: web (the default command), worker, beat, flower
# and the one-shot release step; docker-compose.yml picks the command.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: compilers live only here, for any dependency without a wheel ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Debian's security updates replace exact versions, so they are not pinned; the base tag pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libpq-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-compile -r /tmp/requirements.txt

# --- the translations: locale/*.po compiled to .mo with gettext's msgfmt (as compilemessages does) ---
FROM build AS messages
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/*
COPY locale /locale
RUN find /locale -name '*.po' -exec sh -c 'msgfmt --check-format -o "${1%.po}.mo" "$1"' _ {} \;

# --- runtime: the virtualenv and the code, no compilers, a non-root user ---
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    SENT_MESSAGES_DIR=/app/sent_messages
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# The code belongs to root: the app user can read it, never change it.
COPY . .
COPY --from=messages /locale /app/locale
# Static files are part of the image (whitenoise's manifest names them). The key only lets
# settings load here (long and varied: with DEBUG off a weak key stops the start); it is never
# used at run time.
RUN SECRET_KEY=collectstatic-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz DEBUG=0 python manage.py collectstatic --noinput \
    && mkdir -p /app/sent_messages /srv/static /run/metrics \
    && chown app:app /app/sent_messages /srv/static /run/metrics
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "project.wsgi:application"]
