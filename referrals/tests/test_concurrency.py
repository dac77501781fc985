"""Concurrent requests cannot race past the inviter rules.

Real threads, each with its own PostgreSQL connection, on committed data (transactional_db).
The Django test client raises an exception for a 500, so an error there shows up as an
exception in the results, never as a silent pass.
"""

import threading
from unittest import mock

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from referrals import services
from referrals.models import Referral
from tests.factories import UserFactory
from tests.utils import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

MY_PROFILE = "/api/v1/my_profile/"
JOIN_TIMEOUT_S = 60


def _client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def _in_thread(fn, results, index, barrier=None, name=None):
    def run():
        try:
            if barrier is not None:
                barrier.wait(timeout=JOIN_TIMEOUT_S)
            results[index] = fn()
        except Exception as exc:  # recorded, and the test fails on it
            results[index] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True, name=name)
    thread.start()
    return thread


def _race(*fns):
    """Run fns at the same moment in their own threads; return what each returned or raised."""
    results = [None] * len(fns)
    barrier = threading.Barrier(len(fns))
    threads = [_in_thread(fn, results, i, barrier) for i, fn in enumerate(fns)]
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a request hung (deadlock?)"
    return results


def _patch(client, code):
    def call():
        answer = client.patch(MY_PROFILE, {"my_inviter": code}, format="json")
        return answer.status_code, answer.json()

    return call


def _statuses(results):
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, f"requests failed: {errors!r}"
    return sorted(status for status, _ in results)


def test_twenty_concurrent_patches_with_different_codes_give_one_200_and_nineteen_400s():
    user = UserFactory()
    inviters = [UserFactory() for _ in range(20)]
    clients = [_client_for(user) for _ in inviters]

    results = _race(*[_patch(c, i.ref_code) for c, i in zip(clients, inviters, strict=True)])

    assert _statuses(results) == [200] + [400] * 19
    winner = next(body for status, body in results if status == 200)[0]["my_inviter"]
    for status, body in results:
        if status == 400:
            assert body == {"my_inviter": ["You have already entered an inviter's code."]}
    assert list(Referral.objects.filter(invitee=user).values_list("inviter__phone", flat=True)) == [winner]


def test_two_users_setting_each_other_at_once_exactly_one_wins_every_time():
    repetitions = 25
    for _ in range(repetitions):
        a, b = UserFactory(), UserFactory()
        results = _race(_patch(_client_for(a), b.ref_code), _patch(_client_for(b), a.ref_code))

        assert _statuses(results) == [200, 400]
        loser = next(body for status, body in results if status == 400)
        assert "invited" in loser["my_inviter"][0]
        links = list(Referral.objects.filter(invitee__in=[a, b]).values_list("invitee_id", "inviter_id"))
        assert links in ([(a.pk, b.pk)], [(b.pk, a.pk)])


def test_three_users_closing_a_triangle_at_once_leave_no_cycle():
    for _ in range(10):
        a, b, c = UserFactory(), UserFactory(), UserFactory()
        results = _race(
            _patch(_client_for(a), b.ref_code),
            _patch(_client_for(b), c.ref_code),
            _patch(_client_for(c), a.ref_code),
        )
        assert _statuses(results) == [200, 200, 400]
        assert Referral.objects.filter(invitee__in=[a, b, c]).count() == 2


def test_a_staff_edit_of_phone_and_inviter_does_not_deadlock_with_the_users_own_patch():
    """Forces the interleaving that deadlocks when the user row is locked before the referrals lock:
    the staff request has written the user's phone when the user's own PATCH arrives."""
    user, staff_choice, user_choice = UserFactory(), UserFactory(), UserFactory()
    # Tokens are rows too: make them now.
    staff, own = _client_for(UserFactory(is_staff=True, is_superuser=True)), _client_for(user)
    phone_written, go_on = threading.Event(), threading.Event()
    real_user_update = services.user_update

    def user_update_then_pause(**kwargs):
        result = real_user_update(**kwargs)
        if threading.current_thread().name == "staff":
            phone_written.set()
            go_on.wait(JOIN_TIMEOUT_S)
        return result

    def staff_patch():
        answer = staff.patch(
            f"/api/v1/all_profiles/{user.pk}/",
            {"phone": "+79995550099", "my_inviter": staff_choice.ref_code},
            format="json",
        )
        return answer.status_code, answer.json()

    with mock.patch.object(services, "user_update", user_update_then_pause):
        # The user's request ends up waiting for a lock the staff request holds.
        results = _interleave(staff_patch, phone_written, _patch(own, user_choice.ref_code), go_on, name="staff")

    assert not any(isinstance(r, Exception) for r in results), results
    assert [status for status, _ in results] == [200, 400], results
    assert results[0][1]["my_inviter"] == staff_choice.phone
    assert Referral.objects.get(invitee=user).inviter == staff_choice


def _another_session_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def _interleave(first, paused, then, go_on, *, name=None):
    """Run `first` (in a thread called `name`) until it sets `paused` while holding its locks,
    then `then`; once `then` waits for one of those locks, let `first` finish (`go_on`). Both
    must end: a deadlock or a hang fails the test. Returns their results, first then second."""
    results = [None, None]
    first_thread = _in_thread(first, results, 0, name=name)
    assert paused.wait(JOIN_TIMEOUT_S)
    then_thread = _in_thread(then, results, 1)
    wait_for(_another_session_waits_for_a_lock)
    go_on.set()
    for thread in (first_thread, then_thread):
        thread.join(JOIN_TIMEOUT_S)
        assert not thread.is_alive(), "a request hung"
    return results


def test_an_inviter_deleted_while_their_code_is_entered_gives_a_400_not_a_500():
    inviter, user, admin = UserFactory(), UserFactory(), UserFactory(is_staff=True, is_superuser=True)
    own = _client_for(user)
    deleted, go_on = threading.Event(), threading.Event()

    def staff_delete():
        with transaction.atomic():
            services.user_delete(actor=admin, user_id=inviter.pk)
            deleted.set()
            go_on.wait(JOIN_TIMEOUT_S)

    # The PATCH sees the inviter (the delete is not committed) and waits on the deleted row.
    results = _interleave(staff_delete, deleted, _patch(own, inviter.ref_code), go_on)

    assert not isinstance(results[1], Exception), results
    assert results[1] == (400, {"my_inviter": ["No user has this referral code."]})
    assert not Referral.objects.exists()


def test_an_admin_edit_of_phone_and_inviter_does_not_deadlock_with_the_users_own_patch(client):
    """The same interleaving through the Django admin's change page."""
    from accounts.models import User

    user, admin_choice, user_choice = UserFactory(), UserFactory(), UserFactory()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))  # sessions are rows too: log in now
    own = _client_for(user)
    saved, go_on = threading.Event(), threading.Event()
    real_save = User.save

    def save_then_pause(self, *args, **kwargs):
        real_save(self, *args, **kwargs)
        if threading.current_thread().name == "admin" and self.pk == user.pk:
            saved.set()
            go_on.wait(JOIN_TIMEOUT_S)

    def admin_post():
        answer = client.post(
            f"/admin/accounts/user/{user.pk}/change/",
            {
                "phone": "+79995550088",
                "inviter_code": admin_choice.ref_code,
                "is_active": "on",
                "referrals_made-TOTAL_FORMS": "0",
                "referrals_made-INITIAL_FORMS": "0",
                "_save": "Save",
            },
        )
        return answer.status_code, None

    with mock.patch.object(User, "save", save_then_pause):
        results = _interleave(admin_post, saved, _patch(own, user_choice.ref_code), go_on, name="admin")

    assert not any(isinstance(r, Exception) for r in results), results
    assert [status for status, _ in results] == [302, 400], results
    assert Referral.objects.get(invitee=user).inviter == admin_choice


# --- staff reads and edits racing a delete (issue 24.1) ---

RACE_ROUNDS = 30


def _staff_call(client, method, path, body=None):
    def call():
        answer = getattr(client, method)(path, body, format="json")
        return answer.status_code, answer.content

    return call


@pytest.mark.parametrize("method", ["patch", "get"])
def test_a_staff_read_or_edit_racing_a_delete_answers_the_profile_or_404_never_500_or_empty(method):
    from tests.reliability.parallel import errors, run_parallel

    staff = UserFactory(is_staff=True, is_superuser=True)
    outcomes = []
    for round_ in range(RACE_ROUNDS):
        user = UserFactory()
        path = f"/api/v1/all_profiles/{user.pk}/"
        body = {"phone": f"+7999444{round_:04d}", "is_active": False} if method == "patch" else None
        calls = [_staff_call(_client_for(staff), method, path, body) for _ in range(3)]
        results = run_parallel([*calls, _staff_call(_client_for(staff), "delete", path)])
        assert errors(results) == [], results  # the test client raises on a 500
        *answers, (deleted, _) = results
        assert deleted == 204
        for status, content in answers:
            assert status in (200, 404), (status, content)
            assert content, f"an empty {status}"
            if status == 200:
                assert b'"phone"' in content
            outcomes.append(status)
    assert set(outcomes) <= {200, 404}


def test_concurrent_referrals_of_one_inviter_are_counted_exactly_for_the_velocity_signal(settings):
    """The signals are read under the referrals lock: of 12 invitees entering one code at once
    with a cap of 5 per hour, exactly the last 7 to commit are flagged."""
    from tests.factories import phone_far

    settings.REFERRAL_MAX_PER_HOUR = 5
    inviter = UserFactory(phone=phone_far())
    invitees = [UserFactory(phone=phone_far()) for _ in range(12)]
    clients = [_client_for(invitee) for invitee in invitees]

    results = _race(*[_patch(client, inviter.ref_code) for client in clients])

    assert _statuses(results) == [200] * 12
    statuses = list(Referral.objects.filter(inviter=inviter).order_by("created_at").values_list("status", flat=True))
    assert statuses == ["approved"] * 5 + ["flagged"] * 7
