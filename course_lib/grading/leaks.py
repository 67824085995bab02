"""Which text of the source notebooks must never reach students, and finding it.

Secret text is every line between ``### BEGIN SOLUTION`` / ``### END SOLUTION``, every
line between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``, and every line of a
model answer (a markdown answer cell of the source). Short lines (``return mask``) are
left out: a student may well write them too. A line that also appears in the release
is not secret either (the stub, a visible test).

A kernel that reads a secret can print it encoded, so `decoded_views` also gives the
text after undoing the common encodings of long outputs: base64 (plain or URL-safe),
hex, either of them over zlib or gzip, rot13, and reversal (of the whole text, hence
of every line).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import gzip
import html
import json
import re
import zlib
from pathlib import Path

MIN_LENGTH = 13  # characters, after stripping
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def cells(path: Path) -> list[dict]:
    return json.loads(Path(path).read_text())["cells"]


def code_and_answers(path: Path) -> list[str]:
    """The distinctive lines a submitted notebook's author wrote (every cell's source);
    [] for a file that is not a readable notebook."""
    try:
        found = [source(c) for c in cells(path) if isinstance(c, dict)]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    lines = (ln.strip() for text in found for ln in text.splitlines())
    return [ln for ln in lines if len(ln) >= MIN_LENGTH]


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def _between(text: str, begin: str, end: str) -> list[str]:
    pattern = rf"### {begin}[^\n]*\n(.*?)### {end}"
    return [ln for block in re.findall(pattern, text, re.S) for ln in block.splitlines()]


def secret_lines(source_notebook: Path, hidden_only: bool = False) -> set[str]:
    """The secret lines of a source notebook (or only its hidden tests)."""
    lines: list[str] = []
    for cell in cells(source_notebook):
        text = source(cell)
        lines += _between(text, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
        if hidden_only:
            continue
        lines += _between(text, "BEGIN SOLUTION", "END SOLUTION")
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "markdown" and meta.get("solution"):
            lines += text.splitlines()
    return {ln.strip() for ln in lines if len(ln.strip()) >= MIN_LENGTH}


def visible_text(path: Path) -> str:
    """The text a reader sees: a notebook's cell sources, or an HTML page without tags."""
    path = Path(path)
    if path.suffix == ".ipynb":
        return "\n".join(source(c) for c in cells(path))
    page = path.read_text(errors="replace")
    page = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


BASE64 = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
HEX = re.compile(r"(?:[0-9a-fA-F]{2}){12,}")
MAX_DECODED = 50_000_000  # bytes: a decompression bomb is not decoded further


def _as_text(data: bytes) -> list[str]:
    """``data`` as text, and decompressed (zlib, gzip) as text when that works."""
    texts = [data.decode("utf-8", errors="ignore")]
    for decompress in (zlib.decompress, gzip.decompress):
        try:
            texts.append(decompress(data)[:MAX_DECODED].decode("utf-8", errors="ignore"))
        except (zlib.error, OSError, EOFError, ValueError):
            pass
    return texts


def _decode_tokens(text: str) -> list[str]:
    """The decodings of every long base64 or hex token of ``text``."""
    decoded = []
    for match in HEX.finditer(text):
        decoded += _as_text(binascii.unhexlify(match.group()))
    for match in BASE64.finditer(text):
        token = match.group()
        padded = token + "=" * (-len(token.rstrip("=")) % 4)
        decode = base64.urlsafe_b64decode if "-" in token or "_" in token else base64.b64decode
        try:
            decoded += _as_text(decode(padded))
        except (binascii.Error, ValueError):
            pass
    return [d for d in decoded if d.strip()]


def decoded_views(text: str, depth: int = 2) -> list[str]:
    """``text`` as it is and after undoing the common encodings (see the module
    docstring); encodings nested up to ``depth`` deep are undone."""
    views = [text, codecs.encode(text, "rot13"), text[::-1]]
    layer = text
    for _ in range(depth):
        found = _decode_tokens(layer)
        if not found:
            break
        layer = "\n".join(found)
        views += [layer, codecs.encode(layer, "rot13"), layer[::-1]]
    return views


def find_leaks(text: str, secrets: set[str], allowed: str = "") -> list[str]:
    """Secret lines (and nbgrader markers) present in ``text``, except those in ``allowed``."""
    leaked = sorted(s for s in secrets if s in text and s not in allowed)
    leaked += [m for m in MARKERS if m in text and m not in allowed]
    return leaked
