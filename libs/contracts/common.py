"""Shapes shared by several contracts: owners, pages, problems."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import Field

from libs.contracts.envelope import Contract

T = TypeVar("T")

OwnerKind = Literal["user", "anonymous", "organization"]


class Owner(Contract):
    """Who something belongs to: a user, an anonymous shopper or an organization."""

    kind: OwnerKind
    id: str = Field(min_length=1, max_length=200)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"


class Page(Contract, Generic[T]):
    """A page of anything; pass `next_cursor` back as `?cursor=` for the next page."""

    items: list[T]
    next_cursor: str | None = None


class FieldError(Contract):
    field: str
    message: str


class Problem(Contract):
    """An RFC 9457 problem document, plus a stable machine-readable `code`."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str
    instance: str | None = None
    errors: list[FieldError] | None = None


class Principal(Contract):
    """Who a request acts for, as the gateway established it; sent to services in a header."""

    user_id: str | None = None
    anonymous_id: str | None = None
    orgs: list[str] = Field(default_factory=list)

    @property
    def owner(self) -> Owner | None:
        """The owner of new things: the user when logged in, else the anonymous shopper."""
        if self.user_id:
            return Owner(kind="user", id=self.user_id)
        if self.anonymous_id:
            return Owner(kind="anonymous", id=self.anonymous_id)
        return None

    def owns(self, owner: Owner) -> bool:
        """May this principal see and act on something that belongs to `owner`?"""
        if owner.kind == "user":
            return owner.id == self.user_id
        if owner.kind == "anonymous":
            return owner.id == self.anonymous_id
        return owner.id in self.orgs


PRINCIPAL_HEADER = "x-store-principal"


def path_segment_pattern(allowed: str) -> str:
    """A pattern of the characters `allowed` (a regex class body holding `.`) with at least one
    of them other than `.`: such an id is never a dot-segment (`.`, `..`, `%2e`) that a URL
    resolver would collapse into another path on the way to a service."""
    return f"^[{allowed}]*[{allowed.replace('.', '')}][{allowed}]*$"


# Ids and keys that travel in a URL path.
ID_PATTERN = path_segment_pattern("A-Za-z0-9._~:@-")
LINE_ID_PATTERN = path_segment_pattern("A-Za-z0-9._~-")
KEY_PATTERN = path_segment_pattern("A-Za-z0-9._-")
