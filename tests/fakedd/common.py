"""What the fake's object modules share: the error answer and the server's clock format."""

from __future__ import annotations

from datetime import datetime, timezone


class ApiError(Exception):
    """An error answer: `status` and Datadog's `{"errors": [...]}` body."""

    def __init__(self, status: int, *errors: str):
        super().__init__(status, errors)
        self.status = status
        self.errors = list(errors) or ["error"]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(when: datetime) -> str:
    """Datadog's timestamps: microseconds and +00:00, e.g. 2024-11-15T19:32:29.171735+00:00."""
    return when.astimezone(timezone.utc).isoformat(timespec="microseconds")


def first(query: dict, name: str, default: str) -> str:
    return query.get(name, [default])[0]
