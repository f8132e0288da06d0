"""Every relative link in README.md and docs/*.md points at a file that exists, and every `#anchor` at a
heading of that page (GitHub's heading ids). The reference moved out of README into docs/ (issue 23), so
a renamed heading or page must not leave a dead link behind."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]

# [text](target) and ![alt](target); the target stops at whitespace (an optional "title" may follow).
_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_INLINE_CODE = re.compile(r"(`+)(?:.*?)\1")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _prose_lines(text: str):
    """(line number, line) outside fenced code blocks, inline code blanked out."""
    fence = None
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*(`{3,}|~{3,})", line)
        if m:
            if fence is None:
                fence = m.group(1)[0] * len(m.group(1))
            elif m.group(1).startswith(fence):
                fence = None
            continue
        if fence is None:
            yield n, _INLINE_CODE.sub(lambda c: " " * len(c.group(0)), line)


def slug(heading: str) -> str:
    """GitHub's heading id: lower case; letters, marks, decimal and letter numbers, `_`, `-` and spaces
    are kept (the rest - punctuation, symbols, superscripts - is dropped); spaces become `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()  # a link in a heading shows its text
    kept = [c for c in text if c in " -" or unicodedata.category(c) in
            {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "Pc"}]
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading id of a markdown file; repeated headings get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    fence = None
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*(`{3,}|~{3,})", line)
        if m:
            fence = None if fence else m.group(1)
            continue
        h = None if fence else _HEADING.match(line)
        if h:
            base = slug(h.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(doc: Path) -> list[str]:
    """What is wrong with each relative link of one markdown file ("line N: target: why")."""
    problems = []
    for n, line in _prose_lines(doc.read_text(encoding="utf-8")):
        for m in _LINK.finditer(line):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            dest = (doc.parent / unquote(path_part)).resolve() if path_part else doc
            if not dest.exists():
                problems.append(f"line {n}: {target}: no such file {dest}")
                continue
            if anchor:
                if dest.suffix.lower() != ".md":
                    problems.append(f"line {n}: {target}: an anchor into a file that is not markdown")
                elif unquote(anchor).lower() not in anchors(dest):
                    problems.append(f"line {n}: {target}: no heading with id #{anchor} in {dest.name}")
    return problems


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path):
    assert broken_links(doc) == []


def test_readme_links_every_docs_page():
    """Each reference page is reachable from the front page."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {(ROOT / m.group(1).partition("#")[0]).resolve() for _, line in _prose_lines(readme)
              for m in _LINK.finditer(line)}
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert missing == []


def test_slugs_match_github():
    # ids as GitHub renders them (the old README's own links used these)
    assert slug("Detail ControlNet (tile, line art, canny)") == "detail-controlnet-tile-line-art-canny"
    assert slug("Fewer FLOPs per image: cfg_end, control_budget, the fast preset") == \
        "fewer-flops-per-image-cfg_end-control_budget-the-fast-preset"
    assert slug("Still: Dual ControlNet Sampler (`python -m benchmarks.bench_still`, real SD1.5 architecture "
                "with random weights)") == \
        "still-dual-controlnet-sampler-python--m-benchmarksbench_still-real-sd15-architecture-with-random-weights"
    assert slug("8 frames at 256², 2 steps") == "8-frames-at-256-2-steps"  # superscripts are dropped


def test_checker_catches_broken_links(tmp_path: Path):
    (tmp_path / "other.md").write_text("# Other page\n\n## Same\n\n## Same\n", encoding="utf-8")
    (tmp_path / "pic.png").write_bytes(b"\x89PNG")
    doc = tmp_path / "page.md"
    doc.write_text(
        "# Page\n\n"
        "Fine: [other](other.md), [section](other.md#same-1), [here](#page), ![pic](pic.png),\n"
        "[web](https://example.com/missing.md), `[in code](nowhere.md)`.\n\n"
        "```\n[in a fence](nowhere.md)\n```\n\n"
        "Broken: [gone](missing.md), [bad anchor](other.md#nope), [own](#absent), [dup](other.md#same-2).\n",
        encoding="utf-8",
    )
    problems = broken_links(doc)
    assert len(problems) == 4, problems
    assert "missing.md: no such file" in problems[0]
    assert "other.md#nope: no heading with id #nope" in problems[1]
    assert "#absent: no heading with id #absent in page.md" in problems[2]
    assert "other.md#same-2" in problems[3]
    assert all(p.startswith("line 10:") for p in problems)
