"""Launch routes on the built pages: no JupyterHub button without a hub (and no placeholder
address anywhere), and live code (thebe) on every chapter, pointed at this repository's
Binder configuration. The Binder environment itself is tested in tests/test_binder.py."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import ROOT, toc_pages

pytestmark = pytest.mark.slow

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
CHAPTERS = [page for page in toc_pages() if re.match(r"book/\d\d_", page)]


def test_no_jupyterhub_button_or_placeholder_without_a_configured_hub(html):
    assert not CONFIG["launch_buttons"].get("jupyterhub_url")
    for page in toc_pages():
        text = (html / f"{page}.html").read_text()
        assert "example.edu" not in text and "example.com" not in text, page
        # the launch buttons (the instructor guide shows such a link as an example, in text)
        buttons = re.findall(r'<a href="([^"]+)"[^>]*class="btn[^"]*dropdown-item', text)
        hub = [link for link in buttons if "hub/user-redirect/git-pull" in link]
        assert not hub, f"{page} offers a JupyterHub button: {hub}"
    # the same search finds Binder's button, so an empty result above means something
    chapter = (html / f"{CHAPTERS[0]}.html").read_text()
    assert any("mybinder.org" in link for link in re.findall(
        r'<a href="([^"]+)"[^>]*class="btn[^"]*dropdown-item', chapter))


def test_every_chapter_offers_live_code_through_this_repositorys_binder(html):
    repository = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    for page in CHAPTERS:
        text = (html / f"{page}.html").read_text()
        assert "initThebeSBT()" in text, f"{page}: no Live Code button"
        config = re.search(r'<script type="text/x-thebe-config">(.*?)</script>', text, re.S)
        assert config, f"{page}: no thebe configuration"
        settings = config.group(1)
        assert f'repo: "{repository}"' in settings, settings
        assert f'ref: "{CONFIG["repository"]["branch"]}"' in settings, settings
        # the kernel starts in the chapter's folder, as when the book is built
        assert 'path: "./book"' in settings, settings
