"""Who the gateway thinks is calling: tokens, the anonymous cookie, secrets in production."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.identity import AnonymousCookie, TokenVerifier, issue_token
from gateway.settings import DEV_COOKIE_SECRET, DEV_JWT_SECRET, GatewaySettings
from libs.runtime.problems import Unauthorized
from libs.runtime.settings import DEV_SERVICE_TOKEN, RuntimeSettings
from tests.fakes.stripe_fixtures import serve_asgi

DISTRIBUTED = RuntimeSettings(
    broker_url="amqp://guest:guest@127.0.0.1:5672/",
    service_token="a-service-token-of-at-least-32-bytes-for-tests",
)


def settings(**overrides: object) -> GatewaySettings:
    return GatewaySettings(runtime=RuntimeSettings(), **overrides)  # type: ignore[arg-type]


STRONG = "a-strong-secret-of-at-least-32-bytes-for-tests"
SHOP = "https://shop.example"


def rsa_key() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return key, public_pem


def forged_hs256(claims: dict[str, object], key: bytes) -> str:
    """An HS256 token made by hand: PyJWT itself refuses to sign with a PEM key."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = b64(hmac.new(key, head + b"." + body, hashlib.sha256).digest())
    return (head + b"." + body + b"." + signature).decode()


def soon() -> int:
    return int(time.time()) + 60


async def test_a_dev_token_carries_the_user_and_organizations() -> None:
    token = issue_token("alice", secret=DEV_JWT_SECRET, orgs=["acme"])
    assert await TokenVerifier(settings()).verify(token) == ("alice", ["acme"])


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        issue_token("alice", secret="another-secret"),
        issue_token("alice", secret=DEV_JWT_SECRET, expires_in_s=-3600),
        jwt.encode({"exp": int(time.time()) + 60}, DEV_JWT_SECRET, algorithm="HS256"),
        jwt.encode(
            {"sub": "a", "orgs": "acme", "exp": int(time.time()) + 60}, DEV_JWT_SECRET, "HS256"
        ),
    ],
    ids=["garbage", "wrong-secret", "expired", "no-sub", "orgs-not-a-list"],
)
async def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(Unauthorized) as error:
        await TokenVerifier(settings()).verify(token)
    assert error.value.code == "invalid_token"


@pytest.mark.parametrize(
    "token",
    [
        # Signed with the right secret: only the algorithm list can refuse them.
        jwt.encode({"sub": "alice", "exp": soon()}, DEV_JWT_SECRET, algorithm="HS384"),
        jwt.encode({"sub": "alice", "exp": soon()}, DEV_JWT_SECRET, algorithm="HS512"),
        jwt.encode({"sub": "alice", "exp": soon()}, None, algorithm="none"),
    ],
    ids=["HS384", "HS512", "alg-none"],
)
async def test_another_algorithm_with_the_right_secret_is_refused(token: str) -> None:
    with pytest.raises(Unauthorized, match="alg value is not allowed") as error:
        await TokenVerifier(settings()).verify(token)
    assert error.value.code == "invalid_token"


async def test_rs256_tokens_with_a_public_key() -> None:
    key, public_pem = rsa_key()
    verifier = TokenVerifier(settings(jwt_public_key=public_pem))
    token = jwt.encode({"sub": "bob", "exp": soon()}, key, algorithm="RS256")
    assert await verifier.verify(token) == ("bob", [])


async def test_hs256_signed_with_the_public_key_is_refused_by_the_algorithm_list() -> None:
    """Algorithm confusion: the attacker signs HS256 with the public key text, the one key
    the verifier holds. Refused because HS256 is not allowed with a public key."""
    _, public_pem = rsa_key()
    verifier = TokenVerifier(settings(jwt_public_key=public_pem))
    forged = forged_hs256({"sub": "bob", "exp": soon()}, public_pem.encode())
    with pytest.raises(Unauthorized, match="alg value is not allowed"):
        await verifier.verify(forged)


async def test_rs256_is_refused_when_tokens_are_hs256() -> None:
    key, _ = rsa_key()
    token = jwt.encode({"sub": "bob", "exp": soon()}, key, algorithm="RS256")
    with pytest.raises(Unauthorized, match="alg value is not allowed"):
        await TokenVerifier(settings()).verify(token)


async def test_audience_and_issuer_are_enforced_when_configured() -> None:
    verifier = TokenVerifier(settings(jwt_audience="store", jwt_issuer="https://id.example"))
    good = {"sub": "c", "exp": soon(), "aud": "store", "iss": "https://id.example"}
    assert await verifier.verify(jwt.encode(good, DEV_JWT_SECRET, "HS256")) == ("c", [])
    for wrong in ({"aud": "other"}, {"iss": "https://evil.example"}, {"aud": None}):
        claims = {k: v for k, v in {**good, **wrong}.items() if v is not None}
        with pytest.raises(Unauthorized):
            await verifier.verify(jwt.encode(claims, DEV_JWT_SECRET, "HS256"))


async def test_a_rotated_jwt_secret_is_still_accepted() -> None:
    verifier = TokenVerifier(settings(jwt_secret=STRONG, jwt_secret_previous=DEV_JWT_SECRET))
    assert await verifier.verify(issue_token("d", secret=DEV_JWT_SECRET)) == ("d", [])
    assert await verifier.verify(issue_token("d", secret=STRONG)) == ("d", [])


async def test_keys_come_from_a_jwks_url_and_are_cached() -> None:
    key, _ = rsa_key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    served = {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}
    fetches = []

    async def jwks(request: Request) -> JSONResponse:
        fetches.append(request.url.path)
        return JSONResponse(served)

    async with serve_asgi(Starlette(routes=[Route("/jwks.json", jwks)])) as base_url:
        verifier = TokenVerifier(settings(jwt_jwks_url=f"{base_url}/jwks.json"))
        token = jwt.encode({"sub": "e", "exp": soon()}, key, "RS256", headers={"kid": "k1"})
        assert await verifier.verify(token) == ("e", [])
        assert await verifier.verify(token) == ("e", [])
        assert len(fetches) == 1  # the second token used the cached key set
        other, _ = rsa_key()
        stranger = jwt.encode({"sub": "e", "exp": soon()}, other, "RS256", headers={"kid": "k1"})
        with pytest.raises(Unauthorized):
            await verifier.verify(stranger)
        hs = jwt.encode({"sub": "e", "exp": soon()}, DEV_JWT_SECRET, "HS256", headers={"kid": "k1"})
        with pytest.raises(Unauthorized):
            await verifier.verify(hs)


def test_the_anonymous_cookie_is_signed() -> None:
    cookie = AnonymousCookie(settings())
    value = cookie.dumps("anon-123")
    assert cookie.loads(value) == "anon-123"
    # Edit the signed id itself (the signature's last character may carry only padding bits).
    assert cookie.loads(("B" if value[1] != "B" else "C").join([value[0], value[2:]])) is None
    assert cookie.loads(value.replace(".", ".A", 1)) is None
    assert cookie.loads("anon-123") is None
    assert cookie.loads("") is None
    other_key = AnonymousCookie(settings(cookie_secret="another"))
    assert other_key.loads(value) is None
    rotated = AnonymousCookie(
        settings(cookie_secret=STRONG, cookie_secret_previous="x," + DEV_COOKIE_SECRET)
    )
    assert rotated.loads(value) == "anon-123"


def test_an_expired_anonymous_cookie_reads_as_no_cookie(monkeypatch: pytest.MonkeyPatch) -> None:
    cookie = AnonymousCookie(settings(cookie_max_age_s=60))
    value = cookie.dumps("anon-123")
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    assert cookie.loads(value) is None


def test_the_cookie_is_secure_by_default_only_in_the_distributed_mode() -> None:
    assert AnonymousCookie(settings()).secure is False
    distributed = GatewaySettings(
        runtime=DISTRIBUTED, jwt_secret=STRONG, cookie_secret=STRONG, public_url=SHOP
    )
    assert AnonymousCookie(distributed).secure is True
    opted_out = distributed.model_copy(update={"cookie_secure": False})
    assert AnonymousCookie(opted_out).secure is False


def test_a_secure_cookie_is_host_only_and_set_and_cleared_under_one_name() -> None:
    distributed = GatewaySettings(
        runtime=DISTRIBUTED, jwt_secret=STRONG, cookie_secret=STRONG, public_url=SHOP
    )
    for configured in ("store_anon", "__Host-store_anon"):
        cookie = AnonymousCookie(distributed.model_copy(update={"cookie_name": configured}))
        assert cookie.name == "__Host-store_anon"
        for header in (cookie.set_header("anon-123"), cookie.clear_header()):
            assert header.startswith("__Host-store_anon=")
            attributes = {part.strip().lower() for part in header.split(";")[1:]}
            assert {"secure", "httponly", "path=/", "samesite=lax"} <= attributes
            assert not any(part.startswith("domain") for part in attributes)
    plain = AnonymousCookie(settings(cookie_name="__Host-store_anon"))
    assert plain.name == "store_anon"  # browsers drop a `__Host-` cookie that is not Secure
    assert "secure" not in plain.set_header("anon-123").lower()


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({}, "GATEWAY_JWT_SECRET"),
        ({"jwt_secret": STRONG}, "GATEWAY_COOKIE_SECRET"),
        ({"jwt_secret": "short", "cookie_secret": STRONG}, "GATEWAY_JWT_SECRET"),
        ({"jwt_secret": STRONG, "cookie_secret": "x" * 31}, "GATEWAY_COOKIE_SECRET"),
    ],
)
def test_distributed_mode_refuses_dev_or_short_secrets(
    changes: dict[str, str], variable: str
) -> None:
    with pytest.raises(ValueError, match=variable):
        GatewaySettings(runtime=DISTRIBUTED, **changes)  # type: ignore[arg-type]


def test_distributed_mode_refuses_the_dev_or_a_short_service_token() -> None:
    amqp = "amqp://guest:guest@127.0.0.1:5672/"
    for token in (DEV_SERVICE_TOKEN, "s" * 31):
        with pytest.raises(ValueError, match="STORE_SERVICE_TOKEN"):
            RuntimeSettings(broker_url=amqp, service_token=token)
    GatewaySettings(runtime=DISTRIBUTED, jwt_secret=STRONG, cookie_secret=STRONG, public_url=SHOP)
