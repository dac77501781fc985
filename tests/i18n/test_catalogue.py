"""The Russian catalogue (locale/ru/LC_MESSAGES/django.po): complete, and not behind the code."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.i18n import po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "locale" / "ru" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")

needs_gettext = pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs gettext (apt-get install gettext)")


def test_every_message_has_a_russian_translation():
    text = CATALOGUE.read_text(encoding="utf-8")
    found = po.entries(text)
    assert len(found) > 50
    forms = po.plural_count(text)
    untranslated = [e.msgid for e in found if not all(e.msgstr) or (e.plural and len(e.msgstr) != forms)]
    assert untranslated == [], "translate these in locale/ru/LC_MESSAGES/django.po"
    assert [e.msgid for e in found if e.fuzzy] == [], "fuzzy entries are not used: check and unmark them"
    for entry in found:
        for text_ in entry.msgstr:
            # The same placeholders, so that nothing is lost or breaks the % formatting.
            assert sorted(PLACEHOLDER.findall(text_)) == sorted(PLACEHOLDER.findall(entry.msgid)), entry.msgid
            assert re.search("[а-яё]", text_, flags=re.I), f"not Russian: {entry.msgid!r} -> {text_!r}"


@needs_gettext
def test_the_catalogue_has_every_text_of_the_code(tmp_path):
    """`make messages` in a copy of the tree would add or drop nothing."""
    copy = tmp_path / "tree"
    for name in ("accounts", "referrals", "notifications", "project", "templates", "locale", "static"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    for name in ("manage.py", "Makefile", "requirements.txt", "requirements-dev.txt"):
        shutil.copy2(ROOT / name, copy / name)
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(copy), "messages", f"VENV={ROOT / '.venv'}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    made = {e.msgid for e in po.entries((copy / CATALOGUE.relative_to(ROOT)).read_text(encoding="utf-8"))}
    committed = {e.msgid for e in po.entries(CATALOGUE.read_text(encoding="utf-8"))}
    assert made - committed == set(), "new texts in the code: run `make messages` and translate them"
    assert committed - made == set(), "texts the code no longer has: run `make messages`"
