"""`keyguard check`: the webhook's verdicts offline, for manifests, Flyte configuration and Helm values.

Sources (files, folders, stdin; later a cluster) become `Document`s; each document goes to the scanner for its
shape (workloads through the engine, Flyte configuration and chart values through the detection rules); findings
are placed on lines and rendered as text, JSON or SARIF. See docs/check.md.
"""

from webhook.check.documents import Document
from webhook.check.model import CheckFinding, CheckOptions
from webhook.check.scan import Report, check_documents, check_objects, check_paths

__all__ = ["CheckFinding", "CheckOptions", "Document", "Report", "check_documents", "check_objects", "check_paths"]
