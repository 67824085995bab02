"""The book's API reference documents every public module and function of the library a
reader uses (not the checkers and grading tools, which are for instructors)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest
from conftest import ROOT

import course_lib

INTERNAL = ("course_lib.checks", "course_lib.grading", "course_lib.widgets",
            "course_lib.progress")


def reader_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(course_lib.__path__, "course_lib."):
        leaf = info.name.rsplit(".", 1)[1]
        if info.ispkg or leaf.startswith("_") or info.name.startswith(INTERNAL):
            continue
        names.append(info.name)
    return sorted(names)


def test_every_reader_module_is_in_the_api_page():
    page = (ROOT / "book" / "api.md").read_text()
    documented = set(re.findall(r"^\.\. automodule:: (\S+)$", page, re.M))
    assert set(reader_modules()) <= documented, set(reader_modules()) - documented


@pytest.mark.slow
def test_the_built_api_page_shows_every_public_function(html):
    text = (html / "book" / "api.html").read_text()
    missing = []
    for name in reader_modules():
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            own = getattr(value, "__module__", None) == name
            if attribute.startswith("_") or not own or not inspect.isfunction(value):
                continue
            if f'id="{name}.{attribute}"' not in text:
                missing.append(f"{name}.{attribute}")
    assert not missing, missing
    assert len(re.findall(r'<dt class="sig sig-object py" id="course_lib\.', text)) >= 100


@pytest.mark.slow
def test_chapters_link_the_functions_they_introduce_to_the_reference(html):
    linking = [page for page in sorted((html / "book").glob("[01][0-9]_*.html"))
               if re.search(r'href="api\.html#course_lib\.', page.read_text())]
    assert len(linking) >= 6, [page.name for page in linking]
