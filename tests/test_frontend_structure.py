"""Static checks of the dashboard's module structure (no browser): views are pages reached through the router, so a
view never imports another view or the router shell (app.js); shared pieces live in frontend/components/. Every
named import names something the imported module exports (a renamed or moved export fails here, not in a browser)."""

from __future__ import annotations

import re
from pathlib import Path

FRONTEND = Path(__file__).resolve().parents[1] / "frontend"
IMPORT = re.compile(r'^import\s+(?:\{([^}]*)\}|\*\s+as\s+\w+|\w+)\s+from\s+"([^"]+)";', re.M)
DYNAMIC = re.compile(r'import\(\s*"([^"]+)"\s*\)')
EXPORT = re.compile(r"^export\s+(?:async\s+)?(?:function\*?|const|let|class)\s+(\w+)|^export\s+\{([^}]*)\}", re.M)


def _modules() -> list[Path]:
    return sorted(p for p in FRONTEND.rglob("*.js") if "vendor" not in p.parts)


def _imports(path: Path) -> list[tuple[Path, list[str]]]:
    text = path.read_text()
    out = []
    for names, spec in IMPORT.findall(text):
        target = (path.parent / spec).resolve()
        out.append((target, [n.split(" as ")[0].strip() for n in names.split(",") if n.strip()]))
    out += [((path.parent / spec).resolve(), []) for spec in DYNAMIC.findall(text)]
    return out


def _exports(path: Path) -> set[str]:
    found: set[str] = set()
    for name, group in EXPORT.findall(path.read_text()):
        found |= {name} if name else {n.split(" as ")[-1].strip() for n in group.split(",") if n.strip()}
    return found


def test_views_import_no_view_and_not_the_shell() -> None:
    views = FRONTEND / "views"
    bad = []
    for view in sorted(views.glob("*.js")):
        for target, _ in _imports(view):
            if target.parent == views or target == FRONTEND / "app.js":
                bad.append(f"{view.name} imports {target.relative_to(FRONTEND)}")
    assert not bad, "views must import components, not views or app.js: " + "; ".join(bad)


def test_only_views_live_in_views() -> None:
    """Everything in views/ is a page the router loads (it exports render)."""
    app = (FRONTEND / "app.js").read_text()
    for view in sorted((FRONTEND / "views").glob("*.js")):
        assert f'import("./views/{view.name}")' in app, f"views/{view.name} is no route: move it to components/"
        assert "render" in _exports(view), view.name


def test_named_imports_exist() -> None:
    missing = []
    for module in _modules():
        for target, names in _imports(module):
            if not target.exists():
                missing.append(f"{module.relative_to(FRONTEND)}: no file {target.relative_to(FRONTEND)}")
                continue
            exported = _exports(target)
            missing += [f"{module.relative_to(FRONTEND)}: {n} not exported by {target.relative_to(FRONTEND)}"
                        for n in names if n not in exported]
    assert not missing, "; ".join(missing)


def test_the_checks_see_a_violation(tmp_path: Path) -> None:
    """The patterns match the import forms the dashboard uses (so the checks above cannot pass vacuously)."""
    js = tmp_path / "v.js"
    js.write_text('import { a, b as c } from "./x.js";\nimport * as api from "../api.js";\nexport function render() {}\n'
                  'const m = () => import("./views/y.js");\nexport const k = 1;\n')
    assert [names for _, names in _imports(js)] == [["a", "b"], [], []]
    assert _exports(js) == {"render", "k"}
