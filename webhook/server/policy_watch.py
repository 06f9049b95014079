"""Keep the policy in force current: reload the file when its content changes, keep the last good one if not.

ConfigMap volumes change by symlink swap, so the file's bytes are compared, not its mtime. A bad edit never
takes keyguard down: the previous policy stays in force and the error is visible in the log, the metrics and
/readyz until a good file arrives.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from webhook.errors import PolicyError
from webhook.policy import Policy, default_policy, parse_policy_text, read_policy_text


class PolicyHolder:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.last_error: str | None = None
        self._digest: str | None = None
        self.policy: Policy = default_policy() if path is None else self._load_first(path)

    def _load_first(self, path: Path) -> Policy:
        text = read_policy_text(path)
        policy = parse_policy_text(text, str(path))
        self._digest = hashlib.sha256(text.encode()).hexdigest()
        return policy

    def reload_if_changed(self) -> bool | None:
        """True: a new policy is in force. False: the file changed but is invalid. None: nothing changed."""
        if self.path is None:
            return None
        try:
            text = read_policy_text(self.path)
        except PolicyError as error:
            return self._failed(str(error), digest=None)
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest == self._digest:
            return None
        try:
            policy = parse_policy_text(text, str(self.path))
        except PolicyError as error:
            return self._failed(str(error), digest)
        self.policy, self._digest, self.last_error = policy, digest, None
        return True

    def _failed(self, message: str, digest: str | None) -> bool | None:
        if digest is not None:
            self._digest = digest  # report a bad file once, not at every poll
        elif self.last_error == message:
            return None
        self.last_error = message
        return False
