"""The README and docs/ say what the code does.

* README.md is a guide a newcomer reads: at most 400 lines, details in docs/.
* A default of ``hparams/verification.yaml`` is quoted as ```key` = value``
  (docs/layout.md, "Writing the documentation"); every such quote, and the
  older forms ```key` (value)`` and ```key`, default value``, must match the
  YAML, so a changed default fails here until the docs follow.
* Every relative link points at an existing file (and heading, for anchors).
* Every figure table of the performance, robustness and calibration pages
  names, before it, the committed result file under ``benchmarks/`` it comes
  from.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from speechbrain_eres2net.settings import SETTING_KEYS

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
MAX_README_LINES = 400

# Entries of verification.yaml that are defaults of the API and the command
# line (settings.py), and so may be quoted in the docs (the seed and the
# allow-list of model folder code are not quoted as values).
DEFAULT_KEYS = tuple(
    k for k in SETTING_KEYS if k not in ("seed", "model_folder_trusted_targets")
)
# Defaults a reader looks up: each must be quoted somewhere, so that the
# check below cannot pass by finding nothing.
MUST_QUOTE = (
    "p_target",
    "calibration_prior",
    "calibration_quality",
    "min_speech_seconds",
    "vad",
    "window_seconds",
    "batch_size",
    "top_k",
    "min_enroll_speech_seconds",
    "p_enrolled",
)

_LIST = r"\[[^\]\n]*\]"
_NUMBER = r"[-+]?\d[\d.eE+-]*"
QUOTE_FORMS = (
    # `key` = value: the documented convention.
    re.compile(r"`(?P<key>\w+)`\s*=\s*(?P<value>" + _LIST + r"|[^\s,;)`]+)"),
    # `key` (value) and `key` (default value).
    re.compile(
        r"`(?P<key>\w+)`\s*\((?:default:?\s+)?(?P<value>" + _LIST + "|" + _NUMBER + ")"
    ),
    re.compile(r"`(?P<key>\w+)`\s*\(default:?\s+(?P<value>[^\s,;)`]+)"),
    # `key`, default value / `key` default: value.
    re.compile(
        r"`(?P<key>\w+)`,?\s+(?:by\s+)?default:?\s+(?P<value>" + _LIST + r"|[^\s,;)`]+)"
    ),
)

LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(\s*(?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
RESULT_FILE = re.compile(r"benchmarks/[\w./-]+\.json")
TABLE_RULE = re.compile(r"^\|\s*:?-{3,}")
FIGURE_PAGES = ("performance.md", "robustness.md", "calibration.md", "deployment.md")


def prose(text: str) -> str:
    """The text without fenced code blocks (their lines become empty)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append("")
        else:
            out.append("" if fenced else line)
    return "\n".join(out)


def yaml_defaults() -> dict:
    path = REPO / "hparams" / "verification.yaml"
    data = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    return {key: data[key] for key in DEFAULT_KEYS if key in data}


def plain(value):
    """ruamel's round-trip types as plain Python values."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return str(value)


def parse_quoted(text: str):
    """A quoted value as YAML reads it (a sentence's final period dropped)."""
    if not text.startswith("["):
        text = text.rstrip(".:")
    return plain(YAML(typ="safe").load(text))


def same(quoted, expected) -> bool:
    if isinstance(quoted, float) and isinstance(expected, float):
        return math.isclose(quoted, expected, rel_tol=1e-9)
    return quoted == expected


def quotes(text: str) -> list[tuple[int, str, str]]:
    """(line, key, value text) of every default quote of a listed key."""
    found = {}
    for form in QUOTE_FORMS:
        for match in form.finditer(text):
            if match["key"] in DEFAULT_KEYS:
                line = text.count("\n", 0, match.start()) + 1
                found.setdefault(match.start(), (line, match["key"], match["value"]))
    return sorted(found.values())


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose(path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match[1])
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def tables(text: str) -> list[tuple[int, int]]:
    """(first, end) line indices of each Markdown table."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines) - 1:
        if lines[i].startswith("|") and TABLE_RULE.match(lines[i + 1]):
            end = i + 2
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            out.append((i, end))
            i = end
        else:
            i += 1
    return out


def test_pages_exist():
    names = {p.name for p in PAGES}
    for name in (
        "recipe.md",
        "calibration.md",
        "performance.md",
        "layout.md",
        "changes.md",
        "cli.md",
    ):
        assert name in names, f"docs/{name} is missing"


def test_readme_is_a_short_guide():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines, at most {MAX_README_LINES}: "
        "move details to a page in docs/"
    )


def test_quoted_defaults_are_the_yaml_defaults():
    defaults = yaml_defaults()
    assert set(DEFAULT_KEYS) <= defaults.keys(), (
        f"not in hparams/verification.yaml: {set(DEFAULT_KEYS) - defaults.keys()}"
    )
    wrong, quoted = [], set()
    for page in PAGES:
        for line, key, value in quotes(prose(page.read_text(encoding="utf-8"))):
            quoted.add(key)
            expected = plain(defaults[key])
            try:
                got = parse_quoted(value)
            except Exception:  # noqa: BLE001 - any unreadable quote is reported
                got = value
            if not same(got, expected):
                where = page.relative_to(REPO)
                wrong.append(
                    f"{where}:{line}: `{key}` quoted as {value}, YAML {expected}"
                )
    assert not wrong, "defaults quoted wrong:\n" + "\n".join(wrong)
    missing = set(MUST_QUOTE) - quoted
    assert not missing, f"defaults never quoted as `key` = value: {sorted(missing)}"


def test_quote_finder_catches_a_wrong_default():
    """The checker itself: the stale README sentence would fail."""
    text = "fitted with BOSARIS's objective (`calibration_prior`, default 0.05) and"
    ((_, key, value),) = quotes(text)
    assert key == "calibration_prior"
    assert not same(parse_quoted(value), plain(yaml_defaults()[key]))
    text = "`calibration_quality` = [duration, norm]. `min_speech_seconds` (1.0 s)"
    assert [(k, parse_quoted(v)) for _, k, v in quotes(text)] == [
        ("calibration_quality", ["duration", "norm"]),
        ("min_speech_seconds", 1.0),
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    broken = []
    for match in LINK.finditer(prose(page.read_text(encoding="utf-8"))):
        target = match["target"]
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {path.name}")
    assert not broken, f"{page.name}: broken links: {broken}"


@pytest.mark.parametrize("name", FIGURE_PAGES)
def test_figure_tables_name_their_result_file(name):
    page = DOCS / name
    lines = prose(page.read_text(encoding="utf-8")).splitlines()
    problems = []
    for first, end in tables("\n".join(lines)):
        start = first
        while start > 0 and not lines[start - 1].startswith("#"):
            start -= 1
        context = "\n".join(lines[start:end])
        named = RESULT_FILE.findall(context)
        if not named:
            problems.append(f"line {first + 1}: no benchmarks/*.json named before it")
        problems += [
            f"line {first + 1}: {f} does not exist"
            for f in named
            if not (REPO / f).is_file()
        ]
    assert not problems, f"docs/{name}: {problems}"
