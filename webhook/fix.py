"""`keyguard fix`: rewrite a Flyte values file or config so its storage keys live in Secrets, never printing a value.

It acts on what `keyguard check` reports (its public findings: a document number, a path and a rule), so the two
cannot disagree about what is a leak. ruamel.yaml reads the file with every node's line and column; the fix is
then a few line edits of the original text (delete a line, replace a value, insert a line), so every other byte —
comments, order, quoting, each block's own indentation — stays as the admin wrote it. The values it removes are
kept in memory only, for the Secrets they belong in:

- flyte-binary (and the sandbox's `flyte-binary:` block): `configuration.storage.providerConfig.s3.accessKey/
  secretKey` and `...azure.key` leave the values; the control plane reads them from the Secret named by
  `configuration.inlineSecretRef` (key `203-storage-secrets.yaml`, a flytestdlib storage section merged over the
  chart's own). `authType: accesskey` becomes `iam`, because the chart refuses `accesskey` without keys in values;
  the Secret sets `auth_type: accesskey` again.
- flyte-core: `storage.s3.accessKey/secretKey` leave the values; `storage.secretName` names the Secret holding the
  storage section (key `storage.yaml`).
- `plugins.k8s.default-env-vars` entries holding keys are removed (anywhere: `configuration.inline`, flyte-core's
  `configmap.*`, Flyte config files): tasks get their keys from the per-namespace Secret keyguard mounts
  (`flyte-storage-creds`, made by `keyguard secret create`).

Anything else check reports is left alone and reported back, with check's own fix. Output never holds a value:
the diff masks every value of every finding, and any other place where a moved value still appears is named by
path only.
"""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from webhook.check import CheckFinding, CheckOptions, check_objects
from webhook.check.model import render_path
from webhook.errors import UsageError

Part = str | int
Parts = tuple[Part, ...]
CONTROL_PLANE_SECRET = "flyte-storage-config"
BINARY_SECRET_KEY = "203-storage-secrets.yaml"
CORE_SECRET_KEY = "storage.yaml"
MASK = "<redacted>"
_DELETED = object()

_PATH_PART = re.compile(r'(?:^|\.)([A-Za-z0-9_/-]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]')
_BINARY_S3 = ("configuration", "storage", "providerConfig", "s3")
_BINARY_AZURE = ("configuration", "storage", "providerConfig", "azure")
_CORE_S3 = ("storage", "s3")
# Where each moved value goes in the Secrets (keyguard's task Secret format: webhook/credential_files.py).
_ACCESS = {"accessKey", "FLYTE_AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"}
_SECRET = {"secretKey", "FLYTE_AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"}
_SESSION = {"FLYTE_AWS_SESSION_TOKEN", "AWS_SESSION_TOKEN"}


def parse_path(path: str) -> Parts:
    """Check's rendered path (`a.b[2]["c.d"]`) as parts: the inverse of `render_path`."""
    parts: list[Part] = []
    for key, index, quoted in _PATH_PART.findall(path):
        if key:
            parts.append(key)
        elif index:
            parts.append(int(index))
        else:
            parts.append(quoted.replace('\\"', '"').replace("\\\\", "\\"))
    if render_path(parts) != path:
        raise ValueError(f"not a check path: {path}")
    return tuple(parts)


@dataclass(frozen=True)
class SecretPlan:
    """A Secret the fixed file relies on. `data` holds values: it is handed to the API server and nowhere else."""

    scope: str  # "control-plane" (the Flyte release namespace) or "tasks" (every Flyte task namespace)
    name: str
    referenced_by: str
    data: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class FixResult:
    """What fixing one file does; nothing here but `secrets[].data` (never printed) holds a value."""

    source: str
    findings: tuple[CheckFinding, ...]
    text: str = field(repr=False)
    diff: str
    changes: tuple[str, ...]
    secrets: tuple[SecretPlan, ...]
    remaining: tuple[CheckFinding, ...]
    also_at: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def _get(node: Any, parts: Parts) -> Any:
    for part in parts:
        found = (isinstance(part, int) and isinstance(node, list) and part < len(node)) or (
            isinstance(part, str) and isinstance(node, dict) and part in node
        )
        if not found:
            return None
        node = node[part]
    return node


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


class _Edits:
    """Line edits of the original text, applied bottom-up so every recorded line number stays valid."""

    def __init__(self, text: str) -> None:
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.lines = text.splitlines(keepends=True)
        if self.lines and not self.lines[-1].endswith("\n"):
            self.lines[-1] += self.newline  # a line may be inserted after it
        self.deleted: set[int] = set()
        self.replaced: dict[int, str] = {}
        self.inserted: dict[int, list[str]] = {}

    def block_end(self, start: int, column: int) -> int:
        """The last line of the entry starting on `start` at `column` (its nested or continued lines included, and
        a key's sequence written at the key's own indentation; comment lines after it belong to what follows)."""
        key = not self.lines[start][column:].startswith("-")
        end = start
        for index in range(start + 1, len(self.lines)):
            line = self.lines[index]
            if not _is_content(line):
                continue
            if _indent(line) < column or (_indent(line) == column and not (key and line[column:].startswith("-"))):
                break
            end = index
        return end

    def delete(self, start: int, column: int) -> None:
        self.deleted.update(range(start, self.block_end(start, column) + 1))

    def replace_value(self, line: int, column: int, value: str, comment: str) -> None:
        """`value` in place of the scalar at (line, column); an admin's own trailing comment is kept."""
        text = self.lines[line]
        rest = text[column:].rstrip("\r\n")
        existing = re.search(r"\s+#.*$", rest)
        tail = existing.group(0) if existing else f"  # {comment}"
        self.replaced[line] = f"{text[:column]}{value}{tail}{self.newline}"

    def insert_after(self, line: int, text: str) -> None:
        self.inserted.setdefault(line, []).append(text)

    def result(self) -> str:
        out: list[str] = []
        for index, line in enumerate(self.lines):
            if index not in self.deleted:
                out.append(self.replaced.get(index, line))
            out.extend(self.inserted.get(index, []))
        return "".join(out)


def _secret_field(name: str) -> str | None:
    if name in _ACCESS:
        return "access_key"
    if name in _SECRET:
        return "secret_key"
    if name in _SESSION:
        return "session_token"
    return None


def _chart_of(parts: Parts) -> tuple[str, Parts, tuple[str, ...]] | None:
    """(chart, path of the chart's values, suffix) when `parts` is a storage key the chart's values hold."""
    for chart, suffix in (("flyte-binary", _BINARY_S3), ("flyte-binary", _BINARY_AZURE), ("flyte-core", _CORE_S3)):
        if len(parts) > len(suffix) and parts[-len(suffix) - 1 : -1] == suffix:
            return chart, parts[: -len(suffix) - 1], suffix
    return None


def _is_env_entry(parts: Parts) -> bool:
    """A `default-env-vars` entry, written as a map or (as Flyte's charts do) a list of one-entry maps."""
    return (len(parts) >= 2 and parts[-2] == "default-env-vars") or (
        len(parts) >= 3 and parts[-3] == "default-env-vars" and isinstance(parts[-2], int)
    )


class _Fixer:
    """Collects, over one file, the edits, the values moved and what they move to."""

    def __init__(self, text: str, documents: list[Any]) -> None:
        self.edits = _Edits(text)
        self.documents = documents
        self.changes: list[str] = []
        self.control: dict[tuple[int, Parts], tuple[str, dict[str, str]]] = {}
        self.tasks: dict[str, str] = {}
        self.expected: list[tuple[int, Parts, Any]] = []  # (document, path, new value or _DELETED): the intent
        self.emptied: dict[tuple[int, Parts], set[Part]] = {}  # mappings and lists entries were deleted from

    def fix(self, number: int, parts: Parts) -> bool:
        """Edit for one finding (`number` is check's 1-based document); False when there is no remedy."""
        document = self.documents[number - 1] if number <= len(self.documents) else None
        container, key = _get(document, parts[:-1]), parts[-1] if parts else None
        if not isinstance(container, CommentedMap) or not isinstance(key, str):
            return False
        value = container.get(key)
        line, column = container.lc.key(key)
        if not isinstance(value, str) or line != container.lc.value(key)[0]:
            return False  # only a one-line scalar is removed by deleting its line
        chart = _chart_of(parts)
        if chart is not None:
            name, root, suffix = chart
            field_name = "azure_key" if suffix == _BINARY_AZURE else _secret_field(key)
            if field_name is None:
                return False
            self.control.setdefault((number, root), (name, {}))[1][field_name] = value
            self.expected.append((number, parts, _DELETED))
            self.emptied.setdefault((number, parts[:-1]), set()).add(key)
            self.edits.delete(line, column)
            self.changes.append(f"removed {render_path(parts)} (now in the control plane's storage Secret)")
            return True
        if not _is_env_entry(parts):
            return False
        holder = _get(document, parts[:-2])
        removed = parts
        if isinstance(parts[-2], int) and isinstance(holder, CommentedSeq):
            if len(container) != 1:
                return False  # a list item with other settings: not ours to split
            line, column = holder.lc.item(parts[-2])
            column = _indent(self.edits.lines[line])  # the item's dash
            removed = parts[:-1]
        field_name = _secret_field(key)
        if field_name is not None:
            self.tasks[field_name] = value
        self.expected.append((number, removed, _DELETED))
        self.emptied.setdefault((number, removed[:-1]), set()).add(removed[-1])
        self.edits.delete(line, column)
        self.changes.append(f"removed {render_path(parts)} (tasks get it from their namespace's Secret)")
        return True

    def keep_empty_collections(self) -> None:
        """A mapping or list whose every entry went stays one (`s3: {}`, `default-env-vars: []`): a null would
        delete the chart's defaults, or fail Flyte's config parsing."""
        for (number, path), removed in self.emptied.items():
            node, parent = _get(self.documents[number - 1], path), _get(self.documents[number - 1], path[:-1])
            entries = set(node) if isinstance(node, dict) else set(range(len(node)))
            if entries <= removed and path and isinstance(path[-1], str) and isinstance(parent, CommentedMap):
                line, column = parent.lc.key(path[-1])
                text = self.edits.lines[line]
                colon = text.index(":", column + len(path[-1]))
                empty = "{}" if isinstance(node, dict) else "[]"
                self.edits.replaced[line] = f"{text[: colon + 1]} {empty}{text[colon + 1 :]}"

    def set_value(self, number: int, mapping: CommentedMap, key: str, value: str, path: Parts, comment: str) -> None:
        """`key: value` in `mapping`: the value replaced on its line, or a new last line of the mapping."""
        self.expected.append((number, path, value))
        if key in mapping:
            line, column = mapping.lc.value(key)
            self.edits.replace_value(line, column, value, comment)
        else:
            last = next(reversed(mapping))
            line, column = mapping.lc.key(last)
            text = f"{' ' * column}{key}: {value}{self.edits.newline}"
            self.edits.insert_after(self.edits.block_end(line, column), text)
        self.changes.append(f"set {render_path(path)}: {value}")

    def control_plane(self, number: int, root: Parts, chart: str, values: dict[str, str]) -> SecretPlan:
        """Point the chart at the Secret (an existing reference is kept) and describe the Secret's content."""
        node = _get(self.documents[number - 1], root)
        if chart == "flyte-core":
            return self._core(number, node["storage"], root, values)
        configuration = node["configuration"]
        name = str(configuration.get("inlineSecretRef") or CONTROL_PLANE_SECRET)
        reference = (*root, "configuration", "inlineSecretRef")
        if configuration.get("inlineSecretRef") != name:
            self.set_value(
                number, configuration, "inlineSecretRef", name, reference, "the control plane's storage keys"
            )
        config: dict[str, str] = {}
        s3 = _get(configuration, ("storage", "providerConfig", "s3"))
        if "access_key" in values or "secret_key" in values:
            config["auth_type"] = "accesskey"
            config.update({k: values[f] for k, f in (("access_key_id", "access_key"), ("secret_key", "secret_key"))
                           if f in values})  # fmt: skip
            if isinstance(s3, CommentedMap) and s3.get("authType") == "accesskey":
                comment = f"the keys (auth_type: accesskey) come from Secret {name}"
                self.set_value(number, s3, "authType", "iam", (*root, *_BINARY_S3, "authType"), comment)
        if "azure_key" in values:
            config["key"] = values["azure_key"]
        body = {"storage": {"stow": {"config": config}}}
        return SecretPlan("control-plane", name, render_path(reference), {BINARY_SECRET_KEY: _plain_yaml(body)})

    def _core(self, number: int, storage: CommentedMap, root: Parts, values: dict[str, str]) -> SecretPlan:
        """flyte-core: `storage.secretName` names a Secret holding the control plane's whole storage section."""
        name = str(storage.get("secretName") or CONTROL_PLANE_SECRET)
        reference = (*root, "storage", "secretName")
        if storage.get("secretName") != name:
            self.set_value(number, storage, "secretName", name, reference, "the control plane's storage section")
        s3 = storage.get("s3") if isinstance(storage.get("s3"), dict) else {}
        connection = {"auth-type": "accesskey", "region": str(s3.get("region", "us-east-1"))}
        connection.update({k: values[f] for k, f in (("access-key", "access_key"), ("secret-key", "secret_key"))
                           if f in values})  # fmt: skip
        body = {"storage": {"type": "s3", "container": str(storage.get("bucketName", "")), "connection": connection}}
        return SecretPlan("control-plane", name, render_path(reference), {CORE_SECRET_KEY: _plain_yaml(body)})


def _plain_yaml(data: Mapping[str, Any]) -> str:
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, out)
    return out.getvalue()


def _strings(node: Any, path: Parts = ()) -> Iterator[tuple[Parts, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, (*path, index))
    elif isinstance(node, str):
        yield path, node


def _finding_value(document: Any, parts: Parts) -> str | None:
    """The flagged value, or the string that embeds it (a ConfigMap's config text, a command line)."""
    node = document
    for part in parts:
        if isinstance(node, str):
            return node
        node = _get(node, (part,))
    return node if isinstance(node, str) else None


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    return node


def _intended(documents: list[Any], expected: list[tuple[int, Parts, Any]]) -> list[Any]:
    """The documents as the edits mean them to be: what the edited text must parse to, or it is not written."""
    intended = [_plain(document) for document in documents]
    for number, path, value in expected:
        if value is not _DELETED:
            _get(intended[number - 1], path[:-1])[path[-1]] = value
    keys = [(n, p) for n, p, v in expected if v is _DELETED and isinstance(p[-1], str)]
    items = [(n, p) for n, p, v in expected if v is _DELETED and isinstance(p[-1], int)]
    # Keys first (they move nothing), then list items from the last, so every recorded index still holds.
    for number, path in [*keys, *sorted(items, key=lambda item: item[1][-1], reverse=True)]:
        del _get(intended[number - 1], path[:-1])[path[-1]]
    return intended


def _mask(text: str, values: set[str]) -> str:
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def _load(text: str, source: str) -> list[Any]:
    try:
        return list(YAML(typ="rt").load_all(text))
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise UsageError(f"{where}: cannot read this YAML back ({type(error).__name__})") from None


def plan_fix(text: str, source: str, findings: list[CheckFinding], options: CheckOptions) -> FixResult:
    """The fixed text, its masked diff, the Secrets it needs and what is left for the admin, for one file whose
    check findings are `findings`. Raises UsageError when the file cannot be read (or read back) as YAML."""
    documents = _load(text, source)
    fixer = _Fixer(text, documents)
    flagged: set[str] = set()
    unfixed: list[CheckFinding] = []
    located = True
    for finding in findings:
        try:
            parts = parse_path(finding.path)
        except ValueError:  # a path check renders in a way this version does not know: never guess
            located = False
            unfixed.append(finding)
            continue
        document = documents[finding.document - 1] if finding.document <= len(documents) else None
        value = _finding_value(document, parts)
        if value:
            flagged.add(value)
        if not fixer.fix(finding.document, parts):
            unfixed.append(finding)
    secrets: list[SecretPlan] = []
    tasks: dict[str, str] = {}
    for (number, root), (chart, values) in fixer.control.items():
        secrets.append(fixer.control_plane(number, root, chart, values))
        tasks.update({k: v for k, v in values.items() if k != "azure_key"})
    tasks.update(fixer.tasks)  # what the tasks themselves were given wins
    if tasks:
        secrets.append(SecretPlan("tasks", options.secret_name, "keyguard's injection", tasks))
    if not fixer.changes:
        return FixResult(source, tuple(findings), text, "", (), (), tuple(unfixed), ())
    fixer.keep_empty_collections()
    fixed = fixer.edits.result()
    fixed_documents = _load(fixed, f"{source} (fixed)")
    if [_plain(d) for d in fixed_documents] != _intended(documents, fixer.expected):
        raise UsageError(f"{source}: the YAML is laid out in a way keyguard fix cannot edit safely; nothing changed")
    before, after = _mask(text, flagged), _mask(fixed, flagged)
    diff = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), source, f"{source} (fixed)"))
    if not located:
        diff = f"(diff withheld: a finding in {source} could not be located, so its value could not be masked)\n"
    moved = set(tasks.values()) | {v for _, values in fixer.control.values() for v in values.values()}
    also_at = tuple(
        f"{render_path(path)} (document {number})"
        for number, document in enumerate(fixed_documents, start=1)
        for path, value in _strings(document)
        if value in moved
    )
    remaining = tuple(check_objects(((source, d) for d in fixed_documents), options).findings)
    return FixResult(source, tuple(findings), fixed, diff, tuple(fixer.changes), tuple(secrets), remaining, also_at)
