"""The policy model: what keyguard enforces, per environment, and how it is read and validated.

A policy is read once into frozen objects and handed to the engine; nothing on the request path parses or
validates it again. Validation is pydantic's (errors carry the field path and the reason); keyguard only turns
those errors into one readable `PolicyError` per file.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import orjson
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from webhook.errors import PolicyError

API_VERSION = "keyguard.flyte.org/v1"
FLYTE_SECRETS_DIR = "/etc/flyte/secrets"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|k|M|G)?$")


def _label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError("must be a lowercase DNS label (letters, digits, '-')")
    return value


def _subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError("must be a lowercase DNS subdomain (a Kubernetes object name)")
    return value


def _absolute_path(value: str) -> str:
    if not value.startswith("/") or value.rstrip("/") != value or "//" in value or ".." in value.split("/"):
        raise ValueError("must be an absolute, normalised path without a trailing slash")
    if value == FLYTE_SECRETS_DIR or value.startswith(FLYTE_SECRETS_DIR + "/"):
        raise ValueError(f"{FLYTE_SECRETS_DIR} belongs to Flyte's own secrets webhook")
    return value


def _quantity(value: str) -> str:
    if not _QUANTITY.match(value):
        raise ValueError("must be a Kubernetes quantity such as 1Mi")
    return value


ObjectName = Annotated[str, AfterValidator(_subdomain)]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]
Quantity = Annotated[str, AfterValidator(_quantity)]
Mode = Literal["enforce", "warn", "audit"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


class Selection(_Model):
    """Which pods are Flyte task pods: any complete label set, or an owner of one of these kinds."""

    label_sets: tuple[tuple[str, ...], ...] = (
        ("execution-id", "node-id"),
        ("project", "domain", "run"),
        ("project", "domain", "action"),
    )
    owner_kinds: tuple[str, ...] = ("flyteworkflow",)


class Match(_Model):
    """Every given criterion must hold; an empty match matches every pod."""

    namespaces: tuple[str, ...] = ()
    namespace_labels: dict[str, str] = Field(default_factory=dict)
    domains: tuple[str, ...] = ()


class WebIdentity(_Model):
    """AWS STS AssumeRoleWithWebIdentity with a projected service-account token: no static key at all."""

    role_arn: str = ""
    role_arn_by_project: dict[str, str] = Field(default_factory=dict)  # a Flyte project's own role
    audience: str = Field(default="sts.amazonaws.com", min_length=1)
    expiration_seconds: int = Field(default=3600, ge=600, le=86400)  # the API server's own bounds
    sts_endpoint: str | None = None  # AWS_ENDPOINT_URL_STS, for an STS other than AWS's (e.g. SeaweedFS)


class AzureIdentity(_Model):
    """Azure workload identity: a federated token exchanged by the Azure SDKs, no account key."""

    client_id: str = Field(min_length=1)
    tenant_id: str = Field(min_length=1)
    authority_host: str = "https://login.microsoftonline.com/"
    audience: str = "api://AzureADTokenExchange"
    expiration_seconds: int = Field(default=3600, ge=600, le=86400)


class GkeIdentity(_Model):
    """GKE workload identity: the task service account is annotated with a Google service account; nothing is
    mounted. keyguard only keeps keys out and tasks on that account; doctor checks the annotation."""

    service_account: str = Field(min_length=1)  # the Google service account's email


IDENTITY_FORMATS = frozenset({"web-identity", "azure-workload-identity", "gke-workload-identity"})


class Credentials(_Model):
    """How storage credentials reach a task: from the per-environment Secret (access-keys, credentials-file,
    gcs-key), or as short-lived credentials from a workload identity with no Secret at all."""

    secret_name: ObjectName = "flyte-storage-creds"
    format: Literal[
        "access-keys", "credentials-file", "gcs-key", "web-identity", "azure-workload-identity", "gke-workload-identity"
    ] = "access-keys"
    web_identity: WebIdentity | None = None
    azure: AzureIdentity | None = None
    gke: GkeIdentity | None = None
    mount_path: AbsolutePath = "/etc/flyte/storage"
    tmpfs_path: AbsolutePath = "/var/run/flyte/storage"
    tmpfs_size_limit: Quantity = "1Mi"
    # watch: a native sidecar re-renders the credentials file when the kubelet swaps in a rotated Secret, so
    # running tasks get new keys without a restart (access-keys only; Kubernetes 1.29+ for native sidecars).
    refresh: Literal["none", "watch"] = "none"
    refresh_seconds: int = Field(default=10, ge=1, le=3600)
    # `keyguard doctor` reports a Secret older than this (since `keyguard secret create` last wrote it).
    max_age_days: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _distinct_paths(self) -> Credentials:
        a, b = self.mount_path + "/", self.tmpfs_path + "/"
        if a.startswith(b) or b.startswith(a):
            raise ValueError("mountPath and tmpfsPath must not contain one another")
        if self.refresh == "watch" and self.format != "access-keys":
            raise ValueError("refresh: watch re-renders access-keys; any other Secret is read directly")
        needs = {"web-identity": "webIdentity", "azure-workload-identity": "azure", "gke-workload-identity": "gke"}
        wanted = needs.get(self.format)
        for format_, field in needs.items():
            value = {"webIdentity": self.web_identity, "azure": self.azure, "gke": self.gke}[field]
            if field == wanted and value is None:
                raise ValueError(f"format {self.format} needs credentials.{field}")
            if field != wanted and value is not None:
                raise ValueError(f"credentials.{field} is only for format {format_}")
        if self.web_identity is not None and not (self.web_identity.role_arn or self.web_identity.role_arn_by_project):
            raise ValueError("webIdentity needs roleArn or roleArnByProject")
        return self

    @property
    def uses_secret(self) -> bool:
        """False for the workload identities: no static key, no Secret."""
        return self.format not in IDENTITY_FORMATS


class Renderer(_Model):
    """The init container that renders an AWS shared-credentials file into the tmpfs."""

    image: str = Field(default="ghcr.io/flyte-keyguard/keyguard:0.1.0", min_length=1)


class ServiceAccountPolicy(_Model):
    """The least-privilege identity task pods run under."""

    name: ObjectName = "flyte-task"
    allowed: tuple[ObjectName, ...] = ()
    api_access: bool = False


class Profile(_Model):
    """How one environment is treated."""

    name: Annotated[str, AfterValidator(_label)]
    mode: Mode = "enforce"
    match: Match = Match()
    credentials: Credentials = Credentials()
    renderer: Renderer = Renderer()
    service_account: ServiceAccountPolicy = ServiceAccountPolicy()


class Exemption(_Model):
    """A dated, owned exception: matching pods are admitted untouched until `expires` (inclusive)."""

    namespaces: tuple[str, ...] = ()
    pod_labels: dict[str, str] = Field(default_factory=dict)
    owner: str = Field(min_length=1)
    expires: date
    reason: str = ""

    @model_validator(mode="after")
    def _scoped(self) -> Exemption:
        if not self.namespaces and not self.pod_labels:
            raise ValueError("an exemption needs namespaces or podLabels")
        return self


class Policy(_Model):
    """A whole policy file."""

    api_version: Literal["keyguard.flyte.org/v1"]
    kind: Literal["Policy"]
    selection: Selection = Selection()
    profiles: tuple[Profile, ...] = Field(min_length=1)
    exemptions: tuple[Exemption, ...] = ()

    @model_validator(mode="after")
    def _unique_profiles(self) -> Policy:
        names = [p.name for p in self.profiles]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"profile names must be unique: {', '.join(duplicates)}")
        return self

    @cached_property
    def version(self) -> str:
        """A short content hash: recorded on injected pods and in metrics, changes with every edit."""
        canonical = orjson.dumps(self.model_dump(mode="json", by_alias=True), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()[:12]

    @cached_property
    def warnings(self) -> tuple[str, ...]:
        """Valid but surprising: said at start, on reload, on /readyz and by `keyguard doctor`."""
        return tuple(
            f"profile {p.name} matches on namespaceLabels, which admission reviews do not carry: the webhook never "
            "selects it (only `keyguard check --cluster` and `doctor` know namespace labels); match on namespaces "
            "or domains instead"
            for p in self.profiles
            if p.match.namespace_labels
        )

    def profile(self, name: str) -> Profile | None:
        return next((p for p in self.profiles if p.name == name), None)


def _format_location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def parse_policy(data: object, source: str) -> Policy:
    """Validate a parsed YAML/JSON document; errors name the source, the field path and the reason."""
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        problems = [
            f"{_format_location(tuple(e['loc']))}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False)
        ]
        raise PolicyError(f"{source}: invalid policy: " + "; ".join(problems)) from None


def parse_policy_text(text: str, source: str) -> Policy:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise PolicyError(f"{source}:{where}: {problem}") from None
    return parse_policy(data, source)


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file; any problem becomes a PolicyError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise PolicyError(f"{path}: cannot read policy: {reason}") from None
    return parse_policy_text(text, str(path))


def default_policy() -> Policy:
    """The embedded default: one enforcing profile for every Flyte task pod."""
    text = resources.files("webhook").joinpath("default_policy.yaml").read_text(encoding="utf-8")
    return parse_policy_text(text, "embedded default policy")
