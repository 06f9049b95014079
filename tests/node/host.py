"""The host state a kubelet and containerd change, saved before the node starts and put back after it stops, even
when the suite fails: sysctls, iptables tables, the paths the kubelet hardcodes, mounts, cgroups and processes.

Every restore step runs even if an earlier one failed; the errors are collected and raised together, so a leak is
a test failure that names what leaked, never a silent leftover on the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

# The kubelet writes these at start-up unless `protectKernelDefaults` (which instead refuses to start on most hosts).
SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")
# Paths used whatever the configured roots: the kubelet's device-plugin socket directory and container-log symlinks,
# and containerd's shim socket directory.
HARDCODED_PATHS = (Path("/var/lib/kubelet"), Path("/var/log/containers"), Path("/run/containerd"))
CGROUP_ROOT = Path("/sys/fs/cgroup")
IPTABLES = ("iptables", "ip6tables")


class RestoreError(RuntimeError):
    """The host could not be put back as it was: the message lists every step that failed."""


def _iptables_tables(command: str) -> dict[str, list[str]] | None:
    """Each table's rules and chains as `{command}-save` prints them, without counters and comments."""
    if shutil.which(f"{command}-save") is None:
        return None
    output = subprocess.run([f"{command}-save"], capture_output=True, text=True, check=True).stdout
    tables: dict[str, list[str]] = {}
    current: list[str] = []
    for line in output.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("*"):
            current = tables.setdefault(line[1:], [])
            continue
        if line.startswith(":"):
            current.append(line.split(" [", 1)[0])  # chain name and policy, not its counters
        elif line != "COMMIT":
            current.append(line)
    # A table holding only built-in chains with the default policy is as good as absent (nf_tables keeps the
    # emptied table that `*-restore` leaves behind).
    return {name: lines for name, lines in tables.items() if not all(_default_chain(line) for line in lines)}


def _default_chain(line: str) -> bool:
    parts = line.split()
    return len(parts) == 2 and parts[0].startswith(":") and parts[1] == "ACCEPT"


def _cgroup_dirs() -> set[Path]:
    """The kubelet's cgroups (`kubepods` and below, with `cgroupDriver: cgroupfs`) in every mounted hierarchy (v1
    controllers, or the single v2 tree). Only these: other cgroups on the machine belong to other software."""
    found: set[Path] = set()
    for dirpath, _dirnames, filenames in os.walk(CGROUP_ROOT):
        if "cgroup.procs" in filenames and "kubepods" in Path(dirpath).relative_to(CGROUP_ROOT).parts[:2]:
            found.add(Path(dirpath))
    return found


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return [line.split()[4].replace("\\040", " ") for line in handle]


def _kill_cgroup(path: Path) -> None:
    try:
        pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except OSError:
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _remove_cgroups(paths: Iterable[Path]) -> None:
    """Deepest first; a cgroup with processes left is emptied (SIGKILL) and removed after they exit."""
    for path in sorted(paths, key=lambda p: len(p.parts), reverse=True):
        for _attempt in range(50):
            try:
                path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                _kill_cgroup(path)
                time.sleep(0.1)
        else:
            path.rmdir()  # the last try raises what is wrong


@dataclass
class HostState:
    """A snapshot of what the node may change, and `restore()` to put it back. `owned` are directories the suite
    created for its node (containerd's and the kubelet's roots): every mount under them goes, and they go too."""

    owned: list[Path]
    sysctls: dict[str, str] = field(default_factory=dict)
    iptables: dict[str, dict[str, list[str]] | None] = field(default_factory=dict)
    existing: dict[Path, set[str] | None] = field(default_factory=dict)
    cgroups: set[Path] = field(default_factory=set)
    mounts: set[str] = field(default_factory=set)

    @classmethod
    def save(cls, owned: list[Path]) -> HostState:
        state = cls(owned=owned)
        for name in SYSCTLS:
            state.sysctls[name] = (Path("/proc/sys") / name).read_text().strip()
        for command in IPTABLES:
            state.iptables[command] = _iptables_tables(command)
        for path in HARDCODED_PATHS:
            state.existing[path] = set(os.listdir(path)) if path.is_dir() else None
        state.cgroups = _cgroup_dirs()
        state.mounts = set(_mount_points())
        return state

    def leftovers(self) -> list[str]:
        """What differs from the snapshot now: empty once `restore()` did its job."""
        found = []
        for name, value in self.sysctls.items():
            now = (Path("/proc/sys") / name).read_text().strip()
            if now != value:
                found.append(f"sysctl {name} is {now}, was {value}")
        for command, tables in self.iptables.items():
            if tables is not None and _iptables_tables(command) != tables:
                found.append(f"{command} rules differ from before the node started")
        for path, entries in self.existing.items():
            now = set(os.listdir(path)) if path.is_dir() else None
            if now != entries:
                found.append(f"{path}: {sorted(now or [])} (was {sorted(entries or []) if entries else 'absent'})")
        found += [f"cgroup {p}" for p in sorted(_cgroup_dirs() - self.cgroups)]
        found += [f"mount {m}" for m in sorted(set(_mount_points()) - self.mounts)]
        found += [f"directory {p}" for p in self.owned if p.exists()]
        return found

    def restore(self) -> None:
        errors: list[str] = []
        steps: list[tuple[str, Callable[[], None]]] = [
            ("mounts", self._unmount),
            ("cgroups", lambda: _remove_cgroups(_cgroup_dirs() - self.cgroups)),
            ("owned directories", self._remove_owned),
            ("kubelet paths", self._restore_paths),
            ("iptables", self._restore_iptables),
            ("sysctls", self._restore_sysctls),
        ]
        for what, step in steps:
            try:
                step()
            except (OSError, subprocess.CalledProcessError) as error:
                errors.append(f"{what}: {error}")
        errors += self.leftovers()
        if errors:
            raise RestoreError("the node left host state behind:\n" + "\n".join(errors))

    def _unmount(self) -> None:
        """Every mount made since the snapshot, deepest first (the kubelet's tmpfs and Secret volumes,
        containerd's overlay root filesystems and shm)."""
        for point in sorted(set(_mount_points()) - self.mounts, key=len, reverse=True):
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)

    def _remove_owned(self) -> None:
        for path in self.owned:
            if path.exists():
                shutil.rmtree(path)

    def _restore_paths(self) -> None:
        for path, entries in self.existing.items():
            if not path.is_dir():
                continue
            if entries is None:
                shutil.rmtree(path)
                continue
            for name in set(os.listdir(path)) - entries:
                target = path / name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                else:
                    target.unlink()

    def _restore_iptables(self) -> None:
        """Tables the node touched are replaced by their saved rules; `*-restore` flushes a table it is given and
        deletes its user chains (KUBE-FIREWALL and the others) before adding back what was there."""
        for command, saved in self.iptables.items():
            if saved is None:
                continue
            now = _iptables_tables(command) or {}
            document = []
            for table in sorted(set(now) | set(saved)):
                if now.get(table) == saved.get(table):
                    continue
                document += [f"*{table}", *saved.get(table, []), "COMMIT"]
            if document:
                subprocess.run(
                    [f"{command}-restore"], input="\n".join(document) + "\n", text=True, check=True, capture_output=True
                )

    def _restore_sysctls(self) -> None:
        for name, value in self.sysctls.items():
            (Path("/proc/sys") / name).write_text(value)
