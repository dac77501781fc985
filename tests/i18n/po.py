"""A small reader of gettext .po files: enough for the catalogue's tests (no dependency)."""

import ast
import re
from dataclasses import dataclass, field


@dataclass
class Entry:
    msgid: str
    plural: str | None = None
    msgstr: list[str] = field(default_factory=list)
    fuzzy: bool = False


def _text(lines: list[str]) -> str:
    return "".join(ast.literal_eval(line) for line in lines)


def entries(text: str) -> list[Entry]:
    """The active entries (not the header, not the obsolete `#~` ones)."""
    found = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in block.splitlines() if not line.startswith("#~")]
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in lines)
        fields, current = {}, None
        for line in lines:
            if line.startswith("#") or not line.strip():
                continue
            match = re.match(r"^(msgid_plural|msgid|msgstr(?:\[\d+\])?) (\".*\")$", line)
            if match:
                current = match.group(1)
                fields[current] = [match.group(2)]
            elif line.startswith('"') and current:
                fields[current].append(line)
        if "msgid" not in fields:
            continue
        msgid = _text(fields["msgid"])
        if not msgid:
            continue  # the header
        strs = [_text(v) for k, v in sorted(fields.items()) if k.startswith("msgstr")]
        plural = _text(fields["msgid_plural"]) if "msgid_plural" in fields else None
        found.append(Entry(msgid=msgid, plural=plural, msgstr=strs, fuzzy=fuzzy))
    return found


def plural_count(text: str) -> int:
    return int(re.search(r"nplurals=(\d+)", text).group(1))
