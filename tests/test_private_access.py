"""No class reaches into another's private members (`other._name`): each part is used through
what it offers (docs/ARCHITECTURE.md).  Read from the source with `ast`; `self._x`, `cls._x`
and the standard library's documented underscore names (os._exit, namedtuple's _replace...)
are fine."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED_NAMES = {"_exit", "_replace", "_asdict", "_fields", "_make", "_getframe"}
# Known, in parts being reworked by other changes; remove an entry when its code is fixed.
KNOWN = {
    ("station/web/live.py", "h._error"), ("station/web/live.py", "h._send"),
    ("station/web/live.py", "h._common_headers"), ("station/web/server.py", "self.svc.source._root"),
    ("station/commands/roll.py", "args._parser"),
    ("station/model/specialfilm.py", "film._illum"),  # film.py's private illuminant: make it public there
}


def private_reaches() -> list[tuple[str, str]]:
    out = []
    for p in sorted((ROOT / "station").rglob("*.py")):
        rel = p.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(p.read_text(), rel)):
            if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
                continue
            if node.attr in ALLOWED_NAMES:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            out.append((rel, ast.unparse(node)))
    return out


def test_no_class_reaches_into_another():
    assert [r for r in private_reaches() if r not in KNOWN] == []


def test_the_app_uses_no_private_member_of_another_part():
    assert [r for r in private_reaches() if r[0] in ("station/app.py",) or r[0].startswith("station/daemon/")] == []
