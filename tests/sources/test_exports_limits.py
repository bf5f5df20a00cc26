"""The exports loader against hostile files and benign flags (SPEC 1.2).

- Only regular files are read: a FIFO, socket or device is quarantined without being
  read (a FIFO would block the run forever), and a dangling or looping symbolic link is
  a quarantine entry, not a crash.
- ``max_decompressed_bytes`` bounds what one file may expand to: a gzip bomb costs its
  file, never the run's memory; the exports read before the cap are kept.
- A ``tutorial_progress_*`` key that cannot be a record (a flag such as
  ``tutorial_progress_migrated = true``) is an ignored key, not a quarantine entry.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from reconcile.config import Config, load_config
from reconcile.sources import _readers
from reconcile.sources._readers import MAX_LINE_BYTES
from reconcile.sources.exports import ExportsLoad, load_exports
from tests.sources.test_exports import export, ids_of, key, line, ndjson, progress, write

README = Path(__file__).parents[2] / "README.md"
MiB = 1 << 20
CAP = MiB


def over(cap: int = CAP) -> str:
    """The end of a reason for a file or line past the cap."""
    return f"the cap of {cap} bytes ([exports] max_decompressed_bytes)"


def good(folder: Path, name: str, user: str) -> Path:
    return ndjson(folder / name, export(user, {key("t", user): progress("t", user)}))


def users(load: ExportsLoad) -> list[str]:
    return load.records["user_id"].tolist()


def quarantined(load: ExportsLoad) -> list[tuple[str, Any, str]]:
    """``(file name, line or None, reason)`` of each quarantine entry."""
    return [
        (Path(file).name, None if pd.isna(at) else at, reason)
        for file, at, reason in load.quarantine[["source_file", "source_line", "reason"]].values
    ]


# --------------------------------------------------------------------------- special files


@pytest.mark.timeout(20)
def test_a_fifo_is_quarantined_without_blocking_and_the_files_beside_it_are_read(
    tmp_path: Path,
) -> None:
    good(tmp_path, "a.ndjson", "a")
    os.mkfifo(tmp_path / "b.ndjson")
    os.mkfifo(tmp_path / "pipe")  # no export suffix: skipped, never opened
    good(tmp_path, "c.ndjson", "c")
    load = load_exports([tmp_path])
    assert users(load) == ["a", "c"]
    assert quarantined(load) == [("b.ndjson", None, "not a regular file (FIFO)")]
    assert load.stats.files == 3


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ["f.json.gz", "f.jsonl", "fifo"])
def test_a_fifo_named_explicitly_or_through_a_link_is_quarantined(
    tmp_path: Path, name: str
) -> None:
    fifo, other = tmp_path / name, tmp_path / "other"
    os.mkfifo(fifo)
    os.mkfifo(other)
    (tmp_path / "link.json").symlink_to(other)
    load = load_exports([fifo, tmp_path / "link.json"])
    assert load.records.empty
    assert [reason for *_, reason in quarantined(load)] == ["not a regular file (FIFO)"] * 2


@pytest.mark.timeout(20)
def test_a_fifo_swapped_in_after_the_type_check_is_refused_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: the opened file is checked again (fstat), and opened non-blocking."""
    monkeypatch.setattr(_readers, "_file_problem", lambda path: None)
    for name in ("e.ndjson", "e.json.gz"):
        os.mkfifo(tmp_path / name)
    load = load_exports([tmp_path])
    assert quarantined(load) == [
        ("e.json.gz", None, "not a regular file (FIFO)"),
        ("e.ndjson", None, "not a regular file (FIFO)"),
    ]


@pytest.mark.timeout(20)
def test_sockets_and_devices_are_quarantined_unread(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(tmp_path / "s.ndjson"))
        (tmp_path / "zero.json").symlink_to("/dev/zero")  # endless: the cap bounds a regression
        good(tmp_path, "u.ndjson", "u")
        load = load_exports([tmp_path], max_decompressed_bytes=CAP)
    finally:
        server.close()
    assert users(load) == ["u"]
    assert quarantined(load) == [
        ("s.ndjson", None, "not a regular file (socket)"),
        ("zero.json", None, "not a regular file (character device)"),
    ]


def test_a_link_to_a_regular_file_is_read(tmp_path: Path) -> None:
    target = good(tmp_path / "elsewhere", "real.txt", "u")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "link.ndjson").symlink_to(target)
    load = load_exports([tmp_path / "in"])
    assert users(load) == ["u"] and load.quarantine.empty
    assert load.records["source_file"].tolist() == [str(tmp_path / "in" / "link.ndjson")]


def test_dangling_and_looping_links_are_quarantined_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "dangling.ndjson").symlink_to(tmp_path / "gone.ndjson")
    (tmp_path / "loop.json").symlink_to(tmp_path / "loop.json")
    good(tmp_path, "u.ndjson", "u")
    expected = [
        (
            "dangling.ndjson",
            None,
            "the symbolic link cannot be followed (No such file or directory)",
        ),
        (
            "loop.json",
            None,
            "the symbolic link cannot be followed (Too many levels of symbolic links)",
        ),
    ]
    load = load_exports([tmp_path])
    assert users(load) == ["u"] and quarantined(load) == expected
    named = load_exports([tmp_path / "dangling.ndjson", tmp_path / "loop.json"])
    assert named.records.empty and quarantined(named) == expected


# --------------------------------------------------------------------------- size cap

ENV_A, ENV_B = line(export("a")), line(export("b"))
WHITESPACE = b" " * (4 * MiB)


def test_an_ndjson_gzip_bomb_keeps_the_lines_before_the_cap(tmp_path: Path) -> None:
    path = write(tmp_path / "bomb.ndjson.gz", ENV_A + b"\n" + ENV_A + b"\n" + WHITESPACE + ENV_B)
    load = load_exports([path], max_decompressed_bytes=CAP)
    assert users(load) == ["a", "a"]
    reason = f"decompressed size exceeds {over()}: lines from here on are not read"
    assert quarantined(load) == [("bomb.ndjson.gz", 3, reason)]


def test_an_ndjson_gzip_bomb_of_short_lines_is_capped_too(tmp_path: Path) -> None:
    path = write(tmp_path / "bomb.jsonl.gz", ENV_A + b"\n" + b" \n" * (2 * MiB))
    load = load_exports([path], max_decompressed_bytes=CAP)
    assert users(load) == ["a"]
    [(_, at, reason)] = quarantined(load)
    assert reason.startswith(f"decompressed size exceeds {over()}") and at > 2


@pytest.mark.parametrize(
    ("name", "size"), [("bomb.json.gz", "decompressed size"), ("big.json", "file size")]
)
def test_a_json_file_past_the_cap_keeps_the_exports_before_it(
    tmp_path: Path, name: str, size: str
) -> None:
    path = write(tmp_path / name, b"[" + ENV_A + b",\n" + WHITESPACE + ENV_B + b"]")
    load = load_exports([path], max_decompressed_bytes=CAP)
    assert users(load) == ["a"]
    reason = f"{size} exceeds {over()}: the file is quarantined from here on"
    assert quarantined(load) == [(name, 2, reason)]


def test_a_whitespace_only_bomb_is_quarantined_as_a_whole(tmp_path: Path) -> None:
    path = write(tmp_path / "bomb.json.gz", WHITESPACE)
    load = load_exports([path], max_decompressed_bytes=CAP)
    reason = f"decompressed size exceeds {over()}: nothing readable"
    assert quarantined(load) == [("bomb.json.gz", None, reason)]


def test_a_plain_ndjson_line_over_the_cap_costs_only_that_line(tmp_path: Path) -> None:
    path = ndjson(tmp_path / "big.ndjson", ENV_A, WHITESPACE + ENV_B, ENV_B, ENV_A)
    load = load_exports([path], max_decompressed_bytes=CAP)
    assert users(load) == ["a", "b", "a"]
    assert load.records["source_line"].tolist() == [1, 3, 4]
    assert quarantined(load) == [("big.ndjson", 2, f"line is longer than {over()}")]


@pytest.mark.parametrize(
    ("name", "kept", "rejected"),
    [
        ("e.ndjson.gz", 1, 1),  # the second line would pass the cap
        ("e.json.gz", 2, 1),  # the cut falls on the last newline: both exports whole
        ("e.json", 2, 1),
        ("e.ndjson", 0, 2),  # the cap is on each line: both are one byte too long
    ],
)
def test_a_file_or_plain_ndjson_line_of_exactly_the_cap_is_read_whole(
    tmp_path: Path, name: str, kept: int, rejected: int
) -> None:
    data = ENV_A + b"\n" + ENV_A + b"\n"
    path = write(tmp_path / name, data)
    size = len(ENV_A) + 1 if name == "e.ndjson" else len(data)  # a plain line, or the file
    load = load_exports([path], max_decompressed_bytes=size)
    assert users(load) == ["a", "a"] and load.quarantine.empty
    load = load_exports([path], max_decompressed_bytes=size - 1)
    assert (len(load.records), len(load.quarantine)) == (kept, rejected)
    assert load.quarantine["reason"].str.contains(over(size - 1), regex=False).all()


def test_the_cap_is_a_setting_of_the_config_file(tmp_path: Path) -> None:
    assert Config().max_decompressed_bytes == 1 << 30
    path = tmp_path / "reconcile.toml"
    path.write_text("[exports]\nmax_decompressed_bytes = 1048576\n", encoding="utf-8")
    assert load_config(path).max_decompressed_bytes == MiB
    example = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)[0]
    assert "[exports]\nmax_decompressed_bytes = " in textwrap.dedent(example)
    path.write_text(textwrap.dedent(example), encoding="utf-8")
    assert load_config(path).max_decompressed_bytes == Config().max_decompressed_bytes


_MEASURE = """
import resource, sys
from pathlib import Path
from reconcile.sources.exports import load_exports

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

before = peak_mib()
cap = int(sys.argv[1])
load = load_exports([Path(p) for p in sys.argv[2:]], max_decompressed_bytes=cap)
print(peak_mib() - before, len(load.records), len(load.quarantine))
"""


@pytest.mark.timeout(300)
def test_memory_stays_bounded_by_the_cap_whatever_the_bomb(tmp_path: Path) -> None:
    """200 MiB of whitespace a file (one line, as the reported bomb), a 10 MiB cap."""
    bombs = []
    for name in ("bomb.ndjson.gz", "bomb.json.gz"):
        bombs.append(tmp_path / name)
        with gzip.open(bombs[-1], "wb", compresslevel=6) as out:
            out.write(ENV_A + b"\n" + (b"\n" if "ndjson" in name else b""))
            chunk = b" " * (8 * MiB)
            for _ in range(25):
                out.write(chunk)
    assert sum(b.stat().st_size for b in bombs) < 4 * MiB  # a small file, a huge expansion
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_MEASURE), str(10 * MiB), *map(str, bombs)],
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    )
    growth, records, rejections = done.stdout.split()
    assert (int(records), int(rejections)) == (2, 2)
    assert float(growth) < 80, f"peak RSS grew {float(growth):.0f} MiB reading 400 MiB of bombs"


@pytest.mark.timeout(300)
def test_a_one_line_ndjson_bomb_stays_small_with_the_default_cap(tmp_path: Path) -> None:
    """NDJSON holds one line at a time, and a line is never longer than one export can be."""
    bomb = tmp_path / "bomb.ndjson.gz"
    with gzip.open(bomb, "wb", compresslevel=6) as out:
        out.write(ENV_A + b"\n")
        for _ in range(40):
            out.write(b" " * (8 * MiB))  # 320 MiB, one line, under the default 1 GiB cap
    cap = Config().max_decompressed_bytes
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_MEASURE), str(cap), str(bomb)],
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    )
    growth, records, rejections = done.stdout.split()
    assert (int(records), int(rejections)) == (1, 1)
    assert float(growth) < 3 * MAX_LINE_BYTES / MiB, f"peak RSS grew {float(growth):.0f} MiB"
    (reason,) = load_exports([bomb]).quarantine["reason"]
    assert "longer than 67108864 bytes" in reason


# --------------------------------------------------------------------------- flags, not records

GOOD = {key(): progress()}


def load_storage(tmp_path: Path, user: str, storage: dict[str, Any]) -> ExportsLoad:
    return load_exports([ndjson(tmp_path / "e.ndjson", export(user, storage))])


@pytest.mark.parametrize(
    "value",
    ["true", "1", '"1"', "42", "null", "[1, 2]", "done", "", True, 1, None, 2.5],
    ids=repr,
)
def test_a_flag_that_cannot_be_a_record_is_an_ignored_key(tmp_path: Path, value: Any) -> None:
    storage = {**GOOD, "tutorial_progress_migrated": value, "theme": "dark"}
    load = load_storage(tmp_path, "u-42", storage)
    assert load.quarantine.empty, load.quarantine["reason"].tolist()
    assert load.records["storage_key"].tolist() == [key()] and load.foreign.empty
    assert (load.stats.progress_records, load.stats.ignored_keys) == (1, 2)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "value is null"),
        ("null", "value is null"),
        ("{broken", "value is not valid JSON"),
        ("42", "value is a JSON int, not an object"),
        (7, "value is a JSON int, not an object"),
        ("true", "value is a JSON bool, not an object"),
    ],
)
def test_a_key_naming_the_envelope_user_stays_quarantined_whatever_its_value(
    tmp_path: Path, value: Any, reason: str
) -> None:
    load = load_storage(tmp_path, "u-42", {**GOOD, key("x"): value})
    [row] = load.quarantine.to_dict("records")
    assert row["reason"].startswith(reason) and row["storage_key"] == key("x")
    assert ids_of(pd.Series(row)) == ("u-42", "x")
    assert (load.stats.progress_records, load.stats.ignored_keys) == (2, 0)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('{"done": true}', "key does not match the ids in its value or envelope"),
        (json.dumps(json.dumps({"done": True})), "key does not match the ids"),
        ({"done": True}, "key does not match the ids"),
        ('{"tutorialId": "migr', "value is not valid JSON"),  # a record cut short
        ('[{"tutorialId": "t"}]', "value is a JSON list, not an object"),
        ([{"tutorialId": "t"}], "value is a JSON list, not an object"),
    ],
    ids=repr,
)
def test_a_value_that_is_or_tries_to_be_an_object_stays_quarantined(
    tmp_path: Path, value: Any, reason: str
) -> None:
    load = load_storage(tmp_path, "u-42", {**GOOD, "tutorial_progress_migrated": value})
    [row] = load.quarantine.to_dict("records")
    assert row["reason"].startswith(reason), row["reason"]
    assert row["storage_key"] == "tutorial_progress_migrated"
    assert (load.stats.progress_records, load.stats.ignored_keys) == (2, 0)


HOSTILE_USERS = [
    'O\'Brien "quoted"',
    "<script>alert('x')</script>",
    "a_b_c",
    '{"userId": "x"}',
    "'; DROP TABLE tutorial_progress; --",
]


@pytest.mark.parametrize("user", HOSTILE_USERS)
def test_the_flag_rule_with_hostile_user_ids(tmp_path: Path, user: str) -> None:
    """Only a key ending with ``_<whole envelope userId>`` names the user."""
    own = {key(user=user): progress(user=user)}
    flags = {
        "tutorial_progress_migrated": "true",
        f"tutorial_progress_x_{user[2:]}": "1",  # a tail of the id is not the id
        f"tutorial_progress_{user}_x": "null",  # the id, but not at the end
    }
    lost = {key("t<1>", user): "null", f"tutorial_progress_{user}": "true"}
    load = load_storage(tmp_path, user, {**own, **flags, **lost})
    assert load.records["user_id"].tolist() == [user]
    rows = load.quarantine[["storage_key", "user_id", "tutorial_id"]].values.tolist()
    assert rows == [[key("t<1>", user), user, "t<1>"], [f"tutorial_progress_{user}", None, None]]
    assert (load.stats.progress_records, load.stats.ignored_keys) == (3, 3)


def test_the_reported_demo_flag_is_ignored_beside_real_records(tmp_path: Path) -> None:
    lines = [
        export(
            "u-1", {key("t", "u-1"): progress("t", "u-1"), "tutorial_progress_migrated": "true"}
        ),
        export("u-2", {"tutorial_progress_migrated": "true", "theme": "dark"}),
    ]
    load = load_exports([ndjson(tmp_path / "e.ndjson", *lines)])
    assert users(load) == ["u-1"] and load.quarantine.empty
    assert (load.stats.progress_records, load.stats.ignored_keys) == (1, 3)
