"""Prometheus metrics: what an admin needs to see keyguard is deciding, how fast, and on which policy/cert.

Labels are rule ids, profiles, decisions and endpoints: bounded sets, never a value or a pod name. Each server
has its own registry, so tests and several apps in one process never share counters.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._reviews: dict[tuple[str, str, str], Any] = {}
        self._findings: dict[tuple[str, str], Any] = {}
        self._latency: dict[str, Any] = {}
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

    # Label children are cached: `labels()` validates its arguments and takes a lock on every call, on the hot path.
    def review_counter(self, endpoint: str, decision: str, profile: str) -> Any:
        key = (endpoint, decision, profile)
        child = self._reviews.get(key)
        if child is None:
            child = self._reviews[key] = self.reviews.labels(endpoint=endpoint, decision=decision, profile=profile)
        return child

    def finding_counter(self, rule: str, profile: str) -> Any:
        key = (rule, profile)
        child = self._findings.get(key)
        if child is None:
            child = self._findings[key] = self.findings.labels(rule=rule, profile=profile)
        return child

    def latency_histogram(self, endpoint: str) -> Any:
        child = self._latency.get(endpoint)
        if child is None:
            child = self._latency[endpoint] = self.latency.labels(endpoint=endpoint)
        return child

    def set_policy_version(self, version: str) -> None:
        self.policy_info.clear()
        self.policy_info.labels(version=version).set(1)
