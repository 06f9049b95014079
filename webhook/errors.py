"""keyguard's exception hierarchy. Messages never contain a secret value."""


class KeyguardError(Exception):
    """Base class of every error keyguard raises on purpose."""


class UsageError(KeyguardError):
    """A command was called wrongly or its input cannot be read (exit code 2)."""


class PolicyError(KeyguardError):
    """A policy file is invalid; the message starts with the path of the offending field."""


class BadReview(KeyguardError):
    """A body is not a usable admission.k8s.io/v1 AdmissionReview request (HTTP 400, `keyguard review` exit 2).

    The message names the field and the reason, never the value."""
