"""Prometheus metrics: what an admin needs to see keyguard is deciding, how fast, and on which policy/cert.

Labels are rule ids, profiles, decisions and endpoints: bounded sets, never a value or a pod name. Each server
has its own registry, so tests and several apps in one process never share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reviews = Counter(
            "keyguard_admission_reviews",
            "Admission reviews answered",
            ["endpoint", "decision", "profile"],
            registry=r,
        )
        self.findings = Counter(
            "keyguard_admission_findings",
            "Findings reported in admission reviews",
            ["rule", "profile"],
            registry=r,
        )
        self.bad_requests = Counter(
            "keyguard_admission_bad_requests", "Requests refused before a decision", ["status"], registry=r
        )
        self.internal_errors = Counter(
            "keyguard_admission_internal_errors", "Reviews keyguard failed to decide", registry=r
        )
        self.latency = Histogram(
            "keyguard_admission_duration_seconds",
            "Time to decide and answer a review, from request start",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.policy_reloads = Counter("keyguard_policy_reloads", "Policy reload attempts", ["result"], registry=r)
        self.policy_info = Gauge("keyguard_policy_info", "The policy in force (value 1)", ["version"], registry=r)
        self.cert_expiry = Gauge(
            "keyguard_certificate_expiry_timestamp_seconds",
            "Serving certificate notAfter (Unix time)",
            registry=r,
        )
        self.cert_reloads = Counter(
            "keyguard_certificate_reloads", "Serving certificate reload attempts", ["result"], registry=r
        )

    def set_policy_version(self, version: str) -> None:
        self.policy_info.clear()
        self.policy_info.labels(version=version).set(1)
