"""Reading what `keyguard check` scans: files, folders and stdin into documents that know where they came from.

Speed matters (CI runs over thousands of manifests), so documents are parsed into plain objects without line
numbers, by rapidyaml checked against PyYAML's rules (`rapid_yaml`), or else by libyaml (`fast_yaml`: libyaml's
parser with a lean constructor), or else by PyYAML's standard safe loader; all return what `yaml.safe_load_all`
returns. Only when a document has a finding is its file composed into YAML nodes by libyaml, once per file, to map
a finding's path to a line. A cluster source (`--cluster`)
builds `Document`s from API objects directly and simply has no line map.

Errors name the file, the line and the reason, never the offending text: a broken line may hold a key.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from webhook.check import fast_yaml, rapid_yaml, templates
from webhook.check.model import PathPart
from webhook.errors import UsageError

try:
    Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    Loader = yaml.SafeLoader

SUFFIXES = frozenset({".yaml", ".yml", ".json"})
STDIN = "-"
# YAML kept as a template for another tool (Terraform's templatefile, helmfile): `values.yaml.tftpl`. A bare
# `.tpl` (Helm's `_helpers.tpl`) holds template definitions, not YAML, and is not read from folders.
TEMPLATE_SUFFIXES = frozenset({".tpl", ".tftpl", ".gotmpl"})


def _wanted(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in SUFFIXES or (suffix in TEMPLATE_SUFFIXES and Path(path.stem).suffix.lower() in SUFFIXES)


_DOCUMENT_START = re.compile(r"^---(?=[ \t\r\n]|$)", re.MULTILINE)
_CONTENT = re.compile(r"^[ \t]*[^\s#]", re.MULTILINE)


def _compose_all(text: str) -> list[yaml.Node | None]:
    try:
        if fast_yaml.available():
            return fast_yaml.compose_all(text)
        return list(yaml.compose_all(text, Loader=Loader))  # pragma: no cover - PyYAML built without libyaml
    except yaml.YAMLError:
        return []


class SourceText:
    """The text of one file, composed into YAML nodes on first use, for line numbers only.

    Only the document that has a finding is composed: the file is cut at its `---` lines, and when the pieces
    match the documents the parser found, that piece alone is composed and its lines shifted (a file with one
    leaking pod among large ones costs one small compose). Otherwise the whole file is composed once.
    """

    __slots__ = ("_nodes", "_pieces", "documents", "text")

    def __init__(self, text: str, documents: int = 0) -> None:
        self.text = text
        self.documents = documents
        self._nodes: list[yaml.Node | None] | None = None
        self._pieces: list[tuple[int, int, int]] | None = None  # (start, end, first line) per document

    def _split(self) -> list[tuple[int, int, int]]:
        starts = [m.start() for m in _DOCUMENT_START.finditer(self.text)]
        bounds = list(zip([0, *starts], [*starts, len(self.text)], strict=True))
        if bounds[0][0] == bounds[0][1] or not _CONTENT.search(self.text, 0, bounds[0][1]):
            bounds = bounds[1:]  # nothing but comments before the first `---`
        return [(start, end, self.text.count("\n", 0, start)) for start, end in bounds]

    def node(self, index: int) -> tuple[yaml.Node | None, int]:
        """Document `index`'s node and the 0-based line its text starts at."""
        if self._pieces is None:
            pieces = self._split()
            self._pieces = pieces if len(pieces) == self.documents else []
        if self._pieces:
            start, end, first = self._pieces[index]
            nodes = _compose_all(self.text[start:end])
            return (nodes[0] if len(nodes) == 1 else None), first
        if self._nodes is None:
            self._nodes = _compose_all(self.text)
        return (self._nodes[index] if index < len(self._nodes) else None), 0


@dataclass(frozen=True, slots=True)
class LineMap:
    """Maps a path inside document `index` of a file to its 1-based line."""

    source: SourceText
    index: int

    def line(self, parts: Sequence[PathPart]) -> int:
        node, first = self.source.node(self.index)
        return first + 1 if node is None else first + _locate(node, parts) + 1


def _child(node: yaml.Node, part: PathPart) -> tuple[yaml.Node, int] | None:
    """The node at `part` below `node`, and the line that names it (the key's line for a mapping entry)."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return value, key.start_mark.line
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item: yaml.Node = node.value[part]
        return item, item.start_mark.line
    return None


def _locate(node: yaml.Node, parts: Sequence[PathPart]) -> int:
    """The 0-based line of `parts` below `node`, or of the deepest node that exists. A literal block scalar
    with parts still below it is embedded YAML (a ConfigMap's `config.yaml: |`): it is composed on the spot and
    its lines are shifted to where the block starts."""
    line: int = node.start_mark.line
    for position, part in enumerate(parts):
        if isinstance(node, yaml.ScalarNode):
            if node.style != "|":
                return line
            try:
                inner = yaml.compose(node.value, Loader=Loader)
            except yaml.YAMLError:
                return line
            if inner is None:
                return line
            return int(node.start_mark.line) + 1 + _locate(inner, parts[position:])
        found = _child(node, part)
        if found is None:
            return line
        node, line = found
    return line


@dataclass(frozen=True, slots=True)
class Document:
    """One parsed object and where it came from: `source` is a file name (or `-`, or a cluster label),
    `index` its 0-based position in that source, `lines` maps paths to lines (None when there is no text)."""

    source: str
    index: int
    data: Any
    lines: LineMap | None = None

    def line(self, parts: Sequence[PathPart]) -> int | None:
        return None if self.lines is None else self.lines.line(parts)


def expand(paths: Iterable[str]) -> list[str]:
    """Files to read, in a stable order: folders recursively (YAML and JSON files, YAML templates such as
    `values.yaml.tftpl`; hidden folders skipped)."""
    files: list[str] = []
    for name in paths:
        if name == STDIN:
            files.append(name)
            continue
        path = Path(name)
        if path.is_dir():
            found = (
                p
                for p in path.rglob("*")
                if _wanted(p) and p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            files.extend(str(p) for p in sorted(found))
        elif path.exists():
            files.append(name)
        else:
            raise UsageError(f"{name}: no such file or directory")
    return files


def _read(name: str) -> str:
    try:
        raw = sys.stdin.buffer.read() if name == STDIN else Path(name).read_bytes()
    except OSError as error:
        raise UsageError(f"{name}: cannot read: {error.strerror or type(error).__name__}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UsageError(f"{name}: not UTF-8 text (byte {error.start})") from None


def _yaml_problem(error: yaml.YAMLError) -> tuple[int | None, str]:
    """The 1-based line and the parser's own words, never `str(error)`: that can quote the offending line."""
    problem = getattr(error, "problem", None) or type(error).__name__
    mark = getattr(error, "problem_mark", None)
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and context_mark is not None:
        problem = f"{problem} ({context} started at line {context_mark.line + 1})"
    elif context:
        problem = f"{problem} ({context})"
    mark = mark or context_mark
    return (mark.line + 1 if mark is not None else None), problem


def _yaml_error(name: str, error: yaml.YAMLError) -> UsageError:
    """File, line, column and the parser's reason."""
    problem = _yaml_problem(error)[1]
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
    return UsageError(f"{where}: invalid YAML: {problem}")


def _parse(text: str) -> list[Any]:
    """Fastest first: rapidyaml checked against PyYAML's rules, libyaml with a lean constructor, then PyYAML's
    standard safe loader (which also reports syntax errors). All return what `yaml.safe_load_all` would."""
    if rapid_yaml.available():
        try:
            return rapid_yaml.load_all(text)
        except fast_yaml.Unusual:
            pass
    if fast_yaml.available():
        try:
            return fast_yaml.load_all(text)
        except fast_yaml.Unusual:
            pass
    return list(yaml.load_all(text, Loader=Loader))


def parse_embedded(text: str) -> Any:
    """The first document of YAML held inside a value (a ConfigMap's `storage.yaml`), or None when it is not
    YAML: embedded text is data, so a parse failure there is not an input error. Template placeholders are made
    inert first (a cluster-resource template's `config.yaml` holds `{{ namespace }}`)."""
    try:
        items = _parse(templates.neutralise(text) if templates.has_placeholders(text) else text)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError):
        return None
    return items[0] if items else None


def _unparsed(label: str, text: str, error: Exception) -> Document:
    """A template that is still not YAML with its placeholders inert: one document read line by line."""
    line, problem = _yaml_problem(error) if isinstance(error, yaml.YAMLError) else (None, type(error).__name__)
    return Document(label, 0, templates.UnparsedTemplate(text, line or 1, problem))


def load(name: str) -> list[Document]:
    """The documents of one file (YAML multi-document or JSON). A template is read with its placeholders made
    inert (same lines), and line by line when even that is not YAML. Raises UsageError with the file, the line
    and the reason when the file cannot be read or parsed."""
    text = _read(name)
    label = "<stdin>" if name == STDIN else name
    templated = templates.has_placeholders(text)
    if templated:
        text = templates.neutralise(text)
    if name.lower().endswith(".json") or text.lstrip()[:1] in ("{", "["):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            if name.lower().endswith(".json") and not templated:
                raise UsageError(f"{label}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}") from None
        else:
            return [Document(label, 0, data, LineMap(SourceText(text), 0))]
    try:
        items = _parse(text)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as error:
        if templated:
            return [_unparsed(label, text, error)]
        if isinstance(error, yaml.YAMLError):
            raise _yaml_error(label, error) from None
        if isinstance(error, RecursionError):
            raise UsageError(f"{label}: invalid YAML: nested too deeply") from None
        # a scalar its constructor rejects (e.g. a bad date)
        raise UsageError(f"{label}: invalid YAML: a value cannot be read ({type(error).__name__})") from None
    source = SourceText(text, len(items))
    return [Document(label, index, data, LineMap(source, index)) for index, data in enumerate(items)]
