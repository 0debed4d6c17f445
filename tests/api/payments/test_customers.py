"""Customers over HTTP: validation problems, one default per owner, ownership."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.payments.conftest import PaymentsApi
from tests.support.services import send_without_credential
from tests.unit.payments.builders import (
    CUSTOMER_CHANGED,
    CUSTOMER_CREATED,
    anonymous,
    billing,
    headers,
    published,
    user,
)

PROBLEM = "application/problem+json"


def problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = dict(response.json())
    if code is not None:
        assert body["code"] == code, body
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (billing(name=""), "name"),
        (billing(name="   "), "name"),
        (billing(email="not-an-email"), "email"),
        (billing(address={"line1": ""}), "address.line1"),
        (billing(address={"city": "  "}), "address.city"),
        (billing(address={"postal_code": ""}), "address.postal_code"),
        (billing(address={"country": "XX"}), "address.country"),
        (billing(address={"country": "DEU"}), "address.country"),
        (billing(vat_id="FR123"), "vat_id"),
        ({k: v for k, v in billing().items() if k != "address"}, "address"),
    ],
)
async def test_each_bad_field_is_a_422_naming_it(
    api: PaymentsApi, body: dict[str, Any], field: str
) -> None:
    response = await api.http.post("/customers", json=body, headers=headers(user()))
    found = problem(response, 422)
    assert field in [error["field"] for error in found["errors"]], found


async def test_country_and_vat_id_are_normalized(api: PaymentsApi) -> None:
    created = await api.create_customer(address={"country": "at"}, vat_id="atu 1234-5678")
    assert created["address"]["country"] == "AT" and created["vat_id"] == "ATU12345678"


async def test_without_identity_is_401(api: PaymentsApi) -> None:
    no_credential = await send_without_credential(
        api.http, "POST", "/customers", json=billing(), headers=headers(user())
    )
    problem(no_credential, 401, "invalid_service_token")
    nobody = await api.http.post("/customers", json=billing(), headers=headers())
    problem(nobody, 401, "identity_required")
    problem(await api.http.get("/customers", headers=headers()), 401)
    bad = {**headers(), "x-store-principal": "{not json"}
    problem(await api.http.get("/customers", headers=bad), 401, "invalid_principal")


async def test_the_first_customer_is_the_default_and_deleting_it_promotes_the_oldest(
    api: PaymentsApi,
) -> None:
    shopper = user()
    first = await api.create_customer(shopper, name="First")
    second = await api.create_customer(shopper, name="Second")
    third = await api.create_customer(shopper, name="Third")
    assert (first["is_default"], second["is_default"], third["is_default"]) == (
        True,
        False,
        False,
    )
    default = await api.http.get("/customers/default", headers=headers(shopper))
    assert default.json()["id"] == first["id"]

    deleted = await api.http.delete(f"/customers/{first['id']}", headers=headers(shopper))
    assert deleted.status_code == 204
    listed = (await api.http.get("/customers", headers=headers(shopper))).json()
    assert [(c["name"], c["is_default"]) for c in listed] == [("Second", True), ("Third", False)]
    problem(await api.http.get(f"/customers/{first['id']}", headers=headers(shopper)), 404)

    chosen = await api.http.post(f"/customers/{third['id']}/default", headers=headers(shopper))
    assert chosen.status_code == 200 and chosen.json()["is_default"] is True
    listed = (await api.http.get("/customers", headers=headers(shopper))).json()
    assert [c["name"] for c in listed if c["is_default"]] == ["Third"]

    changed = await published(api.deps, CUSTOMER_CHANGED)
    assert [c["customer_id"] for c in changed if c["deleted"]] == [first["id"]]
    assert len(await published(api.deps, CUSTOMER_CREATED)) == 3


async def test_no_default_without_customers(api: PaymentsApi) -> None:
    shopper = anonymous()
    problem(
        await api.http.get("/customers/default", headers=headers(shopper)),
        404,
        "no_default_customer",
    )
    only = await api.create_customer(shopper)
    await api.http.delete(f"/customers/{only['id']}", headers=headers(shopper))
    problem(await api.http.get("/customers/default", headers=headers(shopper)), 404)


@pytest.mark.parametrize(
    "stranger",
    [user(), anonymous(), user(None, "another-org")],
    ids=["another user", "another anonymous id", "a member of another org"],
)
async def test_another_owners_customer_is_not_found(api: PaymentsApi, stranger: Any) -> None:
    owner = user()
    customer = await api.create_customer(owner)
    as_stranger = headers(stranger)
    for response in (
        await api.http.get(f"/customers/{customer['id']}", headers=as_stranger),
        await api.http.delete(f"/customers/{customer['id']}", headers=as_stranger),
        await api.http.post(f"/customers/{customer['id']}/default", headers=as_stranger),
    ):
        problem(response, 404, "customer_not_found")
    assert (await api.http.get("/customers", headers=as_stranger)).json() == []
    still = await api.http.get(f"/customers/{customer['id']}", headers=headers(owner))
    assert still.status_code == 200


async def test_anonymous_customers_belong_to_their_cookie(api: PaymentsApi) -> None:
    shopper = anonymous()
    created = await api.create_customer(shopper)
    assert created["owner"] == {"kind": "anonymous", "id": shopper.anonymous_id}
    mine = (await api.http.get("/customers", headers=headers(shopper))).json()
    assert [c["id"] for c in mine] == [created["id"]]


async def test_organization_customers_are_for_members_only(api: PaymentsApi) -> None:
    member, outsider = user(None, "acme"), user(None, "other")
    body = {**billing(), "organization_id": "acme"}
    created = await api.http.post("/customers", json=body, headers=headers(member))
    assert created.status_code == 201
    customer = created.json()
    assert customer["owner"] == {"kind": "organization", "id": "acme"}
    assert customer["organization_id"] == "acme" and customer["is_default"] is True

    listed = await api.http.get("/organizations/acme/customers", headers=headers(member))
    assert [c["id"] for c in listed.json()] == [customer["id"]]
    # The org's customer is not the member's own.
    assert (await api.http.get("/customers", headers=headers(member))).json() == []
    colleague = user(None, "acme")
    shared = await api.http.get(f"/customers/{customer['id']}", headers=headers(colleague))
    assert shared.status_code == 200

    problem(
        await api.http.get("/organizations/acme/customers", headers=headers(outsider)),
        403,
        "not_a_member",
    )
    problem(await api.http.post("/customers", json=body, headers=headers(outsider)), 403)
    problem(await api.http.post("/customers", json=body, headers=headers(anonymous())), 403)
    problem(await api.http.get(f"/customers/{customer['id']}", headers=headers(outsider)), 404)
