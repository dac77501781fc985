import itertools

import factory

from accounts.models import User
from referrals.models import Referral

_numbers = itertools.count(1_000_000)


def phone_next() -> str:
    """A fresh valid Russian mobile number in E.164."""
    return f"+7999{next(_numbers):07d}"


_far_numbers = itertools.count(1)


def phone_far() -> str:
    """A fresh number that is not "adjacent" to any other this function gives (the referral
    signal: at most 10 apart, or all but the last 2 digits shared): 1,000 apart."""
    return f"+7997{next(_far_numbers) * 1000:07d}"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    phone = factory.LazyFunction(phone_next)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.objects.create_user(*args, **kwargs)


class ReferralFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Referral

    invitee = factory.SubFactory(UserFactory)
    inviter = factory.SubFactory(UserFactory)


def phone_spread(n: int, tag: int = 0) -> str:
    """The n-th (n < 10,000) of valid Russian mobiles of which at most 10 share a prefix (all
    but the last 4 digits): for tests of other limits, below the fraud guard's prefix cap."""
    return f"+7999{n % 1000:03d}{n // 1000 % 10}{tag % 1000:03d}"


def activity_seed(*, today):
    """Rows on known days for the admin's charts (project/activity.py): the figures each day
    must show, as {day: {series key: count}}. Every row is placed at noon of its local day; one
    of each kind lies 40 days back, outside the 30-day window."""
    from datetime import datetime, time, timedelta

    from django.utils import timezone

    from accounts.models import PhoneCode
    from notifications.models import Message

    def noon(day):
        return timezone.make_aware(datetime.combine(day, time(12)))

    early, late, outside = today - timedelta(days=10), today - timedelta(days=3), today - timedelta(days=40)

    def users(n, day):
        made = [UserFactory(phone=phone_far()) for _ in range(n)]
        User.objects.filter(pk__in=[u.pk for u in made]).update(created_at=noon(day))
        return made

    def codes(n, day, *, used):
        for _ in range(n):
            PhoneCode.objects.create(phone=phone_far(), code_hash="x" * 64, expires_at=noon(day))
        rows = PhoneCode.objects.filter(created_at__gte=timezone.now() - timedelta(minutes=5), code_hash="x" * 64)
        rows.update(created_at=noon(day), consumed_at=noon(day) if used else None, code_hash="y" * 64)

    def failures(n, day, status=Message.Status.FAILED):
        for _ in range(n):
            message = Message.objects.create(channel="sms", recipient=phone_far(), body="x", status=status)
            Message.objects.filter(pk=message.pk).update(created_at=noon(day))

    inviters = users(1, outside)
    invitees = users(3, early) + users(1, late) + users(1, outside)
    for invitee, status, day in zip(
        invitees,
        ["approved", "approved", "rejected", "flagged", "approved"],
        [late, late, late, early, outside],
        strict=True,
    ):
        Referral.objects.create(
            invitee=invitee,
            inviter=inviters[0],
            created_at=noon(day),
            status=status,
            decided_at=None if status == "flagged" else noon(day),
        )
    codes(2, late, used=True)
    codes(2, late, used=False)
    codes(1, early, used=True)
    codes(3, outside, used=True)
    failures(1, late)
    failures(2, early)
    failures(1, late, status=Message.Status.SENT)
    failures(4, outside)
    return {
        early: {"signups": 3, "logins": 1, "codes_sent": 1, "delivery_failures": 2, "referrals_flagged": 1},
        late: {
            "signups": 1,
            "logins": 2,
            "codes_sent": 4,
            "delivery_failures": 1,
            "referrals_approved": 2,
            "referrals_rejected": 1,
        },
    }
