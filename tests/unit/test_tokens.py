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


def test_a_token_is_verified_once_then_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    c = codec()
    token = c.issue(subject="7", token_type="access", ttl=timedelta(minutes=5), now=utcnow())
    verified: list[str] = []
    real_decode = jwt.decode

    def counted_decode(*args: Any, **kwargs: Any) -> Any:
        verified.append(args[0])
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted_decode)
    for _ in range(3):
        assert c.decode(token, "access")["sub"] == "7"
    assert verified == [token]


def test_a_kept_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    c = codec()
    token = c.issue(subject="7", token_type="access", ttl=timedelta(minutes=5), now=utcnow())
    exp = c.decode(token, "access")["exp"]
    monkeypatch.setattr("app.auth.tokens.time.time", lambda: float(exp))
    with pytest.raises(InvalidToken, match="expired"):
        c.decode(token, "access")


def test_a_kept_token_is_still_checked_for_its_type_and_not_shared() -> None:
    c = codec()
    token = c.issue(subject="7", token_type="access", ttl=timedelta(minutes=5), now=utcnow())
    c.decode(token, "access")["sub"] = "1"  # a caller's change stays with that caller
    assert c.decode(token, "access")["sub"] == "7"
    with pytest.raises(InvalidToken, match="wrong token type"):
        c.decode(token, "refresh")


# Refused for what they are, not for how they are used.
FORGED = {name: token for name, token in ATTACKS.items() if name != "refresh used as access"}


@pytest.mark.parametrize("token", FORGED.values(), ids=FORGED.keys())
def test_refused_tokens_are_not_kept(token: str) -> None:
    c = codec()
    for _ in range(2):
        with pytest.raises(InvalidToken):
            c.decode(token, "access")
    assert c._verified.cache_info().currsize == 0
