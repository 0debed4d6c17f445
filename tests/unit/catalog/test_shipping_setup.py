"""Shipping methods from `store setupproducts`: seeded, listed per destination and currency,
idempotent, replaced as a set, and `SHIPPING_METHODS_AVAILABLE` in place of the file's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from libs.runtime.problems import ProblemError
from services.catalog.bootstrap import CatalogDeps
from services.catalog.settings import CatalogSettings
from services.catalog.setup import EXIT_ENTRY_ERRORS, EXIT_OK
from tests.unit.catalog.test_setup import Run, reader, run, settings, write_config

__all__ = ["reader", "run", "settings"]  # the fixtures, shared with test_setup


def method(code: str, **changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "code": code,
        "name": {"en": f"{code.title()} shipping", "de": f"Versand {code}"},
        "amount": "4.90",
        "tax_code": "shipping",
        "delivery_days_min": 2,
        "delivery_days_max": 5,
    }
    entry.update(changes)
    return entry


async def codes(reader: CatalogDeps, country: str = "DE", currency: str = "EUR") -> list[str]:
    found = await reader.service.shipping.list_shipping_methods(country=country, currency=currency)
    return [m.code for m in found]


async def test_methods_are_seeded_once_and_listed_where_they_ship(
    run: Run, reader: CatalogDeps, tmp_path: Path
) -> None:
    methods = [
        method("standard", free_over="50.00", prices={"CHF": {"amount": "6.90"}}),
        method("express", amount="12.90", countries=["de", "AT"], delivery_days_min=1),
    ]
    path = write_config(tmp_path / "cfg", [], shipping_methods=methods)
    code, output = await run(str(path))
    assert code == EXIT_OK, output
    assert "created    shipping standard" in output and "created    shipping express" in output

    [standard, express] = await reader.service.shipping.list_shipping_methods(
        country="DE", currency="EUR", locale="de"
    )
    assert (standard.name, standard.amount, standard.free_over) == ("Versand standard", 490, 5000)
    assert (express.amount, express.countries, express.delivery_days_min) == (1290, ["DE", "AT"], 1)
    assert await codes(reader, "US") == ["standard"]
    assert await codes(reader, "CH", "CHF") == ["standard"]
    assert await codes(reader, "DE", "USD") == []

    code, again = await run(str(path))
    assert code == EXIT_OK and "0 created, 0 updated, 2 unchanged" in again


async def test_the_file_is_the_set_a_dropped_method_stops_shipping(
    run: Run, reader: CatalogDeps, tmp_path: Path
) -> None:
    folder = tmp_path / "cfg"
    await run(
        str(write_config(folder, [], shipping_methods=[method("standard"), method("express")]))
    )
    code, output = await run(
        str(write_config(folder, [], shipping_methods=[method("standard", amount="5.90")]))
    )
    assert code == EXIT_OK, output
    assert "updated    shipping standard" in output and "deactivated shipping express" in output
    [standard] = await reader.service.shipping.list_shipping_methods(country="DE", currency="EUR")
    assert standard.amount == 590
    with pytest.raises(ProblemError) as gone:
        await reader.service.shipping.get_shipping_quote(
            code="express", country="DE", currency="EUR"
        )
    assert gone.value.code == "shipping_unavailable" and gone.value.status == 422
    # A file without `shipping_methods` leaves them alone.
    await run(str(write_config(folder, [])))
    assert await codes(reader) == ["standard"]


async def test_a_broken_method_applies_none_and_says_where(
    run: Run, reader: CatalogDeps, tmp_path: Path, settings: CatalogSettings
) -> None:
    folder = tmp_path / "cfg"
    for broken, where in (
        (method("bad", countries=["XX"]), "countries.0"),
        (method("bad", delivery_days_min=6), "delivery_days_min"),
        (method("bad", amount="4.999"), "amount"),
        (method("bad", colour="red"), "colour"),
    ):
        path = write_config(folder, [], shipping_methods=[method("standard"), broken])
        code, output = await run(str(path))
        assert code == EXIT_ENTRY_ERRORS and where in output, output
        assert await codes(reader) == []
    # In BHD a charge ends in 0 fils: 1.255 BHD cannot be charged by card.
    bhd = settings.model_copy(update={"currency": "BHD"})
    code, output = await run(
        str(write_config(folder, [], shipping_methods=[method("standard", amount="1.255")])),
        with_settings=bhd,
    )
    assert code == EXIT_ENTRY_ERRORS and "amount_not_chargeable" not in output
    assert "multiples of 10" in output


async def test_shipping_methods_available_replaces_the_files_methods(
    run: Run, reader: CatalogDeps, tmp_path: Path, settings: CatalogSettings
) -> None:
    path = write_config(tmp_path / "cfg", [], shipping_methods=[method("standard")])
    inline = json.dumps([method("pickup", amount="0", countries=["DE"])])
    code, output = await run(
        str(path), with_settings=settings.model_copy(update={"shipping_methods_available": inline})
    )
    assert code == EXIT_OK, output
    assert await codes(reader) == ["pickup"]
    assert await codes(reader, "FR") == []
