#!/usr/bin/env python3
"""Walks a running stack through nginx as a client would: /ready/, signup, the login code from
the worker's sent_messages, token, my_profile; and nginx's redirects keep the published ports.
Standard library only (it runs on a bare CI runner). Exits non-zero, saying why, on any miss.

    deploy/smoke.py --base https://localhost:8443 --http http://localhost:8080 --cafile cert.pem \\
        --messages "docker compose exec -T worker sh -c 'cat /app/sent_messages/*_{phone}_*.txt'"

--messages is a shell command printing the files the worker wrote for {phone} (none yet: any
exit status, empty output). The compose job of .github/workflows/ci.yml runs it against
`docker compose up`; it runs against `make stack` as well (`cat .stack/sent_messages/...`).
"""

import argparse
import http.client
import json
import re
import secrets
import shlex
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urljoin


class Failed(Exception):
    pass


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def request(opener, method, url, body=None, token=None):
    """(status, headers, parsed JSON or text) of one request; HTTP errors are answers too."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if not url.startswith(("http://", "https://")):
        raise Failed(f"not an http(s) URL: {url!r}")
    req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 (checked above)
    try:
        with opener.open(req, timeout=15) as answer:
            status, answer_headers, raw = answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, raw = error.code, error.headers, error.read()
    text = raw.decode("utf-8", errors="replace")
    try:
        return status, answer_headers, json.loads(text)
    except ValueError:
        return status, answer_headers, text


def wait(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, http.client.HTTPException) as error:  # not listening yet
            value, last = None, error
        if value:
            return value
        time.sleep(2)
    raise Failed(f"{what}: not within {timeout} s (last: {last})")


def check(condition, message):
    if not condition:
        raise Failed(message)
    print(f"ok: {message}")


def run(args):
    tls = ssl.create_default_context(cafile=args.cafile) if args.cafile else ssl.create_default_context()
    https = urllib.request.HTTPSHandler(context=tls)
    opener = urllib.request.build_opener(https, NoRedirect)
    base = args.base.rstrip("/")

    def ready():
        status, _, body = request(opener, "GET", f"{base}/ready/")
        return status == 200 and body

    body = wait("/ready/ answers 200", ready, args.timeout)
    check(True, f"/ready/ is 200: {body}")

    # Redirects: the published ports survive (issue 19.12).
    if args.http:
        status, headers, _ = request(opener, "GET", f"{args.http}/my_profile/?a=1")
        location = headers.get("Location", "")
        check(status == 301 and location == f"{base}/my_profile/?a=1", f"HTTP redirects to {location!r}")
    status, headers, _ = request(opener, "GET", f"{base}/flower")
    location = urljoin(f"{base}/flower", headers.get("Location", ""))
    check(status == 301 and location == f"{base}/flower/", f"/flower redirects to {location!r}")

    phone = "+7999" + "".join(secrets.choice("0123456789") for _ in range(7))
    status, _, body = request(opener, "POST", f"{base}/api/v1/auth/signup/", {"phone": phone})
    check(status == 200 and body.get("phone") == phone, f"signup {phone}: {status} {body}")
    check("confirmation_code" not in body, "the code is not in the answer (fake delivery is off)")

    def code_file():
        command = args.messages.replace("{phone}", shlex.quote(phone))
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)  # noqa: S602
        match = re.search(r"\n\n.*?\b(\d{4})\b", done.stdout, flags=re.S)
        return match and match.group(1)

    code = wait("the worker writes the code to sent_messages", code_file, args.timeout)
    check(True, "the worker wrote the login code to sent_messages")

    payload = {"phone": phone, "confirmation_code": code}
    status, _, body = request(opener, "POST", f"{base}/api/v1/auth/token/", payload)
    check(status == 200 and body.get("token") and body.get("refresh"), f"token: {status}")
    token = body["token"]

    status, _, body = request(opener, "GET", f"{base}/api/v1/my_profile/", token=token)
    profile = body[0] if status == 200 and isinstance(body, list) and body else {}
    check(profile.get("phone") == phone and len(profile.get("my_ref_code", "")) == 6, f"my_profile: {profile}")
    status, _, _ = request(opener, "GET", f"{base}/api/v1/my_profile/")
    check(status == 401, "my_profile without a token is 401")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the site's URL, e.g. https://localhost:8443")
    parser.add_argument("--http", help="the plain-HTTP URL whose redirect is checked, e.g. http://localhost:8080")
    parser.add_argument("--cafile", help="the CA (or self-signed certificate) to trust")
    parser.add_argument("--messages", required=True, help="shell command printing the worker's files for {phone}")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for /ready/ and for the code")
    try:
        run(parser.parse_args())
    except Failed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    print("smoke: all good")
    return 0


if __name__ == "__main__":
    sys.exit(main())
