"""Which locale the gateway asks the services for."""

from __future__ import annotations

import pytest

from gateway.interactor import Locale


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de_DE"),
        ("fr-CH", "fr_CH"),
        ("en;q=0.5, fr;q=0.9", "fr"),
        ("zz, de", "de"),
        ("x-klingon", "en"),
        ("*", "en"),
        ("de;q=oops, fr", "fr"),
        ("", "en"),
        ("de_DE.UTF-8", "de_DE"),
        ("en_US.utf8", "en_US"),
        ("de@euro", "de"),
        ("sr-Latn-RS", "sr_Latn_RS"),
    ],
)
def test_a_header_is_a_hint_never_an_error(accept_language: str, expected: str) -> None:
    locale = Locale(explicit=None, accept_language=accept_language, default="en")
    assert locale.for_services == expected


def test_an_explicit_locale_wins_and_is_left_to_the_services_to_check() -> None:
    locale = Locale(explicit="zz", accept_language="de", default="en")
    assert locale.for_services == "zz"
