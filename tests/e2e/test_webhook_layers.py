"""Each of keyguard's two webhooks does its own job through the real API server.

The validating webhook is the last line: it sees the final pod after every mutating webhook, so it catches a key
added by a webhook that runs after keyguard, and a Flyte task pod that reached the API server while the mutating
webhook was bypassed (half installed, or its configuration deleted). Each layer is tested alone, and both together,
with a later webhook that adds a key running before and after keyguard's mutating webhook. The refusal names the
webhook that refused, so a test cannot pass on the other layer's work."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests import fake_credentials as fake
from tests.e2e import configurations
from tests.e2e.other_webhooks import LateKey
from tests.e2e.pods import create_pod, is_injected, message, propeller_pod, refusal
from tests.leaks import assert_not_leaked

pytestmark = pytest.mark.usefixtures("webhooks")
MUTATE, VALIDATE = "mutate.keyguard.flyte.org", "validate.keyguard.flyte.org"


def _refused_by(error: client.ApiException, webhook: str) -> str:
    """The API server's message for a refusal by `webhook` (asserted), which carries keyguard's own message."""
    assert error.status == 403, error.status
    text = message(error)
    assert f'admission webhook "{webhook}" denied the request: keyguard denied pod ' in text, text
    return text


def _assert_not_stored(core: client.CoreV1Api, pod: dict[str, Any]) -> None:
    with pytest.raises(client.ApiException) as missing:
        core.read_namespaced_pod(pod["metadata"]["name"], pod["metadata"]["namespace"])
    assert missing.value.status == 404


def test_validating_webhook_alone_refuses_a_flyte_task_pod_that_lacks_the_injection(
    api: client.ApiClient, core: client.CoreV1Api, fresh_namespace: Any
) -> None:
    namespace = fresh_namespace()
    pod = propeller_pod(namespace)
    with configurations.only(api, mutating=False, validating=True):
        text = _refused_by(refusal(core, pod), VALIDATE)
    assert "[injection-missing]" in text, text
    _assert_not_stored(core, pod)


def test_validating_webhook_alone_refuses_a_pod_with_a_key(
    api: client.ApiClient, core: client.CoreV1Api, fresh_namespace: Any
) -> None:
    namespace = fresh_namespace()
    secret = fake.aws_secret_access_key()
    pod = propeller_pod(namespace, env=[{"name": "AWS_SECRET_ACCESS_KEY", "value": secret}])
    with configurations.only(api, mutating=False, validating=True):
        error = refusal(core, pod)
    text = _refused_by(error, VALIDATE)
    assert "[env-credential-literal]" in text and "AWS_SECRET_ACCESS_KEY" in text, text
    assert_not_leaked(secret, error.body, "validating webhook refusal")
    _assert_not_stored(core, pod)


def test_mutating_webhook_alone_injects_clean_pods_and_refuses_keys(
    api: client.ApiClient, core: client.CoreV1Api, fresh_namespace: Any
) -> None:
    namespace = fresh_namespace()
    secret = fake.aws_secret_access_key()
    leaky = propeller_pod(namespace, env=[{"name": "AWS_SECRET_ACCESS_KEY", "value": secret}])
    with configurations.only(api, mutating=True, validating=False):
        stored = create_pod(core, propeller_pod(namespace))
        error = refusal(core, leaky)
    assert is_injected(stored)
    text = _refused_by(error, MUTATE)
    assert "[env-credential-literal]" in text, text
    assert_not_leaked(secret, error.body, "mutating webhook refusal")
    _assert_not_stored(core, leaky)


# keyguard's configurations installed -> the webhook expected to refuse a key added by another webhook, whether
# that webhook runs before keyguard's mutating webhook (`aa-…`) or after it (`zz-…`: keyguard is reinvoked).
LAYERS = {
    "validating only": ((False, True), VALIDATE),
    "mutating only": ((True, False), MUTATE),
    "both": ((True, True), MUTATE),
}


@pytest.mark.parametrize("layer", LAYERS)
def test_a_key_added_by_another_webhook_before_or_after_keyguard_is_refused(
    api: client.ApiClient, core: client.CoreV1Api, fresh_namespace: Any, other_webhook: Any, layer: str
) -> None:
    (mutating, validating), refusing = LAYERS[layer]
    secret = fake.aws_secret_access_key()
    namespaces = {order: fresh_namespace() for order in ("aa", "zz")}
    for order, namespace in namespaces.items():
        other_webhook(f"{order}-late-key", namespace, LateKey(secret))
    with configurations.only(api, mutating=mutating, validating=validating):
        errors = {order: refusal(core, propeller_pod(namespace)) for order, namespace in namespaces.items()}
    for order, error in errors.items():
        text = _refused_by(error, refusing)
        assert "AWS_SECRET_ACCESS_KEY" in text, (order, text)
        assert_not_leaked(secret, error.body, f"refusal of a key added by the {order}-late-key webhook")
