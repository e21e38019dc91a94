"""Click tokens: what a click on a listed item needs, signed, in about 50 URL-safe characters.

A token names the impression (its time-ordered id), the item's position in
the list, the item (content type and stored key) and the visitor the list was
shown to (:func:`~django_recs.feedback.visitors.binding`), so a click is
recorded from the token alone, even before the impression's row is written.

Layout, before URL-safe base64 without padding::

    flags (1 byte: version, has a visitor) | impression id (16) | position (varint)
    | content type id (varint) | key (tagged: integer varint, UUID 16 bytes or text)
    | visitor binding (6, when flagged) | MAC (10)

The MAC is HMAC-SHA256 under a key derived from SECRET_KEY (the previous keys
of SECRET_KEY_FALLBACKS are accepted too), truncated to 80 bits: a forger's
only way in is guessing, one request per guess. Django's ``signing.Signer``
would append the whole 256-bit digest in base64, 43 characters, doubling the
link. A token's age is read from the impression id: it expires
ATTRIBUTION_WINDOW_DAYS after the list was shown.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from .ids import id_time
from .keys import derived_key, secret_keys
from .visitors import BINDING_LENGTH

__all__ = ["ClickToken", "InvalidToken", "TokenSigner", "make_token", "read_token"]

_VERSION = 1
_HAS_VISITOR = 0x80
_MAC_LENGTH = 10
_KEY_INTEGER, _KEY_UUID, _KEY_TEXT = 0, 1, 2
#: A token made by a server whose clock is ahead of this one by up to this much is accepted.
CLOCK_SKEW = datetime.timedelta(minutes=5)
#: Longest token read (longer text is refused before decoding): a 64-character text key.
MAX_TOKEN_LENGTH = 200


class InvalidToken(ValueError):
    """A click token that is malformed, tampered with or expired: nothing is recorded."""


@dataclass(frozen=True)
class ClickToken:
    """What a click link says: the impression, the position and item clicked, whose list."""

    impression_id: uuid.UUID
    position: int
    item_type_id: int
    item_key: str
    visitor: bytes  # the binding of the visitor the list was shown to; b"" for nobody known


class TokenSigner:
    """Signs the tokens of the items of one impression.

    What the items share (the impression id, the content type, the visitor)
    is encoded and fed to the MAC once: a page signs a link per item, and
    each then costs one copy of the MAC's state and the item's own bytes.
    """

    __slots__ = ("_prefix", "_item_type", "_visitor", "_mac")

    def __init__(self, impression_id: uuid.UUID, item_type_id: int, visitor: bytes = b""):
        flags = _VERSION | (_HAS_VISITOR if visitor else 0)
        self._prefix = bytes((flags,)) + impression_id.bytes
        self._item_type = _varint(item_type_id)
        self._visitor = visitor
        self._mac = None

    def token(self, position: int, item_key: str) -> str:
        """The signed token of item ``position`` (0 = first), whose stored key is ``item_key``."""
        if self._mac is None:
            self._mac = hmac.new(derived_key("click", settings.SECRET_KEY), self._prefix,
                                 hashlib.sha256)
        rest = _varint(position) + self._item_type + _encode_key(item_key) + self._visitor
        mac = self._mac.copy()
        mac.update(rest)
        return _encode(self._prefix + rest + mac.digest()[:_MAC_LENGTH])


def make_token(impression_id: uuid.UUID, position: int, item_type_id: int, item_key: str,
               visitor: bytes = b"") -> str:
    """The signed token of item ``position`` (0 = first) of an impression."""
    return TokenSigner(impression_id, item_type_id, visitor).token(position, item_key)


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def read_token(text, *, max_age: datetime.timedelta,
               now: datetime.datetime | None = None) -> ClickToken:
    """The token ``text`` as made by :func:`make_token`.

    Raises
    ------
    InvalidToken
        Not a string of a token's form, a MAC that does not match under the
        current or a previous SECRET_KEY, or an impression older than
        ``max_age`` (or made in the future beyond CLOCK_SKEW).
    """
    if not isinstance(text, str) or not 0 < len(text) <= MAX_TOKEN_LENGTH:
        raise InvalidToken("not a click token")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("not base64") from None
    if _encode(raw) != text:  # another spelling of the same bytes (padding bits set): refused
        raise InvalidToken("not the canonical spelling")
    body, mac = raw[:-_MAC_LENGTH], raw[-_MAC_LENGTH:]
    if len(body) < 20 or not any(
        hmac.compare_digest(mac, _mac(body, secret)) for secret in secret_keys()
    ):
        raise InvalidToken("bad signature")
    if body[0] & 0x7F != _VERSION:
        raise InvalidToken(f"unknown token version {body[0] & 0x7F}")
    try:
        token = _decode(body)
    except (IndexError, ValueError, UnicodeDecodeError) as error:
        # Signed by us but unreadable: only a bug could make one.
        raise InvalidToken(f"malformed token ({error})") from None
    shown = id_time(token.impression_id)
    now = now or timezone.now()
    if shown > now + CLOCK_SKEW:
        raise InvalidToken("the impression is in the future")
    if now - shown > max_age:
        raise InvalidToken("expired")
    return token


def _decode(body: bytes) -> ClickToken:
    impression_id = uuid.UUID(bytes=bytes(body[1:17]))
    at = 17
    position, at = _read_varint(body, at)
    item_type_id, at = _read_varint(body, at)
    item_key, at = _decode_key(body, at)
    visitor = b""
    if body[0] & _HAS_VISITOR:
        visitor = bytes(body[at:at + BINDING_LENGTH])
        at += BINDING_LENGTH
        if len(visitor) != BINDING_LENGTH:
            raise ValueError("short visitor binding")
    if at != len(body):
        raise ValueError("trailing bytes")
    return ClickToken(impression_id, position, item_type_id, item_key, visitor)


def _mac(body: bytes, secret) -> bytes:
    return hmac.new(derived_key("click", secret), body, hashlib.sha256).digest()[:_MAC_LENGTH]


def _encode_key(key: str) -> bytes:
    """A stored item key in few bytes: integers as varints, UUID hex as 16 bytes."""
    if key.isdigit() and key.isascii() and (key == "0" or key[0] != "0"):
        return bytes((_KEY_INTEGER,)) + _varint(int(key))
    if len(key) == 32:
        try:
            value = uuid.UUID(hex=key)
        except ValueError:
            value = None
        if value is not None and value.hex == key:
            return bytes((_KEY_UUID,)) + value.bytes
    data = key.encode()
    return bytes((_KEY_TEXT,)) + _varint(len(data)) + data


def _decode_key(body: bytes, at: int) -> tuple[str, int]:
    tag = body[at]
    at += 1
    if tag == _KEY_INTEGER:
        value, at = _read_varint(body, at)
        return str(value), at
    if tag == _KEY_UUID:
        if at + 16 > len(body):
            raise ValueError("short UUID key")
        return uuid.UUID(bytes=bytes(body[at:at + 16])).hex, at + 16
    if tag == _KEY_TEXT:
        length, at = _read_varint(body, at)
        if at + length > len(body):
            raise ValueError("short text key")
        return bytes(body[at:at + length]).decode(), at + length
    raise ValueError(f"unknown key tag {tag}")


def _varint(value: int) -> bytes:
    """``value`` (>= 0) as an unsigned LEB128 varint."""
    if value < 0:
        raise ValueError(f"cannot encode {value} as a varint")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(body: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = body[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
