"""The `keyguard check` pipeline: sources -> documents -> the right scanner -> findings placed on lines.

Any source that can produce `Document`s feeds the same pipeline: files and folders (`check_paths`), or objects
already read from elsewhere, such as a cluster's API (`check_objects`, with a source label and no line numbers).
Line numbers are resolved only for documents that have findings, so clean documents cost one fast parse.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from webhook.check import documents
from webhook.check.documents import Document
from webhook.check.flyte_config import looks_like_flyte_config, scan_flyte_config
from webhook.check.generic import scan_tree
from webhook.check.helm_values import is_flyte_binary, is_flyte_core, is_values, scan_values
from webhook.check.minio import is_minio_values, scan_minio
from webhook.check.model import CheckFinding, CheckOptions, Located, PatchPreview, Path, Skipped, render_path
from webhook.check.spark import scan_conf_text, scan_spark_application
from webhook.check.templates import UnparsedTemplate, read_lines
from webhook.check.workloads import is_workload, scan_workload
from webhook.findings import Severity

Progress = Callable[[int, int], None]
STDIN = documents.STDIN
PARALLEL_MIN_FILES = 64  # below this, starting workers costs more than it saves
CHUNK_FILES = 32
MAX_WORKERS = 8
UNRECOGNISED = "YAML (generic scan)"
# Kinds that hold keys by design, or name the keys of one (an ExternalSecret's `secretKey: password`): the place
# keys belong, not a leak; a Secret committed to a repository is out of keyguard's reach.
SECRET_KINDS = frozenset({"Secret", "SealedSecret", "ExternalSecret", "ClusterExternalSecret"})


@dataclass(slots=True)
class Report:
    """Everything one run found: findings in input order, injection previews, skipped documents, counts."""

    findings: list[CheckFinding] = field(default_factory=list)
    patches: list[PatchPreview] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: int = 0
    documents: int = 0
    objects: int = 0

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    def failed(self, fail_on: str) -> bool:
        if fail_on == "never":
            return False
        threshold = Severity(fail_on).rank
        return any(f.severity.rank >= threshold for f in self.findings)

    def summary(self) -> dict[str, Any]:
        rules: dict[str, int] = {}
        for finding in self.findings:
            rules[finding.rule.id] = rules.get(finding.rule.id, 0) + 1
        return {
            "files": self.files,
            "documents": self.documents,
            "checked": self.objects,
            "skipped": len(self.skipped),
            "findings": len(self.findings),
            "errors": self.count(Severity.ERROR),
            "warnings": self.count(Severity.WARNING),
            "rules": dict(sorted(rules.items())),
        }


@dataclass(frozen=True, slots=True)
class _Result:
    kind: str
    name: str | None
    found: list[Located]
    diff: str | None = None
    skip: str | None = None


def _name(data: Mapping[str, Any]) -> str | None:
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else None


def _with_catch_all(data: Any, prefix: Path, found: list[Located]) -> list[Located]:
    reported = frozenset(item.path for item in found)
    return found + scan_tree(data, prefix, reported)


def _config_map(data: Mapping[str, Any]) -> _Result:
    """Each data value that is itself YAML (e.g. `storage.yaml`, `k8s.yaml`) is scanned as Flyte configuration
    when it is one, and by the generic scan in any case; any other value is judged with its key as the name
    (a ConfigMap read by `envFrom` turns `AWS_SECRET_ACCESS_KEY: …` into an env var)."""
    found: list[Located] = []
    values = data.get("data")
    for key, text in (values if isinstance(values, dict) else {}).items():
        if not isinstance(text, str):
            continue
        prefix: Path = ("data", str(key))
        config = documents.parse_embedded(text) if ":" in text else None
        if isinstance(config, dict):
            specific = scan_flyte_config(config, prefix) if looks_like_flyte_config(config) else []
            found.extend(_with_catch_all(config, prefix, specific))
        elif spark := scan_conf_text(str(key), text):
            found.extend(spark)
        else:
            found.extend(scan_tree({str(key): text}, ("data",)))
    return _Result("ConfigMap", _name(data), found)


def _values_kind(data: Mapping[str, Any]) -> str:
    if is_flyte_binary(data):
        return "flyte-binary values"
    if is_flyte_core(data):
        return "flyte-core values"
    return "flyte-sandbox values"


def _plain(data: Mapping[str, Any], options: CheckOptions, prefix: Path) -> _Result:
    """A document without a kind: Flyte chart values, MinIO chart values, Flyte configuration, or YAML keyguard
    does not recognise. Every one also gets the generic scan, so recall does not hang on recognising the file."""
    kinds: list[str] = []
    found: list[Located] = []
    if is_values(data):
        kinds.append(_values_kind(data))
        found.extend(scan_values(data, options.secret_name, prefix))
    if is_minio_values(data):
        kinds.append("MinIO values")
        found.extend(scan_minio(data, prefix))
    if not kinds and looks_like_flyte_config(data):
        kinds.append("Flyte config")
        found.extend(scan_flyte_config(data, prefix))
    return _Result(kinds[0] if kinds else UNRECOGNISED, None, _with_catch_all(data, prefix, found))


def _scan_object(data: Any, options: CheckOptions, label: str, prefix: Path = ()) -> Iterator[_Result]:
    if data is None:
        yield _Result("", None, [], skip="an empty document")
        return
    if isinstance(data, UnparsedTemplate):
        yield _Result("template read line by line", None, read_lines(data))
        return
    if isinstance(data, list):  # a kustomize JSON patch, a list of values: the generic scan
        yield _Result(UNRECOGNISED, None, scan_tree(data, prefix))
        return
    if not isinstance(data, dict):
        yield _Result("", None, [], skip=f"not an object ({type(data).__name__})")
        return
    kind = data.get("kind")
    if kind == "List" and isinstance(data.get("items"), list):
        for index, item in enumerate(data["items"]):
            yield from _scan_object(item, options, label, (*prefix, "items", index))
        return
    if is_workload(data):
        found, diff, skip = scan_workload(data, options, label)
        found = [Located((*prefix, *f.path), f.rule, f.message, f.fix) for f in found]
        yield _Result(str(kind), _name(data), found, diff, skip)
    elif kind == "SparkApplication":
        yield _Result(kind, _name(data), _with_catch_all(data, prefix, scan_spark_application(data, prefix)))
    elif kind == "ConfigMap":
        result = _config_map(data)
        yield _Result(result.kind, result.name, [_prefixed(f, prefix) for f in result.found])
    elif kind in SECRET_KINDS:
        yield _Result(str(kind), _name(data), [], skip=f"kind {kind} is not checked (it is where keys belong)")
    elif isinstance(kind, str) and kind:
        yield _Result(kind, _name(data), _with_catch_all(data, prefix, []))
    else:
        yield _plain(data, options, prefix)


def _prefixed(item: Located, prefix: Path) -> Located:
    return Located((*prefix, *item.path), item.rule, item.message, item.fix)


def check_documents(docs: Iterable[Document], options: CheckOptions, report: Report | None = None) -> Report:
    """Judge each document and add its findings, with lines, to `report` (a new one by default)."""
    report = report if report is not None else Report()
    for doc in docs:
        report.documents += 1
        number = doc.index + 1
        for result in _scan_object(doc.data, options, f"{doc.source} (document {number})"):
            if result.skip is not None:
                report.skipped.append(Skipped(doc.source, number, f"{result.kind or 'document'}: {result.skip}"))
                continue
            report.objects += 1
            seen: set[tuple[Path, str]] = set()
            for item in result.found:
                if (item.path, item.rule.id) in seen:
                    continue
                seen.add((item.path, item.rule.id))
                report.findings.append(
                    CheckFinding(
                        file=doc.source,
                        line=item.line if item.line is not None else doc.line(item.path),
                        document=number,
                        kind=result.kind,
                        name=result.name,
                        path=render_path(item.path),
                        rule=item.rule,
                        message=item.message,
                        fix=item.fix,
                    )
                )
            if result.diff:
                report.patches.append(PatchPreview(doc.source, number, result.kind, result.name, result.diff))
    return report


def check_objects(objects: Iterable[tuple[str, Any]], options: CheckOptions) -> Report:
    """Objects already parsed elsewhere (e.g. read from a cluster), each with a source label; no line numbers."""
    docs = (Document(source, index, data) for index, (source, data) in enumerate(objects))
    return check_documents(docs, options)


def _check_file(name: str, options: CheckOptions, report: Report) -> None:
    report.files += 1
    check_documents(documents.load(name), options, report)


def _check_files(names: list[str], options: CheckOptions) -> Report:
    """One worker's share of a large run."""
    report = Report()
    for name in names:
        _check_file(name, options, report)
    return report


def _merge(into: Report, part: Report) -> None:
    into.findings.extend(part.findings)
    into.patches.extend(part.patches)
    into.skipped.extend(part.skipped)
    into.files += part.files
    into.documents += part.documents
    into.objects += part.objects


def workers_for(files: list[str], jobs: int | None) -> int:
    """Worker processes for a run: parsing is CPU-bound, so a large folder is spread over the cores (forked
    workers: nothing to re-import); small runs, stdin and platforms without fork stay in this process."""
    if STDIN in files or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if jobs is None:
        jobs = min(os.cpu_count() or 1, MAX_WORKERS) if len(files) >= PARALLEL_MIN_FILES else 1
    return max(1, min(jobs, (len(files) + CHUNK_FILES - 1) // CHUNK_FILES))


def check_paths(
    paths: Iterable[str], options: CheckOptions, progress: Progress | None = None, jobs: int | None = None
) -> Report:
    """Files, folders (recursively) and `-`; raises UsageError (exit 2) on unreadable or invalid input. Findings
    come in file order whether or not the run is spread over worker processes (`jobs`, default: by size)."""
    files = documents.expand(paths)
    report = Report()
    workers = workers_for(files, jobs)
    if workers == 1:
        for position, name in enumerate(files, start=1):
            _check_file(name, options, report)
            if progress is not None:
                progress(position, len(files))
        return report
    chunks = [files[i : i + CHUNK_FILES] for i in range(0, len(files), CHUNK_FILES)]
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        futures = [pool.submit(_check_files, chunk, options) for chunk in chunks]
        done = 0
        for chunk, future in zip(chunks, futures, strict=True):
            _merge(report, future.result())
            done += len(chunk)
            if progress is not None:
                progress(done, len(files))
    finally:
        pool.shutdown(cancel_futures=True)
    return report
