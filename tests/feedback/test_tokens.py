"""Click tokens and impression ids: signed, compact, bound to a visitor, expiring."""

from __future__ import annotations

import base64
import datetime
import uuid

import pytest
from django.test import override_settings
from django.utils import timezone

from django_recs.feedback.ids import id_time, new_impression_id, smallest_id_at
from django_recs.feedback.tokens import InvalidToken, make_token, read_token
from django_recs.feedback.visitors import binding, bindings, is_automated
from django_recs.serving.visitors import Visitor

WEEK = datetime.timedelta(days=7)


def token(impression_id=None, position=3, type_id=12, key="4711", visitor=b"abcdef"):
    return make_token(impression_id or new_impression_id(), position, type_id, key, visitor)


def decoded(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- ids ------------------------------------------------------------------------------------


def test_impression_ids_are_uuid7_and_carry_their_time():
    now = timezone.now()
    made = new_impression_id()
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert abs(id_time(made) - now) < datetime.timedelta(seconds=5)


def test_ids_sort_by_time_as_bytes_and_as_hex():
    earlier = new_impression_id(now_ms=1_700_000_000_000)
    later = new_impression_id(now_ms=1_700_000_000_001)
    assert earlier < later and earlier.bytes < later.bytes and earlier.hex < later.hex


def test_smallest_id_at_separates_the_milliseconds():
    moment = datetime.datetime(2026, 5, 1, 12, 0, 0, 123000, tzinfo=datetime.timezone.utc)
    ms = 1777636800123
    assert smallest_id_at(moment).int >> 80 == ms
    assert new_impression_id(now_ms=ms - 1) < smallest_id_at(moment) <= new_impression_id(now_ms=ms)
    assert id_time(new_impression_id(now_ms=ms)) == moment


# --- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["4711", "0", "18446744073709551616",
                                 uuid.UUID(int=7).hex, "007", "-5", "ünï"])
def test_a_token_reads_back_what_it_was_made_of(key):
    impression_id = new_impression_id()
    text = make_token(impression_id, 300, 99, key, b"abcdef")
    read = read_token(text, max_age=WEEK)
    assert (read.impression_id, read.position, read.item_type_id, read.item_key, read.visitor) == (
        impression_id, 300, 99, key, b"abcdef")


def test_a_token_without_visitor():
    assert read_token(token(visitor=b""), max_age=WEEK).visitor == b""


def test_tokens_are_compact_and_url_safe():
    text = token(key="123456")
    assert len(text) <= 52
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(token(key=uuid.uuid4().hex)) <= 72


def test_every_changed_byte_is_refused():
    raw = decoded(token())
    for at in range(len(raw)):
        tampered = bytearray(raw)
        tampered[at] ^= 0x01
        with pytest.raises(InvalidToken):
            read_token(encoded(bytes(tampered)), max_age=WEEK)


def test_a_token_signed_with_another_key_is_refused():
    with override_settings(SECRET_KEY="another secret entirely, long enough to be a key"):
        forged = token()
    with pytest.raises(InvalidToken, match="signature"):
        read_token(forged, max_age=WEEK)


def test_a_token_signed_with_a_previous_key_is_accepted():
    with override_settings(SECRET_KEY="the old key of the shop, rotated out this morning"):
        old = token()
    with override_settings(SECRET_KEY="the new key", SECRET_KEY_FALLBACKS=[
            "the old key of the shop, rotated out this morning"]):
        assert read_token(old, max_age=WEEK).item_key == "4711"


@pytest.mark.parametrize("text", [
    "", "x", "not a token at all!", "A" * 40, "A" * 201, None, 42, b"bytes", "é" * 30,
    encoded(b"\x01" * 30), "====",
])
def test_malformed_tokens_are_refused(text):
    with pytest.raises(InvalidToken):
        read_token(text, max_age=WEEK)


def test_truncated_and_extended_tokens_are_refused():
    text = token()
    for changed in (text[:-1], text[:-4], text + "A", text[1:]):
        with pytest.raises(InvalidToken):
            read_token(changed, max_age=WEEK)


def test_a_token_expires_after_max_age():
    shown = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)
    text = token(impression_id=smallest_id_at(shown))
    assert read_token(text, max_age=WEEK, now=shown + WEEK).position == 3
    with pytest.raises(InvalidToken, match="expired"):
        read_token(text, max_age=WEEK, now=shown + WEEK + datetime.timedelta(milliseconds=1))


def test_a_token_from_the_future_is_refused():
    shown = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)
    text = token(impression_id=smallest_id_at(shown))
    assert read_token(text, max_age=WEEK, now=shown - datetime.timedelta(minutes=4))
    with pytest.raises(InvalidToken, match="future"):
        read_token(text, max_age=WEEK, now=shown - datetime.timedelta(minutes=6))


# --- visitors -------------------------------------------------------------------------------


def test_bindings_tell_visitors_apart():
    alice, bob = Visitor(user_id=1), Visitor(user_id=2)
    session = Visitor(session_key="k" * 32)
    assert len({binding(alice), binding(bob), binding(session)}) == 3
    assert binding(Visitor()) == b""
    assert binding(alice) in bindings(Visitor(user_id=1, session_key="s" * 32))
    assert binding(session) not in bindings(alice)


@pytest.mark.parametrize("agent, automated", [
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", True),
    ("facebookexternalhit/1.1", True),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", True),
    ("python-requests/2.31.0", True),
    ("curl/8.5.0", True),
    ("", True),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0 Safari/537.36", False),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", False),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "HeadlessChrome/124.0 Safari/537.36", False),
])
def test_well_known_bots_are_automated(rf, agent, automated):
    assert is_automated(rf.get("/", HTTP_USER_AGENT=agent)) is automated


def test_a_prefetch_is_no_click(rf):
    browser = "Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0 Safari/537.36"
    assert is_automated(rf.get("/", HTTP_USER_AGENT=browser, HTTP_SEC_PURPOSE="prefetch"))
    assert not is_automated(rf.get("/", HTTP_USER_AGENT=browser))


def test_another_spelling_of_the_same_bytes_is_refused():
    """Base64 of a length not a multiple of 3 leaves unused bits in its last character."""
    for key in ("1", "12", "123"):
        text = token(key=key)
        if len(text) % 4 == 0:
            continue
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        respelled = [text[:-1] + c for c in alphabet
                     if c != text[-1] and decoded(text[:-1] + c) == decoded(text)]
        assert respelled
        for other in respelled:
            with pytest.raises(InvalidToken):
                read_token(other, max_age=WEEK)
