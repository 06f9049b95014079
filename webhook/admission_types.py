"""Wire formats of the admission.k8s.io/v1 API as TypedDicts, and the boundary's shape check.

TypedDicts cost nothing at run time (the request stays the plain dict orjson produced) and let mypy check every
access. Only the fields keyguard reads or writes are declared, and every field the engine reads is declared with
its type: `review.parse_review` validates a request against `AdmissionRequest` (pydantic, strict, other fields
allowed and left alone), so the engine never meets a list where it reads a string. The list bounds are the limits
on what one review may ask the engine to scan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, NotRequired

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict  # pydantic reads TypedDicts from here on Python < 3.12

JSONObject = dict[str, Any]

MAX_CONTAINERS: Final = 1000
"""Per list (containers, initContainers, ephemeralContainers); Kubernetes itself sets no number."""
MAX_LIST_ITEMS: Final = 10_000
"""env entries, command and args items, volumes, volume mounts, owner references: each list at most this long."""

# Strict: no coercion ("1" is not a number, 1 is not a string). Undeclared fields are ignored, not copied: the
# validated copy is dropped anyway (the engine reads the original), and ignoring halves the cost (5.9 µs a typical pod).
_SHAPE = ConfigDict(strict=True, extra="ignore")
_Bounded = Field(max_length=MAX_LIST_ITEMS)


@with_config(_SHAPE)
class EnvVar(TypedDict, total=False):
    name: str
    value: str


@with_config(_SHAPE)
class VolumeMount(TypedDict, total=False):
    name: str
    mountPath: str
    readOnly: bool
    subPath: str
    subPathExpr: str


@with_config(_SHAPE)
class Container(TypedDict, total=False):
    name: str
    image: str
    command: Annotated[list[str], _Bounded]
    args: Annotated[list[str], _Bounded]
    env: Annotated[list[EnvVar], _Bounded]
    volumeMounts: Annotated[list[VolumeMount], _Bounded]


@with_config(_SHAPE)
class SecretSource(TypedDict, total=False):
    secretName: str


@with_config(_SHAPE)
class EmptyDirSource(TypedDict, total=False):
    medium: str


@with_config(_SHAPE)
class ProjectedSource(TypedDict, total=False):
    sources: Annotated[list[dict[str, Any]], _Bounded]


@with_config(_SHAPE)
class Volume(TypedDict, total=False):
    name: str
    secret: SecretSource
    emptyDir: EmptyDirSource
    projected: ProjectedSource


@with_config(_SHAPE)
class PodSpec(TypedDict, total=False):
    initContainers: Annotated[list[Container], Field(max_length=MAX_CONTAINERS)]
    containers: Annotated[list[Container], Field(max_length=MAX_CONTAINERS)]
    ephemeralContainers: Annotated[list[Container], Field(max_length=MAX_CONTAINERS)]
    volumes: Annotated[list[Volume], _Bounded]
    serviceAccountName: str
    serviceAccount: str
    automountServiceAccountToken: bool


@with_config(_SHAPE)
class OwnerReference(TypedDict, total=False):
    kind: str


@with_config(_SHAPE)
class ObjectMeta(TypedDict, total=False):
    name: str
    generateName: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    ownerReferences: Annotated[list[OwnerReference], _Bounded]


@with_config(_SHAPE)
class Pod(TypedDict, total=False):
    """The fields of a pod keyguard reads; a pod is any JSON object with at most these types in these places."""

    metadata: ObjectMeta
    spec: PodSpec


if TYPE_CHECKING:
    # For mypy a pod stays an open JSON object (the engine reads it as a Mapping and checks what it uses);
    # the boundary validates it against `Pod`.
    PodObject = JSONObject
else:
    PodObject = Pod


@with_config(_SHAPE)
class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


@with_config(_SHAPE)
class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


@with_config(_SHAPE)
class UserInfo(TypedDict, total=False):
    username: str
    uid: str
    groups: list[str]


@with_config(_SHAPE)
class AdmissionRequest(TypedDict):
    uid: Annotated[str, Field(min_length=1)]
    kind: GroupVersionKind
    resource: NotRequired[GroupVersionResource]
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    subResource: NotRequired[str]
    name: NotRequired[str]
    namespace: NotRequired[str]
    object: NotRequired[PodObject | None]
    oldObject: NotRequired[PodObject | None]
    dryRun: NotRequired[bool]
    userInfo: NotRequired[UserInfo]


class Status(TypedDict, total=False):
    code: int
    message: str
    reason: str


class AdmissionResponse(TypedDict):
    uid: str
    allowed: bool
    status: NotRequired[Status]
    patch: NotRequired[str]
    patchType: NotRequired[Literal["JSONPatch"]]
    warnings: NotRequired[list[str]]
    auditAnnotations: NotRequired[dict[str, str]]


class AdmissionReviewRequest(TypedDict):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    request: AdmissionRequest


class AdmissionReviewResponse(TypedDict):
    apiVersion: Literal["admission.k8s.io/v1"]
    kind: Literal["AdmissionReview"]
    response: AdmissionResponse


class PatchOperation(TypedDict):
    """One RFC 6902 operation. keyguard only emits add, replace and remove."""

    op: Literal["add", "replace", "remove"]
    path: str
    value: NotRequired[Any]
