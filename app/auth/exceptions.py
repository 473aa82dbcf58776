"""Errors of the auth domain. Every credential failure is a 401 with
`WWW-Authenticate: Bearer`, and none says which part was wrong."""

from __future__ import annotations

from app.platform.errors import ServiceUnavailable, TooManyRequests, Unauthorized


class NotAuthenticated(Unauthorized):
    pass


class InvalidAccessToken(Unauthorized):
    def __init__(self) -> None:
        super().__init__("Invalid or expired token")


class InvalidCredentials(Unauthorized):
    def __init__(self) -> None:
        # Same answer for an unknown user and a wrong password: no enumeration.
        super().__init__("Incorrect username or password")


class InvalidRefreshToken(Unauthorized):
    def __init__(self) -> None:
        super().__init__("Invalid or expired refresh token")


class RefreshTokenReused(InvalidRefreshToken):
    """A used-up refresh token came back: it was probably stolen. The family is
    revoked and that revocation must be committed although the request fails."""

    keep_changes = True


class TooManyAttempts(TooManyRequests):
    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many attempts, retry later", retry_after=retry_after)


class HashingBusy(ServiceUnavailable):
    """Every password-hash slot is busy and the queue for them is full: the
    server, not this client, is overloaded, hence 503 (with Retry-After), which
    clients and proxies retry, rather than 429."""

    def __init__(self) -> None:
        super().__init__("Too many sign-ins at once, retry shortly")
