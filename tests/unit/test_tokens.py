"""JWT attacks (reliability matrix #16): every one is refused."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import jwt
import pytest

from app.auth.tokens import InvalidToken, TokenCodec, _key_id
from app.platform.database import utcnow
from tests.conftest import TEST_SECRET, make_settings

OTHER_SECRET = "another-secret-key-that-is-long-enough-for-hs256-abcdef"


def codec(**overrides: Any) -> TokenCodec:
    return TokenCodec(make_settings(**overrides))


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(utcnow().timestamp())
    values: dict[str, Any] = {
        "iss": "storefront",
        "aud": "storefront-api",
        "sub": "42",
        "iat": now,
        "exp": now + 60,
        "jti": "abc",
        "type": "access",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def sign(payload: dict[str, Any], key: str = TEST_SECRET, algorithm: str = "HS256", kid: str | None = None) -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid or _key_id(TEST_SECRET)})


def test_round_trip() -> None:
    c = codec()
    token = c.issue(subject="7", token_type="access", ttl=timedelta(minutes=5), now=utcnow())
    decoded = c.decode(token, "access")
    assert decoded["sub"] == "7"
    assert decoded["type"] == "access"
    assert {"exp", "iat", "sub", "jti", "iss", "aud", "type"} <= set(decoded)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def _unsigned(payload: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': _key_id(TEST_SECRET)})}.{part(payload)}."


ATTACKS = {
    "alg none": _unsigned(claims()),
    "wrong key": sign(claims(), key=OTHER_SECRET),
    "other algorithm": sign(claims(), algorithm="HS512"),
    "expired": sign(claims(exp=int(utcnow().timestamp()) - 10)),
    "missing exp": sign(claims(exp=None)),
    "missing sub": sign(claims(sub=None)),
    "missing jti": sign(claims(jti=None)),
    "missing type": sign(claims(type=None)),
    "wrong audience": sign(claims(aud="someone-else")),
    "wrong issuer": sign(claims(iss="evil")),
    "refresh used as access": sign(claims(type="refresh")),
    "unknown kid": sign(claims(), kid="0000000000000000"),
    "non-numeric subject": sign(claims(sub="admin")),
    "garbage": "not-a-token",
    "empty": "",
}


@pytest.mark.parametrize("token", ATTACKS.values(), ids=ATTACKS.keys())
def test_attacks_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        codec().decode(token, "access")


def test_rotated_key_verifies_during_the_window_and_not_after() -> None:
    old = codec()
    token = old.issue(subject="1", token_type="access", ttl=timedelta(minutes=5), now=utcnow())

    during = codec(secret_key=OTHER_SECRET, secret_key_previous=TEST_SECRET)
    assert during.decode(token, "access")["sub"] == "1"
    fresh = during.issue(subject="2", token_type="access", ttl=timedelta(minutes=5), now=utcnow())
    assert jwt.get_unverified_header(fresh)["kid"] == _key_id(OTHER_SECRET)

    after = codec(secret_key=OTHER_SECRET)
    with pytest.raises(InvalidToken):
        after.decode(token, "access")
