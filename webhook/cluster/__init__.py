"""Cluster tooling: the commands that talk to the Kubernetes API (`certs install`, `doctor`, `secret create`).

Never imported on the request path: the webhook itself makes no API call. Everything here reads or writes the
API with the admin's kubeconfig, prints names and key names only, and turns API errors into clear messages.
"""
