"""Assert that a secret does not appear in some output without ever printing the secret.

pytest's assertion rewriting shows both operands of a failed `assert secret not in text`, which would put the
secret into the test report; this helper fails with the place only.
"""

from __future__ import annotations

import base64

__tracebackhide__ = True


def assert_not_leaked(secret: str, output: str | bytes, where: str) -> None:
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
    leaked = secret in text
    if leaked:
        raise AssertionError(f"a secret value appears in {where}")


def assert_no_fragment(secret: str, output: str | bytes, where: str, size: int = 6) -> None:
    """No run of `size` consecutive characters of `secret` appears in `output` (a name cut out of a value is
    still part of the value)."""
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
    for start in range(len(secret) - size + 1):
        if secret[start : start + size] in text:
            raise AssertionError(f"{size} characters of a secret value appear in {where}")


def assert_not_stored(secret: str, stored: str | bytes, where: str) -> None:
    """Neither the value nor its base64 (as in a Secret's `data`) appears in `stored`."""
    for form in (secret, base64.b64encode(secret.encode()).decode()):
        assert_not_leaked(form, stored, where)
