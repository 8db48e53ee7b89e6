"""The README's configuration table and the Settings class say the same thing: every setting is
listed under its `JOBRELAY_` name, no listed variable is unknown, and where the table gives a
default per variable, it is the class's default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jobrelay.config import Settings

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
# Variables read before Settings exists, by the module named: each must really read it.
READ_ELSEWHERE = {"KINDS": "src/jobrelay/kinds/discovery.py"}
_UNITS = {"s": 1, "MiB": 1024 * 1024}


def _table() -> list[tuple[list[str], str]]:
    """(variable names, default cell) for each row of the table under `## Configuration`."""
    text = README.read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        rows.append((re.findall(r"`([A-Z0-9_]+)`", cells[0]), cells[1]))
    return rows


def _documented() -> dict[str, str | None]:
    """Each variable and its own default text, or None where a row gives one for several."""
    documented: dict[str, str | None] = {}
    for names, default in _table():
        parts = [part.strip() for part in default.split(",")]
        for index, name in enumerate(names):
            documented[name] = parts[index] if len(parts) == len(names) else None
    return documented


def _matches(value: Any, text: str) -> bool:
    if isinstance(value, bool):
        return text.lower().startswith(str(value).lower())
    if isinstance(value, int | float):
        found = re.match(r"([\d.]+)\s*(\w+)?", text)
        if found is None:
            return False
        number = float(found.group(1)) * _UNITS.get(found.group(2) or "", 1)
        return number == float(value)
    if isinstance(value, str) and value:
        return value in text
    return True  # empty: "embedded", "offline", "—", "auto" all describe it


def test_every_setting_is_in_the_readme_and_nothing_else() -> None:
    settings = {name.upper() for name in Settings.model_fields}
    documented = set(_documented())
    assert sorted(settings - documented) == [], "settings missing from the README table"
    unknown = documented - settings - set(READ_ELSEWHERE)
    assert sorted(unknown) == [], "README lists variables Settings does not have"
    for name, module in READ_ELSEWHERE.items():
        assert f"JOBRELAY_{name}" in (REPO / module).read_text(), f"{module} reads {name}"


def test_the_readme_defaults_are_the_settings_defaults() -> None:
    wrong = {
        name: (text, Settings.model_fields[name.lower()].default)
        for name, text in _documented().items()
        if text is not None
        and name.lower() in Settings.model_fields
        and not _matches(Settings.model_fields[name.lower()].default, text)
    }
    assert wrong == {}, "README default (left) differs from Settings (right)"
