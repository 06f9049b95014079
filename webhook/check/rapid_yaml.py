"""rapidyaml for the documents `keyguard check` reads in bulk, giving exactly what PyYAML's safe loader gives.

libyaml parses fast, but PyYAML then builds every node and every value in Python, which is most of a run. Here
rapidyaml (C++) parses the text and writes it out as JSON in one call and orjson reads that JSON: no Python
object per YAML node. JSON is not YAML 1.1, so the result is checked and corrected before it is trusted:

- the text: libyaml's own parser must accept it (rapidyaml takes some text libyaml refuses, and the caller must
  report the same errors), and it holds no tag, anchor, alias, directive, explicit key, collection as a key, tab,
  carriage return, or character PyYAML reads differently (the caller's libyaml path handles those);
- the scalars: every value JSON gives a type (a number, `true`, `false`, `null`: rapidyaml's idea of a number is
  not YAML 1.1's, `1e3` is a string to PyYAML) and every string PyYAML could read as something else (`yes`, `on`,
  `0o17`, `017`, `1_000`, `~`, `2001-12-14`, `<<`) is read again from rapidyaml's tree: quoted, it is a string;
  plain, PyYAML's own resolver and constructor give its value, as in `fast_yaml`.

Anything else raises `fast_yaml.Unusual`, and the caller falls back to libyaml. rapidyaml is optional: without it
(`available()` is false) the libyaml path does all the work, and the tests run both paths.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import yaml
from yaml.constructor import ConstructorError
from yaml.resolver import Resolver

from webhook.check.fast_yaml import Unusual, construct_plain

try:
    import ryml
    from ryml import _ryml
    from yaml._yaml import CParser

    _HAVE_RYML = True
except ImportError:  # pragma: no cover - rapidyaml or libyaml missing: the caller uses the libyaml or Python path
    _HAVE_RYML = False

# Text this path leaves to libyaml: tabs and carriage returns (indentation and line-folding rules differ between
# the parsers) and characters libyaml reads as line breaks or a byte order mark. Other characters PyYAML refuses,
# libyaml's own parser refuses too (`load_all` runs it first).
_UNUSUAL_CHARACTERS = ("\t", "\r")
_UNUSUAL_NON_ASCII = ("\x85", "\u2028", "\u2029", "\ufeff")
# Tags, anchors, aliases and explicit keys, wherever one of them may start a node (at the start of the text, or
# after a space, a line break, a flow indicator or a colon); this may also match inside a value, which only costs
# a fallback. Directives (`%`) start a line.
_PROPERTIES = "!&*?%"
_NODE_START = frozenset(" \n[]{},:")
_LINE_START = frozenset("\n")


# A string in rapidyaml's JSON that PyYAML might read as another type written plain: the first character one of
# its implicit resolvers takes (or empty: null), no quote or escape. Each match is one whole JSON string (or a
# piece of one after an escaped quote, which only costs a look); `_TYPED` then keeps those PyYAML's resolvers
# (bool, int, float, null, timestamp, merge, value) really match.
_MAYBE_TYPED_STRING = re.compile(r'"([-+.0-9~yYnNtTfFoO=<][-+.0-9_:~a-zA-Z <=]*|)"')
_TYPED = re.compile(
    "|".join(
        regexp.pattern
        for regexp in sorted(
            {regexp for resolvers in Resolver.yaml_implicit_resolvers.values() for _, regexp in resolvers},
            key=lambda regexp: regexp.pattern,
        )
    ),
    re.VERBOSE,
)


def available() -> bool:
    return _HAVE_RYML


def _unusual_text(text: str) -> bool:
    """Whether `text` has anything the rest of this path does not handle (str searches: a regular expression
    over the whole text would cost more than rapidyaml's parse)."""
    if any(character in text for character in _UNUSUAL_CHARACTERS):
        return True
    if text and not text.endswith("\n"):  # a block scalar at the very end: rapidyaml adds the line break
        return True
    if not text.isascii() and any(character in text for character in _UNUSUAL_NON_ASCII):
        return True
    for indicator in _PROPERTIES:
        at = text.find(indicator)  # one character: memchr speed (`"\n%" in text` scans far slower)
        while at >= 0:
            if at == 0 or text[at - 1] in (_LINE_START if indicator == "%" else _NODE_START):
                return True
            at = text.find(indicator, at + 1)
    return False


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """rapidyaml's default error handler prints its message to stderr before raising (a parse error, or nesting
    deeper than its emitter goes), and its Python binding cannot replace the handler: the caller's libyaml path
    reads the text instead, and reports any error once."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _Place:
    """A container's place in rapidyaml's tree, found only when one of its scalars must be read again: the
    parent's place and the position in it (a mapping's entries keep their order; a duplicate key, which JSON
    reading folds into one, shows as a size mismatch and gives up)."""

    __slots__ = ("_id", "_parent", "_position", "_size")

    def __init__(self, parent: _Place | int, position: int, size: int) -> None:
        self._parent = parent  # the parent's place, or for a document, the node of its stream (or its own node)
        self._position = position
        self._size = size
        self._id = -1

    def node(self, tree: Any) -> int:
        if self._id < 0:
            parent = self._parent
            if isinstance(parent, _Place):
                node = _ryml.Tree_child(tree, parent.node(tree), self._position)
            elif self._position < 0:
                node = parent
            else:
                node = _ryml.Tree_child(tree, parent, self._position)
            if _ryml.Tree_num_children(tree, node) != self._size:
                raise Unusual("duplicate keys")
            self._id = node
        return self._id


def _value(tree: Any, node: int) -> Any:
    """What PyYAML makes of the scalar value of `node`."""
    text = _ryml.Tree_val(tree, node)
    text = "" if text is None else str(text, "utf-8")
    return text if _ryml.Tree_is_val_quoted(tree, node) else construct_plain(text)


def _check_key(tree: Any, node: int, key: str) -> None:
    """A key JSON may have read differently: a plain one PyYAML reads as a number, a boolean, null or a merge,
    or one rapidyaml wrote in another form (`nan` as `.nan`)."""
    text = str(_ryml.Tree_key(tree, node), "utf-8")
    if (text if _ryml.Tree_is_key_quoted(tree, node) else construct_plain(text)) != key:
        raise Unusual("a key that is not this string")


def _correct(data: Any, tree: Any, parent: _Place | int, position: int, typed: frozenset[str]) -> int:
    """Put PyYAML's value in place of every scalar below the container `data` that JSON may have read
    differently, and return the number of libyaml parser events `data` stands for (its start and end, and each
    key, scalar and container below it), which `load_all` compares with libyaml's own count.

    Read again: a float (rapidyaml writes `1e3`, `-.5` and integers past 64 bits as JSON numbers; PyYAML reads
    the first two as strings) and a string in `typed`. An integer, `true`, `false` and `null` need no look:
    rapidyaml writes a plain scalar into JSON unquoted exactly as it stands, so orjson read
    `-?(0|[1-9][0-9]*)` within 64 bits, `true`, `false`, `null` or nothing, which PyYAML reads the same."""
    events = 2
    place = None
    if type(data) is dict:
        events += len(data)
        if not typed.isdisjoint(data):
            place = _Place(parent, position, len(data))
            for at, key in enumerate(data):
                if key in typed:
                    _check_key(tree, _ryml.Tree_child(tree, place.node(tree), at), key)
        items: Iterable[Any] = data.values()
    else:
        items = data
    for at, item in enumerate(items):
        kind = type(item)
        if kind is dict or kind is list:
            if item:
                if place is None:
                    place = _Place(parent, position, len(data))
                events += _correct(item, tree, place, at, typed)
            else:
                events += 2
            continue
        events += 1
        if (kind is str and item in typed) or kind is float:
            if place is None:
                place = _Place(parent, position, len(data))
            value = _value(tree, _ryml.Tree_child(tree, place.node(tree), at))
            if type(data) is dict:
                data[list(data)[at]] = value
            else:
                data[at] = value
    return events


def _read(text: str, events: int) -> list[Any]:
    """`text`'s documents by rapidyaml, corrected to PyYAML's values; `Unusual` when the structure differs from
    libyaml's `events`."""
    tree = ryml.parse_in_arena(text.encode())
    written = ryml.emit_json(tree) or ""  # None: nothing but comments or blanks
    root = tree.root_id()
    stream = _ryml.Tree_is_stream(tree, root)
    documents: list[Any] = [] if not written else orjson.loads(written) if stream else [orjson.loads(written)]
    typed = frozenset(found for found in set(_MAYBE_TYPED_STRING.findall(written)) if _TYPED.match(found))
    counted = 2  # the stream's start and end
    for index, document in enumerate(documents):
        counted += 2  # the document's start and end
        if type(document) is dict or type(document) is list:
            counted += _correct(document, tree, root, index if stream else -1, typed) if document else 2
            continue
        counted += 1
        if type(document) is float or document in typed:
            documents[index] = _value(tree, _ryml.Tree_child(tree, root, index) if stream else root)
    if counted != events:  # the parsers disagree on the structure (or a duplicate key was folded)
        raise Unusual("structure")
    return documents


def load_all(text: str) -> list[Any]:
    """Every document of `text`, as `yaml.safe_load_all` returns them; raises `Unusual` for anything this path
    leaves to libyaml (including every text libyaml refuses, so that the caller reports the error)."""
    if _unusual_text(text):
        raise Unusual("text")
    parser = CParser(text)
    try:
        events = parser.raw_parse()
    except yaml.YAMLError:
        raise Unusual("invalid YAML") from None
    finally:
        parser.dispose()
    try:
        with _quiet_stderr():
            return _read(text, events)
    except (ryml.ExceptionParse, ryml.ExceptionBasic, orjson.JSONDecodeError, RecursionError) as error:
        raise Unusual(type(error).__name__) from None
    except (ConstructorError, ValueError, OverflowError) as error:  # a value PyYAML refuses: libyaml says why
        raise Unusual(type(error).__name__) from None
