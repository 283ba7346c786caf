"""``Content-Disposition: attachment`` for any file name (RFC 6266, RFC 8187).

``filename="…"`` carries an ASCII stand-in that every client understands
(``curl -OJ`` reads only this one); when the real name is not plain ASCII it
follows as ``filename*=utf-8''…``, which browsers prefer.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

FALLBACK_STEM = "download"
_RUNS = re.compile(r"_{2,}")


def attachment(filename: str) -> str:
    """The header value that saves the response as ``filename``."""
    fallback = ascii_fallback(filename)
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=utf-8''{quote(filename, safe='')}"
    return header


def ascii_fallback(filename: str) -> str:
    """``filename`` in printable ASCII without quotes or backslashes (accents dropped)."""
    kept = []
    for char in unicodedata.normalize("NFKD", filename):
        if unicodedata.combining(char):
            continue
        safe = char.isascii() and char.isprintable() and char not in '"\\'
        kept.append(char if safe else "_")
    name = _RUNS.sub("_", "".join(kept)).strip("_ ")
    stem, dot, rest = name.partition(".")
    if not any(char.isalnum() for char in stem):
        stem = FALLBACK_STEM
    return f"{stem}{dot}{rest}"
