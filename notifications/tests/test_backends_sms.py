"""The SMS backend against local stand-ins for SMS.ru and Twilio."""

import base64

import pytest

from notifications.backends import PermanentError, TransientError, sms
from notifications.models import Message

from .fakes import Reply


def _message(recipient="+79991234567", body="Your login code: 1234"):
    return Message(pk=1, channel="sms", recipient=recipient, body=body)


def _smsru_ok(to="79991234567", sms_id="000000-10000001"):
    return {"status": "OK", "status_code": 100, "sms": {to: {"status": "OK", "status_code": 100, "sms_id": sms_id}}}


def _smsru_error(code, text="error"):
    return {
        "status": "OK",
        "status_code": 100,
        "sms": {"79991234567": {"status": "ERROR", "status_code": code, "status_text": text}},
    }


@pytest.fixture
def smsru(settings, fake_provider):
    def start(*replies):
        server = fake_provider(*replies)
        settings.SMS_PROVIDER = "smsru"
        settings.SMS_API_URL = server.url
        settings.SMS_API_KEY = "api-id-123"
        settings.SMS_SENDER = ""
        return server

    return start


@pytest.fixture
def twilio(settings, fake_provider):
    def start(*replies):
        server = fake_provider(*replies)
        settings.SMS_PROVIDER = "twilio"
        settings.SMS_API_URL = server.url
        settings.SMS_API_KEY = "AC123:secret-token"
        settings.SMS_SENDER = "+15005550006"
        return server

    return start


def test_smsru_gets_the_request_it_documents_and_its_message_id_is_kept(smsru):
    server = smsru(Reply(body=_smsru_ok()))

    assert sms.send(_message()) == "000000-10000001"

    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/sms/send")
    assert request.form == {"api_id": "api-id-123", "to": "79991234567", "msg": "Your login code: 1234", "json": "1"}


def test_smsru_sends_the_sender_name_when_one_is_set(smsru, settings):
    server = smsru(Reply(body=_smsru_ok()))
    settings.SMS_SENDER = "Referrals"

    sms.send(_message())

    assert server.requests[0].form["from"] == "Referrals"


@pytest.mark.parametrize(
    ("code", "text"), [(202, "bad number"), (207, "cannot send to this number"), (209, "stop list")]
)
def test_smsru_number_errors_are_permanent(smsru, code, text):
    smsru(Reply(body=_smsru_error(code, text)))

    with pytest.raises(PermanentError, match=str(code)):
        sms.send(_message())


@pytest.mark.parametrize("code", [200, 201, 300, 301])
def test_smsru_auth_and_funds_errors_are_permanent(smsru, code):
    smsru(Reply(body={"status": "ERROR", "status_code": code, "status_text": "no"}))

    with pytest.raises(PermanentError):
        sms.send(_message())


def test_smsru_temporary_unavailability_is_transient(smsru):
    smsru(Reply(body={"status": "ERROR", "status_code": 220, "status_text": "try later"}))

    with pytest.raises(TransientError):
        sms.send(_message())


def test_smsru_5xx_is_transient(smsru):
    smsru(Reply(status=502, body=b"bad gateway"))

    with pytest.raises(TransientError, match="502"):
        sms.send(_message())


def test_smsru_429_is_transient_and_carries_retry_after(smsru):
    smsru(Reply(status=429, headers={"Retry-After": "7"}))

    with pytest.raises(TransientError) as caught:
        sms.send(_message())
    assert caught.value.retry_after == 7


def test_a_refused_connection_is_transient(settings):
    settings.SMS_PROVIDER, settings.SMS_API_URL, settings.SMS_API_KEY = "smsru", "http://127.0.0.1:1", "k"

    with pytest.raises(TransientError, match="network"):
        sms.send(_message())


def test_a_provider_that_does_not_answer_in_time_is_transient(smsru, settings):
    smsru(Reply(body=_smsru_ok(), delay=1.0))
    settings.DELIVERY_HTTP_TIMEOUT_S = 0.2

    with pytest.raises(TransientError, match="timeout"):
        sms.send(_message())


def test_twilio_gets_the_request_it_documents_and_its_sid_is_kept(twilio):
    server = twilio(Reply(status=201, body={"sid": "SM0123456789abcdef", "status": "queued"}))

    assert sms.send(_message()) == "SM0123456789abcdef"

    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/2010-04-01/Accounts/AC123/Messages.json")
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"AC123:secret-token").decode()
    assert request.form == {"To": "+79991234567", "From": "+15005550006", "Body": "Your login code: 1234"}


def test_twilio_uses_a_messaging_service_when_the_sender_is_one(twilio, settings):
    server = twilio(Reply(status=201, body={"sid": "SM1"}))
    settings.SMS_SENDER = "MG0000"

    sms.send(_message())

    assert server.requests[0].form["MessagingServiceSid"] == "MG0000"
    assert "From" not in server.requests[0].form


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 21211), (401, 20003), (403, 21606)],  # bad number, bad credentials, no permission / funds
)
def test_twilio_client_errors_are_permanent(twilio, status, code):
    twilio(Reply(status=status, body={"code": code, "message": "nope", "status": status}))

    with pytest.raises(PermanentError, match=str(code)):
        sms.send(_message())


def test_twilio_429_is_transient_and_carries_retry_after(twilio):
    twilio(Reply(status=429, body={"code": 20429, "message": "Too Many Requests"}, headers={"Retry-After": "3"}))

    with pytest.raises(TransientError) as caught:
        sms.send(_message())
    assert caught.value.retry_after == 3


def test_twilio_5xx_is_transient(twilio):
    twilio(Reply(status=503, body={"message": "unavailable"}))

    with pytest.raises(TransientError):
        sms.send(_message())


def test_a_twilio_key_without_a_token_is_a_permanent_error(twilio, settings):
    twilio(Reply(status=201, body={"sid": "SM1"}))
    settings.SMS_API_KEY = "AC123"

    with pytest.raises(PermanentError, match="AccountSid:AuthToken"):
        sms.send(_message())
