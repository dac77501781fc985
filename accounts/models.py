from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.postgres.indexes import BrinIndex
from django.db import IntegrityError, models, transaction
from django.db.models.functions import Length, Lower
from django.db.models.lookups import Exact

from .fields import PhoneField
from .phones import phone_display, phone_normalize
from .ref_codes import REF_CODE_LENGTH, ref_code_generate


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, phone, password, **extra):
        phone = phone_normalize(str(phone))
        user = self.model(phone=phone, **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        return self.insert_with_fresh_code(user)

    def insert_with_fresh_code(self, user):
        """Insert a new user. The referral code is random: on the rare collision, draw again.
        Used by create_user and by the admin's add form."""
        for attempt in range(10):
            if attempt:
                user.ref_code = ref_code_generate()
            try:
                with transaction.atomic(using=self._db):
                    user.save(using=self._db)
                return user
            except IntegrityError:
                if attempt == 9 or self.filter(phone=user.phone).exists():
                    raise
        raise AssertionError("unreachable")

    def create_user(self, phone, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(phone, password, **extra)

    def create_superuser(self, phone, password=None, **extra):
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(phone, password, **extra)

    def get_by_natural_key(self, phone):
        # Any spelling logs in (the admin's login form): the field normalises as on clean().
        return self.get(phone=self.model._meta.get_field("phone").to_python(phone))


class User(AbstractBaseUser, PermissionsMixin):
    """A person. The phone number (E.164) is the login; there is no username."""

    phone = PhoneField("phone", unique=True)
    # Shown to the user and typed by the people they invite; matched case-insensitively.
    ref_code = models.CharField("referral code", max_length=REF_CODE_LENGTH, unique=True, default=ref_code_generate)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = UserManager()

    USERNAME_FIELD = "phone"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(phone__startswith="+"), name="user_phone_e164"),
            models.CheckConstraint(
                condition=models.Q(ref_code=Lower("ref_code")) & models.Q(Exact(Length("ref_code"), REF_CODE_LENGTH)),
                name="user_ref_code_lower_6",
            ),
        ]

    def __str__(self):
        # As people write it (+7 999 123-45-67): the admin shows users by this; E.164 stays in `phone`.
        return phone_display(self.phone)


class PhoneCode(models.Model):
    """One login-code challenge. The code itself is never stored, only its HMAC."""

    phone = models.CharField(max_length=16)
    code_hash = models.CharField(max_length=64)
    ip = models.GenericIPAddressField(null=True, blank=True)
    # What the per-address limits count (accounts.services.ip_key): the IPv4 address, the
    # IPv6 network (/64 by default), or one key for clients without a usable address.
    ip_key = models.CharField(max_length=64, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    consumed_at = models.DateTimeField(null=True, blank=True)
    # What the conversion watch groups by (accounts.guard): the number's country (ISO code) and
    # prefix (all but its last OTP_PREFIX_FREE_DIGITS digits). Empty for test numbers.
    country = models.CharField(max_length=2, default="", blank=True)
    prefix = models.CharField(max_length=16, default="", blank=True)

    class Meta:
        indexes = [
            # Latest code for a phone, and the per-phone hourly count.
            models.Index(fields=["phone", "-created_at"], name="phonecode_phone_recent"),
            # The per-address hourly count.
            models.Index(fields=["ip_key", "created_at"], name="phonecode_ip_key_recent"),
            # The conversion watch's last hour: rows are appended in time order, so a BRIN index
            # finds the hour for a fraction of a B-tree's upkeep on every signup.
            BrinIndex(fields=["created_at"], name="phonecode_created_brin"),
        ]

    def __str__(self):
        return f"code for {self.phone} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class WrongTry(models.Model):
    """A wrong code tried, and the address it came from: the per-address try limits count these
    (accounts.services.code_verify). A right try ends the code and needs no row."""

    code = models.ForeignKey(PhoneCode, on_delete=models.CASCADE, related_name="wrong_tries", db_index=False)
    ip_key = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            # The per-address hourly count of wrong tries.
            models.Index(fields=["ip_key", "created_at"], name="wrongtry_ip_key_recent"),
            # A code's wrong tries from one address.
            models.Index(fields=["code", "ip_key"], name="wrongtry_code_ip_key"),
        ]

    def __str__(self):
        return f"wrong try from {self.ip_key} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class PasswordTries(models.Model):
    """Password tries at the admin login in the current window, one row per account (its phone)
    and per client address. Counted with a conditional UPDATE (accounts.services.password_try_count)."""

    ACCOUNT = "account"
    ADDRESS = "address"

    scope = models.CharField(max_length=8, choices=[(ACCOUNT, "account"), (ADDRESS, "address")])
    key = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    tries = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "password tries"
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="passwordtries_scope_key")]

    def __str__(self):
        return f"{self.tries} password tries for {self.scope} {self.key} since {self.window_start:%H:%M:%S}"


# --- The fraud guard (accounts.guard) --------------------------------------------------------


class CodeRefusal(models.Model):
    """A login code refused, by any rule of code_request (send limits and the guard): listed in
    the admin by reason, country and time. Written after the refused request's rollback."""

    phone = models.CharField(max_length=32)  # E.164, or as typed when it is no valid number
    ip_key = models.CharField("address", max_length=64)
    country = models.CharField(max_length=2, blank=True)
    prefix = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=32)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["reason", "created_at"], name="coderefusal_reason_recent")]

    def __str__(self):
        return f"{self.reason}: {self.phone} from {self.ip_key} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class GuardAllow(models.Model):
    """A staff allow-list entry: codes to this phone, prefix or country, or asked for from this
    address, skip the prefix velocity, the SMS budget and the conversion watch (never the send
    limits per phone and address, nor a code's try cap)."""

    class Kind(models.TextChoices):
        PHONE = "phone"
        PREFIX = "prefix"
        COUNTRY = "country"
        ADDRESS = "address"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    # E.164 phone, "+" and the prefix's digits, ISO country code, or the address as the limits
    # count it (an IPv4 address, an IPv6 network such as 2001:db8::/64).
    value = models.CharField(max_length=64)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "guard allow-list entry"
        verbose_name_plural = "guard allow-list"
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="guardallow_kind_value")]

    def __str__(self):
        return f"{self.kind} {self.value}"


class GuardCounter(models.Model):
    """Codes issued in one clock window: per prefix and hour (prefix velocity), and through the
    paid channel per hour and per UTC day (the SMS budget). Counted with one conditional upsert,
    so parallel requests cannot pass a cap; the watch deletes old windows."""

    PREFIX_HOUR = "prefix_hour"
    SMS_HOUR = "sms_hour"
    SMS_DAY = "sms_day"

    scope = models.CharField(
        max_length=16, choices=[(PREFIX_HOUR, "prefix per hour"), (SMS_HOUR, "SMS per hour"), (SMS_DAY, "SMS per day")]
    )
    key = models.CharField(max_length=16, blank=True)  # the prefix; empty for the budget
    start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key", "start"], name="guardcounter_scope_key_start")]

    def __str__(self):
        return f"{self.scope} {self.key} from {self.start:%Y-%m-%d %H:%M}: {self.count}"


class GuardBlock(models.Model):
    """A country or prefix whose codes were rarely used (the conversion watch): no codes to it
    until `until`. One row per country or prefix, renewed when a block that ended is earned again."""

    COUNTRY = "country"
    PREFIX = "prefix"

    scope = models.CharField(max_length=8, choices=[(COUNTRY, "country"), (PREFIX, "prefix")])
    key = models.CharField(max_length=16)
    issued = models.PositiveIntegerField()
    used = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    until = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="guardblock_scope_key")]

    def __str__(self):
        return f"{self.scope} {self.key} blocked until {self.until:%Y-%m-%d %H:%M}"
