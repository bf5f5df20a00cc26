"""Read export files into ``(line, export)`` pairs, rejecting what cannot be read.

Helpers of :mod:`reconcile.sources.exports`. NDJSON is streamed line by line; a ``.json``
document is parsed whole with orjson and, when that fails, salvaged value by value so
that the exports before a broken spot are kept. Nothing here raises on any input bytes,
blocks on any file (only regular files are opened) or holds more than ``max_bytes`` of
one file at once (see :func:`read_exports`).
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import math
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

#: Export file suffixes (case-insensitive), each optionally followed by ``.gz``.
LINE_SUFFIXES = (".ndjson", ".jsonl")
DOCUMENT_SUFFIXES = (".json",)

#: ``reject(line, reason)``: quarantine a line (or the whole file when line is None).
Reject = Callable[[int | None, str], None]

_READ_ERRORS = (OSError, EOFError, zlib.error)
_WHITESPACE = re.compile(r"[ \t\n\r]*")
#: What a file that is not a regular file is, by its ``st_mode``.
_SPECIAL_FILES = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISDIR, "directory"),
)
#: The longest NDJSON line (one export) read, whatever the file cap: browsers keep at most
#: about 10 MB of localStorage per site, so a longer line is no export, and a line is the
#: most a streamed file ever holds in memory.
MAX_LINE_BYTES = 64 << 20
#: The setting that raises the cap, named in reasons so that a person can act on them.
CAP_SETTING = "[exports] max_decompressed_bytes"


class Refused(Exception):
    """A file, or the rest of it, that is not read; ``str(error)`` is the reason."""


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


def _not_regular(mode: int) -> str | None:
    """Why a file of ``st_mode`` is not read, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kind = next((name for is_kind, name in _SPECIAL_FILES if is_kind(mode)), "special file")
    return f"not a regular file ({kind})"


def _open_regular(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open` that never blocks and opens only regular files.

    :func:`read_exports` checks the file type before opening; this re-checks the file
    actually opened, in case it was swapped for a FIFO or a device in between.
    """
    fd = os.open(path, flags | os.O_NONBLOCK)
    try:
        problem = _not_regular(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    if problem is not None:
        os.close(fd)
        raise Refused(problem)
    return fd


@contextmanager
def _open(path: Path, gz: bool) -> Iterator[io.BufferedIOBase]:
    with open(path, "rb", opener=_open_regular) as raw:
        if not gz:
            yield raw
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            yield unzipped


def _read_failure(error: BaseException) -> str:
    if isinstance(error, Refused):
        return str(error)
    detail = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return f"the file could not be read ({detail})"


def _too_big(max_bytes: int, gz: bool) -> Refused:
    size = "decompressed size" if gz else "file size"
    return Refused(f"{size} exceeds the cap of {max_bytes} bytes ({CAP_SETTING})")


def _capped_lines(handle: io.BufferedIOBase, gz: bool, max_bytes: int) -> Iterator[bytes | None]:
    """The lines of a file, never holding more than :func:`line_cap` bytes of it at once.

    A ``.gz`` file may expand to at most ``max_bytes`` in all (a gzip bomb): past that,
    :class:`Refused` is raised. A plain file is as large as it is on disk. A line longer
    than the line cap is skipped unread and yields None.
    """
    cap = line_cap(max_bytes)
    budget = max_bytes if gz else math.inf
    while raw := handle.readline(cap + 1):
        budget -= len(raw)
        if budget < 0:
            raise _too_big(max_bytes, gz)
        if len(raw) <= cap:
            yield raw
            continue
        while not raw.endswith(b"\n") and (raw := handle.readline(cap + 1)):
            budget -= len(raw)
            if budget < 0:
                raise _too_big(max_bytes, gz)
        yield None


def line_cap(max_bytes: int) -> int:
    """The longest NDJSON line read: the file cap, and never above :data:`MAX_LINE_BYTES`."""
    return min(max_bytes, MAX_LINE_BYTES)


def _read_lines(
    path: Path, gz: bool, reject: Reject, max_bytes: int
) -> Iterator[tuple[int, object]]:
    """One export a line, streamed; a bad line is rejected and reading goes on."""
    line_no = 0
    try:
        with _open(path, gz) as handle:
            for line_no, raw in enumerate(_capped_lines(handle, gz, max_bytes), 1):
                if raw is None:
                    reject(line_no, _long_line(max_bytes))
                    continue
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
    except (*_READ_ERRORS, Refused) as exc:
        if line_no == 0:
            reject(None, _read_failure(exc))
        else:
            rest = "are not read" if isinstance(exc, Refused) else "are lost"
            reject(line_no + 1, f"{_read_failure(exc)}: lines from here on {rest}")


def _long_line(max_bytes: int) -> str:
    cap = line_cap(max_bytes)
    if cap < max_bytes:
        return f"line is longer than {cap} bytes, more than one browser's localStorage holds"
    return f"line is longer than the cap of {max_bytes} bytes ({CAP_SETTING})"


def _line_problem(data: bytes, error: orjson.JSONDecodeError) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"line is not valid UTF-8 (byte {data[exc.start]:#04x} at column {exc.start + 1})"
    return f"line is not valid JSON ({error})"


def _read_all(path: Path, gz: bool, max_bytes: int) -> tuple[bytearray, str | None]:
    """The file's bytes (at most ``max_bytes``), and why the rest was not read if so."""
    data = bytearray()  # grown in place: no second copy of the whole file
    try:
        with _open(path, gz) as handle:
            while chunk := handle.read1(min(1 << 16, max_bytes + 1 - len(data))):
                data += chunk
                if len(data) > max_bytes:
                    del data[max_bytes:]  # the salvage reads the exports before the cap
                    raise _too_big(max_bytes, gz)
    except (*_READ_ERRORS, Refused) as exc:
        return data, _read_failure(exc)
    return data, None


def _decode(data: bytes | bytearray) -> tuple[str, str | None]:
    """UTF-8 text (BOM dropped), cut before the first invalid byte with the reason."""
    try:
        text, cut = data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        text = data[: exc.start].decode("utf-8")
        cut = f"the file is not valid UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start})"
    return text.removeprefix("\ufeff"), cut


def _read_document(
    path: Path, gz: bool, reject: Reject, max_bytes: int
) -> Iterator[tuple[int, object]]:
    """A ``.json`` file: one export or an array; salvaged element by element if broken."""
    data, read_error = _read_all(path, gz, max_bytes)
    if read_error and not data:
        reject(None, read_error)
        return
    text, cut = _decode(data)
    del data  # only the text is needed from here on
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


def _file_problem(path: Path) -> str | None:
    """Why ``path`` is not read, found without opening it (a FIFO would block), else None."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if os.path.islink(path):  # dangling, or a loop
            return f"the symbolic link cannot be followed ({exc.strerror})"
        return _read_failure(exc)
    if stat.S_ISDIR(mode):
        return "the directory could not be listed"
    return _not_regular(mode)


def read_exports(path: Path, reject: Reject, max_bytes: int) -> Iterator[tuple[int, object]]:
    """``(line where the export starts, parsed export)`` for each export in the file.

    Only regular files (or symbolic links to one) are read. ``max_bytes`` caps what one
    file may expand to once gunzipped, the size of a plain ``.json`` file (parsed whole)
    and the length of a plain NDJSON line; the exports read before the cap is reached are
    kept and the rest is rejected with the reason.
    """
    problem = _file_problem(path)
    if problem is not None:
        reject(None, problem)
        return
    kind = export_format(path)
    if kind is None:
        reject(None, "not an export file (expected .json, .ndjson or .jsonl, optionally .gz)")
        return
    by_line, gz = kind
    yield from (_read_lines if by_line else _read_document)(path, gz, reject, max_bytes)
