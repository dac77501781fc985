"""The SMS backend: a real HTTP client for SMS.ru and Twilio's Messages API (SMS_PROVIDER).

SMS_API_URL points the client anywhere (a test server, a proxy); otherwise the public API.
Answers are classified: success returns the provider's message id, transient errors (network,
timeout, 5xx, 429, "try later" codes) raise TransientError, the rest PermanentError.
"""

from django.conf import settings

from . import PermanentError, TransientError
from .http import http_post, json_or_empty, retry_after_s

DEFAULT_URLS = {"smsru": "https://sms.ru", "twilio": "https://api.twilio.com"}

# SMS.ru status codes that are worth another try: 220 service temporarily unavailable,
# 231 per-minute limit of identical messages to one number, 500 provider error.
SMSRU_TRANSIENT = {220: None, 231: 60.0, 500: None}


def rate_limit(message):
    """One bucket per provider account: its limit is on the account, not the number."""
    return f"sms:{settings.SMS_PROVIDER}", settings.SMS_RATE_PER_S


def _base_url() -> str:
    return (settings.SMS_API_URL or DEFAULT_URLS[settings.SMS_PROVIDER]).rstrip("/")


def _check_http(response, provider: str) -> None:
    """The HTTP layer: 429 and 5xx are transient whatever the body says."""
    if response.status_code == 429:
        raise TransientError(f"{provider}: 429 too many requests", retry_after=retry_after_s(response))
    if response.status_code >= 500:
        raise TransientError(f"{provider}: HTTP {response.status_code}", retry_after=retry_after_s(response))


def _smsru_error(code, text: str):
    code = int(code) if str(code).isdigit() else None
    detail = f"sms.ru {code}: {text}".strip()
    if code in SMSRU_TRANSIENT:
        return TransientError(detail, retry_after=SMSRU_TRANSIENT[code])
    return PermanentError(detail)


def send_smsru(message) -> str:
    to = message.recipient.lstrip("+")
    data = {"api_id": settings.SMS_API_KEY, "to": to, "msg": message.body, "json": "1"}
    if settings.SMS_SENDER:
        data["from"] = settings.SMS_SENDER
    response = http_post(f"{_base_url()}/sms/send", data=data)
    _check_http(response, "sms.ru")
    body = json_or_empty(response)
    if response.status_code != 200 or not body:
        raise PermanentError(f"sms.ru: unexpected answer HTTP {response.status_code}")
    if body.get("status") != "OK":
        raise _smsru_error(body.get("status_code"), body.get("status_text", ""))
    entry = (body.get("sms") or {}).get(to) or {}
    if entry.get("status") != "OK":
        raise _smsru_error(entry.get("status_code"), entry.get("status_text", "no status for the number"))
    return str(entry.get("sms_id", ""))


def send_twilio(message) -> str:
    account_sid, _, auth_token = settings.SMS_API_KEY.partition(":")
    if not (account_sid and auth_token):
        raise PermanentError('twilio: SMS_API_KEY must be "AccountSid:AuthToken"')
    data = {"To": message.recipient, "Body": message.body}
    # A Messaging Service (MG...) picks the number itself; otherwise SMS_SENDER is the From number.
    data["MessagingServiceSid" if settings.SMS_SENDER.startswith("MG") else "From"] = settings.SMS_SENDER
    response = http_post(
        f"{_base_url()}/2010-04-01/Accounts/{account_sid}/Messages.json", data=data, auth=(account_sid, auth_token)
    )
    _check_http(response, "twilio")
    body = json_or_empty(response)
    if response.status_code in (200, 201) and body.get("sid"):
        return str(body["sid"])
    # 400 bad number / unverified sender, 401 auth, 403 no permission or no funds, 404 account.
    raise PermanentError(f"twilio {body.get('code', '')} HTTP {response.status_code}: {body.get('message', '')}")


PROVIDERS = {"smsru": send_smsru, "twilio": send_twilio}


def send(message) -> str:
    if not settings.SMS_API_KEY:
        raise PermanentError("SMS_API_KEY is not set")
    return PROVIDERS[settings.SMS_PROVIDER](message)
