"""`make pumping`: the fraud guard against an SMS pumping script and against a legitimate crowd
(issue 20). A simulation, not a test: it prints figures.

Every signup goes through accounts.services.code_request, the service behind both doors (API
and pages), on a PostgreSQL database of its own, with codes going by SMS (queued in the outbox,
never delivered: the broker is in memory and no worker runs). The conversion watch runs as beat
would, every WATCH_EVERY signups. Time is compressed: codes live OTP_TTL_S=1 s, so that a code
nobody enters is settled (expired unused) during the run as it would be during an hour's attack.

1. Pumping: 1,000 signups from 200 client addresses to numbers in 5 prefixes, none verified.
   Figure: codes sent before the guard stopped it (target: at most 60).
2. Spread pumping: the same from 200 addresses to numbers in 100 prefixes (10 each, under the
   prefix cap): only the conversion watch can stop it.
3. Legitimate crowd: 1,000 random mobile numbers of the allowed country from 1,000 addresses,
   80 % of codes entered, the SMS budget above the crowd's size (the budget is tested on its
   own). Figure: signups refused (target: 0).

Knobs: PUMPING_DATABASE_URL (dropped and created), PUMPING_SEED.
"""

import os
import random
import time
from collections import Counter

from .database import database_recreate

DATABASE_URL = os.environ.get("PUMPING_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/referrals_pumping")
SEED = int(os.environ.get("PUMPING_SEED", "20"))
SIGNUPS = 1000
WATCH_EVERY = 50
ENV = {
    "DJANGO_SETTINGS_MODULE": "project.settings",
    "DEBUG": "1",
    "DATABASE_URL": DATABASE_URL,
    "CELERY_BROKER_URL": "memory://",  # published, never delivered
    "OTP_DELIVERY_BACKENDS": "sms",
    "OTP_TTL_S": "1",
    "TELEGRAM_ALERTS": "0",
    "LOG_LEVEL": "ERROR",
}
os.environ.update(ENV)


def reset() -> None:
    """A clean slate between scenarios: no codes, counters, blocks or refusals."""
    from accounts.models import CodeRefusal, GuardBlock, GuardCounter, PhoneCode, User
    from notifications.models import Message

    for model in (CodeRefusal, GuardBlock, GuardCounter, PhoneCode, Message, User):
        model.objects.all().delete()


def run(signups, *, verify_share: float, rng: random.Random) -> dict:
    """Each (phone, address) asks for a code; `verify_share` of the codes sent are entered."""
    from django.utils import timezone

    from accounts.guard import guard_watch
    from accounts.services import code_request, code_verify
    from project.exceptions import ApplicationError

    sent, refused, verified = 0, Counter(), 0
    started = time.perf_counter()
    for index, (phone, address) in enumerate(signups, start=1):
        try:
            result = code_request(phone=phone, ip=address)
        except ApplicationError as exc:
            refused[exc.reason or "invalid"] += 1
        else:
            sent += 1
            if rng.random() < verify_share:
                code_verify(phone=result.phone, code=result.code, ip=address)
                verified += 1
        if index % WATCH_EVERY == 0:
            time.sleep(1.05)  # the compressed hour: the codes of this round settle
            guard_watch(now=timezone.now())
    elapsed = time.perf_counter() - started
    return {"signups": len(signups), "sent": sent, "verified": verified, "refused": dict(refused), "seconds": elapsed}


def mobile_numbers(rng: random.Random, count: int) -> list[str]:
    """`count` distinct random numbers that libphonenumber calls mobile in the allowed country."""
    from django.conf import settings

    from accounts.phones import phone_kind

    found: set[str] = set()
    while len(found) < count:
        phone = f"+79{rng.randrange(10**9):09d}"
        country, kind = phone_kind(phone) if _valid(phone) else ("", "")
        if country in settings.OTP_ALLOWED_REGIONS and kind in settings.OTP_ALLOWED_NUMBER_TYPES:
            found.add(phone)
    return sorted(found, key=lambda _: rng.random())


def _valid(phone: str) -> bool:
    import phonenumbers

    return phonenumbers.is_valid_number(phonenumbers.parse(phone))


def addresses(count: int, base: int) -> list[str]:
    return [f"10.{base}.{n // 256}.{n % 256}" for n in range(count)]


def pumped(rng: random.Random, prefixes: list[str]) -> list[tuple[str, str]]:
    """SIGNUPS distinct numbers in `prefixes` (all but their last 4 digits), from 200 addresses."""
    phones = rng.sample([f"{prefix}{n:04d}" for prefix in prefixes for n in range(10_000)], SIGNUPS)
    clients = addresses(200, 1)
    return [(phone, clients[i % len(clients)]) for i, phone in enumerate(phones)]


def main() -> None:
    database_recreate(DATABASE_URL)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    rng = random.Random(SEED)
    print(
        f"pumping simulation: {SIGNUPS} signups per scenario; guard: prefix cap "
        f"{settings.OTP_SENDS_PER_PREFIX_PER_HOUR}/h (free digits {settings.OTP_PREFIX_FREE_DIGITS}), budget "
        f"{settings.OTP_SMS_BUDGET_PER_HOUR}/h and {settings.OTP_SMS_BUDGET_PER_DAY}/day, conversion "
        f">= {settings.OTP_CONVERSION_MIN_CODES} codes and < {settings.OTP_CONVERSION_MIN_RATE:.0%} used; "
        f"watch every {WATCH_EVERY} signups; codes live {settings.OTP_TTL_S} s (compressed time)"
    )
    results = {}

    prefixes = [f"+7999{n:03d}" for n in rng.sample(range(100, 1000), 5)]
    results["pumping, 5 prefixes"] = run(pumped(rng, prefixes), verify_share=0.0, rng=rng)
    reset()
    prefixes = [f"+7999{n:03d}" for n in rng.sample(range(100, 1000), 100)]
    results["pumping, 100 prefixes"] = run(pumped(rng, prefixes), verify_share=0.0, rng=rng)
    reset()
    settings.OTP_SMS_BUDGET_PER_HOUR = settings.OTP_SMS_BUDGET_PER_DAY = 2 * SIGNUPS  # above the crowd
    crowd = list(zip(mobile_numbers(rng, SIGNUPS), addresses(SIGNUPS, 2), strict=True))
    results["legitimate crowd"] = run(crowd, verify_share=0.8, rng=rng)

    print(f"{'scenario':<24}{'signups':>8}{'sent':>6}{'verified':>9}{'refused':>8}  refusals by reason")
    for name, r in results.items():
        total = sum(r["refused"].values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r["refused"].items())) or "-"
        print(f"{name:<24}{r['signups']:>8}{r['sent']:>6}{r['verified']:>9}{total:>8}  {reasons}")
    pumped_sent = results["pumping, 5 prefixes"]["sent"]
    crowd_refused = sum(results["legitimate crowd"]["refused"].values())
    print(f"target: pumping (5 prefixes) sent <= 60: {pumped_sent} {'met' if pumped_sent <= 60 else 'MISSED'}")
    print(f"target: legitimate crowd refused == 0: {crowd_refused} {'met' if crowd_refused == 0 else 'MISSED'}")


if __name__ == "__main__":
    main()
