"""The signed principal stays safe while the gateway reuses tokens and services keep verified ones."""

from __future__ import annotations

import secrets
import time
from datetime import datetime, tzinfo
from types import SimpleNamespace

import jwt
import pytest

from libs.contracts.common import Principal
from libs.runtime import auth
from libs.runtime.auth import PRINCIPAL_TTL_S, sign_principal, verify_principal
from libs.runtime.http import ServiceClient
from libs.runtime.problems import Unauthorized


def key() -> str:
    return secrets.token_urlsafe(32)


def shopper() -> Principal:
    return Principal(anonymous_id=secrets.token_urlsafe(18))


def test_a_verified_token_is_refused_once_its_key_is_no_longer_accepted() -> None:
    old, new = key(), key()
    who = shopper()
    token = sign_principal(who, key=old)
    assert verify_principal(token, keys=[new, old]) == who  # during the rotation
    with pytest.raises(Unauthorized):
        verify_principal(token, keys=[new])  # the old key dropped: refused at once


def test_a_verified_token_is_refused_after_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = key()
    token = sign_principal(shopper(), key=secret)
    verify_principal(token, keys=[secret])  # verified, and kept
    later = time.time() + PRINCIPAL_TTL_S + 60

    class Later(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Later:
            return cls.fromtimestamp(later, tz)

    # The clock moves on for the cache and for the token check alike.
    monkeypatch.setattr(auth, "time", SimpleNamespace(time=lambda: later))
    monkeypatch.setattr(jwt.api_jwt, "datetime", Later)
    with pytest.raises(Unauthorized):
        verify_principal(token, keys=[secret])


async def test_each_principal_travels_with_its_own_token() -> None:
    secret = key()
    client = ServiceClient(name="cart", base_url="http://cart.invalid", service_token=secret)
    alice, bob = shopper(), shopper()
    first, again, other = (
        client._signed(alice, secret),
        client._signed(alice, secret),
        client._signed(bob, secret),
    )
    assert first == again  # reused within its lifetime
    assert verify_principal(first, keys=[secret]) == alice
    assert verify_principal(other, keys=[secret]) == bob
    user = Principal(user_id="u-1", orgs=["org-1"])
    member_elsewhere = Principal(user_id="u-1", orgs=["org-2"])
    assert verify_principal(client._signed(user, secret), keys=[secret]) == user
    assert verify_principal(client._signed(member_elsewhere, secret), keys=[secret]) == (
        member_elsewhere
    )
