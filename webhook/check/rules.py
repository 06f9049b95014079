"""Rules for credentials in Flyte configuration and Helm values, the shapes a pod spec never has.

Pods are judged by the engine's rules alone. Configuration needs more: a key written into a flytestdlib `storage`
section or a chart's storage values (Flyte's or MinIO's), a credential that `default-env-vars-from-env` copies
from propeller's environment into every task pod, any other credential-named setting with a literal value, a
credential that a template fills into `default-env-vars` or a PodTemplate (a warning: the file holds no key, but
every task pod will), and a template that could only be read line by line (a warning: the reading may miss a
key). The generic `fix` here is a fallback: each finding carries a fix naming the exact setting to change.
"""

from __future__ import annotations

from webhook.findings import Rule, Severity

STORAGE_CONFIG_LITERAL = Rule(
    "storage-config-literal",
    Severity.ERROR,
    "a storage key is written in plaintext into Flyte's storage configuration or an object store's chart values",
    "remove the key from the configuration; keep it in a Kubernetes Secret (flyte-core: `storage.secretName`, "
    "flyte-binary: `configuration.inlineSecretRef`) or use IRSA / workload identity (`authType: iam`)",
)
ENV_FROM_ENV_CREDENTIAL = Rule(
    "env-from-env-credential",
    Severity.ERROR,
    "Flyte copies a storage credential from propeller's environment into every task pod as a literal",
    "remove the entry from `default-env-vars-from-env`; list a Secret in `plugins.k8s.default-env-from-secrets` "
    "or let keyguard mount the storage Secret",
)
CONFIG_CREDENTIAL_LITERAL = Rule(
    "config-credential-literal",
    Severity.ERROR,
    "a credential is written as a literal value in Flyte configuration or Helm values",
    "move the value into a Kubernetes Secret and reference the Secret instead of writing the value into the file",
)
ENV_CREDENTIAL_TEMPLATED = Rule(
    "env-credential-templated",
    Severity.WARNING,
    "a template fills a storage credential into what Flyte copies into every task pod (`default-env-vars`, a "
    "PodTemplate)",
    "remove the entry; list a Secret in `plugins.k8s.default-env-from-secrets` (or use valueFrom.secretKeyRef in "
    "a PodTemplate), or let keyguard mount the storage Secret",
)
TEMPLATE_READ_DEGRADED = Rule(
    "template-read-degraded",
    Severity.WARNING,
    "a template is not YAML even with its placeholders made inert, so it was read line by line",
    "render the template and check the rendered output, e.g. `helm template <chart> | keyguard check -`",
)
CHECK_RULES: tuple[Rule, ...] = (
    STORAGE_CONFIG_LITERAL,
    ENV_FROM_ENV_CREDENTIAL,
    CONFIG_CREDENTIAL_LITERAL,
    ENV_CREDENTIAL_TEMPLATED,
    TEMPLATE_READ_DEGRADED,
)
