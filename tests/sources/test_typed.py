"""The msgspec tier (``decode_typed`` + ``typed_columns``) types a value as the full path."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.sources._coerce import FieldError, decode_typed, to_epoch_ns, typed_columns
from tests.sources.test_exports import (
    ODD_FIELD,
    STAMP_FIELDS,
    TYPED_FIELDS,
    full_path,
    progress,
    typed_shape,
)


def typed_path(text: str) -> tuple[Any, ...] | str | None:
    """The value through the msgspec tier; None: not taken (left to the other paths)."""
    value = decode_typed(text)
    if value is None:
        return None
    typed = [column[0] for column in typed_columns([value])]
    pairs = zip(STAMP_FIELDS, typed[7:], strict=True)
    try:
        stamps = [None if v is None else to_epoch_ns(f, v) for f, v in pairs]
    except FieldError as exc:
        return str(exc)
    return (*typed[:7], *stamps)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.fixed_dictionaries({}, optional=TYPED_FIELDS),
    odd=ODD_FIELD,
    extra=st.sampled_from([None, ("version", 2), ("x", 1e308)]),
)
def test_fuzz_the_typed_path_types_a_value_as_the_full_path(
    fields: dict[str, Any], odd: tuple[str, Any] | None, extra: tuple[str, Any] | None
) -> None:
    value = {**progress(), **fields, **dict([odd] if odd else []), **dict([extra] if extra else [])}
    text = json.dumps(value)
    typed = typed_path(text)
    if typed is not None:
        assert typed_shape(typed) == typed_shape(full_path(text))
    else:
        assert fields or odd or extra  # the typical value does take the typed path


def test_unknown_fields_null_ids_and_nul_escapes_leave_the_typed_path() -> None:
    assert typed_path(json.dumps(progress())) is not None
    assert typed_path(json.dumps({**progress(), "x": 1})) is None
    assert typed_path(json.dumps(progress(userId=None) | {"userId": None})) is None
    assert typed_path(json.dumps(progress(completedChapters=["a\x00"]))) is None
    assert typed_path(json.dumps(progress(totalChapters=2**31))) is None
    assert typed_path(json.dumps(progress(lastAccessedAt=10**13))) is None  # past 2262
