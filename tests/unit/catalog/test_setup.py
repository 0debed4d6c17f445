"""`store setupproducts` on SQLite: idempotent runs, broken entries, dry runs, price changes."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import func, select

from libs.contracts.catalog import ProductAdminOut
from libs.runtime.runtime import shared_for
from libs.runtime.settings import RuntimeSettings
from services.catalog.bootstrap import CatalogDeps, build_deps
from services.catalog.settings import EXAMPLE_PRODUCTS, CatalogSettings
from services.catalog.setup import EXIT_BAD_CONFIG, EXIT_ENTRY_ERRORS, EXIT_OK, setupproducts
from services.catalog.tables import outbox, products

EXAMPLE_IMAGES = EXAMPLE_PRODUCTS.parent / "images"


@pytest.fixture
def settings(tmp_path: Path) -> CatalogSettings:
    return CatalogSettings(
        runtime=RuntimeSettings(data_dir=tmp_path / "data"), seed=False, currency="EUR"
    )


Run = Callable[..., Any]


@pytest.fixture
def run(settings: CatalogSettings) -> Run:
    """Run the command; returns (exit code, printed text)."""

    async def run(
        config: str | None, *, dry_run: bool = False, with_settings: CatalogSettings | None = None
    ) -> tuple[int, str]:
        out = io.StringIO()
        code = await setupproducts(
            config=config,
            dry_run=dry_run,
            settings=with_settings or settings,
            console=Console(file=out, width=200, color_system=None),
        )
        return code, out.getvalue()

    return run


@pytest.fixture
async def reader(settings: CatalogSettings) -> AsyncIterator[CatalogDeps]:
    """A second view of the same database, to check what the command left."""
    deps = build_deps(settings, shared_for(settings.runtime))
    yield deps
    await deps.runtime.engine.dispose()


def write_config(folder: Path, products: list[dict[str, Any]], **extra: Any) -> Path:
    """A config file beside a copy of the example images."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "images").exists():
        shutil.copytree(EXAMPLE_IMAGES, folder / "images")
    path = folder / "products.json"
    path.write_text(json.dumps({"products": products, **extra}), encoding="utf-8")
    return path


def product(key: str, **changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "key": key,
        "tax_code": "general",
        "prices": [{"amount": "12.90"}],
        "images": ["images/mug.jpg"],
        "translations": {"en": {"name": f"{key} (en)"}, "de": {"name": f"{key} (de)"}},
    }
    entry.update(changes)
    return entry


async def snapshot(reader: CatalogDeps) -> dict[str, ProductAdminOut]:
    async with reader.runtime.sessions() as session:
        keys = (await session.execute(select(products.c.key).order_by(products.c.key))).scalars()
        keys = list(keys)
    return {key: await reader.service.get_product_admin(key=key) for key in keys}


async def count_outbox(reader: CatalogDeps) -> int:
    async with reader.runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(outbox))).scalar_one())


def media_files(settings: CatalogSettings) -> set[Path]:
    root = settings.resolved_media_dir()
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


# --------------------------------------------------------------------------------- tests


async def test_the_shipped_example_twice_gives_the_same_catalog(
    run: Run, reader: CatalogDeps, settings: CatalogSettings
) -> None:
    code, first_output = await run(str(EXAMPLE_PRODUCTS))
    assert code == EXIT_OK, first_output
    first = await snapshot(reader)
    files = media_files(settings)
    events = await count_outbox(reader)

    code, output = await run(str(EXAMPLE_PRODUCTS))

    assert code == EXIT_OK
    assert await snapshot(reader) == first
    assert media_files(settings) == files
    assert await count_outbox(reader) == events  # nothing changed, nothing published
    product_lines = [line.split() for line in output.splitlines() if line.startswith("  ")]
    assert product_lines and all(words[0] == "unchanged" for words in product_lines)
    example = json.loads(EXAMPLE_PRODUCTS.read_text())
    entries = (
        len(example["products"]) + len(example["tax_rates"]) + len(example["shipping_methods"])
    )
    assert f"0 created, 0 updated, {entries} unchanged, 0 failed" in output

    # What the example describes: at least 8 products with images, 3 languages, both kinds of price.
    assert len(first) >= 8
    assert sum(1 for p in first.values() if p.images) >= 8
    assert all({"en", "de", "fr"} <= set(p.translations) for p in first.values())
    intervals = {price.interval for p in first.values() for price in p.prices}
    assert {None, "month", "year"} <= intervals
    assert "created    coffee" in first_output


async def test_a_broken_entry_fails_the_run_but_not_the_others(
    run: Run, reader: CatalogDeps, settings: CatalogSettings, tmp_path: Path
) -> None:
    path = write_config(
        tmp_path / "cfg",
        [
            product("good-one"),
            product(
                "broken",
                images=["images/tshirt.png"],
                translations={"en": {"name": "Broken", "statement_descriptor": "X" * 23}},
            ),
            product("good-two", images=["images/cap.png"]),
        ],
    )

    code, output = await run(str(path))

    assert code == EXIT_ENTRY_ERRORS
    assert "broken" in output and "translations.en.statement_descriptor" in output
    assert set(await snapshot(reader)) == {"good-one", "good-two"}
    assert not any(part == "broken" for file in media_files(settings) for part in file.parts)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"prices": [{"amount": "12.999"}]}, "prices.0.amount"),
        ({"prices": [{"amount": "-1"}]}, "prices.0.amount"),
        (
            {"prices": [{"amount": "1", "interval": "month", "interval_count": 13}]},
            "prices.0.interval_count",
        ),
        ({"prices": [{"amount": "1", "unit_amount": 100}]}, "prices.0"),
        ({"translations": {"xx": {"name": "?"}}}, "translations.xx"),
        ({"translations": {}}, "translations"),
        ({"images": ["images/missing.png"]}, "images.0"),
        ({"key": "../etc"}, "key"),
        ({"naem": "typo"}, "naem"),
        ({"shippable": "sometimes"}, "shippable"),
    ],
)
async def test_each_broken_field_is_named_and_nothing_is_created(
    run: Run, reader: CatalogDeps, tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    path = write_config(tmp_path / "cfg", [{**product("bad"), **changes}])

    code, output = await run(str(path))

    assert code == EXIT_ENTRY_ERRORS
    line = next(line for line in output.splitlines() if line.strip().startswith("error"))
    assert f"{field}:" in line
    assert await snapshot(reader) == {}


async def test_a_refused_image_leaves_no_product_and_no_file(
    run: Run, reader: CatalogDeps, settings: CatalogSettings, tmp_path: Path
) -> None:
    folder = tmp_path / "cfg"
    path = write_config(
        folder, [product("fake", images=["images/mug.jpg", "images/not-an-image.png"])]
    )
    (folder / "images" / "not-an-image.png").write_text("just text, not a PNG")

    code, output = await run(str(path))

    assert code == EXIT_ENTRY_ERRORS
    assert "images.1: " in output and "fake" in output
    assert await snapshot(reader) == {}
    assert media_files(settings) == set()  # the good image processed first was removed again


async def test_dry_run_reports_and_changes_nothing(
    run: Run, reader: CatalogDeps, settings: CatalogSettings
) -> None:
    code, output = await run(str(EXAMPLE_PRODUCTS), dry_run=True)

    assert code == EXIT_OK
    assert "created    mug" in output and "dry run" in output
    assert await snapshot(reader) == {}
    assert await count_outbox(reader) == 0
    assert media_files(settings) == set()


async def test_changed_configuration_updates_in_place_and_replaces_sold_prices(
    run: Run, reader: CatalogDeps, settings: CatalogSettings, tmp_path: Path
) -> None:
    folder = tmp_path / "cfg"
    config = write_config(
        folder,
        [product("mug", prices=[{"amount": "12.90"}, {"amount": "4.00", "interval": "month"}])],
    )
    assert (await run(str(config)))[0] == EXIT_OK
    before = (await snapshot(reader))["mug"]
    one_off = next(p for p in before.prices if p.interval is None)
    monthly = next(p for p in before.prices if p.interval == "month")
    async with reader.runtime.transaction() as session:  # the one-off price was sold
        from services.catalog.store import SqlCatalogRepository

        await SqlCatalogRepository(session).mark_used([one_off.id])

    write_config(
        folder,
        [
            product(
                "mug",
                prices=[{"amount": "13.50"}, {"amount": "4.50", "interval": "month"}],
                images=["images/tote.png"],
                translations={"en": {"name": "Big mug"}},
            )
        ],
    )
    code, output = await run(str(config))

    assert code == EXIT_OK
    assert "updated    mug" in output
    assert "replaced by 13.50 EUR" in output and "changed by 4.50 EUR / month" in output
    after = (await snapshot(reader))["mug"]
    assert set(after.translations) == {"en"}
    assert [i.content_hash for i in after.images] != [i.content_hash for i in before.images]
    by_id = {p.id: p for p in after.prices}
    assert by_id[one_off.id].active is False and by_id[one_off.id].unit_amount == 1290
    assert by_id[by_id[one_off.id].replaced_by or ""].unit_amount == 1350
    assert by_id[monthly.id].active and by_id[monthly.id].unit_amount == 450  # edited, never sold
    assert {f.parts[1] for f in media_files(settings)} == {"mug"}
    assert len(media_files(settings)) == 4  # the old image's files are gone: original + 3 sizes
    assert "  unchanged  mug\n" in (await run(str(config)))[1]


async def test_inline_json_and_the_environment_variable(
    run: Run, reader: CatalogDeps, settings: CatalogSettings
) -> None:
    inline = json.dumps([product("inline", images=[])])
    from_env = settings.model_copy(update={"products_available": inline})

    code, output = await run(None, with_settings=from_env)

    assert code == EXIT_OK, output
    assert list(await snapshot(reader)) == ["inline"]
    assert (await run(None))[0] == EXIT_BAD_CONFIG  # nothing configured at all


@pytest.mark.parametrize(
    "config", ["{not json", '{"products": "mug"}', "/no/such/file.json", '{"prodcts": []}']
)
async def test_an_unusable_configuration_is_exit_code_2(run: Run, config: str) -> None:
    code, output = await run(config)
    assert code == EXIT_BAD_CONFIG
    assert "error" in output


async def test_prices_follow_the_configured_currency(
    run: Run, reader: CatalogDeps, settings: CatalogSettings
) -> None:
    inline = json.dumps([product("yen", images=[], prices=[{"amount": "1200"}])])
    code, output = await run(inline, with_settings=settings.model_copy(update={"currency": "JPY"}))
    assert code == EXIT_OK, output
    [price] = (await snapshot(reader))["yen"].prices
    assert (price.unit_amount, price.currency) == (1200, "JPY")


async def test_tax_rates_are_replaced_per_country(
    run: Run, reader: CatalogDeps, tmp_path: Path
) -> None:
    rates = {
        "DE": [
            {"display_name": "MwSt.", "percentage": "19", "inclusive": True},
            {
                "display_name": "MwSt. ermäßigt",
                "percentage": "7",
                "inclusive": True,
                "tax_code": "food",
            },
        ]
    }
    path = write_config(tmp_path / "cfg", [], tax_rates=rates)
    assert (await run(str(path)))[0] == EXIT_OK
    first = await reader.service.get_tax_rates(country="DE", tax_code="food")

    rates["DE"][0]["percentage"] = "16"
    write_config(tmp_path / "cfg", [], tax_rates=rates)
    code, output = await run(str(path))

    assert code == EXIT_OK and "updated    tax rates DE" in output
    assert await reader.service.get_tax_rates(country="DE", tax_code="food") == first
    [general] = await reader.service.get_tax_rates(country="DE", tax_code="clothes")
    assert str(general.percentage) == "16"

    rates["FR"] = [{"display_name": "TVA", "percentage": "20", "inclusive": True, "extra": 1}]
    write_config(tmp_path / "cfg", [], tax_rates=rates)
    code, output = await run(str(path))
    assert code == EXIT_ENTRY_ERRORS
    assert "tax rates FR" in output and "0.extra" in output


def test_the_documented_example_is_the_shipped_one() -> None:
    docs = (EXAMPLE_PRODUCTS.parents[2] / "docs" / "catalog.md").read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in docs.split("```json\n")[1:]]
    documented = [json.loads(block) for block in blocks if '"tax_rates"' in block]
    assert documented == [json.loads(EXAMPLE_PRODUCTS.read_text(encoding="utf-8"))]
