from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        from . import checks, schema  # noqa: F401  (registers the system checks, the schema extension)
