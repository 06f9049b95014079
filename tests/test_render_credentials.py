"""`keyguard render-credentials`: the init container's file is right, private, atomic, and errors say no value."""

from __future__ import annotations

import configparser
import secrets
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import fake_credentials as fake
from tests.leaks import assert_not_leaked
from webhook.cli import main


def secret_dir(tmp_path: Path, **keys: str) -> Path:
    source = tmp_path / "secret"
    source.mkdir()
    for name, value in keys.items():
        (source / name).write_text(value)
    return source


@pytest.mark.parametrize("with_token", [False, True])
def test_writes_an_aws_shared_credentials_file(tmp_path: Path, with_token: bool, capsys: Any) -> None:
    access, secret, token = secrets.token_hex(10).upper(), secrets.token_urlsafe(30), secrets.token_urlsafe(60)
    keys = {"access_key": access + "\n", "secret_key": secret}
    if with_token:
        keys["session_token"] = token
    source = secret_dir(tmp_path, **keys)
    target = tmp_path / "tmpfs" / "credentials"
    target.parent.mkdir()
    assert main(["render-credentials", "--from", str(source), "--to", str(target)]) == 0
    parsed = configparser.ConfigParser()
    parsed.read(target)
    assert parsed["default"]["aws_access_key_id"] == access
    assert parsed["default"]["aws_secret_access_key"] == secret
    assert ("aws_session_token" in parsed["default"]) is with_token
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert [p.name for p in target.parent.iterdir()] == ["credentials"]
    out = capsys.readouterr()
    assert_not_leaked(secret, out.out + out.err, "the command output")


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ({"access_key": "AK"}, "secret_key: not found"),
        ({"access_key": "AK", "secret_key": "  \n"}, "secret_key: empty"),
        ({"access_key": "AK", "secret_key": "a\n[evil]\nx=1"}, "secret_key: contains a line break"),
    ],
)
def test_bad_secrets_exit_2_without_the_value(tmp_path: Path, keys: dict[str, str], error: str, capsys: Any) -> None:
    source = secret_dir(tmp_path, **keys)
    assert main(["render-credentials", "--from", str(source), "--to", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert error in err
    assert "evil" not in err
    assert not (tmp_path / "out").exists()


def test_unwritable_target_exits_2(tmp_path: Path, capsys: Any) -> None:
    source = secret_dir(tmp_path, access_key="AK", secret_key="SK")
    assert main(["render-credentials", "--from", str(source), "--to", str(tmp_path / "no" / "dir" / "c")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_the_renderer_loads_only_what_it_needs(tmp_path: Path) -> None:
    """The init container ran under a 100m CPU limit: on the node suite, `keyguard render-credentials` loading every
    command's modules (the policy model and pydantic, 0.25 CPU-s) added about 4 s to each task's start. Only the
    renderer's own module may load (the refresher sidecar still runs at 100m)."""
    source = tmp_path / "secret"
    source.mkdir()
    (source / "access_key").write_text(fake.aws_access_key_id())
    (source / "secret_key").write_text(fake.aws_secret_access_key())
    program = (
        "import sys\nfrom webhook.cli import main\n"
        f"code = main(['render-credentials', '--from', {str(source)!r}, '--to', {str(tmp_path / 'credentials')!r}])\n"
        "print(sorted(m for m in ('pydantic', 'webhook.policy', 'webhook.engine', 'yaml') if m in sys.modules), code)"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[-2] == "[] 0"
