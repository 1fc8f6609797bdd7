"""How deep a JSON body nests, found without parsing it (API.md: deeper than 32 is 400).

A parser recurses: a body nested 1,000 deep was a RecursionError and a 500. The check
must agree with the real depth of any JSON document, whatever its strings hold
(brackets, escaped quotes, backslashes), and stay cheap on a 1 MiB body of brackets.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from casenet.api.http import MAX_JSON_DEPTH, nested_too_deep

#: Strings full of what could be mistaken for structure.
tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\:, ab\n\u00e9'), max_size=12)
documents = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=40,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


def wrapped(value: Any, levels: int) -> Any:
    for level in range(levels):
        value = [value] if level % 2 else {"k]{": value}
    return value


@given(documents, st.integers(min_value=0, max_value=6), st.integers(min_value=0, max_value=5))
def test_agrees_with_the_real_depth_of_any_document(document: Any, levels: int, limit: int) -> None:
    document = wrapped(document, levels)
    for ensure_ascii in (True, False):
        body = json.dumps(document, ensure_ascii=ensure_ascii).encode()
        assert nested_too_deep(body, limit) == (depth(document) > limit), body


def test_brackets_inside_strings_count_for_nothing_whatever_the_limit() -> None:
    # Found by the property above: with a limit of 0 a lone string holding a bracket
    # was judged too deep (the passes never ran, and the verdict was "too deep").
    assert not nested_too_deep(b'"["', 0)
    assert not nested_too_deep(b'"[[["', 2)
    assert nested_too_deep(b"[]", 0)
    assert not nested_too_deep(b"[]", 1)


def test_32_levels_pass_and_33_do_not() -> None:
    assert not nested_too_deep(json.dumps(wrapped(1, MAX_JSON_DEPTH)).encode())
    assert nested_too_deep(json.dumps(wrapped(1, MAX_JSON_DEPTH + 1)).encode())


def test_a_mebibyte_of_brackets_is_judged_in_milliseconds() -> None:
    bodies = [
        b"[" * 524_288 + b"]" * 524_288,
        b"[[]" * 300_000 + b"]" * 300_000,
        b"[" + b"[]," * 349_000 + b"[]]",
        json.dumps({"summary": '\\"[{' * 250_000}).encode(),
    ]
    started = time.perf_counter()
    verdicts = [nested_too_deep(body) for body in bodies]
    elapsed = time.perf_counter() - started
    assert verdicts == [True, True, False, False]
    assert elapsed < 0.5, f"{elapsed:.3f} s on the event loop"  # 30 ms measured
