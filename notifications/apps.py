from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self):
        # Registers the tasks in every process, the web's too: services publish them by name
        # (notifications.services.DELIVER_TASK), as they cannot import tasks (tasks -> services).
        from . import tasks  # noqa: F401
