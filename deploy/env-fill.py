#!/usr/bin/env python3
"""Writes .env.example with every blank it marks "Required" filled, as an operator would:
a generated secret for each (user:password where the comment asks for one). The rest keeps its
default. Standard library only: it runs on a bare host, before any virtualenv exists.

    python3 deploy/env-fill.py > .env
    python3 deploy/env-fill.py OTP_DELIVERY_BACKENDS=file HTTPS_PORT=8443 > .env

NAME=VALUE arguments then set (or, for a commented-out `# NAME=`, switch on) one variable each.
Used by deploy/validate.sh, tests/deploy and the compose job of .github/workflows/ci.yml.
"""

import re
import secrets
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"
VARIABLE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def required_names(text: str) -> dict[str, str]:
    """{name: its comment} for each blank `NAME=` whose comment block starts a line with
    "Required"."""
    found, comment = {}, []
    for line in text.splitlines():
        if line.startswith("#") and not VARIABLE.match(line):
            comment.append(line.lstrip("# "))
            continue
        match = VARIABLE.match(line)
        marked = any(c.startswith("Required") for c in comment)
        if match and not match.group(1) and match.group(3) == "" and marked:
            found[match.group(2)] = " ".join(comment)
        comment = []
    return found


def generated(comment: str) -> str:
    value = secrets.token_urlsafe(50)
    return f"ops:{secrets.token_urlsafe(24)}" if "user:password" in comment else value


def filled(text: str, overrides: dict[str, str]) -> str:
    values = {name: generated(comment) for name, comment in required_names(text).items()}
    values.update(overrides)
    lines, seen = [], set()
    for line in text.splitlines():
        match = VARIABLE.match(line)
        name = match.group(2) if match else None
        # A commented-out `# NAME=` is switched on only when asked for by an override.
        if name in values and name not in seen and (not match.group(1) or name in overrides):
            line = f"{name}={values[name]}"
            seen.add(name)
        lines.append(line)
    lines += [f"{name}={value}" for name, value in overrides.items() if name not in seen]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    overrides = {}
    for arg in argv:
        name, sep, value = arg.partition("=")
        if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            print(f"env-fill: expected NAME=VALUE, got {arg!r}", file=sys.stderr)
            return 2
        overrides[name] = value
    sys.stdout.write(filled(EXAMPLE.read_text(), overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
