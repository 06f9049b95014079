"""Plaintext storage-credential detection: the rules, precompiled for the admission hot path.

Three kinds of evidence, from strongest to weakest, the way gitleaks, trufflehog and detect-secrets combine them:

1. *Names* — a literal value on a variable or setting whose name says it holds a storage key
   (`FLYTE_AWS_SECRET_ACCESS_KEY`, `secret-key`, Flyte's `_FSEC_*` / `_UNION_*`). Any non-empty value counts,
   `miniostorage` included: the name is the evidence.
2. *Structured values* under any name — shapes with a fixed prefix or grammar that ordinary data never has:
   AWS key ids (AKIA/ASIA/...), STS session tokens, PEM private keys, GCP service-account JSON, GCS HMAC ids,
   Azure connection strings and SAS signatures; also inside a base64-encoded value.
3. *Unstructured values* — AWS secret keys (40 chars) and Azure account keys (88 chars) have no prefix, so they are
   flagged only when length, alphabet, character mix and Shannon entropy all agree.

False-positive safeguards (each is a test case):

| look-alike                          | why it passes                                                        |
| ----------------------------------- | -------------------------------------------------------------------- |
| git SHAs, checksums, GPG prints     | hex only: never an AWS/Azure key shape (needs upper, lower, digit)   |
| image digests `sha256:<hex>`        | hex, and the `:` breaks every full-match shape                       |
| Flyte version hashes (base64url)    | `-`/`_` are outside the AWS/Azure alphabets; lengths differ          |
| UUIDs, ARNs, S3 URIs, endpoints     | separators (`-`, `:`, `/` runs) and no structured prefix             |
| ordinary base64 of text/JSON        | decoded, it contains no structured key and no credential assignment  |
| `AWS_REGION`, `*_FILE`, `*_PATH`... | excluded name suffixes; `FLYTE_SECRETS_*` belongs to Flyte           |
| `$(VAR)`, `${VAR}` references       | a Kubernetes/shell reference to another variable is not a value      |
| `AWS_SECRET_ACCESS_KEY=""`          | an empty literal leaks nothing                                       |

Nothing here ever puts a value, or any part of one, into a `Hit`.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from itertools import accumulate
from operator import itemgetter
from typing import TypeVar

from ahocorasick_rs import AhoCorasick

from webhook.findings import MAX_NAME_LENGTH, Hit, Rule, Severity, shown_name

_SECRET_FIX = (
    "keep the key in a Kubernetes Secret: reference it with valueFrom.secretKeyRef, or drop it and let keyguard "
    "mount the environment's storage Secret (AWS_SHARED_CREDENTIALS_FILE points the SDK at it)"
)

ENV_CREDENTIAL_LITERAL = Rule(
    "env-credential-literal",
    Severity.ERROR,
    "a storage credential is set as a literal environment value",
    _SECRET_FIX,
)
FLYTE_SECRET_LITERAL = Rule(
    "flyte-secret-literal",
    Severity.ERROR,
    "a Flyte secret is injected as a literal environment value",
    "use Flyte's K8s secret injection (the flyte-pod-webhook mounts the Secret or uses secretKeyRef) instead of the "
    "Global/embedded injector that writes literal _FSEC_/_UNION_ values",
)
CLI_CREDENTIAL_FLAG = Rule(
    "cli-credential-flag",
    Severity.ERROR,
    "a storage credential is passed on the command line",
    "remove the key from command/args (visible in process lists and the pod spec); configure the storage client "
    "with auth_type iam / the default credential chain and let keyguard mount the storage Secret",
)
AWS_ACCESS_KEY_ID = Rule("aws-access-key-id", Severity.ERROR, "an AWS access key id is in the pod spec", _SECRET_FIX)
AWS_SECRET_ACCESS_KEY = Rule(
    "aws-secret-access-key", Severity.ERROR, "a value shaped like an AWS secret access key", _SECRET_FIX
)
AWS_SESSION_TOKEN = Rule(
    "aws-session-token", Severity.ERROR, "an AWS STS session token is in the pod spec", _SECRET_FIX
)
PRIVATE_KEY_PEM = Rule("private-key-pem", Severity.ERROR, "a PEM private key is in the pod spec", _SECRET_FIX)
GCP_SERVICE_ACCOUNT_KEY = Rule(
    "gcp-service-account-key",
    Severity.ERROR,
    "a GCP service-account JSON key is in the pod spec",
    "mount the key from a Secret and set GOOGLE_APPLICATION_CREDENTIALS to its path, or better use GKE Workload "
    "Identity (no key at all)",
)
GCS_HMAC_KEY = Rule("gcs-hmac-key", Severity.ERROR, "a GCS HMAC access id is in the pod spec", _SECRET_FIX)
AZURE_CONNECTION_STRING = Rule(
    "azure-storage-connection-string",
    Severity.ERROR,
    "an Azure storage connection string with an account key is in the pod spec",
    _SECRET_FIX,
)
AZURE_ACCOUNT_KEY = Rule(
    "azure-storage-account-key", Severity.ERROR, "a value shaped like an Azure storage account key", _SECRET_FIX
)
AZURE_SAS_TOKEN = Rule("azure-sas-token", Severity.ERROR, "an Azure SAS signature is in the pod spec", _SECRET_FIX)
SPARK_S3A_CREDENTIAL = Rule(
    "spark-s3a-credential",
    Severity.ERROR,
    "an S3 key is set in Spark / Hadoop S3A configuration",
    "remove fs.s3a.access.key / secret.key / session.token (also spark.hadoop.* and per-bucket forms); set "
    "spark.hadoop.fs.s3a.aws.credentials.provider to a provider that reads the shared-credentials file keyguard "
    "mounts (ProfileCredentialsProvider, AWS_SHARED_CREDENTIALS_FILE) or web identity (IRSA)",
)

RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        ENV_CREDENTIAL_LITERAL,
        FLYTE_SECRET_LITERAL,
        CLI_CREDENTIAL_FLAG,
        AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY,
        AWS_SESSION_TOKEN,
        PRIVATE_KEY_PEM,
        GCP_SERVICE_ACCOUNT_KEY,
        GCS_HMAC_KEY,
        AZURE_CONNECTION_STRING,
        AZURE_ACCOUNT_KEY,
        AZURE_SAS_TOKEN,
        SPARK_S3A_CREDENTIAL,
    )
}

# --- names -----------------------------------------------------------------------------------------------------

_CREDENTIAL_NAMES = frozenset(
    {
        "flyte_aws_access_key_id",
        "flyte_aws_secret_access_key",
        "flyte_azure_storage_account_key",
        "flyte_azure_client_secret",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_security_token",
        "azure_storage_key",
        "azure_storage_account_key",
        "azure_storage_access_key",
        "azure_storage_connection_string",
        "azure_storage_sas_token",
        "azure_client_secret",
        "minio_root_user",
        "minio_root_password",
        "minio_secret_key",
        "minio_access_key",
        "access_key",
        "secret_key",
        "access_key_id",
        "secret_access_key",
        "account_key",
        "storage_key",
        "sas_token",
        "session_token",
        "connection_string",
        "hmac_secret",
    }
)
_CREDENTIAL_SUFFIXES = (
    "_secret_access_key",
    "_access_key_id",
    "_secret_key",
    "_access_key",
    "_account_key",
    "_storage_key",
    "_connection_string",
    "_sas_token",
    "_session_token",
    "_security_token",
    "_client_secret",
    "_hmac_secret",
    "_root_password",
)
_CREDENTIAL_TAILS = (*_CREDENTIAL_NAMES, *_CREDENTIAL_SUFFIXES)


def _words(name: str) -> list[str]:
    return name.strip("_").split("_")


# A text can hold a credential name only if it holds, lower-cased, that name's longest word: the normal form adds
# `_` between words, never inside one, so every spelling (`--minio-root-user`, `MINIO_ROOT_USER`, `minioRootUser`)
# keeps it. The command-line prefilter looks for these words.
_NAME_ANCHORS = frozenset(max(reversed(_words(name)), key=len) for name in _CREDENTIAL_TAILS)
_HARMLESS_SUFFIXES = (
    "_file",
    "_path",
    "_dir",
    "_directory",
    "_endpoint",
    "_url",
    "_uri",
    "_region",
    "_arn",
    "_name",
    "_ref",
    "_env_prefix",
    "_prefix",
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_FLYTE_INJECTOR_PREFIXES = ("_FSEC_", "_UNION_")
_REFERENCE = re.compile(r"^(?:\$\([A-Za-z_][A-Za-z0-9_.-]*\)|\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*)$")


def _normalise(name: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", name).lower().replace("-", "_").replace(".", "_")


_T = TypeVar("_T")


def _judge_name(name: str) -> bool:
    normal = _normalise(name)
    if normal.startswith("flyte_secrets_") or normal.endswith(_HARMLESS_SUFFIXES):
        return False
    return normal in _CREDENTIAL_NAMES or normal.endswith(_CREDENTIAL_SUFFIXES)


# Pods repeat the same few hundred names: remembering the verdicts saves the regex on the hot path. A plain dict,
# emptied when it reaches NAME_CACHE_SIZE (a dict lookup costs a fifth of an lru_cache call, and a pod has hundreds
# of names), holding names of real length only: at most 8,192 x 128 characters (~2.5 MiB) whatever reviews arrive.
NAME_CACHE_SIZE = 8192
name_verdicts: dict[str, bool] = {}


def _remember(cache: dict[str, _T], name: str, verdict: _T) -> _T:
    if len(name) <= MAX_NAME_LENGTH:
        if len(cache) >= NAME_CACHE_SIZE:
            cache.clear()
        cache[name] = verdict
    return verdict


def is_credential_name(name: str) -> bool:
    """True for env vars and config keys that hold storage keys (any case, `-`/`_`/camelCase spelling)."""
    verdict = name_verdicts.get(name)
    return _remember(name_verdicts, name, _judge_name(name)) if verdict is None else verdict


# Words a setting name is made of (credential words, and the paths of Flyte, copilot, Spark and Hadoop settings).
_SETTING_WORDS = frozenset(
    word for name in (*_CREDENTIAL_NAMES, *_CREDENTIAL_SUFFIXES, "_password") for word in name.strip("_").split("_")
) | {
    *("flyte", "aws", "azure", "minio", "gcs", "gcp", "google", "s3", "storage", "stow", "config", "conf"),
    *("connection", "copilot", "spark", "hadoop", "fs", "s3a", "bucket", "auth", "default", "root"),
}
_SEGMENT = re.compile(r"[^._-]+")
_SHOWN_TAIL = 64


def _is_setting_word(segment: str) -> bool:
    return all(word in _SETTING_WORDS for word in _CAMEL_BOUNDARY.sub("_", segment).lower().split("_"))


def setting_name(name: str) -> str:
    """A setting name cut out of a value (a flag, `NAME=value`) as messages show it. Such a name can start inside
    the value itself (`x=<KEY>.secret_key`), so it is shown whole only when it is made of setting words; else
    only its trailing setting words are shown, with its length."""
    segments = list(_SEGMENT.finditer(name))
    keep = len(segments)
    while (
        keep and _is_setting_word(segments[keep - 1].group()) and len(name) - segments[keep - 1].start() <= _SHOWN_TAIL
    ):
        keep -= 1
    if keep == 0:
        return name
    tail = name[segments[keep].start() :] if keep < len(segments) else ""
    return f"…{tail} (a {len(name)}-character name)"


def is_reference(value: str) -> bool:
    """`$(VAR)` (Kubernetes), `${VAR}` or `$VAR` (shell): a pointer to another variable, not a value."""
    return bool(_REFERENCE.match(value))


# --- structured values -----------------------------------------------------------------------------------------

_STRUCTURED = re.compile(
    r"(?P<aws_id>(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}(?![A-Z0-9]))"
    r"|(?P<pem>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)"
    r"|(?P<gcp>\"type\"\s*:\s*\"service_account\")"
    r"|(?P<hmac>(?<![A-Z0-9])GOOG1[A-Z0-9]{56}(?![A-Z0-9]))"
    r"|(?P<azure_conn>AccountKey=[A-Za-z0-9+/]{80,}={0,2})"
    r"|(?P<sas>(?:^|[?&;])sig=[A-Za-z0-9%+/]{20,})"
    r"|(?P<sts>(?<![A-Za-z0-9+/])(?:IQoJb3JpZ2luX2Vj|FwoGZXIvYXdzE|FQoGZXIvYXdzE|AQoDYXdzE)[A-Za-z0-9+/]{80,})"
)
# Every structured shape contains one of these literals: a cheap first pass (sre skips by first character) that
# lets ordinary values skip the full pattern.
_STRUCTURED_ANCHORS = re.compile(
    r"AKIA|ASIA|ABIA|ACCA|A3T|-----BEGIN|service_account|GOOG1|AccountKey=|sig=|IQoJb3JpZ2luX2Vj|FwoGZXIvYXdzE"
    r"|FQoGZXIvYXdzE|AQoDYXdzE"
)
# The first pass over a whole container's values at once: every rule needs one of these literals (lowercased) or a
# value that is entirely base64 with a digit and a capital (what every base64-borne rule needs). Multi-pattern
# search (Aho-Corasick) reads the text once, so a container whose values hold none of them (nearly all) costs one
# scan instead of one regex per value. Values are checked against the structured anchors; command lines also
# against the name anchors (the longest word of each credential name: flags and `NAME=value` assignments).
_S3A_ANCHOR = "fs.s3a."
_VALUE_PREFILTER = AhoCorasick([*(a.lower() for a in _STRUCTURED_ANCHORS.pattern.split("|")), _S3A_ANCHOR])
_ARGS_PREFILTER = AhoCorasick(
    [*_NAME_ANCHORS, *(a.lower() for a in _STRUCTURED_ANCHORS.pattern.split("|")), _S3A_ANCHOR]
)
_SAS_CONTEXT = re.compile(r"(?:^|[?&;])(?:sv|se|sp|srt|ss)=")
_GCP_PRIVATE_KEY = re.compile(r"\"private_key\"\s*:")
_AWS_SECRET_SHAPE = re.compile(r"[A-Za-z0-9/+]{40}")
_AZURE_KEY_SHAPE = re.compile(r"[A-Za-z0-9/+]{86}==")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{22,}={0,2}|[A-Za-z0-9_-]{22,}={0,2}")
_HEX = re.compile(r"[0-9a-fA-F]+")
# A credential assignment inside text: NAME=value / NAME: value, where NAME ends in a credential name or suffix of
# the tables, spelled with `_`, `-` or camelCase; `_assignments` widens it to the whole setting name and asks
# `is_credential_name` for the verdict.
_ASSIGNMENT = re.compile(
    r"(?i)(?:"
    + "|".join(sorted({"[_-]?".join(_words(name)) for name in _CREDENTIAL_TAILS}, key=lambda p: (-len(p), p)))
    + r")\s*[=:]\s*(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;'\"&]+)"
)
# Hadoop's S3A keys (case-sensitive, as Hadoop reads them), with Spark's `spark.hadoop.` prefix and the per-bucket
# form, in the three ways they are written: `name=value` (--conf, -D, properties), `name  value` on a line of
# spark-defaults.conf, and core-site.xml's <name>/<value>.
_SPARK_S3A = re.compile(
    r"(?P<spark>spark\.hadoop\.)?fs\.s3a\.(?:bucket\.(?P<bucket>[^\s=:<>\"']+?)\.)?"
    r"(?P<setting>access\.key|secret\.key|session\.token)"
    r"(?:[ \t]*[=:][ \t]*(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;'\"&<]+)"
    r"|[ \t]+(?P<conf>[^\s#]+)[ \t]*$"
    r"|</name>\s*<value>\s*(?P<xml>[^<\s]+)\s*</value>)",
    re.MULTILINE,
)
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_STRUCTURED_RULES = {
    "aws_id": (AWS_ACCESS_KEY_ID, "an AWS access key id"),
    "pem": (PRIVATE_KEY_PEM, "a PEM private key"),
    "gcp": (GCP_SERVICE_ACCOUNT_KEY, "a GCP service-account key"),
    "hmac": (GCS_HMAC_KEY, "a GCS HMAC access id"),
    "azure_conn": (AZURE_CONNECTION_STRING, "an Azure storage connection string"),
    "sas": (AZURE_SAS_TOKEN, "an Azure SAS signature"),
    "sts": (AWS_SESSION_TOKEN, "an AWS session token"),
}
_MIN_VALUE_LENGTH = 20


def shannon_entropy(text: str) -> float:
    """Bits per character of `text`'s own character distribution."""
    length = len(text)
    return -sum(n / length * math.log2(n / length) for n in Counter(text).values())


def _mixed(text: str) -> bool:
    return any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text)


def _unstructured(value: str) -> Hit | None:
    length = len(value)
    if length == 40 and _AWS_SECRET_SHAPE.fullmatch(value) and _mixed(value) and not _HEX.fullmatch(value):
        if shannon_entropy(value) >= 4.2:
            return Hit(AWS_SECRET_ACCESS_KEY, "a value shaped like an AWS secret access key")
    elif length == 88 and _AZURE_KEY_SHAPE.fullmatch(value) and _mixed(value) and shannon_entropy(value[:86]) >= 4.8:
        return Hit(AZURE_ACCOUNT_KEY, "a value shaped like an Azure storage account key")
    return None


def _structured(value: str, prefix: str) -> list[Hit]:
    if _STRUCTURED_ANCHORS.search(value) is None:
        return []
    hits: list[Hit] = []
    seen: set[str] = set()
    for match in _STRUCTURED.finditer(value):
        group = match.lastgroup
        if group is None or group in seen:
            continue
        if group == "gcp" and not _GCP_PRIVATE_KEY.search(value):
            continue
        if group == "sas" and not _SAS_CONTEXT.search(value):
            continue
        seen.add(group)
        rule, what = _STRUCTURED_RULES[group]
        hits.append(Hit(rule, prefix + what))
    return hits


def _decoded(value: str) -> str | None:
    """The text a base64 value encodes, when it is base64 of mostly printable UTF-8; else None."""
    if not _looks_base64(value):
        return None
    padded = value + "=" * (-len(value) % 4)
    try:
        raw = base64.b64decode(padded, altchars=b"-_" if ("-" in value or "_" in value) else None, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    printable = sum(c.isprintable() or c in "\n\r\t" for c in text)
    return text if text and printable >= 0.95 * len(text) else None


def _assignment_name(text: str, keyword_start: int, keyword_end: int) -> str:
    """The whole setting name around a credential keyword: `--storage.connection.secret-key` -> that flag."""
    start = keyword_start
    while start > 0 and text[start - 1] in _NAME_CHARS:
        start -= 1
    return text[start:keyword_end].strip(".-_")


def _assignments(text: str, prefix: str) -> list[Hit]:
    """`NAME=value` / `NAME: value` where NAME says it is a key and the value is a literal."""
    lowered = text.lower()
    if not any(word in lowered for word in _NAME_ANCHORS):
        return []
    for match in _ASSIGNMENT.finditer(text):
        value = match.group("value").strip("\"'")
        if not value or is_reference(value):
            continue
        keyword_end = match.start("value")
        while text[keyword_end - 1] in " \t=:":
            keyword_end -= 1
        name = _assignment_name(text, match.start(), keyword_end)
        if is_credential_name(name):
            return [Hit(CLI_CREDENTIAL_FLAG, f"{prefix}{setting_name(name)} is set to a literal value")]
    return []


def _spark_name(match: re.Match[str]) -> str:
    bucket = "bucket.<bucket>." if match.group("bucket") else ""
    return f"{match.group('spark') or ''}fs.s3a.{bucket}{match.group('setting')}"


def scan_spark_conf(text: str, prefix: str = "") -> list[Hit]:
    """S3A keys set to a literal in Spark / Hadoop configuration text (a --conf arg, an env value, a conf file).
    The message names the setting (the bucket replaced by `<bucket>`), never the value."""
    if _S3A_ANCHOR not in text:
        return []
    names: dict[str, None] = {}
    for match in _SPARK_S3A.finditer(text):
        value = (match.group("value") or match.group("conf") or match.group("xml") or "").strip("\"'")
        if not value or is_reference(value) or value.startswith("{{"):
            continue
        if match.group("conf") is not None and text[text.rfind("\n", 0, match.start()) + 1 : match.start()].strip():
            continue  # `name value` is a conf-file line only when the name starts the line
        names[_spark_name(match)] = None
    return [Hit(SPARK_S3A_CREDENTIAL, f"{prefix}{name} is set to a literal value") for name in names]


def scan_value(value: str) -> list[Hit]:
    """Keys recognisable by their value alone, under any name; also inside a base64-encoded value."""
    if len(value) < _MIN_VALUE_LENGTH:
        return []
    hits = _structured(value, "") + scan_spark_conf(value)
    if not hits:
        unstructured = _unstructured(value)
        if unstructured is not None:
            return [unstructured]
    if not hits and len(value) >= 24:
        text = _decoded(value)
        if text is not None:
            hits = _structured(text, "base64-encoded ") + scan_spark_conf(text, "base64-encoded ") or _assignments(
                text, "base64-encoded "
            )
            if not hits and (found := _unstructured(text.strip())) is not None:
                hits = [Hit(found.rule, "base64-encoded " + found.detail)]
    return hits


_DIGIT = re.compile(r"[0-9]").search


_BASE64_MARK = re.compile(r"[0-9+/=]").search


def _looks_base64(value: str) -> bool:
    # _BASE64 admits ASCII only, so "has an uppercase letter" is `lower() != value`: C speed, not a Python loop
    # per character, and tested first because most long config values (`hyperparameter-10-value`, paths, URLs)
    # have no capital. A digit, `+`, `/` or padding is what sets base64 apart from a CamelCase word: one in ~1,700
    # encoded keys has no digit at all.
    return value.lower() != value and _BASE64_MARK(value) is not None and _BASE64.fullmatch(value) is not None


def _candidates(values: Sequence[str], prefilter: AhoCorasick) -> set[int]:
    """Indices of the values that could hold a key; no rule can match any other value (a cheap first pass)."""
    joined = "\n".join(values)
    lowered = joined.lower()
    found: set[int] = set()
    matches = prefilter.find_matches_as_indexes(lowered)
    if matches:
        if len(lowered) != len(joined):  # lowercasing changed offsets (rare Unicode): check everything
            return set(range(len(values)))
        ends = list(accumulate(len(v) + 1 for v in values))
        found.update(bisect_right(ends, start) for _, start, _ in matches)
    if lowered != joined:  # else no value has a capital, and every base64-borne rule needs one (`_looks_base64`)
        # `v.lower() != v` first: the test `_looks_base64` starts with, without a call per value
        found.update([i for i, v in enumerate(values) if len(v) >= 22 and v.lower() != v and _looks_base64(v)])
    return found


def _name_hit(name: str) -> Hit | None:
    """The verdict on a literal env var that its name alone gives (every name but SECRETS, whose value decides)."""
    if name.startswith(_FLYTE_INJECTOR_PREFIXES):
        return Hit(FLYTE_SECRET_LITERAL, f"variable {shown_name(name)} holds a literal Flyte secret")
    if is_credential_name(name):
        return Hit(ENV_CREDENTIAL_LITERAL, f"variable {shown_name(name)} holds a literal storage credential")
    return None


# Asked for every literal env var of every admitted pod, and Flyte pods repeat the same names: one lookup instead of
# a prefix test, the name cache and a Hit per offender. Hits are frozen, so sharing one is safe; kept as
# `name_verdicts` is (names of real length, emptied when full). A name with no hit is remembered as _NO_HIT.
_NO_HIT = Hit(ENV_CREDENTIAL_LITERAL, "")
name_hits: dict[str, Hit] = {}


def _cached_name_hit(name: str) -> Hit | None:
    hit = name_hits.get(name)
    if hit is None:
        hit = _remember(name_hits, name, _name_hit(name) or _NO_HIT)
    return None if hit is _NO_HIT else hit


def _by_name(name: str, value: str) -> Hit | None:
    if name == "SECRETS" and _decoded(value) is not None:
        return Hit(FLYTE_SECRET_LITERAL, "variable SECRETS holds literal Flyte secrets (base64)")
    return _cached_name_hit(name)


def scan_env(env: Sequence[object]) -> list[tuple[int, Hit]]:
    """A container's `env` list as the pod holds it: the index of each variable whose literal value leaks, each
    judged exactly as `scan_env_literal` judges it. Each variable is read once and its name decides first (a
    cached verdict); the long values left are prefiltered together in one pass. Entries that are not a literal
    (`valueFrom`, no name, not an object) are skipped."""
    hits: list[tuple[int, Hit]] = []
    long_values: list[str] = []
    positions: list[int] = []
    for index, variable in enumerate(env):
        if not isinstance(variable, dict):
            continue
        value, name = variable.get("value"), variable.get("name")
        if not isinstance(value, str) or not value or not isinstance(name, str):
            continue
        if value[0] == "$" and is_reference(value):
            continue
        hit = _by_name(name, value)
        if hit is not None:
            hits.append((index, hit))
        elif len(value) >= _MIN_VALUE_LENGTH:
            long_values.append(value)
            positions.append(index)
    if long_values:
        candidates = _candidates(long_values, _VALUE_PREFILTER)
        if candidates:
            for position in sorted(candidates):
                index = positions[position]
                hits.extend((index, hit) for hit in scan_value(long_values[position]))
            hits.sort(key=itemgetter(0))
    return hits


def scan_env_literal(name: str, value: str) -> list[Hit]:
    """An env var with a literal `value`: judged by its name first, then by the value's shape."""
    if not value or (value[0] == "$" and is_reference(value)):
        return []
    hit = _by_name(name, value)
    return [hit] if hit is not None else scan_value(value)


def _flag_name(item: str) -> str | None:
    """`--storage.connection.secret-key` -> `storage.connection.secret-key` when the flag names a credential."""
    if not item.startswith("-") or "=" in item:
        return None
    flag = item.lstrip("-")
    last = flag.rsplit(".", 1)[-1]
    return flag if last and is_credential_name(last) else None


def scan_args(args: Sequence[str]) -> list[tuple[int, Hit]]:
    """A container's `command` or `args`: `flag=value` / `flag value` credentials, `NAME=value` assignments in
    shell strings or comma-separated settings (Flyte's copilot stow config), and value-shaped keys."""
    if not args:
        return []
    candidates = _candidates(args, _ARGS_PREFILTER)
    if not candidates:
        return []
    hits: list[tuple[int, Hit]] = []
    previous_flag: str | None = None
    for index, item in enumerate(args):
        if previous_flag is not None and item and not item.startswith("-") and not is_reference(item):
            flag = setting_name(previous_flag)
            hits.append((index, Hit(CLI_CREDENTIAL_FLAG, f"the value of flag {flag} is a literal credential")))
            previous_flag = _flag_name(item) if index in candidates else None
            continue
        if index not in candidates:
            previous_flag = None
            continue
        previous_flag = _flag_name(item)
        if len(item) < 4:
            continue
        found = _assignments(item, "") if ("=" in item or ":" in item) else []
        found = found or scan_value(item)
        hits.extend((index, hit) for hit in found)
    return hits
