"""keep-latest takes ASCII digits only: str.isdigit() also accepts superscripts and other
digit characters that int() refuses, which ended the run with a ValueError traceback
instead of an InputError naming the input."""

from __future__ import annotations

import pytest

from gh_docker_publish.core.settings import settings_from_values
from gh_docker_publish.errors import InputError

ENV = {"GITHUB_REPOSITORY": "octo-org/app"}


@pytest.mark.parametrize("raw", ["\u00b2", "1\u00b2", "-1", "1.5", "ten"])
def test_keep_latest_that_is_no_whole_number(raw: str) -> None:
    with pytest.raises(InputError) as info:
        settings_from_values({"mode": "cleanup", "keep-latest": raw}, ENV)
    assert info.value.input_name == "keep-latest"


def test_keep_latest_digits() -> None:
    settings = settings_from_values({"mode": "cleanup", "keep-latest": "10"}, ENV)
    assert settings.keep_latest == 10
