from django.core.management.base import BaseCommand, CommandError

from notifications.services import ops_notify
from project.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Send a CI-style message (status, project, commit, link, duration) to the Telegram ops chat."

    def add_arguments(self, parser):
        parser.add_argument("--status", required=True, choices=["success", "failure"])
        parser.add_argument("--title", required=True)
        parser.add_argument("--commit", default="")
        parser.add_argument("--url", default="")
        parser.add_argument("--duration", type=float, default=None, help="seconds")

    def handle(self, *args, **options):
        try:
            message = ops_notify(
                status=options["status"],
                title=options["title"],
                commit=options["commit"],
                url=options["url"],
                duration=options["duration"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        # Queued, not sent: the worker delivers it (the sweeper, if Redis is down right now).
        self.stdout.write(f"queued message {message.pk}")
