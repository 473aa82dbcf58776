"""JWT attacks (reliability matrix #16): every one is refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest

from app.auth.tokens import InvalidToken, TokenCodec, _key_id
from app.platform.database import utcnow
from tests.conftest import TEST_SECRET, make_settings
from tests.support.tokens import OTHER_SECRET, forged_tokens


def codec(**overrides: Any) -> TokenCodec:
    return TokenCodec(make_settings(**overrides))


def test_round_trip() -> None:
    c = codec()
    token = c.issue(subject="7", token_type="access", ttl=timedelta(minutes=5), now=utcnow())
    decoded = c.decode(token, "access")
    assert decoded["sub"] == "7"
    assert decoded["type"] == "access"
    assert {"exp", "iat", "sub", "jti", "iss", "aud", "type"} <= set(decoded)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


ATTACKS = forged_tokens()


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
