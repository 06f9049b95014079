"""Short-lived credentials on the real node (issue 13, item 2): kube-apiserver is the OIDC issuer, SeaweedFS's STS
trusts it, and keyguard's `web-identity` profile gives the task pods of one Flyte namespace a projected token and
a role instead of any key. One source for the names the policy, the STS's configuration and the tests share."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

NAMESPACE = "shortlived-production"
TASK_ACCOUNT = "flyte-task"  # the profile's task account: the only one the role trusts
OTHER_ACCOUNT = "reporting-task"  # allowed by the profile, not trusted by the role
AUDIENCE = "sts.seaweedfs.keyguard"
ROLE_NAME = "flyte-task-shortlived"
ROLE_ARN = f"arn:aws:iam::111122223333:role/{ROLE_NAME}"
PROVIDER = "kubernetes"
SESSION_SECONDS = 30  # SeaweedFS's default session length (tokenDuration): short, so a task outlives a few
TOKEN_SECONDS = 600  # the projected token's expirationSeconds: the API server's minimum

# The RBAC the Kubernetes documentation gives for an STS outside the cluster: the bootstrap ClusterRole that reads
# /.well-known/openid-configuration and /openid/v1/jwks, bound to anonymous callers.
DISCOVERY_BINDING = (
    "create",
    "clusterrolebinding",
    "service-account-issuer-discovery-unauthenticated",
    "--clusterrole=system:service-account-issuer-discovery",
    "--group=system:unauthenticated",
)


def profile(sts_endpoint: str) -> dict[str, Any]:
    """keyguard's profile for NAMESPACE: no Secret, a projected token for AUDIENCE, the role, the STS endpoint."""
    return {
        "name": "shortlived",
        "mode": "enforce",
        "match": {"namespaces": [NAMESPACE]},
        "credentials": {
            "format": "web-identity",
            "webIdentity": {
                "roleArn": ROLE_ARN,
                "audience": AUDIENCE,
                "expirationSeconds": TOKEN_SECONDS,
                "stsEndpoint": sts_endpoint,
            },
        },
        "serviceAccount": {"name": TASK_ACCOUNT, "allowed": [OTHER_ACCOUNT]},
    }


def iam_config(issuer: str, issuer_ca: Path, bucket: str) -> dict[str, Any]:
    """SeaweedFS's advanced IAM configuration (`-s3.iam.config`): an STS with a signing key made here, the API
    server as an OIDC provider reached over TLS with its own CA (keys found through discovery), and a role that
    only TASK_ACCOUNT of NAMESPACE may assume, allowed to read and write `bucket` and nothing else.

    The audience is checked by the provider (`clientId`): SeaweedFS puts `oidc:aud` in a trust policy's context
    only when `aud` is a string, and Kubernetes always writes it as a list."""
    return {
        "sts": {
            "issuer": "seaweedfs-sts",
            "tokenDuration": f"{SESSION_SECONDS}s",
            "maxSessionLength": "12h",
            "signingKey": base64.b64encode(secrets.token_bytes(32)).decode(),
        },
        "policy": {"defaultEffect": "Deny"},
        "providers": [
            {
                "name": PROVIDER,
                "type": "oidc",
                "enabled": True,
                "config": {"issuer": issuer, "clientId": AUDIENCE, "tlsCaCert": str(issuer_ca)},
            }
        ],
        "roles": [
            {
                "roleName": ROLE_NAME,
                "roleArn": ROLE_ARN,
                "trustPolicy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": PROVIDER},
                            "Action": ["sts:AssumeRoleWithWebIdentity"],
                            "Condition": {
                                "StringEquals": {"oidc:sub": f"system:serviceaccount:{NAMESPACE}:{TASK_ACCOUNT}"}
                            },
                        }
                    ],
                },
                "attachedPolicies": ["flyte-data-read-write"],
            }
        ],
        "policies": [
            {
                "name": "flyte-data-read-write",
                "document": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject"],
                            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                        }
                    ],
                },
            }
        ],
    }
