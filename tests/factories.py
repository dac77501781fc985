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
