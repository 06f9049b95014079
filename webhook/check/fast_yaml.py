"""A faster way to PyYAML's safe-load result for the documents `keyguard check` reads in bulk.

`yaml.CSafeLoader` parses in C but constructs every object in Python through the generic `SafeConstructor`
(per-node resolver regexes, state kept for aliases, merge keys, `deep` recursion): most of the time of a run.
Here libyaml composes the nodes, the resolver answers plain scalars that cannot be anything but a string from
their first character, and one small function turns nodes into dicts, lists and strings; every other scalar goes
through `SafeConstructor`'s own methods, so values are exactly what `safe_load` returns. Anything unusual
(an explicit tag on a collection, a merge key, a recursive alias, an unhashable key) makes `load_all` give up
with `Unusual`, and the caller falls back to the standard loader.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

try:
    from yaml._yaml import CParser

    _HAVE_LIBYAML = True
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _HAVE_LIBYAML = False

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
# First characters of every plain scalar PyYAML's implicit resolvers can turn into something other than a string
# (bool, int, float, null, timestamp, merge, value); any other plain scalar is a string.
_MAYBE_TYPED = frozenset("-+.0123456789~yYnNtTfFoO=<")
_CONSTRUCTOR = SafeConstructor()
_SCALARS = {
    tag: method
    for tag, method in SafeConstructor.yaml_constructors.items()
    if tag in {"tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int"}
    or tag in {"tag:yaml.org,2002:float", "tag:yaml.org,2002:binary", "tag:yaml.org,2002:timestamp"}
}


_RESOLVER = Resolver()


class Unusual(Exception):
    """The document uses a feature this fast path leaves to the standard loader."""


def construct_plain(text: str) -> Any:
    """What PyYAML's safe loader makes of `text` written as a plain scalar (rapid_yaml reads some again)."""
    tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    if tag == _STR:
        return text
    method = _SCALARS.get(tag)
    if method is None:
        raise Unusual(tag)
    return method(_CONSTRUCTOR, yaml.ScalarNode(tag, text))


class _Loader(CParser, Resolver):
    def __init__(self, text: str) -> None:
        CParser.__init__(self, text)
        Resolver.__init__(self)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and (not implicit[0] or (value and value[0] not in _MAYBE_TYPED)):
            return _STR
        return Resolver.resolve(self, kind, value, implicit)  # type: ignore[no-untyped-call]


def _construct(node: yaml.Node) -> Any:
    tag = node.tag
    if isinstance(node, yaml.ScalarNode):
        if tag == _STR:
            return node.value
        method = _SCALARS.get(tag)
        if method is None:
            raise Unusual(tag)
        return method(_CONSTRUCTOR, node)
    if isinstance(node, yaml.MappingNode):
        if tag != _MAP:
            raise Unusual(tag)
        result = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise Unusual("merge key")
            key = _construct(key_node)
            if isinstance(key, dict | list):
                raise Unusual("unhashable key")
            result[key] = _construct(value_node)
        return result
    if tag != _SEQ:
        raise Unusual(tag)
    return [_construct(item) for item in node.value]


def available() -> bool:
    return _HAVE_LIBYAML


def compose_all(text: str) -> list[yaml.Node | None]:
    """The node tree of every document (for line numbers), composed by libyaml with the quick resolver."""
    loader = _Loader(text)
    try:
        nodes: list[yaml.Node | None] = []
        while loader.check_node():
            nodes.append(loader.get_node())
        return nodes
    finally:
        loader.dispose()


def load_all(text: str) -> list[Any]:
    """Every document of `text`, as `yaml.safe_load_all` would return them; raises `yaml.YAMLError` for invalid
    YAML and `Unusual` when the standard loader must decide."""
    loader = _Loader(text)
    try:
        documents: list[Any] = []
        while loader.check_node():
            node = loader.get_node()
            documents.append(None if node is None else _construct(node))
        return documents
    except RecursionError:
        raise Unusual("nesting too deep or a recursive alias") from None
    finally:
        loader.dispose()
