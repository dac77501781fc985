"""The send limits live in one place, accounts.services (_send_refusal): the PL/pgSQL copy goes."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_code_issue_function")]

    operations = [migrations.RunSQL("DROP FUNCTION IF EXISTS accounts_code_issue", migrations.RunSQL.noop)]
