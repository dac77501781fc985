import json
import uuid
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.ref_codes import REF_CODE_ALPHABET, REF_CODE_LENGTH
from accounts.services import STAFF_FLAGS, staff_rule_check, user_lock, user_update
from notifications.models import Message
from notifications.services import messages_enqueue
from project import metrics
from project.db import LOCK_REFERRALS, advisory_xact_lock
from project.exceptions import ApplicationError, ConflictError, NotFoundError

from . import selectors
from .models import Referral

FIELD = "my_inviter"


def ref_code_clean(code) -> str:
    """The canonical (lower-case) form of a typed code; ApplicationError if it cannot be one."""
    if not isinstance(code, str) or not code.strip():
        raise ApplicationError(_("Enter your inviter's referral code."), field=FIELD)
    code = code.strip().lower()
    if len(code) != REF_CODE_LENGTH or any(ch not in REF_CODE_ALPHABET for ch in code):
        raise ApplicationError(_("No user has this referral code."), field=FIELD)
    return code


def would_close_cycle(*, user_id: int, inviter_id: int) -> bool:
    """True when `user_id` is `inviter_id` or one of the people above them: one recursive query,
    in the function referrals_cycle (referrals migration 0006, planned once per connection)."""
    if user_id == inviter_id:
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT referrals_cycle(%s, %s)", [user_id, inviter_id])
        return cursor.fetchone()[0]


def referrals_lock() -> None:
    """Serialise every change of inviter links until the transaction ends.

    A transaction that also writes the user's row (a staff edit of phone and inviter) must take
    it BEFORE that write: inserting a link waits on the user's row, so the other order
    deadlocks with a concurrent `inviter_set` for the same user. Re-entrant.
    """
    advisory_xact_lock((LOCK_REFERRALS, 0))


def inviter_check(*, user_id: int, code, replace: bool = False) -> User:
    """Apply every inviter rule without writing; return the inviter. Forms use it to show the
    error next to the field; `inviter_set` runs it again under the lock."""
    code = ref_code_clean(code)
    if not replace and Referral.objects.filter(invitee_id=user_id).exists():
        raise ApplicationError(_("You have already entered an inviter's code."), field=FIELD)
    inviter = User.objects.filter(ref_code=code).first()
    if inviter is None:
        raise ApplicationError(_("No user has this referral code."), field=FIELD)
    if inviter.pk == user_id:
        raise ApplicationError(_("You cannot enter your own referral code."), field=FIELD)
    if would_close_cycle(user_id=user_id, inviter_id=inviter.pk):
        raise ApplicationError(_("This code belongs to someone you invited (directly or through others)."), field=FIELD)
    return inviter


def inviter_set(*, user_id: int, code, replace: bool = False) -> User:
    """Link `user_id` to the owner of referral code `code`.

    Rules: set once (staff may `replace`); not the user's own code; the code must exist;
    no cycle of any length. The check and the insert run under one transaction-level
    advisory lock, so concurrent requests are serialised and the loser gets the rule's
    message. In the same transaction: the referral's fraud signals (referral_signals; none
    with REFERRAL_REVIEW off), its status (flagged with a signal, else approved) and its
    webhook event. Returns the inviter.
    """
    ref_code_clean(code)  # bad input fails before taking the lock
    try:
        with transaction.atomic():
            referrals_lock()
            inviter = inviter_check(user_id=user_id, code=code, replace=replace)
            if replace:
                Referral.objects.filter(invitee_id=user_id).delete()
            # Read under the lock, like the rules: concurrent referrals of one inviter are counted.
            now = timezone.now()
            signals = referral_signals(invitee_id=user_id, inviter=inviter, now=now) if settings.REFERRAL_REVIEW else []
            flagged = bool(signals)
            Referral.objects.create(
                invitee_id=user_id,
                inviter=inviter,
                created_at=now,
                status=Referral.Status.FLAGGED if flagged else Referral.Status.APPROVED,
                signals=signals,
                decided_at=None if flagged else now,
            )
            referral_events_enqueue(referral_ids=[user_id])
            status = Referral.Status.FLAGGED if flagged else Referral.Status.APPROVED
            transaction.on_commit(metrics.REFERRALS.labels(status).inc)
    except IntegrityError as exc:
        # The inviter (or the user) was deleted meanwhile, or a writer bypassed the lock: the
        # constraints held. Name the rule that now fails, if one does.
        inviter_check(user_id=user_id, code=code, replace=replace)
        raise ApplicationError(_("The inviter could not be saved. Please try again."), field=FIELD) from exc
    return inviter


# --- the referral programme: fraud signals, the review, webhooks ---

# One round trip for the invitee's phone and the two signals the database knows, in the
# function referrals_signals (referrals migration 0006, planned once per connection):
# shared_address (a network both users asked for codes from, within the window, IPv6 by its
# /64) and the inviter's referrals of the last hour (the phone-code index serves both phones'
# codes; the inviter-order index the count).
_SIGNALS_CALL = "SELECT * FROM referrals_signals(%s, %s, %s, %s, %s)"


def phones_adjacent(a: str, b: str) -> bool:
    """The adjacent_phone signal: two E.164 numbers at most 10 apart, or of one length sharing
    all but their last 2 digits (numbers bought in a block)."""
    a, b = a.lstrip("+"), b.lstrip("+")
    if not (a.isdigit() and b.isdigit()):
        return False
    return abs(int(a) - int(b)) <= 10 or (len(a) == len(b) and a[:-2] == b[:-2])


def referral_signals(*, invitee_id: int, inviter: User, now) -> list[str]:
    """The fraud signals of a new referral, in Referral.Signal's order. Runs under the referrals
    lock in inviter_set's transaction, so the velocity count cannot be raced past.

    - shared_address: both asked for login codes from one client address (IPv4 address, IPv6
      /64) within REFERRAL_SIGNAL_WINDOW_DAYS;
    - adjacent_phone: phones_adjacent;
    - inviter_velocity: more than REFERRAL_MAX_PER_HOUR referrals of the inviter in the last
      hour, this one included.
    """
    params = [
        invitee_id,
        inviter.pk,
        inviter.phone,
        now - timedelta(days=settings.REFERRAL_SIGNAL_WINDOW_DAYS),
        now - timedelta(hours=1),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_SIGNALS_CALL, params)
        invitee_phone, shared_address, last_hour = cursor.fetchone()
    fired = {
        Referral.Signal.SHARED_ADDRESS: shared_address,
        Referral.Signal.ADJACENT_PHONE: phones_adjacent(invitee_phone or "", inviter.phone),
        Referral.Signal.INVITER_VELOCITY: last_hour + 1 > settings.REFERRAL_MAX_PER_HOUR,
    }
    return [str(signal) for signal in Referral.Signal if fired[signal]]


def referral_events_enqueue(*, referral_ids: list[int]) -> None:
    """One webhook event per referral, `referral.<its status>`, as outbox rows of the `webhook`
    channel in the caller's transaction (nothing when REFERRAL_WEBHOOK_URL is empty). The event
    id is drawn here and lives in the row's body, so every retry carries the same one."""
    if not settings.REFERRAL_WEBHOOK_URL or not referral_ids:
        return
    created = int(timezone.now().timestamp())
    messages = []
    for referral in selectors.referrals_for_events(referral_ids=referral_ids):
        event = {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": f"referral.{referral['status']}",
            "created": created,
            "data": {"referral": referral},
        }
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        messages.append(Message(channel=Message.Channel.WEBHOOK, recipient=settings.REFERRAL_WEBHOOK_URL, body=body))
    messages_enqueue(messages)


def referrals_decide(*, referral_ids, status: str, staff: User) -> list[int]:
    """Staff approve or reject flagged referrals (the API and the admin's bulk actions): only
    flagged ones change, each once; the others are skipped. Records who and when, and sends
    the webhook events, in one transaction. Returns the ids decided."""
    if status not in (Referral.Status.APPROVED, Referral.Status.REJECTED):
        raise ApplicationError(_("A decision is approved or rejected."), field="status")
    with transaction.atomic():
        # Row locks in id order: a concurrent decision waits, then finds the row decided.
        ids = list(
            Referral.objects.select_for_update()
            .filter(pk__in=list(referral_ids), status=Referral.Status.FLAGGED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        Referral.objects.filter(pk__in=ids).update(status=status, decided_at=timezone.now(), decided_by=staff)
        referral_events_enqueue(referral_ids=ids)
        if ids:
            transaction.on_commit(partial(metrics.REFERRALS.labels(status).inc, len(ids)))
    return ids


def referral_decide(*, referral_id: int, status: str, staff: User) -> None:
    """referrals_decide for one referral: NotFoundError if there is none, ConflictError (409)
    unless it is flagged."""
    if referrals_decide(referral_ids=[referral_id], status=status, staff=staff):
        return
    current = Referral.objects.filter(pk=referral_id).values_list("status", flat=True).first()
    if current is None:
        raise NotFoundError(_("No such referral."))
    raise ConflictError(
        _("Only a flagged referral can be approved or rejected; this one is %(status)s.") % {"status": current}
    )


def inviter_clear(*, user_id: int) -> None:
    """Remove the inviter link (staff only)."""
    with transaction.atomic():
        referrals_lock()
        Referral.objects.filter(invitee_id=user_id).delete()


_UNSET = object()


def profile_update(*, actor: User, user_id: int, my_inviter=_UNSET, **fields) -> User:
    """Staff edit of a profile by `actor`, the one service behind the admin API and the Django
    admin: the user's own fields (accounts.services.user_update: phone, is_active, is_staff,
    is_superuser) and the inviter (a code, or None to clear), in one transaction.

    Who may change whom is accounts.services.staff_rule_check, judged on the user's row as
    stored, read under its lock: an edit racing a delete finds the row or raises NotFound.
    The inviter goes through `inviter_set`, so every rule but "set once" holds here too.
    """
    with transaction.atomic():
        if my_inviter is not _UNSET:
            referrals_lock()  # before the user's row is locked and written: see referrals_lock
        user = user_lock(user_id=user_id)
        changes = {name for name in STAFF_FLAGS if fields.get(name) is not None and fields[name] != getattr(user, name)}
        staff_rule_check(actor=actor, user=user, changes=changes)
        user_update(user=user, **fields)
        if my_inviter is None:
            inviter_clear(user_id=user.pk)
        elif my_inviter is not _UNSET:
            inviter_set(user_id=user.pk, code=my_inviter, replace=True)
    return user


def user_delete(*, actor: User, user_id: int) -> None:
    """Delete a user (only a superuser deletes a staff or superuser account: staff_rule_check);
    the people they invited stay, without an inviter. NotFound when the user is already gone."""
    with transaction.atomic():
        user = user_lock(user_id=user_id)
        staff_rule_check(actor=actor, user=user)
        user.delete()
