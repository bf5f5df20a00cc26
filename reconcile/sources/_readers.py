"""Read export files into ``(line, export)`` pairs, rejecting what cannot be read.

Helpers of :mod:`reconcile.sources.exports`. NDJSON is streamed line by line; a ``.json``
document is parsed whole with orjson and, when that fails, salvaged value by value so
that the exports before a broken spot are kept. Nothing here raises on any input bytes.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

#: Export file suffixes (case-insensitive), each optionally followed by ``.gz``.
LINE_SUFFIXES = (".ndjson", ".jsonl")
DOCUMENT_SUFFIXES = (".json",)

#: ``reject(line, reason)``: quarantine a line (or the whole file when line is None).
Reject = Callable[[int | None, str], None]

_READ_ERRORS = (OSError, EOFError, zlib.error)
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def export_format(path: Path) -> tuple[bool, bool] | None:
    """``(one export a line, gzipped)`` for an export file name, else None."""
    name = path.name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    if name.endswith(LINE_SUFFIXES):
        return True, gz
    if name.endswith(DOCUMENT_SUFFIXES):
        return False, gz
    return None


def _open(path: Path, gz: bool) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _read_failure(error: BaseException) -> str:
    detail = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return f"the file could not be read ({detail})"


def _read_lines(path: Path, gz: bool, reject: Reject) -> Iterator[tuple[int, object]]:
    """One export a line, streamed; a bad line is rejected and reading goes on."""
    line_no = 0
    try:
        with _open(path, gz) as handle:
            for line_no, raw in enumerate(handle, 1):
                data = raw.strip()
                if data.startswith(codecs.BOM_UTF8):
                    data = data[len(codecs.BOM_UTF8) :].lstrip()
                if not data:
                    continue
                try:
                    export = orjson.loads(data)
                except orjson.JSONDecodeError as exc:
                    reject(line_no, _line_problem(data, exc))
                else:
                    yield line_no, export
    except _READ_ERRORS as exc:
        if line_no == 0:
            reject(None, _read_failure(exc))
        else:
            reject(line_no + 1, f"{_read_failure(exc)}: lines from here on are lost")


def _line_problem(data: bytes, error: orjson.JSONDecodeError) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"line is not valid UTF-8 (byte {data[exc.start]:#04x} at column {exc.start + 1})"
    return f"line is not valid JSON ({error})"


def _read_all(path: Path, gz: bool) -> tuple[bytes, str | None]:
    """The file's bytes, and why the rest could not be read (a corrupt .gz) if so."""
    chunks: list[bytes] = []
    try:
        with _open(path, gz) as handle:
            while chunk := handle.read1(1 << 16):
                chunks.append(chunk)
    except _READ_ERRORS as exc:
        return b"".join(chunks), _read_failure(exc)
    return b"".join(chunks), None


def _decode(data: bytes) -> tuple[str, str | None]:
    """UTF-8 text (BOM dropped), cut before the first invalid byte with the reason."""
    try:
        text, cut = data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        text = data[: exc.start].decode("utf-8")
        cut = f"the file is not valid UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start})"
    return text.removeprefix("\ufeff"), cut


def _read_document(path: Path, gz: bool, reject: Reject) -> Iterator[tuple[int, object]]:
    """A ``.json`` file: one export or an array; salvaged element by element if broken."""
    data, read_error = _read_all(path, gz)
    if read_error and not data:
        reject(None, read_error)
        return
    text, cut = _decode(data)
    tail = read_error or cut
    start = _WHITESPACE.match(text).end()  # type: ignore[union-attr]
    if start == len(text):
        reject(None, f"{tail}: nothing readable" if tail else "the file is empty")
        return
    if tail is None:
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            yield from _whole_document(document, 1 + text.count("\n", 0, start), reject)
            return
    yield from _salvage(text, start, reject, tail)


def _whole_document(document: object, line: int, reject: Reject) -> Iterator[tuple[int, object]]:
    if isinstance(document, list):
        for export in document:
            yield line, export
    elif isinstance(document, dict):
        yield line, document
    else:
        reject(None, f"the file holds a JSON {type(document).__name__}, not an export or array")


class _Lines:
    """1-based line numbers of increasing offsets in a text, counted incrementally."""

    def __init__(self, text: str) -> None:
        self.text, self.line, self.pos = text, 1, 0

    def at(self, pos: int) -> int:
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _salvage(text: str, pos: int, reject: Reject, tail: str | None) -> Iterator[tuple[int, object]]:
    """Decode the exports of a broken document one by one, keeping each that decodes.

    An array is read element by element; anything else as whitespace-separated values.
    From the first element that does not decode, the rest of the file is quarantined.
    Each element is re-checked with orjson so that both paths accept the same JSON.
    """
    lines, decoder, end_of_text = _Lines(text), json.JSONDecoder(), len(text)
    in_array = text.startswith("[", pos)
    if in_array:
        pos = _skip(text, pos + 1)
    while pos < end_of_text:
        if in_array and text.startswith("]", pos):
            pos = _skip(text, pos + 1)
            if pos < end_of_text:
                reject(lines.at(pos), "unexpected data after the array: quarantined from here on")
            return
        try:
            value, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            reason = tail or f"broken JSON ({_where(exc)})"
            reject(lines.at(pos), f"{reason}: the file is quarantined from here on")
            return
        line = lines.at(pos)
        try:
            value = orjson.loads(text[pos:end])
        except orjson.JSONDecodeError as exc:
            reject(line, f"export is not valid JSON ({exc})")
        else:
            yield line, value
        pos = _skip(text, end)
        if in_array and text.startswith(",", pos):
            pos = _skip(text, pos + 1)
        elif in_array and pos < end_of_text and not text.startswith("]", pos):
            reject(lines.at(pos), "expected ',' or ']' in the array: quarantined from here on")
            return
    if tail:
        reject(lines.at(end_of_text), f"{tail}: the file is quarantined from here on")
    elif in_array:
        reject(lines.at(end_of_text), "the file ends before the array is closed")


def _where(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)


def _skip(text: str, pos: int) -> int:
    return _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]


def read_exports(path: Path, reject: Reject) -> Iterator[tuple[int, object]]:
    """``(line where the export starts, parsed export)`` for each export in the file."""
    try:
        is_dir = path.is_dir()
    except OSError:
        is_dir = False  # the open below reports it
    if is_dir:
        reject(None, "the directory could not be listed")
        return
    kind = export_format(path)
    if kind is None:
        reject(None, "not an export file (expected .json, .ndjson or .jsonl, optionally .gz)")
        return
    by_line, gz = kind
    yield from (_read_lines if by_line else _read_document)(path, gz, reject)
