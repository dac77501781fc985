from django.db import IntegrityError, connection, transaction

from accounts.models import User
from accounts.ref_codes import REF_CODE_ALPHABET, REF_CODE_LENGTH
from accounts.services import STAFF_FLAGS, staff_rule_check, user_lock, user_update
from project.db import LOCK_REFERRALS, advisory_xact_lock
from project.exceptions import ApplicationError

from .models import Referral

FIELD = "my_inviter"

# Walks up from the proposed inviter through their inviters; hits the user iff the link
# would close a cycle. UNION (not UNION ALL) stops on a cycle already in the data.
_CYCLE_SQL = f"""
WITH RECURSIVE chain(id) AS (
    SELECT inviter_id FROM {Referral._meta.db_table} WHERE invitee_id = %s
    UNION
    SELECT r.inviter_id FROM {Referral._meta.db_table} r JOIN chain ON r.invitee_id = chain.id
)
SELECT 1 FROM chain WHERE id = %s LIMIT 1
"""


def ref_code_clean(code) -> str:
    """The canonical (lower-case) form of a typed code; ApplicationError if it cannot be one."""
    if not isinstance(code, str) or not code.strip():
        raise ApplicationError("Enter your inviter's referral code.", field=FIELD)
    code = code.strip().lower()
    if len(code) != REF_CODE_LENGTH or any(ch not in REF_CODE_ALPHABET for ch in code):
        raise ApplicationError("No user has this referral code.", field=FIELD)
    return code


def would_close_cycle(*, user_id: int, inviter_id: int) -> bool:
    """True when `user_id` is `inviter_id` or one of the people above them (one recursive query)."""
    if user_id == inviter_id:
        return True
    with connection.cursor() as cursor:
        cursor.execute(_CYCLE_SQL, [inviter_id, user_id])
        return cursor.fetchone() is not None


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
        raise ApplicationError("You have already entered an inviter's code.", field=FIELD)
    inviter = User.objects.filter(ref_code=code).first()
    if inviter is None:
        raise ApplicationError("No user has this referral code.", field=FIELD)
    if inviter.pk == user_id:
        raise ApplicationError("You cannot enter your own referral code.", field=FIELD)
    if would_close_cycle(user_id=user_id, inviter_id=inviter.pk):
        raise ApplicationError("This code belongs to someone you invited (directly or through others).", field=FIELD)
    return inviter


def inviter_set(*, user_id: int, code, replace: bool = False) -> User:
    """Link `user_id` to the owner of referral code `code`.

    Rules: set once (staff may `replace`); not the user's own code; the code must exist;
    no cycle of any length. The check and the insert run under one transaction-level
    advisory lock, so concurrent requests are serialised and the loser gets the rule's
    message. Returns the inviter.
    """
    ref_code_clean(code)  # bad input fails before taking the lock
    try:
        with transaction.atomic():
            referrals_lock()
            inviter = inviter_check(user_id=user_id, code=code, replace=replace)
            if replace:
                Referral.objects.filter(invitee_id=user_id).delete()
            Referral.objects.create(invitee_id=user_id, inviter=inviter)
    except IntegrityError as exc:
        # The inviter (or the user) was deleted meanwhile, or a writer bypassed the lock: the
        # constraints held. Name the rule that now fails, if one does.
        inviter_check(user_id=user_id, code=code, replace=replace)
        raise ApplicationError("The inviter could not be saved. Please try again.", field=FIELD) from exc
    return inviter


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
