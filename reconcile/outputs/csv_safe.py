"""CSV files a spreadsheet opens safely: every CSV the job writes goes through here.

Support staff open ``quarantine.csv`` in a spreadsheet, and its ids and file names are
untrusted text. A text cell that a spreadsheet would run as a formula (one starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return, OWASP's CSV-injection list, or a
NUL, ASVS 1.2.10) is written with a leading single quote ``'``. So that reading the file
back gives the exact text, a cell that already starts with quotes before such a character
gets one more quote; :func:`read_csv` removes exactly one. Numeric columns are written as
numbers (``-1`` stays ``-1``); quoting of commas, quotes and newlines is pandas' (the
standard :mod:`csv` module).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import pandas as pd

#: The characters that make a spreadsheet read a cell as a formula when they come first.
FORMULA_STARTS: Final[str] = "=+-@\t\r\0"
PREFIX: Final[str] = "'"

_NEEDS_PREFIX = re.compile(f"{PREFIX}*[{re.escape(FORMULA_STARTS)}]")
_PREFIXED = re.compile(f"{PREFIX}+[{re.escape(FORMULA_STARTS)}]")


def neutralise(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and _NEEDS_PREFIX.match(value):
        return PREFIX + value
    return value


def restore(value: Any) -> Any:
    """The inverse of :func:`neutralise` on text read back from a CSV file."""
    if isinstance(value, str) and _PREFIXED.match(value):
        return value[len(PREFIX) :]
    return value


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` without its index, every text cell neutralised."""
    safe = frame.copy()
    for column in safe.columns:
        series = safe[column]
        if series.dtype == object or isinstance(series.dtype, pd.StringDtype | pd.CategoricalDtype):
            safe[column] = series.map(neutralise)
    safe.to_csv(path, index=False, lineterminator="\r\n")  # RFC 4180; quotes a lone \r


def read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV written by :func:`write_csv` as text, with the exact cells restored."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.map(restore)
