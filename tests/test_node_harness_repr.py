"""When a node-suite test fails, pytest prints the failing test's arguments, fixtures included, with their repr: the
harness objects that hold the suite's fake keys (the storage, a key pair) must show neither key."""

from __future__ import annotations

from pathlib import Path

from tests.leaks import assert_not_leaked
from tests.node.storage import KeyPair, SeaweedFS


def test_a_key_pair_and_the_storage_holding_it_print_no_key(tmp_path: Path) -> None:
    keys = KeyPair.fake()
    shown = {"KeyPair": repr(keys), "SeaweedFS": repr(SeaweedFS(tmp_path / "weed", tmp_path, keys=keys))}
    for what, text in shown.items():
        assert_not_leaked(keys.access_key, text, f"the repr of {what}")
        assert_not_leaked(keys.secret_key, text, f"the repr of {what}")
