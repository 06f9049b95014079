"""Spark's S3A settings, where Flyte Spark tasks most often carry S3 keys, as `keyguard check` finds them.

A SparkApplication (the Spark operator's, which Flyte's Spark plugin creates) keeps them in `spec.sparkConf` and
`spec.hadoopConf`; a ConfigMap can hold a `spark-defaults.conf` or `core-site.xml`. Both are judged by the
engine's own rule (`spark-s3a-credential`), so a key found here is the key the webhook refuses in a pod's args or
env. Everything else in a SparkApplication goes through the catch-all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.check.model import Located, Path, render_path
from webhook.detection import scan_spark_conf

CONF_SECTIONS = ("sparkConf", "hadoopConf")


def _located(path: Path, text: str) -> list[Located]:
    where = render_path(path)
    return [
        Located(path, hit.rule, f"`{where}`: {hit.detail} [{hit.rule.id}]", hit.rule.fix)
        for hit in scan_spark_conf(text)
    ]


def scan_spark_application(data: Mapping[str, Any], prefix: Path) -> list[Located]:
    """S3A keys in `spec.sparkConf` / `spec.hadoopConf` (each setting is `name: value`)."""
    spec = data.get("spec")
    found: list[Located] = []
    for section in CONF_SECTIONS:
        conf = spec.get(section) if isinstance(spec, dict) else None
        for key, value in (conf if isinstance(conf, dict) else {}).items():
            if isinstance(value, str):
                found.extend(_located((*prefix, "spec", section, str(key)), f"{key}={value}"))
    return found


def scan_conf_text(key: str, text: str) -> list[Located]:
    """S3A keys in a ConfigMap value that is a Spark or Hadoop configuration file."""
    return _located(("data", key), text)
