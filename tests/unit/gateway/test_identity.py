"""Who the gateway thinks is calling: tokens, the anonymous cookie, secrets in production."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.identity import AnonymousCookie, TokenVerifier, issue_token
from gateway.settings import DEV_JWT_SECRET, GatewaySettings
from libs.runtime.problems import Unauthorized
from libs.runtime.settings import RuntimeSettings


def settings(**overrides: object) -> GatewaySettings:
    return GatewaySettings(runtime=RuntimeSettings(), **overrides)  # type: ignore[arg-type]


def test_a_dev_token_carries_the_user_and_organizations() -> None:
    token = issue_token("alice", secret=DEV_JWT_SECRET, orgs=["acme"])
    assert TokenVerifier(settings()).verify(token) == ("alice", ["acme"])


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        issue_token("alice", secret="another-secret"),
        issue_token("alice", secret=DEV_JWT_SECRET, expires_in_s=-3600),
        jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, "x", algorithm="HS384"),
        jwt.encode({"exp": int(time.time()) + 60}, DEV_JWT_SECRET, algorithm="HS256"),
        jwt.encode(
            {"sub": "a", "orgs": "acme", "exp": int(time.time()) + 60}, DEV_JWT_SECRET, "HS256"
        ),
    ],
    ids=["garbage", "wrong-secret", "expired", "wrong-algorithm", "no-sub", "orgs-not-a-list"],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(Unauthorized) as error:
        TokenVerifier(settings()).verify(token)
    assert error.value.code == "invalid_token"


def test_rs256_tokens_with_a_public_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = TokenVerifier(settings(jwt_public_key=public_pem))
    token = jwt.encode({"sub": "bob", "exp": int(time.time()) + 60}, key, algorithm="RS256")
    assert verifier.verify(token) == ("bob", [])
    # An HS256 token signed with the public key text must not pass (algorithm confusion).
    with pytest.raises(Unauthorized):
        verifier.verify(issue_token("bob", secret=DEV_JWT_SECRET))


def test_the_anonymous_cookie_is_signed() -> None:
    cookie = AnonymousCookie(settings())
    value = cookie.dumps("anon-123")
    assert cookie.loads(value) == "anon-123"
    assert cookie.loads(value[:-1] + ("A" if value[-1] != "A" else "B")) is None
    assert cookie.loads("anon-123") is None
    assert cookie.loads("") is None
    other_key = AnonymousCookie(settings(cookie_secret="another"))
    assert other_key.loads(value) is None


def test_distributed_mode_refuses_the_dev_secrets() -> None:
    distributed = RuntimeSettings(broker_url="amqp://guest:guest@127.0.0.1:5672/")
    with pytest.raises(ValueError, match="GATEWAY_JWT_SECRET"):
        GatewaySettings(runtime=distributed)
    with pytest.raises(ValueError, match="GATEWAY_COOKIE_SECRET"):
        GatewaySettings(runtime=distributed, jwt_secret="real")
    GatewaySettings(runtime=distributed, jwt_secret="real", cookie_secret="real")
