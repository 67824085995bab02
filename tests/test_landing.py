"""The landing page and the set-up page: what a reader on their own needs before chapter 0."""

from __future__ import annotations

import re
import tomllib

import yaml
from conftest import ROOT, toc_pages

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_landing_page_says_who_how_long_how_to_run_licences_and_citing():
    text = (ROOT / "book" / "index.md").read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    for heading in ("Who it is for", "How long it takes", "Run it", "Licences and citing"):
        assert heading in headings, headings
    assert "{doc}`get_started`" in text
    assert re.search(r"about \d+ to \d+ hours", text)
    assert f"version {PYPROJECT['version']}" in text


def test_licences_and_citation_exist_and_agree():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert PYPROJECT["license"]["text"] == "MIT"
    assert "creativecommons.org/licenses/by/4.0" in (ROOT / "LICENSE-CONTENT").read_text()
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["version"] == PYPROJECT["version"]
    assert citation["license"] == "MIT"
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert citation["repository-code"] == url


def test_get_started_gives_the_four_routes_with_the_pinned_install():
    assert "book/get_started" in toc_pages()
    text = (ROOT / "book" / "get_started.md").read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    for route in ("pip", "conda", "Binder", "Colab"):
        assert any(route in heading for heading in headings), (route, headings)
    assert "pip install -c constraints.txt -e ." in text
    assert "conda env create -f environment.yml" in text
    # the README's student instructions and this page give the same install
    assert "pip install -c constraints.txt -e ." in (ROOT / "README.md").read_text()
