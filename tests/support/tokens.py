"""Forged JWTs (reliability matrix #16): each is what an attacker would try,
for a subject that exists, so that only the forgery makes it invalid."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt

from app.auth.tokens import _key_id
from app.platform.database import utcnow
from tests.conftest import TEST_SECRET

OTHER_SECRET = "another-secret-key-that-is-long-enough-for-hs256-abcdef"


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


def unsigned(payload: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': _key_id(TEST_SECRET)})}.{part(payload)}."


def forged_tokens(subject: str = "42") -> dict[str, str]:
    """Attack name -> token claiming `subject`. `sign(claims(sub=subject))`
    is the genuine token they imitate."""
    expired = int(utcnow().timestamp()) - 10
    return {
        "alg none": unsigned(claims(sub=subject)),
        "wrong key": sign(claims(sub=subject), key=OTHER_SECRET),
        "other algorithm": sign(claims(sub=subject), algorithm="HS512"),
        "expired": sign(claims(sub=subject, exp=expired)),
        "missing exp": sign(claims(sub=subject, exp=None)),
        "missing sub": sign(claims(sub=None)),
        "missing jti": sign(claims(sub=subject, jti=None)),
        "missing type": sign(claims(sub=subject, type=None)),
        "wrong audience": sign(claims(sub=subject, aud="someone-else")),
        "wrong issuer": sign(claims(sub=subject, iss="evil")),
        "refresh used as access": sign(claims(sub=subject, type="refresh")),
        "unknown kid": sign(claims(sub=subject), kid="0000000000000000"),
        "non-numeric subject": sign(claims(sub="admin")),
        "garbage": "not-a-token",
        "empty": "",
    }


ATTACK_NAMES = list(forged_tokens())
