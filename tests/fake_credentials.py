"""Fake credentials and their harmless look-alikes, generated at run time (no file holds a key-like literal).

Each generator follows the public format of the real thing closely enough for keyguard's rules, with random
content, so a test can plant it and check it is caught and never echoed.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_B64 = string.ascii_letters + string.digits + "+/"


def _pick(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _mixed(alphabet: str, n: int) -> str:
    while True:
        value = _pick(alphabet, n)
        if any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value):
            return value


def aws_access_key_id(prefix: str = "AKIA") -> str:
    return prefix + _pick(string.ascii_uppercase + "234567", 16)


def aws_secret_access_key() -> str:
    return _mixed(_B64, 40)


def aws_session_token() -> str:
    return "IQoJb3JpZ2luX2Vj" + _pick(_B64, 300)


def pem_private_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def gcp_service_account_json() -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "demo-project",
            "private_key_id": secrets.token_hex(20),
            "private_key": pem_private_key(),
            "client_email": "flyte@demo-project.iam.gserviceaccount.com",
        }
    )


def gcs_hmac_access_id() -> str:
    return "GOOG1" + _pick(string.ascii_uppercase + string.digits, 56)


def azure_account_key() -> str:
    return _mixed(_B64, 86) + "=="


def azure_connection_string() -> str:
    return (
        "DefaultEndpointsProtocol=https;AccountName=flytedata;"
        f"AccountKey={azure_account_key()};EndpointSuffix=core.windows.net"
    )


def azure_sas_token() -> str:
    signature = _pick(string.ascii_letters + string.digits, 43) + "%3D"
    return (
        f"sv=2022-11-02&ss=b&srt=co&sp=rwdl&se=2027-01-01T00:00:00Z&st=2026-01-01T00:00:00Z&spr=https&sig={signature}"
    )


def base64_of(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- harmless look-alikes ---------------------------------------------------------------------------------------


def git_sha() -> str:
    return secrets.token_hex(20)


def image_digest() -> str:
    return "sha256:" + secrets.token_hex(32)


def flyte_version_hash() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def gpg_fingerprint() -> str:
    return secrets.token_hex(20).upper()


def a_uuid() -> str:
    return str(uuid.uuid4())
