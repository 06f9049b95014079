"""docs/flyte.md's values files: `keyguard check` passes on each as documented, and fails on each with the literal
storage keys put back where Flyte's charts and sandbox keep them, naming every one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.flyte_values import CHARTS, DOCS, with_literals
from tests.test_check_support import assert_no_secret_in_any_output, check_json

# Every check test runs with each YAML loader `keyguard check` may use.
pytestmark = pytest.mark.usefixtures("yaml_loader")


@pytest.mark.parametrize("chart", CHARTS)
def test_the_documented_values_pass_check(capsys: pytest.CaptureFixture[str], chart: str) -> None:
    code, result = check_json(capsys, str(DOCS / f"{chart}.yaml"))
    assert (code, result["findings"]) == (0, [])
    assert result["summary"]["checked"] == 1, "check must recognise the file as Flyte values"


@pytest.mark.parametrize("chart", CHARTS)
def test_the_literals_put_back_are_each_found(capsys: pytest.CaptureFixture[str], tmp_path: Path, chart: str) -> None:
    leaky = with_literals(chart)
    file = tmp_path / f"{chart}.yaml"
    file.write_text(leaky.text)
    code, result = check_json(capsys, str(file))
    assert code == 1
    assert sorted(f["path"] for f in result["findings"]) == sorted(leaky.paths)
    assert_no_secret_in_any_output(capsys, [leaky.access_key, leaky.secret_key], str(file))


def test_the_doc_shows_every_documented_file() -> None:
    text = (DOCS.parent / "flyte.md").read_text()
    for chart in CHARTS:
        assert (DOCS / f"{chart}.yaml").read_text() in text, f"docs/flyte.md must show {chart}.yaml as it is"
