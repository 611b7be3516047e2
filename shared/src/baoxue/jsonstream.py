"""The items of one array in a JSON document, read from a binary file a chunk at a time.

``json.load`` holds the whole document and every value in it in memory at once: a batch of
``{"rows": [...]}`` of a few hundred megabytes became gigabytes of Python objects. :func:`iter_array`
keeps one chunk of the file and one item at a time: each item is decoded by the standard library's
decoder (``JSONDecoder.raw_decode``), so what it accepts is exactly JSON; only the structure around the
items (the top-level object, the other members, the array's brackets and commas) is read here.

Errors are :class:`JsonStreamError` with a ``kind``: ``truncated`` (the document ends early),
``invalid`` (not JSON), ``encoding`` (not UTF-8), ``item_too_large`` (an item longer than the limit),
``no_array`` (the top level is not an object with that member as an array).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Any, BinaryIO, Literal

Kind = Literal["truncated", "invalid", "encoding", "item_too_large", "no_array"]
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"
_VALUE_STARTS = '{["-0123456789tfn'
OTHER_MEMBER_LIMIT = 1 << 20
"""Characters a member of the top-level object other than the array may hold."""


class JsonStreamError(ValueError):
    def __init__(self, kind: Kind, message: str, *, item: int = 0) -> None:
        super().__init__(message)
        self.kind: Kind = kind
        self.item = item
        """Items read before the error (the failing one is ``item + 1``)."""


class _Buffer:
    """The decoded text of a file, a chunk at a time; ``pos`` is the next character to read."""

    def __init__(self, fh: BinaryIO, chunk: int) -> None:
        self.fh, self.chunk = fh, chunk
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.text, self.pos, self.eof = "", 0, False

    def fill(self) -> bool:
        """Read the next chunk (dropping what was read); False at the end of the file."""
        if self.eof:
            return False
        data = self.fh.read(self.chunk)
        try:
            decoded = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError:
            raise JsonStreamError("encoding", "The document is not UTF-8 text.") from None
        self.text, self.pos = self.text[self.pos :] + decoded, 0
        self.eof = not data
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end of the file), not consumed."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.fill():
                return ""

    def take(self, expected: str, what: str) -> None:
        found = self.peek()
        if found != expected:
            raise _unexpected(found, what)
        self.pos += 1

    def value(self, limit: int) -> Any:
        """Decode the next value; at most ``limit`` characters of it kept in memory."""
        self.peek()
        while True:
            end = -1
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as err:
                # Running out of text shows as an error at its end (or an unterminated string); an error
                # before that is not JSON, however much more is read.
                unterminated = err.msg.startswith("Unterminated string")
                # At the end of the file only an error at its very end is the document ending early.
                near = len(self.text) - (1 if self.eof else 6)
                if not (unterminated or err.pos >= near):
                    raise JsonStreamError("invalid", f"Not JSON: {err.msg}.") from None
            if end != -1 and (self.eof or (end < len(self.text) and not _may_go_on(value, self.text[end]))):
                self.pos = end
                return value
            if len(self.text) - self.pos > limit:
                raise JsonStreamError("item_too_large", f"A value is longer than {limit} characters.")
            if not self.fill():
                raise JsonStreamError("truncated", "The document ends inside a value.")


def _may_go_on(value: Any, following: str) -> bool:
    """Whether a number decoded at the end of a chunk may have more digits in the next one."""
    return type(value) in (int, float) and following in "0123456789.eE+-"


def _unexpected(found: str, what: str) -> JsonStreamError:
    if not found:
        return JsonStreamError("truncated", f"The document ends where {what} was expected.")
    return JsonStreamError("invalid", f"Expected {what}.")


def iter_array(fh: BinaryIO, member: str, *, max_item_chars: int, chunk: int = 1 << 16) -> Iterator[Any]:
    """Each item of the array ``member`` of the top-level object of the UTF-8 JSON document in ``fh``.

    The whole document is checked as it is read (the other members, the closing brace, nothing after
    it), so a document that is not JSON raises before the iteration ends. An item longer than
    ``max_item_chars`` characters raises ``item_too_large`` without being held whole. A second member of
    the same name is read like any other member (its items are not yielded).
    """
    buffer = _Buffer(fh, chunk)
    first = buffer.peek()
    if first and first != "{" and first in _VALUE_STARTS:
        raise JsonStreamError("no_array", f'The document is not an object with a "{member}" array.')
    buffer.take("{", "an object")
    found, count = False, 0
    if buffer.peek() == "}":
        buffer.pos += 1
    else:
        while True:
            if buffer.peek() != '"':
                raise _unexpected(buffer.peek(), "a member name")
            name = buffer.value(OTHER_MEMBER_LIMIT)
            buffer.take(":", "':'")
            if name == member and not found:
                found = True
                if (opening := buffer.peek()) != "[":
                    if opening and opening in _VALUE_STARTS:
                        raise JsonStreamError("no_array", f'"{member}" is not an array.')
                    raise _unexpected(opening, "a value")
                buffer.pos += 1
                if buffer.peek() == "]":
                    buffer.pos += 1
                else:
                    while True:
                        try:
                            item = buffer.value(max_item_chars)
                        except JsonStreamError as exc:
                            exc.item = count
                            raise
                        count += 1
                        yield item
                        after = buffer.peek()
                        buffer.pos += 1
                        if after == "]":
                            break
                        if after != ",":
                            raise _unexpected(after, "',' or ']'")
            else:
                buffer.value(OTHER_MEMBER_LIMIT)
            after = buffer.peek()
            buffer.pos += 1
            if after == "}":
                break
            if after != ",":
                raise _unexpected(after, "',' or '}'")
    if buffer.peek():
        raise JsonStreamError("invalid", "Something follows the document.")
    if not found:
        raise JsonStreamError("no_array", f'The document has no "{member}" array.')
