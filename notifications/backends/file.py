"""The file backend: one file per message in SENT_MESSAGES_DIR (demos, tests, audits)."""

import os
import re

from django.conf import settings
from django.utils import timezone

from . import TransientError


def send(message) -> str:
    folder = settings.SENT_MESSAGES_DIR
    safe_recipient = re.sub(r"[^0-9A-Za-z+@._-]", "_", message.recipient)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S%f")
    name = f"{stamp}_{safe_recipient}_{message.pk}.txt"
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, "." + name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(f"To: {message.recipient}\nChannel: {message.channel}\n\n{message.body}\n")
        # Rename so a reader never sees a half-written file.
        os.replace(tmp, os.path.join(folder, name))
    except OSError as exc:
        # A full disk or a missing mount is usually fixed by someone; try again later.
        raise TransientError(f"cannot write {folder}: {exc}") from exc
    return name
