"""The chart's values.schema.json, so that a wrong value fails at `helm install`, not at admission time.

The chart's own settings are described here; `policy.profiles` and `policy.exemptions` take their schema from
keyguard's policy model (webhook/policy.py), the one source of what a policy may hold. tests/test_chart.py fails
when the committed file differs from this; regenerate it with `.venv/bin/python -m tests.helm.values_schema`.
(The model's name, path and quantity checks have no JSON-schema form: `keyguard serve` still reports those,
and test_chart.py parses the rendered policy with the model.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from webhook.policy import Exemption, Profile

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "charts" / "keyguard" / "values.schema.json"
DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _integer(minimum: int, maximum: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def _model(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, str]:
    """Moves a pydantic schema's definitions to the root and returns a reference to it."""
    definitions.update(schema.pop("$defs", {}))
    definitions[schema["title"]] = schema
    return {"$ref": f"#/$defs/{schema['title']}"}


def values_schema() -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    profile = _model(Profile.model_json_schema(by_alias=True), definitions)
    exemption = _model(Exemption.model_json_schema(by_alias=True), definitions)
    enabled = _object({"enabled": {"type": "boolean"}}, ("enabled",))
    quantities = {"type": "object", "additionalProperties": {"type": ["string", "number"]}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "keyguard chart values",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            # Helm passes `global` to a chart installed as part of an umbrella chart.
            "global": {"type": "object"},
            "image": _object(
                {
                    "repository": {"type": "string", "minLength": 1},
                    # `--set image.tag=1` arrives as a number.
                    "tag": {"type": ["string", "number"]},
                    "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                },
                ("repository", "tag", "pullPolicy"),
            ),
            "replicas": _integer(1),
            "resources": _object({"requests": quantities, "limits": quantities}),
            "autoscaling": _object(
                {
                    "enabled": {"type": "boolean"},
                    "minReplicas": _integer(1),
                    "maxReplicas": _integer(1),
                    "targetCPUUtilizationPercentage": _integer(1, 100),
                },
                ("enabled", "minReplicas", "maxReplicas", "targetCPUUtilizationPercentage"),
            ),
            "podDisruptionBudget": _object(
                {
                    "enabled": {"type": "boolean"},
                    "minAvailable": {"type": ["integer", "string"], "pattern": "^[0-9]+%?$", "minimum": 0},
                },
                ("enabled", "minAvailable"),
            ),
            "networkPolicy": enabled,
            "auditor": enabled,
            "safetyNet": enabled,
            "webhook": _object(
                {
                    "failurePolicy": {"enum": ["Fail", "Ignore"]},
                    "timeoutSeconds": _integer(1, 30),
                    "excludedNamespaces": {
                        "type": "array",
                        "uniqueItems": True,
                        "items": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63},
                    },
                },
                ("failurePolicy", "timeoutSeconds", "excludedNamespaces"),
            ),
            "certificates": _object({"source": {"enum": ["keyguard", "cert-manager"]}}, ("source",)),
            "policy": _object(
                {
                    "profiles": {"type": "array", "minItems": 1, "items": profile},
                    "exemptions": {"type": "array", "items": exemption},
                },
                ("profiles",),
            ),
        },
        "$defs": dict(sorted(definitions.items())),
    }


def render() -> str:
    return json.dumps(values_schema(), indent=2) + "\n"


if __name__ == "__main__":
    SCHEMA_FILE.write_text(render())
