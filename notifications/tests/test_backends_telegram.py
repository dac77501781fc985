"""The Telegram backend against a local stand-in for the Bot API."""

import pytest

from notifications.backends import PermanentError, TransientError, telegram
from notifications.backends.telegram import html_split
from notifications.models import Message

from .fakes import Reply


@pytest.fixture
def bot_api(settings, fake_provider):
    def start(*replies):
        server = fake_provider(*replies)
        settings.TELEGRAM_API_URL = server.url
        settings.TELEGRAM_BOT_TOKEN = "123:abc"
        settings.TELEGRAM_CHAT_ID = "-100555"
        return server

    return start


def _ok(message_id=42):
    return Reply(body={"ok": True, "result": {"message_id": message_id}})


def _message(body="<b>hi</b>", recipient="-100555"):
    return Message(pk=1, channel="telegram", recipient=recipient, body=body)


def test_it_calls_send_message_with_html_parse_mode(bot_api):
    server = bot_api(_ok(42))

    assert telegram.send(_message("<b>Deploy</b> &amp; done")) == "42"

    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/bot123:abc/sendMessage")
    assert request.json == {
        "chat_id": "-100555",
        "text": "<b>Deploy</b> &amp; done",
        "parse_mode": "HTML",
        "disable_web_page_preview": True,
    }


def test_it_sends_to_the_ops_chat_when_the_message_names_none(bot_api):
    server = bot_api(_ok())

    telegram.send(_message(recipient=""))

    assert server.requests[0].json["chat_id"] == "-100555"


def test_a_429_is_transient_with_the_retry_after_telegram_gave(bot_api):
    bot_api(
        Reply(
            status=429,
            body={
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 5",
                "parameters": {"retry_after": 5},
            },
        )
    )

    with pytest.raises(TransientError) as caught:
        telegram.send(_message())
    assert caught.value.retry_after == 5


@pytest.mark.parametrize(
    ("status", "description"),
    [(400, "Bad Request: chat not found"), (401, "Unauthorized"), (403, "Forbidden: bot was blocked by the user")],
)
def test_client_errors_are_permanent(bot_api, status, description):
    bot_api(Reply(status=status, body={"ok": False, "error_code": status, "description": description}))

    with pytest.raises(PermanentError, match=description.split(":")[0]):
        telegram.send(_message())


def test_server_errors_are_transient(bot_api):
    bot_api(Reply(status=502, body=b"<html>bad gateway</html>"))

    with pytest.raises(TransientError):
        telegram.send(_message())


def test_a_missing_token_is_permanent(settings):
    settings.TELEGRAM_BOT_TOKEN = ""

    with pytest.raises(PermanentError, match="TELEGRAM_BOT_TOKEN"):
        telegram.send(_message())


def test_a_text_over_4096_characters_goes_as_several_messages(bot_api, settings):
    settings.TELEGRAM_RATE_PER_S = 1000  # the split, not the pacing, is under test
    server = bot_api(_ok(1), _ok(2))
    body = "\n".join(f"line {i:04d} " + "x" * 40 for i in range(150))  # about 7,500 characters

    assert telegram.send(_message(body)) == "1,2"

    texts = [r.json["text"] for r in server.requests]
    assert len(texts) == 2
    assert all(len(t) <= 4096 for t in texts)
    assert "".join(texts) == body  # cut at a line break, nothing lost


def test_the_split_never_cuts_a_tag_or_an_entity_and_closes_open_tags():
    body = "<b>" + "a &amp; b " * 1000 + "</b>"

    parts = html_split(body, limit=1000)

    assert len(parts) > 1
    for part in parts:
        assert len(part) <= 1000
        assert part.startswith("<b>") and part.endswith("</b>")
        assert part.count("&") == part.count("&amp;")
    assert "".join(p.removeprefix("<b>").removesuffix("</b>") for p in parts) == body[3:-4]


def test_a_short_text_is_one_part():
    assert html_split("<i>short</i>") == ["<i>short</i>"]
