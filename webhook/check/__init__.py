"""`keyguard check`: the webhook's verdicts offline, for manifests, Flyte configuration and Helm values.

Sources (files, folders, stdin, or the live cluster with `--cluster`) become `Document`s (documents.py); each
document goes to the scanner for its shape in scan.py (workloads through the engine, Flyte configuration and chart
values through the detection rules); findings are placed on lines and rendered as text, JSON or SARIF
(output_text.py, output_json.py, output_sarif.py). See docs/check.md.
"""
