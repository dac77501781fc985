import pytest

from notifications.models import Message
from tests.utils import wait_for


@pytest.mark.redis
@pytest.mark.postgres
def test_a_signup_code_reaches_sent_messages_through_a_real_worker(api, settings, celery_worker_process):
    settings.OTP_FAKE_DELIVERY = False
    settings.OTP_DELIVERY_BACKENDS = ["file"]
    assert api.post("/api/v1/auth/signup/", {"phone": "8 999 123 45 67"}, format="json").status_code == 200

    files = wait_for(lambda: list(settings.SENT_MESSAGES_DIR.glob("*+79991234567*.txt")))
    text = files[0].read_text()
    assert "To: +79991234567" in text
    code = text.split("Your login code: ")[1][:4]
    assert code.isdigit()

    # The file is written before the row is marked: wait for the mark, not only the file.
    wait_for(lambda: Message.objects.get().status == Message.Status.SENT)
    message = Message.objects.get()
    assert code not in message.body  # the outbox forgets the code once it is delivered
    login = api.post("/api/v1/auth/token/", {"phone": "+79991234567", "confirmation_code": code}, format="json")
    assert login.status_code == 200
