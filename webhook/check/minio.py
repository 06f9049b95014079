"""MinIO's chart values: the object store behind Flyte sandboxes and many on-premises installs, whose root
credentials *are* the storage keys every Flyte component uses.

- The official chart (minio/minio): `rootUser` / `rootPassword`, before 2021 `accessKey` / `secretKey`; extra
  accounts under `users[]` and `svcaccts[]` (`accessKey` / `secretKey`). Fix: `existingSecret` (a Secret with
  keys `rootUser` and `rootPassword`), `users[].existingSecret`.
- Bitnami's chart: `auth.rootUser` / `auth.rootPassword`, in older versions `accessKey.password` /
  `secretKey.password`. Fix: `auth.existingSecret` (a Secret with keys `root-user` and `root-password`).
- Either one as a subchart, under a `minio` key (the Flyte sandbox's umbrella values).

Both halves of each pair are reported: the user or access key is the key id the password unlocks (README,
*Detection rules*: key-id halves). MinIO Deployments and StatefulSets are workloads: their `MINIO_ROOT_USER` /
`MINIO_ROOT_PASSWORD` env are judged by the engine like any pod's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from webhook.check.model import Located, Path, render_path
from webhook.check.rules import STORAGE_CONFIG_LITERAL
from webhook.check.templates import is_literal

ROOT_KEYS = ("rootUser", "rootPassword")
LEGACY_KEYS = ("accessKey", "secretKey")
ACCOUNT_LISTS = ("users", "svcaccts")
# Top-level settings only MinIO's charts have: with one of them, `accessKey`/`secretKey` are MinIO's legacy keys.
_MARKERS = frozenset(
    {"mode", "drivesPerNode", "pools", "zones", "buckets", "defaultBuckets", "minioAPIPort", "provisioning"}
)
SUBCHART_KEY = "minio"


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _mentions_minio(data: Mapping[str, Any]) -> bool:
    repository = _dict(data.get("image")).get("repository")
    return bool(_MARKERS & data.keys()) or (isinstance(repository, str) and "minio" in repository.lower())


def _is_minio(data: Mapping[str, Any], *, subchart: bool) -> bool:
    """Official values have `rootUser`/`rootPassword` at the top; `accessKey`/`secretKey` (official before 2021,
    Bitnami's `…password`) and Bitnami's `auth.rootUser` need a sign that the chart is MinIO's, since other
    charts use those names too (Bitnami's MongoDB has `auth.rootPassword`)."""
    if set(ROOT_KEYS) & data.keys():
        return True
    keys = (set(LEGACY_KEYS) & data.keys()) or (set(ROOT_KEYS) & _dict(data.get("auth")).keys())
    return bool(keys) and (subchart or _mentions_minio(data))


def is_minio_values(data: Mapping[str, Any]) -> bool:
    """MinIO chart values, on their own or as the `minio` subchart of an umbrella chart."""
    return _is_minio(data, subchart=False) or _is_minio(_dict(data.get(SUBCHART_KEY)), subchart=True)


def _literal(section: Mapping[str, Any], key: str, path: Path, fix: str) -> Iterator[Located]:
    if is_literal(section.get(key)):
        where = (*path, key)
        message = f"`{render_path(where)}` holds a literal MinIO key [{STORAGE_CONFIG_LITERAL.id}]"
        yield Located(where, STORAGE_CONFIG_LITERAL, message, fix)


def _official(data: Mapping[str, Any], prefix: Path) -> Iterator[Located]:
    where = render_path(prefix) + "." if prefix else ""
    for key in (*ROOT_KEYS, *LEGACY_KEYS):
        fix = (
            f"remove `{where}{key}`; create a Secret with keys `rootUser` and `rootPassword` (charts before 2021: "
            f"`accesskey` and `secretkey`) and set `{where}existingSecret` to its name"
        )
        yield from _literal(data, key, prefix, fix)
    for name in ACCOUNT_LISTS:
        accounts = data.get(name)
        for index, account in enumerate(accounts if isinstance(accounts, list) else []):
            for key in LEGACY_KEYS:
                fix = (
                    f"remove `{key}` from `{where}{name}[{index}]`; keep the key in a Secret and set "
                    f"`existingSecret` and `existingSecretKey` on that entry"
                )
                yield from _literal(_dict(account), key, (*prefix, name, index), fix)


def _bitnami(data: Mapping[str, Any], prefix: Path) -> Iterator[Located]:
    where = render_path(prefix) + "." if prefix else ""
    fix = (
        f"remove `{where}auth.{{key}}`; create a Secret with keys `root-user` and `root-password` and set "
        f"`{where}auth.existingSecret` to its name"
    )
    for key in ROOT_KEYS:
        yield from _literal(_dict(data.get("auth")), key, (*prefix, "auth"), fix.format(key=key))
    for key in LEGACY_KEYS:  # Bitnami before 2021: accessKey.password, secretKey.password
        legacy = fix.format(key=key).replace(f"auth.{key}", f"{key}.password")
        yield from _literal(_dict(data.get(key)), "password", (*prefix, key), legacy)


def scan_minio(data: Mapping[str, Any], prefix: Path = ()) -> list[Located]:
    """Findings in MinIO chart values (official or Bitnami), at the top level or under the `minio` subchart."""
    found: list[Located] = []
    for values, path, subchart in ((data, prefix, False), (_dict(data.get(SUBCHART_KEY)), (*prefix, "minio"), True)):
        if _is_minio(values, subchart=subchart):
            found.extend(_official(values, path))
            found.extend(_bitnami(values, path))
    return found
