#!/bin/sh
# The release step, once per deploy before web and the workers start: docker-compose.yml's
# one-shot `migrate` service and deploy/stack.sh both run it.
#  - database migrations (never in every worker: one process, one transaction per migration);
#  - the outbox sweeper's beat schedule (django-celery-beat's tables);
#  - with STATIC_EXPORT_DIR: the image's collected static files copied where nginx serves them.
set -eu
python manage.py migrate --noinput
python manage.py outbox_schedule
if [ -n "${STATIC_EXPORT_DIR:-}" ]; then
    cp -R staticfiles/. "$STATIC_EXPORT_DIR"/
    echo "static files copied to $STATIC_EXPORT_DIR"
fi
