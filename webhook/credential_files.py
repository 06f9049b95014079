"""The files a task reads its storage credentials from: which keys the Secret holds, and the mode of every file.

One source for the webhook (volume `defaultMode`), the renderer (the file it writes), `keyguard secret create` and
`doctor` (the keys a Secret must hold). Imports nothing, so the renderer init container starts fast.

Why 0444 (readable by every process in the pod, writable by none): the pod spec does not say which user a task
image's `USER` line picked (Flyte's flytekit images run as uid 1000 / gid 1000 with no fsGroup; OpenShift runs an
arbitrary uid with gid 0), so no owner or group chosen here can be right for every task. Owner and group bits
cannot reach a user we cannot name; the pod is the trust boundary instead. The kubelet keeps each pod's volumes
under /var/lib/kubelet/pods/<uid>/ (root-only, 0750), so no other pod and no unprivileged node user can reach them,
and every container keyguard mounts them into belongs to the same task. Kubernetes' own default for Secret volumes
is 0644. Setting a pod `fsGroup` instead would also re-own every other volume of the task (PVCs included) and grant
the group to every container anyway, so it isolates nothing more inside the pod.
"""

from __future__ import annotations

CREDENTIAL_FILE_MODE = 0o444
# The Secret's keys per credentials format; the renderer maps access-keys to the shared-credentials file settings.
ACCESS_KEYS = (
    ("access_key", "aws_access_key_id", True),
    ("secret_key", "aws_secret_access_key", True),
    ("session_token", "aws_session_token", False),
)
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "access-keys": tuple(key for key, _, required in ACCESS_KEYS if required),
    "credentials-file": ("credentials",),
    "gcs-key": ("key.json",),  # a GCP service-account key, read through GOOGLE_APPLICATION_CREDENTIALS
}
