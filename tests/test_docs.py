"""Every ``docs/method.md §N`` the code and docs cite names a section that exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITE = re.compile(r"docs/method\.md (§[\d.]+(?:,\s*§[\d.]+)*)")


def _sections() -> set[str]:
    text = (ROOT / "docs" / "method.md").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, flags=re.M)}


def test_method_citations_resolve() -> None:
    sections = _sections()
    assert {"1", "2.1", "2.2", "2.3", "3", "4.1", "4.2", "4.3", "8"} <= sections
    cited: dict[str, list[str]] = {}
    files = [ROOT / "README.md", *(p for d in ("ml", "api", "worker", "persistence", "experiments", "tests", "docs")
                                   for p in (ROOT / d).rglob("*") if p.suffix in {".py", ".md", ".js"})]
    for path in files:
        for m in CITE.finditer(path.read_text(encoding="utf-8", errors="replace")):
            for ref in re.findall(r"§([\d.]+)", m.group(1)):
                cited.setdefault(ref.rstrip("."), []).append(str(path.relative_to(ROOT)))
    assert cited, "no citations found: the pattern is wrong"
    missing = {ref: where for ref, where in cited.items() if ref not in sections}
    assert not missing, f"citations of sections docs/method.md does not have: {missing}"
