"""End every browser session once (issue 19.2).

Before this release the phone-code pages recorded their logins under the password backend, so
such a session of a staff member would still open /admin/ (accounts.sites.AdminSite trusts the
session's backend). Deleting the sessions logs everyone out once; new code logins are recorded
under accounts.authentication.PhoneCodeBackend.
"""

from django.db import migrations


def sessions_end(apps, schema_editor):
    apps.get_model("sessions", "Session").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_password_tries"),
        ("sessions", "0001_initial"),
    ]

    operations = [migrations.RunPython(sessions_end, migrations.RunPython.noop)]
