"""JWT access and refresh tokens with a pinned algorithm and key rotation."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

import jwt

from app.platform.config import Settings

TokenType = Literal["access", "refresh"]
JWT_ALGORITHM = "HS256"  # pinned: the verifier never takes the algorithm from the token
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud", "type"]
# Tokens whose signature and claims were verified, most recently used first.
# A client sends the same access token with every request until it expires;
# verifying it each time was a fifth of /users/me's CPU (bench/README.md).
# About 1 KiB each.
VERIFIED_TOKENS_KEPT = 2048


class InvalidToken(Exception):
    pass


def _key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class TokenCodec:
    """Signs and verifies JWTs. Tokens carry the key id (kid) so that a key
    being rotated out (SECRET_KEY_PREVIOUS) still verifies until removed."""

    def __init__(self, settings: Settings) -> None:
        current = settings.secret_key.get_secret_value()
        self._signing_key = current
        self._signing_kid = _key_id(current)
        self._keys = {self._signing_kid: current}
        if settings.secret_key_previous is not None:
            previous = settings.secret_key_previous.get_secret_value()
            self._keys[_key_id(previous)] = previous
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        # Per codec: its keys are what a token was verified against. Only
        # successes are kept (lru_cache keeps no exception), so a flood of
        # forged tokens cannot fill it.
        self._verified = lru_cache(maxsize=VERIFIED_TOKENS_KEPT)(self._verify)

    def issue(
        self,
        *,
        subject: str,
        token_type: TokenType,
        ttl: timedelta,
        now: datetime,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": uuid.uuid4().hex,
            "type": token_type,
            **(extra or {}),
        }
        return jwt.encode(claims, self._signing_key, algorithm=JWT_ALGORITHM, headers={"kid": self._signing_kid})

    def decode(self, token: str, expected_type: TokenType) -> dict[str, Any]:
        claims = self._verified(token)
        # Checked on every use, not only when first verified: a kept token
        # expires like any other (PyJWT's rule, no leeway).
        if claims["exp"] <= time.time():
            raise InvalidToken("Signature has expired")
        if claims.get("type") != expected_type:
            raise InvalidToken("wrong token type")
        return dict(claims)  # a copy: the kept claims are shared by every use

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise InvalidToken("unknown key id")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[JWT_ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if not isinstance(claims["exp"], int | float):
            raise InvalidToken("malformed expiry")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.isdigit() or len(subject) > 18:
            raise InvalidToken("malformed subject")
        return claims


def token_digest(token: str) -> str:
    """Refresh tokens are stored as SHA-256 digests: they are long random
    secrets, so a fast hash suffices and a leaked table grants nothing."""
    return hashlib.sha256(token.encode()).hexdigest()
