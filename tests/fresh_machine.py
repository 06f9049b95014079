"""What a fresh machine has: the README's prerequisites and Debian's essential base tools, nothing else.

The unit tier runs with PATH reduced to exactly these (tests/conftest.py), so a test that needs a tool only another
target or a person installed (wrk from `make bench`, a kubectl from some SDK) fails here, on every machine, instead of
only on a new user's. One list: adding a tool to it is a README change too.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

PREREQUISITES = ("python3", "go", "make")  # README, "Quick start"
# Commands from Debian's Essential packages (coreutils, bash, dash, grep, sed, findutils, mawk, util-linux, procps
# is not essential): present on every Debian-based machine before anything is installed.
BASE_SYSTEM = (
    "sh", "bash", "env", "cat", "cut", "sha256sum", "mkdir", "date", "awk", "head", "tail", "sed", "grep", "ls",
    "rm", "cp", "mv", "chmod", "uname", "id", "nproc", "sort", "tr", "dirname", "basename", "readlink", "mktemp",
    "touch", "true", "false", "sleep", "kill", "tee", "wc", "xargs", "find", "taskset",
)  # fmt: skip
ALLOWED = PREREQUISITES + BASE_SYSTEM


def fresh_path(directory: Path, search_path: str) -> str:
    """A PATH of the running venv's bin plus `directory`, holding links to only the ALLOWED tools found on
    `search_path`. The venv comes first: `make test` created it, and it is what the tests run."""
    directory.mkdir(parents=True, exist_ok=True)
    for tool in ALLOWED:
        found = shutil.which(tool, path=search_path)
        link = directory / tool
        if found and not link.exists():
            link.symlink_to(os.path.realpath(found))
    return os.pathsep.join([str(Path(sys.executable).parent), str(directory)])
