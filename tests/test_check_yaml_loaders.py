"""rapidyaml gives `keyguard check` exactly what PyYAML's safe loader gives, or leaves the text to libyaml.

`webhook/check/rapid_yaml.py` must return the values `yaml.CSafeLoader` returns on every text it accepts, leave
(`Unusual`) every text CSafeLoader refuses, and `keyguard check` must print the same report, lines included,
whichever loader read the files: rapidyaml, libyaml with the lean constructor, or PyYAML's standard loader.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_check_agreement import CORPUS
from tests.test_check_documents import TRICKY_YAML
from tests.test_check_support import write_yaml
from webhook.check import documents, fast_yaml, rapid_yaml
from webhook.check.model import CheckOptions
from webhook.check.output_json import render as render_json
from webhook.check.scan import check_paths
from webhook.policy import default_policy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from fixtures import write_manifests  # noqa: E402

# (text, whether rapidyaml reads it: False means it is left to libyaml, which returns PyYAML's value or error)
CORNER_CASES: list[tuple[str, bool]] = [
    ("a: yes\nb: No\nc: on\nd: OFF\ne: 'yes'\nf: \"on\"\n", True),
    ("a: True\nb: TRUE\nc: true\nd: 'false'\n", True),
    ("a: ~\nb: null\nc:\nd: NULL\ne: Null\nf: ''\ng: \"\"\n", True),
    ("a: 0o17\nb: 017\nc: 0x1F\nd: 1_000\ne: 0b101\nf: 1:30\ng: -0\n", True),
    ("a: +12\n", False),  # rapidyaml writes `+12` into its JSON as it stands
    ("a: 1e3\nb: 1.5e+3\nc: 1.5e3\nd: .5\ne: -.5\nf: 1.\ng: 1_0.5\nh: 190:20:30.15\n", True),
    ("a: .inf\nb: -.Inf\nc: .NaN\nd: nan\ne: inf\nf: -inf\ng: Infinity\n", True),
    ("a: 12345678901234567890123\nb: -9223372036854775809\nc: 0.1000000000000000055511151231257827\n", True),
    ("a: 2001-12-14\nb: 2001-12-14 21:59:43.10 -5\nc: 2001-12-14t21:59:43.10-05:00\nd: '2001-12-14'\n", True),
    ("a: 2001-13-45\n", False),  # PyYAML refuses the date
    ("yes: 1\n", False),  # a plain key PyYAML reads as a boolean
    ("'yes': 1\n\"5\": 2\n", True),
    ("5: x\n", False),
    ("~: x\n", False),
    ("base: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\n", False),
    ("<<: {a: 1}\nb: 2\n", False),
    ("a: =\n", False),
    ("a: &x 1\nb: *x\n", False),
    ("a: !!str 1\nb: !!int '7'\n", False),
    ("a: !custom x\n", False),
    ("s: !!set {a, b}\n", False),
    ("a: 1\na: 2\nb: 3\n", False),  # duplicate keys: JSON reading folds them
    ("a: {x: 1}\nb: 2\na: {y: 'on'}\n", False),  # a string to read again below a duplicate key
    ("x:\n  a: 1\n  a: 'yes'\n", False),
    ("---\na: 1\n---\n---\nb: [x, {c: d}]\n...\n", True),
    ("--- 5\n--- '5'\n--- yes\n--- ~\n---\n", True),
    ("", True),
    ("# only a comment\n", True),
    ("5\n", True),
    ("text: |\n  line one\n  line two\nfolded: >\n  a\n  b\n\n  c\nkeep: |+\n  x\n\nstrip: >-\n  y\n", True),
    ("a: |2\n   x\n  y\n", True),
    ("--- >\n--- >\n", False),  # rapidyaml reads one document, libyaml two
    ("a: |\n  x", False),  # no line break at the end: libyaml's value has none either, rapidyaml's has one
    ("a: plain\n  multi\n\n  line\nb: 'single\n  quoted'\nc: \"double\\\n  escaped\"\n", True),
    ("a: \"\\x41\\u00e9\\U0001F600 \\\" \\\\\"\nb: 'it''s'\nc: é: ü\n", False),  # `c: é: ü` is invalid
    ("a: \"\\x41\\u00e9\\U0001F600 \\\" \\\\\"\nb: 'it''s'\nc: 日本\n", True),
    ('a: "\\0\\e"\n', False),  # control characters: rapidyaml's JSON does not escape them
    ('a: "\\N\\_\\L\\P"\n', True),
    ("a: b #c\nd: e#f\ng: 'h' # i\n", True),
    ("- [a, b, {c: d}]\n- {}\n- []\n", True),
    ("? a\n: b\n", False),
    ("[a]: b\n", False),
    ("a:\tb\n", False),
    ("a: b\r\nc: d\r\n", False),
    ("a: x\u2028y\n", False),
    ("%YAML 1.1\n---\na: 1\n", False),
    ("a: 100%\nb: '%d'\nc: x %y\n", True),  # `%` starts a directive only at the start of a line
    ("a: b: c\n", False),
    ("a: 'unterminated\n", False),
    ("a: |\n   x\n  y\n", False),
    ("a: -\n", False),
]


def _loaded(text: str) -> tuple[list[Any] | None, Exception | None]:
    try:
        return list(yaml.load_all(text, Loader=yaml.CSafeLoader)), None
    except Exception as error:  # any refusal: rapidyaml must refuse too
        return None, error


def _rapid_agrees(text: str) -> bool:
    """Whether rapidyaml read `text`; when it did, its values are CSafeLoader's (`repr` compares types too:
    True and 1, 1 and 1.0, and key order)."""
    expected, error = _loaded(text)
    try:
        got = rapid_yaml.load_all(text)
    except fast_yaml.Unusual:
        return False
    assert error is None, f"rapidyaml read a text CSafeLoader refuses ({type(error).__name__})"
    assert repr(got) == repr(expected)
    return True


def test_rapidyaml_is_installed() -> None:
    """`pip install -e .` installs it (a runtime dependency); without it every test below would only skip."""
    assert rapid_yaml.available()


@pytest.mark.parametrize(("text", "read"), CORNER_CASES)
def test_corner_cases_match_csafeloader(text: str, read: bool) -> None:
    assert _rapid_agrees(text) is read


@pytest.mark.parametrize("text", TRICKY_YAML)
def test_tricky_documents_match_csafeloader(text: str) -> None:
    _rapid_agrees(text)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 4, max_value=2**70),
    st.floats(),
    st.text(max_size=12),
    st.text(alphabet="0123456789-+._:eEoxXbyYnNtTfF~<= ", max_size=8),
    st.sampled_from(["yes", "no", "on", "off", "~", "null", "0o17", "017", "1e3", "2026-01-01", "<<", "=", "-", "+1"]),
    st.dates(min_value=datetime.date(1900, 1, 1)),
    st.datetimes(min_value=datetime.datetime(1900, 1, 1)),
)
trees = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
STYLES: list[dict[str, Any]] = [
    {"default_flow_style": False},
    {"default_flow_style": True},
    {"default_flow_style": None},
    {"default_style": '"'},
    {"default_style": "'"},
    {"width": 12},
    {"allow_unicode": True, "width": 20},
    {"indent": 4, "explicit_start": True, "explicit_end": True},
]


@settings(max_examples=300, deadline=None)
@given(trees, st.sampled_from(STYLES))
def test_generated_documents_match_csafeloader(tree: Any, style: dict[str, Any]) -> None:
    _rapid_agrees(yaml.safe_dump_all([tree, {"k": tree}, tree], **style))


PIECES = [
    *("yes", "No", "on", "OFF", "~", "null", "0", "017", "0o17", "0x1F", "1_000", "1e3", "1.5e+3", "-.5", ".inf"),
    *("-.Inf", ".NaN", "nan", "1:30", "2001-12-14", "2001-12-14 21:59:43.10 -5", "<<", "=", "'q'", '"d"', "-"),
    *("+1", "a #c", "a#b", "[x, 'y']", "{a: 1}", "{}", "[]", "|\n  x", ">-\n  x\n  y", "&a x", "*a", "!!str 1"),
    *("? k", "%", ": ", "x: y", "'it''s'", '"\\x41\\t"', "a\n  b", "日本", "1.0", "-0", "123456789012345678901"),
    *("True", "\n", "\n  ", " ", "---", "...", "@", "`"),
]
tokens = st.lists(
    st.sampled_from(PIECES) | st.text(alphabet=" -:#'\"[]{},?&*!|>%\n01.eExyzon~<=\\", max_size=6),
    min_size=1,
    max_size=4,
).map("".join)
FRAMES = ["k: @\n", "- @\n", "@: v\n", "a:\n  b: @\n  c: [@]\n  d: {e: @}\n", "--- @\n--- @\n", "@"]


@settings(max_examples=500, deadline=None)
@given(tokens, st.sampled_from(FRAMES))
def test_generated_scalars_match_csafeloader(token: str, frame: str) -> None:
    _rapid_agrees(frame.replace("@", token))


def test_a_rapidyaml_error_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    """libyaml accepts a collection as a key, rapidyaml cannot hold one: its error handler would print."""
    with pytest.raises(fast_yaml.Unusual, match="ExceptionParse"):
        rapid_yaml.load_all("[a]: b\n")
    assert capfd.readouterr().err == ""


def _corpus(folder: Path) -> list[str]:
    """Everything `keyguard check` reads in the tests and the benchmark, and the repository's own YAML."""
    write_manifests(folder / "bench", 300)
    write_yaml(folder / "agreement.yaml", *(pod for _, pod in CORPUS))
    for number, text in enumerate([*TRICKY_YAML, *(text for text, _ in CORNER_CASES)]):
        if _loaded(text)[1] is None:
            (folder / f"case-{number}.yaml").write_text(text)
    repository = [ROOT / "docs" / "flyte-values", ROOT / "manifests", ROOT / "charts" / "keyguard" / "values.yaml"]
    return documents.expand([str(folder), *(str(path) for path in repository)])


def _run(files: list[str]) -> tuple[str, list[str]]:
    options = CheckOptions(policy=default_policy(), show_patch=True)
    report = check_paths(files, options, jobs=1)
    values = [repr([document.data for document in documents.load(name)]) for name in files]
    return render_json(report), values


def test_check_reports_the_same_with_every_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _corpus(tmp_path)
    with_rapidyaml = _run(files)
    monkeypatch.setattr(rapid_yaml, "available", lambda: False)
    with_libyaml = _run(files)
    monkeypatch.setattr(fast_yaml, "available", lambda: False)
    with_pyyaml = _run(files)
    assert with_rapidyaml[1] == with_libyaml[1] == with_pyyaml[1]
    assert with_rapidyaml[0] == with_libyaml[0] == with_pyyaml[0]
    assert '"line":' in with_rapidyaml[0]  # findings with lines were compared, not an empty report


def test_typical_flyte_pods_take_the_rapid_path(tmp_path: Path) -> None:
    """The benchmark's documents (and the bulk of real manifests) are read by rapidyaml, not left to libyaml."""
    write_manifests(tmp_path, 40)
    for name in sorted(tmp_path.iterdir()):
        text = name.read_text()
        assert rapid_yaml.load_all(text) == list(yaml.load_all(text, Loader=yaml.CSafeLoader))


@pytest.mark.parametrize(("depth", "read"), [(20, True), (500, False), (990, False), (5000, False), (100_000, False)])
def test_deep_nesting_is_read_or_left_to_libyaml(capfd: pytest.CaptureFixture[str], depth: int, read: bool) -> None:
    """libyaml refuses nesting past its limit before rapidyaml (recursive in C++) sees the text, and rapidyaml's
    emitter refuses nesting past its own (silently: its handler's message would go to stderr)."""
    assert _rapid_agrees("a: " + "[" * depth + "]" * depth + "\n") is read
    assert _rapid_agrees("{a: " * depth + "1" + "}" * depth + "\n") is read
    assert capfd.readouterr().err == ""
