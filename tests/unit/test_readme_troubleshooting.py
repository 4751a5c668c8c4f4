"""README's table of contents and troubleshooting section stay true (issue 15): every
section is listed, and every message the troubleshooting entries quote is text the code
really prints (a reworded error fails this until the README follows)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: One entry per GitHub Packages error the action can raise: (heading, quoted message).
ENTRIES = [
    ("`permission_denied: write_package`", "The token may not write this package."),
    ("`installation not allowed to Create organization package`",
     "GITHUB_TOKEN may not write this organization package"),
    ("`denied`", "The registry denied access to"),
    ("`manifest unknown`", "manifest unknown"),
    ("Lowercase names", "image names must be lowercase."),
    ("Lowercase names",
     "must be lowercase letters and digits, separated by '.', '_', '__' or '-'."),
    ("GHES: subdomain isolation", "No registry of"),
    ("GHES: subdomain isolation", "Ask your site administrator whether GitHub Packages "
     "(Container or Docker registry) is enabled"),
    ("Docker Engine 25+ and the GHES Docker registry",
     "Docker Engine v25 is not compatible with the Docker Registry on GitHub Enterprise "
     "Server. We recommend using Container registry instead."),
]


def _flat(text: str) -> str:
    return " ".join(text.split())


def _source_text() -> str:
    """The package's code with adjacent string literals joined, as Python joins them."""
    code = "\n".join(p.read_text(encoding="utf-8")
                     for p in (ROOT / "src" / "gh_docker_publish").rglob("*.py"))
    return _flat(re.sub(r"([\"'])\s*\n\s*f?([\"'])", "", code))


def _section(heading: str) -> str:
    match = re.search(rf"^### {re.escape(heading)}\n(.*?)(?=^##)", README, re.M | re.S)
    assert match, f"README has no troubleshooting entry '### {heading}'"
    return _flat(match.group(1))


def test_the_contents_list_every_section() -> None:
    contents = re.search(r"^## Contents\n(.*?)^## ", README, re.M | re.S)
    assert contents
    listed = re.findall(r"^- \[(.+?)\]\(#([\w-]+)\)$", contents.group(1), re.M)
    headings = [h for h in re.findall(r"^## (.+)$", README, re.M) if h != "Contents"]
    assert [title for title, _ in listed] == headings
    for title, anchor in listed:  # GitHub's anchors: lowercase, spaces to '-', no punctuation
        assert anchor == re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


@pytest.mark.parametrize(("heading", "message"), ENTRIES)
def test_each_entry_quotes_what_the_code_prints(heading: str, message: str) -> None:
    assert message in _section(heading), f"'### {heading}' does not quote {message!r}"
    assert message in _source_text(), f"the code no longer prints {message!r}"
