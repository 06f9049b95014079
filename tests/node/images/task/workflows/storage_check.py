"""A Flyte task the node suite runs with `pyflyte-execute`, the way flytepropeller launches it: flytekit reads its
inputs from object storage, and writes a primitive output (into outputs.pb under the output prefix) and a file
(under the raw output data prefix), so both of flytekit's upload paths go through the task's credentials."""

from pathlib import Path
from typing import NamedTuple

import flytekit
from flytekit.types.file import FlyteFile


class Result(NamedTuple):
    doubled: int
    reversed: FlyteFile


@flytekit.task
def double_and_reverse(number: int, text: str) -> Result:
    path = Path(flytekit.current_context().working_directory) / "reversed.txt"
    path.write_text(text[::-1])
    return Result(doubled=number * 2, reversed=FlyteFile(str(path)))
