"""Rotation reaches running tasks (issue 13, item 1): `refresh: watch` injects a native sidecar that renders the
credentials file again when the kubelet swaps in a rotated Secret, atomically and with the same mode.

The kubelet's Secret volume layout is reproduced the way its atomic writer makes it: a timestamped directory, a
`..data` symlink renamed onto the new one, and each key a symlink through `..data`.
"""

from __future__ import annotations

import configparser
import os
import secrets
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.flyte_pods import task_pod
from tests.leaks import assert_not_leaked
from tests.test_injection import K8S_VERSION, inject, profile_of
from webhook.commands.render_credentials import fingerprint, render, watch
from webhook.errors import PolicyError
from webhook.injection import REFRESHER_NAME, RENDERER_NAME, plan_injection

WATCH = {"format": "access-keys", "refresh": "watch", "refreshSeconds": 5}


def init_names(pod: dict[str, Any]) -> list[str]:
    return [c["name"] for c in pod["spec"].get("initContainers", [])]


def test_watch_adds_a_native_sidecar_after_the_one_shot_renderer() -> None:
    pod = task_pod()
    pod["spec"]["initContainers"] = [{"name": "setup", "image": "busybox"}]
    patched = inject(pod, profile_of(credentials=WATCH))
    kubernetes_validate.validate(patched, K8S_VERSION, strict=True)
    assert init_names(patched) == [RENDERER_NAME, REFRESHER_NAME, "setup"]
    refresher = patched["spec"]["initContainers"][1]
    assert refresher["restartPolicy"] == "Always"  # a sidecar: stopped by the kubelet when the task ends
    assert refresher["command"][-3:] == ["--watch", "--interval", "5"]
    assert {m["name"]: m["readOnly"] for m in refresher["volumeMounts"]}["keyguard-storage-tmpfs"] is False
    assert "restartPolicy" not in patched["spec"]["initContainers"][0]  # the renderer runs once, first
    assert not any(e["name"] == "AWS_SHARED_CREDENTIALS_FILE" for e in refresher.get("env", []))


def test_enabling_watch_on_an_injected_pod_adds_only_the_sidecar_and_is_idempotent() -> None:
    before = inject(task_pod(), profile_of())
    profile = profile_of(credentials=WATCH)
    patched = inject(before, profile)
    assert init_names(patched) == [RENDERER_NAME, REFRESHER_NAME]
    assert plan_injection(patched, profile, policy_version="v1").operations == []


def test_watch_needs_rendered_access_keys() -> None:
    with pytest.raises(PolicyError, match="refresh: watch re-renders access-keys"):
        profile_of(credentials={"format": "credentials-file", "refresh": "watch"})


class KubeletSecretDir:
    """A Secret volume as the kubelet's atomic writer lays it out, with `update` doing its symlink swap."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self.generation = 0

    def update(self, **keys: str) -> None:
        self.generation += 1
        data = self.root / f"..2026_11_30_12_00_00.{self.generation}"
        data.mkdir()
        for name, value in keys.items():
            (data / name).write_text(value)
        link = self.root / "..data_tmp"
        link.symlink_to(data.name)
        os.rename(link, self.root / "..data")
        for name in keys:
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(f"..data/{name}")


def read_keys(target: Path) -> tuple[str, str]:
    parsed = configparser.ConfigParser()
    parsed.read(target)
    return parsed["default"]["aws_access_key_id"], parsed["default"]["aws_secret_access_key"]


def wait_until(condition: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_rotated_secret_is_rendered_again_atomically_with_the_same_mode(tmp_path: Path, capsys: Any) -> None:
    secret_dir = KubeletSecretDir(tmp_path / "secret")
    old = (secrets.token_hex(10).upper(), secrets.token_urlsafe(30))
    new = (secrets.token_hex(10).upper(), secrets.token_urlsafe(30))
    secret_dir.update(access_key=old[0], secret_key=old[1])
    target = tmp_path / "tmpfs" / "credentials"
    target.parent.mkdir()
    before = fingerprint(secret_dir.root)
    render(secret_dir.root, target)
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(secret_dir.root, target, 0.01, stop, before))
    thread.start()
    try:
        seen: set[tuple[str, str]] = set()

        def rotated() -> bool:
            seen.add(read_keys(target))  # every read sees a whole file: the old pair or the new pair
            return read_keys(target) == new

        secret_dir.update(access_key=new[0], secret_key=new[1])
        assert wait_until(rotated), "the rotated keys were not rendered"
        assert seen <= {old, new}
        assert stat.S_IMODE(target.stat().st_mode) == 0o444
        assert sorted(p.name for p in target.parent.iterdir()) == ["credentials"]  # no temporary file left
        # a half-written rotation (secret_key missing) keeps the last good file and says why, without a value
        secret_dir.update(access_key=old[0])
        assert wait_until(lambda: "kept the previous" in capsys.readouterr().err)
        assert read_keys(target) == new
    finally:
        stop.set()
        thread.join(5)
    out = capsys.readouterr()
    for value in (*old, *new):
        assert_not_leaked(value, out.out + out.err, "the refresher's output")


def test_the_sidecar_exits_at_once_on_sigterm(tmp_path: Path) -> None:
    secret_dir = KubeletSecretDir(tmp_path / "secret")
    secret_dir.update(access_key=secrets.token_hex(10).upper(), secret_key=secrets.token_urlsafe(30))
    target = tmp_path / "credentials"
    keyguard = Path(sys.executable).parent / "keyguard"
    command = [str(keyguard), "render-credentials", "--from", str(secret_dir.root), "--to", str(target)]
    with subprocess.Popen([*command, "--watch", "--interval", "3600"], stdout=subprocess.PIPE) as process:
        try:
            assert process.stdout is not None
            assert b"wrote" in process.stdout.readline()  # rendered once, now polling
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0  # long before the hour-long poll; the kubelet grants 30 s
        finally:
            process.kill()
