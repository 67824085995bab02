"""Small fixes to the rendered pages, each for a problem a reader would meet.

Loaded by ``_config.yml`` (``sphinx.local_extensions``); the browser tests
(tests/test_browser.py) check the pages they produce.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

INLINE_PNG = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    """sphinx-thebe 0.3.1 registers its inline configuration twice under Sphinx 7.4 (once
    with filename None, once with ''), Sphinx's own de-duplication misses it, and the
    second ``const THEBE_JS_URL`` throws a SyntaxError in the browser on every page."""
    seen, kept = set(), []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        key = (getattr(script, "filename", script) or "", repr(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def colab_only_for_notebooks(app, pagename, templatename, context, doctree):
    """Colab opens ``.ipynb`` files only: a chapter written in MyST Markdown keeps its
    Binder and JupyterHub buttons (the course environment reads MyST through jupytext),
    but gets no Colab button that would lead to an error page."""
    if context.get("page_source_suffix") == ".ipynb":
        return
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            group["buttons"] = [b for b in group["buttons"] if b.get("text") != "Colab"]


def definite_colour_mode(app, pagename, templatename, context, doctree):
    """With no ``default_mode`` in the page context, pydata-sphinx-theme logs "Got invalid
    theme mode" to the browser console on a reader's first visit: follow the system's."""
    if not context.get("default_mode"):
        context["default_mode"] = "auto"


def inline_images_to_files(app, pagename, templatename, context, doctree):
    """Figures with computed alt texts, their phone versions and the explorers' pictures
    are inline PNGs (data URIs) in the notebook outputs. Written out as files, a browser
    downloads only the picture it shows: a phone skips every laptop version, and a page
    starts faster. The files are named by their content, so a rebuild rewrites nothing."""
    body = context.get("body") or ""
    if "data:image/png;base64," not in body:
        return
    folder = Path(app.outdir) / "_images"
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "../" * pagename.count("/") + "_images/"

    def to_file(match):
        png = base64.b64decode(match.group(1))
        name = f"figure-{hashlib.sha256(png).hexdigest()[:32]}.png"
        if not (folder / name).exists():
            (folder / name).write_bytes(png)
        return prefix + name

    context["body"] = INLINE_PNG.sub(to_file, body)


def add_static_folder(app):
    """book_fixes.css (printed outputs wrap on narrow screens) lives in ./static."""
    app.config.html_static_path.append(str(Path(__file__).parent / "static"))


def setup(app):
    app.connect("builder-inited", add_static_folder)
    app.add_css_file("book_fixes.css")
    app.connect("html-page-context", definite_colour_mode)
    app.connect("html-page-context", inline_images_to_files)
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    # after sphinx-book-theme adds the launch buttons (priority 501)
    app.connect("html-page-context", colab_only_for_notebooks, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
