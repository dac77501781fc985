from django.core.management.base import BaseCommand

from notifications.schedule import outbox_schedule_ensure


class Command(BaseCommand):
    help = "Create or update the beat job that sweeps the outbox (every OUTBOX_SWEEP_INTERVAL_S)."

    def handle(self, *args, **options):
        outbox_schedule_ensure()
        self.stdout.write("outbox sweep scheduled")
