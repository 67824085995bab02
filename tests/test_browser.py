"""The rendered book in a real browser (headless Chromium): every page of the table of
contents loads without JavaScript errors, MathJax typesets every formula, every image
loads, search works, the launch buttons open the page's own source, and no page shows
solution code. A screenshot of one chapter is saved to artifacts/.

The book is served on localhost by a `http.server` thread. Chromium reaches no other host
(headless_chromium.FLAGS), so the page's MathJax, which the book loads from the jsDelivr
CDN, is served from the pinned offline copy of the same MathJax 3 (django-static-mathjax):
the server rewrites only that one URL prefix. Two other CDN scripts, require.js and the
ipywidgets HTML manager (myst-nb adds them to pages that carry widget state), have no
offline copy; their failed loads are the only console errors allowed, and any other
third-party resource fails `test_pages_load_no_other_third_party_resources`.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import threading
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from conftest import ARTIFACTS, REPORT, ROOT, toc_pages
from headless_chromium import chromium, severe_console_entries

pytestmark = pytest.mark.slow

CDN_MATHJAX = "https://cdn.jsdelivr.net/npm/mathjax@3/"
LOCAL_MATHJAX = "/__offline__/mathjax@3/"
# Loaded by myst-nb on pages with widget state; no offline copy exists for these two.
OFFLINE_GAPS = (
    "https://cdnjs.cloudflare.com/ajax/libs/require.js/",
    "https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@",
)
SCREENSHOT_PAGE = "book/02_dales_law"


def _mathjax_dir() -> Path:
    spec = importlib.util.find_spec("mathjax")  # the django-static-mathjax distribution
    assert spec is not None and spec.origin, "django-static-mathjax is not installed (dev extra)"
    folder = Path(spec.origin).parent / "static" / "mathjax"
    assert (folder / "es5" / "tex-mml-chtml.js").is_file(), folder
    return folder


class _BookHandler(SimpleHTTPRequestHandler):
    mathjax_dir: Path

    def log_message(self, *args):  # keep the test output clean
        pass

    def translate_path(self, path):
        url_path = urlsplit(path).path
        if url_path.startswith(LOCAL_MATHJAX):
            return str(self.mathjax_dir / unquote(url_path[len(LOCAL_MATHJAX) :]))
        return super().translate_path(path)

    def do_GET(self):
        file = Path(self.translate_path(self.path))
        if file.is_dir():
            file = file / "index.html"
        if file.suffix == ".html" and file.is_file():
            body = file.read_bytes().replace(CDN_MATHJAX.encode(), LOCAL_MATHJAX.encode())
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # the browser moved on
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def book_url(html):
    handler = type("Handler", (_BookHandler,), {"mathjax_dir": _mathjax_dir()})
    server = _QuietServer(("127.0.0.1", 0), partial(handler, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium") / "profile") as driver:
        yield driver


def source_file(page: str) -> str:
    """The page's source, relative to the repository root (book/02_dales_law.md)."""
    for suffix in (".md", ".ipynb"):
        if (ROOT / f"{page}{suffix}").is_file():
            return f"{page}{suffix}"
    raise AssertionError(f"no source file for {page}")


def has_launch_buttons(page: str) -> bool:
    return bool(re.match(r"book/\d\d_", page)) or page.startswith("exercises/")


# Runs in the page after load: waits for MathJax and the images, then reports what a
# reader sees.
COLLECT_JS = """
const done = arguments[arguments.length - 1];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  let mathjax = "not loaded";
  if (document.querySelector('script[src*="mathjax"]')) {
    const t0 = Date.now();
    const started = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
    while (!started() && Date.now() - t0 < 30000) await sleep(100);
    if (!started()) mathjax = "did not start within 30 s";
    else {
      try { await MathJax.startup.promise; mathjax = "typeset " + MathJax.version; }
      catch (e) { mathjax = "failed: " + e; }
    }
  }
  const t1 = Date.now();
  while ([...document.images].some((i) => !i.complete) && Date.now() - t1 < 30000) {
    await sleep(100);
  }
  const images = [...document.images];
  const math = [...document.querySelectorAll(".math")];
  const prose = document.body.cloneNode(true);
  prose.querySelectorAll("pre, code, script, style, textarea, mjx-container")
    .forEach((e) => e.remove());
  const all = document.body.cloneNode(true);
  all.querySelectorAll("script, style").forEach((e) => e.remove());
  done({
    title: document.title,
    mathjax: mathjax,
    math_elements: math.length,
    mjx_containers: document.querySelectorAll("mjx-container").length,
    untypeset: math.filter((e) => !e.querySelector("mjx-container"))
      .map((e) => e.textContent.slice(0, 80)),
    math_errors: [...document.querySelectorAll("mjx-merror")]
      .map((e) => e.getAttribute("data-mjx-error") || e.textContent.slice(0, 80)),
    images: images.length,
    broken_images: images.filter((i) => !(i.complete && i.naturalWidth > 0))
      .map((i) => i.getAttribute("src")),
    links: [...document.querySelectorAll("a[href]")].map((a) => a.href),
    resources: performance.getEntriesByType("resource").map((r) => r.name),
    prose: prose.textContent,
    text: all.textContent,
  });
})();
"""


@pytest.fixture(scope="module")
def visits(browser, book_url):
    """Every toc page, loaded once: what the console said and what the page shows."""
    reports = {}
    for page in toc_pages():
        browser.get(f"{book_url}/{page}.html")
        report = browser.execute_async_script(COLLECT_JS)
        report["console"] = severe_console_entries(browser)
        reports[page] = report
        if page == SCREENSHOT_PAGE:
            ARTIFACTS.mkdir(exist_ok=True)
            browser.save_screenshot(str(ARTIFACTS / "book_02_dales_law.png"))
    formulas = sum(r["mjx_containers"] for r in reports.values())
    images = sum(r["images"] for r in reports.values())
    line = (
        f"browser: {len(reports)} toc pages checked in headless Chromium, "
        f"{formulas} formulas typeset, {images} images loaded"
    )
    print(line)
    REPORT.append(line)
    return reports


def _is_offline_gap(message: str) -> bool:
    """A failed load of a CDN script with no offline copy, or of /favicon.ico, which
    browsers ask for although the book declares no icon."""
    failed_load = "Failed to load resource" in message
    favicon = re.match(r"http://127\.0\.0\.1:\d+/favicon\.ico ", message) is not None
    return failed_load and (message.startswith(OFFLINE_GAPS) or favicon)


def test_every_toc_page_loads_without_console_errors(visits):
    problems = [
        f"{page}: {message}"
        for page, report in visits.items()
        for message in report["console"]
        if not _is_offline_gap(message)
    ]
    assert not problems, "JavaScript console errors:\n" + "\n".join(problems)


def test_every_toc_page_has_a_title(visits):
    untitled = [page for page, report in visits.items() if not report["title"].strip()]
    assert not untitled, untitled


def test_pages_load_no_other_third_party_resources(visits, book_url):
    problems = [
        f"{page}: {url}"
        for page, report in visits.items()
        for url in report["resources"]
        if not url.startswith(book_url) and not url.startswith(OFFLINE_GAPS)
    ]
    assert not problems, "resources from hosts the tests cannot check:\n" + "\n".join(problems)


def test_mathjax_typeset_every_formula(visits):
    problems = []
    pages_with_math = 0
    for page, report in visits.items():
        if report["math_elements"]:
            pages_with_math += 1
            if not report["mathjax"].startswith("typeset"):
                problems.append(f"{page}: MathJax {report['mathjax']}")
            if report["mjx_containers"] == 0:
                problems.append(f"{page}: {report['math_elements']} formulas, none typeset")
        problems += [f"{page}: formula not typeset: {tex!r}" for tex in report["untypeset"]]
        problems += [f"{page}: MathJax error: {error}" for error in report["math_errors"]]
        for pattern in (r"\$\$", r"\\\(", r"\\\[", r"\$[^$\n]{0,80}\\[A-Za-z]+[^$\n]{0,80}\$"):
            for match in re.finditer(pattern, report["prose"]):
                context = report["prose"][max(0, match.start() - 40) : match.end() + 40]
                problems.append(f"{page}: raw TeX in the text: {' '.join(context.split())!r}")
    assert pages_with_math >= 5, f"only {pages_with_math} pages have formulas"
    assert not problems, "\n".join(problems)


def test_every_image_loaded(visits):
    problems = [
        f"{page}: image did not load: {src}"
        for page, report in visits.items()
        for src in report["broken_images"]
    ]
    assert not problems, "\n".join(problems)
    assert sum(report["images"] for report in visits.values()) >= 20


def test_launch_buttons_open_the_page_source(visits):
    """Binder on every chapter and exercise, Colab on the notebooks; JupyterHub only once an
    instructor sets a hub's address (tests/test_launch.py)."""
    launch = yaml.safe_load((ROOT / "_config.yml").read_text())["launch_buttons"]
    services = {key: url for key, url in launch.items() if key.endswith("_url") and url}
    assert set(services) == {"binderhub_url", "colab_url"}, services
    problems = []
    checked = 0
    for page, report in visits.items():
        if not has_launch_buttons(page):
            continue
        checked += 1
        source = source_file(page)
        for service, base in services.items():
            links = [unquote(link) for link in report["links"] if link.startswith(base)]
            if service == "colab_url" and not source.endswith(".ipynb"):
                # Colab opens only .ipynb: a MyST chapter must not offer a broken button
                if links:
                    problems.append(f"{page}: Colab button for a Markdown source: {links}")
                continue
            if not links:
                problems.append(f"{page}: no {service} launch button")
            elif not all(link.endswith(source) or f"/{source}&" in link for link in links):
                problems.append(f"{page}: {service} does not open {source}: {links}")
    assert checked >= 20, checked
    assert not problems, "\n".join(problems)


def _normalise(text: str) -> str:
    return " ".join(text.split())


def solution_lines() -> dict[str, set[str]]:
    """Per assignment, the distinctive lines of its solutions and hidden tests: at least 25
    characters, not a comment, and absent from the released exercise."""
    lines = {}
    for solution in sorted(ROOT.glob("solutions/*/*.ipynb")):
        exercise = ROOT / "exercises" / solution.parent.name / solution.name
        released = {
            _normalise(line)
            for cell in json.loads(exercise.read_text())["cells"]
            for line in "".join(cell["source"]).splitlines()
        }
        found = set()
        for cell in json.loads(solution.read_text())["cells"]:
            markdown_answer = cell["cell_type"] == "markdown" and cell.get("metadata", {}).get(
                "nbgrader", {}
            ).get("solution")
            inside = False
            for line in "".join(cell["source"]).splitlines():
                stripped = line.strip()
                if stripped in ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS"):
                    inside = True
                elif stripped in ("### END SOLUTION", "### END HIDDEN TESTS"):
                    inside = False
                elif (inside or markdown_answer) and len(stripped) >= 25:
                    if not stripped.startswith("#") and _normalise(line) not in released:
                        found.add(_normalise(line))
        lines[solution.parent.name] = found
    return lines


def solution_leaks(text: str, lines: dict[str, set[str]]) -> list[str]:
    text = _normalise(text)
    leaks = [marker for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS") if marker in text]
    return leaks + [
        f"{name}: {line!r}" for name, found in lines.items() for line in found if line in text
    ]


def test_the_leak_detector_finds_every_solution():
    """The detector would notice: each solution notebook's own text is flagged."""
    lines = solution_lines()
    assert len(lines) == len(list(ROOT.glob("solutions/*/*.ipynb"))) >= 10
    for name, found in lines.items():
        assert len(found) >= 3, f"{name}: too few distinctive solution lines to detect a leak"
        notebook = json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text())
        text = "\n".join("".join(cell["source"]) for cell in notebook["cells"])
        assert len(solution_leaks(text, {name: found})) >= len(found)


def test_no_page_shows_solution_code(visits):
    lines = solution_lines()
    problems = [
        f"{page}: {leak}"
        for page, report in visits.items()
        for leak in solution_leaks(report["text"], lines)
    ]
    assert not problems, "solution code in the rendered book:\n" + "\n".join(problems)


def test_search_finds_dales_law(browser, book_url):
    browser.get(f"{book_url}/search.html?q=Dale")
    found = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const t0 = Date.now();
        const poll = () => {
          const links = [...document.querySelectorAll("#search-results a")].map((a) => a.href);
          const status = document.querySelector("#search-results p, .search-summary");
          const finished = status && /found|did not match/i.test(status.textContent);
          if ((links.length && finished) || Date.now() - t0 > 30000) done(links);
          else setTimeout(poll, 200);
        };
        poll();
        """
    )
    assert any(
        urlsplit(link).path == "/book/02_dales_law.html" for link in found
    ), f"search.html?q=Dale: no result links to book/02_dales_law.html; results: {found}"
    console = [m for m in severe_console_entries(browser) if not _is_offline_gap(m)]
    assert not console, "search.html: console errors:\n" + "\n".join(console)


def test_a_chapter_screenshot_is_saved(visits):
    shot = ARTIFACTS / "book_02_dales_law.png"
    assert SCREENSHOT_PAGE in visits
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot
    assert shot.stat().st_size > 20_000, "the screenshot looks empty"


@pytest.mark.parametrize("page", [p for p in toc_pages() if re.match(r"book/(0[1-9]|10)_", p)])
def test_explorers_work_on_the_static_page(browser, book_url, page):
    """Each chapter's explorer, pre-drawn at build time: every slider swaps the picture and
    the shown value, and touches no other explorer (course_lib.widgets.static_explorer)."""
    from test_widgets_static import explorer_problems

    browser.get(f"{book_url}/{page}.html")
    count, problems = explorer_problems(browser)
    assert count >= 1 and problems == [], (page, count, problems)
    if page == "book/01_sparse_connectivity":  # what a reader sees after moving the slider
        ARTIFACTS.mkdir(exist_ok=True)
        explorer = browser.find_element("css selector", ".static-explorer")
        explorer.screenshot(str(ARTIFACTS / "explorer_01_after_slider.png"))


RESOLUTION_JS = """
return [...document.querySelectorAll("main img")]
  .filter((img) => img.clientWidth > 0 && /\\.png$|^data:image\\/png/.test(img.src))
  .map((img) => ({src: img.src.slice(0, 80), natural: img.naturalWidth,
                  shown: img.clientWidth}));
"""


@pytest.mark.parametrize("page", [p for p in toc_pages() if re.match(r"book/\d\d_", p)])
def test_figures_have_twice_the_pixels_they_are_shown_at(browser, book_url, page):
    """Retina figures (course_lib.plotting.use_retina_figures, figure_with_alt,
    static_explorer): sharp on high-density screens and when a reader zooms."""
    browser.get(f"{book_url}/{page}.html")
    images = browser.execute_script(RESOLUTION_JS)
    assert len(images) >= 2, (page, images)
    blurry = [image for image in images if image["natural"] < 1.9 * image["shown"]]
    assert not blurry, (page, blurry)


@contextmanager
def on_a_phone(browser):
    """The browser as a 400-px-wide phone screen (device pixel ratio 2) for the block."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 400, "height": 900, "deviceScaleFactor": 2,
                             "mobile": True})
    try:
        yield
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


PHONE_OVERFLOW_JS = """
const page = document.documentElement;
const wide = [...document.querySelectorAll("article .cell_output pre")]
  .filter((pre) => pre.clientWidth > 0 && pre.scrollWidth > pre.clientWidth + 1)
  .map((pre) => pre.textContent.slice(0, 60));
return {page: page.scrollWidth - page.clientWidth, wide: wide};
"""


@pytest.mark.parametrize("page", [p for p in toc_pages() if re.match(r"book/\d\d_", p)])
def test_on_a_400_px_phone_nothing_overflows_sideways(browser, book_url, page):
    """The page does not scroll sideways and no printed output needs a horizontal scroll
    (book/_ext/static/book_fixes.css wraps them); code cells and wide tables keep their own
    scroll boxes."""
    with on_a_phone(browser):
        browser.get(f"{book_url}/{page}.html")
        report = browser.execute_script(PHONE_OVERFLOW_JS)
    assert report["page"] <= 0 and report["wide"] == [], (page, report)


# Every figure PNG records the height of its smallest text in its own pixels, in a PNG text
# chunk (course_lib.plotting.TEXT_SIZE_KEY). Read here with a hand-written PNG parser: the
# writer is matplotlib.
FIGURES_JS = """
return [...document.querySelectorAll("article .cell_output img, article .static-explorer img")]
  .filter((img) => img.clientWidth > 0)
  .map((img) => ({src: img.currentSrc, natural: img.naturalWidth, shown: img.clientWidth}));
"""
LEGIBLE_PX = 9


def png_text_chunks(data: bytes) -> dict[str, str]:
    """The tEXt chunks of a PNG file (keyword -> text)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks, at = {}, 8
    while at < len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        if kind == b"tEXt":
            key, _, text = body.partition(b"\0")
            chunks[key.decode("latin-1")] = text.decode("latin-1")
        at += 12 + length
    return chunks


def test_png_text_chunks_reads_what_matplotlib_writes():
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.set_title("t", fontsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=144, metadata={"smallest-text-px": "14.00"})
    plt.close(fig)
    assert png_text_chunks(buffer.getvalue())["smallest-text-px"] == "14.00"


def _image_bytes(src: str, html: Path) -> bytes:
    import base64

    if src.startswith("data:"):
        return base64.b64decode(src.partition(",")[2])
    return (html / unquote(urlsplit(src).path).lstrip("/")).read_bytes()


def smallest_label_px(browser, html) -> list[tuple[str, float | None]]:
    """Each shown figure's smallest text height in CSS pixels (None: not recorded)."""
    shown = []
    for image in browser.execute_script(FIGURES_JS):
        chunks = png_text_chunks(_image_bytes(image["src"], html))
        text_px = chunks.get("smallest-text-px")
        scale = image["shown"] / image["natural"]
        label = image["src"][:60] if not image["src"].startswith("data:") else "inline figure"
        shown.append((label, None if text_px is None else round(float(text_px) * scale, 1)))
    return shown


@pytest.mark.parametrize("page", [p for p in toc_pages() if re.match(r"book/\d\d_", p)])
def test_figure_labels_are_legible_on_a_laptop(browser, book_url, html, page):
    """At the book's content width on a 1280-px screen, no figure's text is shown smaller
    than 9 px (wide multi-panel figures shrink; course_lib.plotting.TEXT_SIZE_KEY)."""
    browser.get(f"{book_url}/{page}.html")
    labels = smallest_label_px(browser, html)
    assert labels, page
    unrecorded = [src for src, px in labels if px is None]
    small = [(src, px) for src, px in labels if px is not None and px < LEGIBLE_PX]
    assert not unrecorded and not small, (page, unrecorded, small)


@pytest.mark.parametrize("page", [p for p in toc_pages() if re.match(r"book/\d\d_", p)])
def test_figure_labels_are_legible_on_a_400_px_phone(browser, book_url, html, page):
    """On a phone, rows of panels are shown stacked (course_lib.plotting.for_phone), so their
    labels stay as legible as on a laptop instead of shrinking with the screen."""
    with on_a_phone(browser):
        browser.get(f"{book_url}/{page}.html")
        labels = smallest_label_px(browser, html)
        if page == SCREENSHOT_PAGE:
            ARTIFACTS.mkdir(exist_ok=True)
            browser.save_screenshot(str(ARTIFACTS / "book_02_dales_law_phone.png"))
    small = [(src, px) for src, px in labels if px is None or px < LEGIBLE_PX]
    assert labels and not small, (page, small)
