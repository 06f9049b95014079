"""RFC 6901 escaping in the JSON Pointers keyguard builds: `~` and `/` inside a token (annotation keys such as
`keyguard.flyte.org/profile` hold a `/`) must reach the API server as `~0` and `~1`, or the patch lands elsewhere."""

from __future__ import annotations

import jsonpatch
import jsonpointer
import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.json_pointer import add, escape, pointer


@pytest.mark.parametrize(
    ("token", "escaped"),
    [
        ("plain", "plain"),
        ("keyguard.flyte.org/profile", "keyguard.flyte.org~1profile"),
        ("a~b", "a~0b"),
        ("~1", "~01"),  # `~` first: a literal `~1` must not read back as `/`
        ("/~", "~1~0"),
        ("", ""),
    ],
)
def test_escape(token: str, escaped: str) -> None:
    assert escape(token) == escaped


def test_pointer_escapes_names_not_indices() -> None:
    assert pointer("metadata", "annotations", "a/b~c") == "/metadata/annotations/a~1b~0c"
    assert pointer("spec", "containers", 0, "env", "-") == "/spec/containers/0/env/-"


@given(st.lists(st.text(max_size=12), min_size=1, max_size=5))
def test_pointers_read_back_as_the_same_tokens(tokens: list[str]) -> None:
    """Another RFC 6901 implementation parses our pointer back into exactly our tokens."""
    assert jsonpointer.JsonPointer(pointer(*tokens)).parts == tokens


def test_a_patch_with_escaped_keys_lands_on_those_keys() -> None:
    obj: dict[str, dict[str, str]] = {"annotations": {}}
    ops = [add(pointer("annotations", key), key) for key in ("a/b", "c~d", "~1")]
    assert jsonpatch.apply_patch(obj, ops)["annotations"] == {"a/b": "a/b", "c~d": "c~d", "~1": "~1"}
