"""Text every store takes: what in a string PostgreSQL, UTF-8, JSON files and Excel sheets refuse.

- NUL: PostgreSQL refuses it in ``text`` (``COPY`` and ``INSERT`` raise ``DataError``).
- Other control characters (Unicode category Cc but tab, line feed and carriage return): XML 1.0 refuses
  the C0 ones, so an ``.xlsx`` cannot hold them (openpyxl raises ``IllegalCharacterError``); DEL and the
  C1 controls are no text a person typed either (mostly mis-decoded bytes).
- An unpaired surrogate (U+D800–U+DFFF alone; JSON's ``"\\ud800"`` decodes to one): it has no UTF-8
  encoding, so no database, cipher or file takes it (``UnicodeEncodeError``).

Input from outside (a department's feed) is checked with :func:`unstorable`; what must be kept of it
anyway (the original cells for an error report) goes through :func:`storable`, which puts U+FFFD, the
replacement character, in place of each such character.
"""

from __future__ import annotations

import re
from typing import Literal

REPLACEMENT = "\ufffd"
Unstorable = Literal["control_character", "invalid_text"]

_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_SURROGATE = "\ud800-\udfff"
_UNSTORABLE = re.compile(f"[{_CONTROL}{_SURROGATE}]")
_CONTROLS = re.compile(f"[{_CONTROL}]")
_SURROGATES = re.compile(f"[{_SURROGATE}]")


def unstorable(text: str) -> set[Unstorable]:
    """What of the kinds above ``text`` holds (empty for ordinary text: one regex search)."""
    if _UNSTORABLE.search(text) is None:
        return set()
    found: set[Unstorable] = set()
    if _CONTROLS.search(text):
        found.add("control_character")
    if _SURROGATES.search(text):
        found.add("invalid_text")
    return found


def storable(text: str) -> str:
    """``text`` with U+FFFD in place of every character :func:`unstorable` finds."""
    return _UNSTORABLE.sub(REPLACEMENT, text)


def any_unstorable(texts: list[str]) -> bool:
    """Whether any of ``texts`` holds such a character (one search over them all: the common case)."""
    return _UNSTORABLE.search("".join(texts)) is not None
