from django.conf import settings
from django.core.checks import Error, Warning, register


@register(deploy=True)
def fake_delivery_check(app_configs, **kwargs):
    """Fake delivery puts login codes in HTTP answers: never in production by accident."""
    if not settings.OTP_FAKE_DELIVERY or settings.DEBUG:
        return []
    if settings.OTP_FAKE_DELIVERY_FORCED:
        return [
            Warning(
                "OTP_FAKE_DELIVERY is on with DEBUG off: login codes are returned in API answers.",
                hint="For demos and tests only. Unset OTP_FAKE_DELIVERY / FAKE_CONFIRM in production.",
                id="accounts.W001",
            )
        ]
    return [
        Error(
            "OTP_FAKE_DELIVERY is on with DEBUG off: login codes are returned in API answers.",
            hint="Unset OTP_FAKE_DELIVERY / FAKE_CONFIRM, or set OTP_FAKE_DELIVERY_FORCED=1 for a demo.",
            id="accounts.E001",
        )
    ]


@register()
def fake_delivery_warning(app_configs, **kwargs):
    """A loud warning on every start (runserver, migrate, gunicorn's check) when fake delivery
    was switched on explicitly with DEBUG off."""
    if settings.OTP_FAKE_DELIVERY and not settings.DEBUG:
        return [
            Warning(
                "OTP_FAKE_DELIVERY is on with DEBUG off: login codes are returned in API answers. "
                "Demos and tests only.",
                id="accounts.W002",
            )
        ]
    return []


@register(deploy=True)
def test_numbers_check(app_configs, **kwargs):
    """Test numbers log in with a fixed code that anyone who learns it can use: never in
    production by accident."""
    if not settings.OTP_TEST_NUMBERS or settings.DEBUG:
        return []
    count = len(settings.OTP_TEST_NUMBERS)
    message = f"OTP_TEST_NUMBERS is set with DEBUG off: {count} numbers log in with a fixed code."
    if settings.OTP_TEST_NUMBERS_FORCED:
        return [
            Warning(
                message,
                hint="For app-store review, demos and CI only. Unset OTP_TEST_NUMBERS when they are done.",
                id="accounts.W003",
            )
        ]
    return [
        Error(
            message,
            hint="Unset OTP_TEST_NUMBERS, or set OTP_TEST_NUMBERS_FORCED=1 if these accounts are meant to exist.",
            id="accounts.E002",
        )
    ]


@register()
def test_numbers_warning(app_configs, **kwargs):
    """A loud warning on every start while test numbers are on with DEBUG off."""
    if settings.OTP_TEST_NUMBERS and not settings.DEBUG:
        return [
            Warning(
                f"OTP_TEST_NUMBERS is set with DEBUG off: {', '.join(settings.OTP_TEST_NUMBERS)} log in with a "
                "fixed code.",
                id="accounts.W004",
            )
        ]
    return []
