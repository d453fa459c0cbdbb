"""Regenerates the "Configuration reference" table of docs/kinesis.md from spec.json (unit_tests/test_docs.py
checks that they agree): run ``.venv/bin/python scripts/docs_config_table.py`` after changing spec.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC = REPO_ROOT / "docs" / "kinesis.md"
HEADER = "| Field | Key | Required | Default | Description |\n| :---- | :-- | :------: | :------ | :---------- |\n"
_TABLE = re.compile(r"(## Configuration reference\n\n)(\|.*?\n)(?=\n)", re.DOTALL)


def _default(schema: dict[str, Any]) -> str:
    if "default" not in schema or schema["default"] in ([], ""):
        return ""
    value = schema["default"]
    if isinstance(value, bool | str):
        return f"`{json.dumps(value)}`"
    return str(value)


def table(spec: dict[str, Any]) -> str:
    """The Markdown table: one row per property of the connection specification, in spec order."""
    connection = spec["connectionSpecification"]
    required = set(connection.get("required", []))
    rows = []
    for key, schema in sorted(connection["properties"].items(), key=lambda item: item[1].get("order", 0)):
        description = schema.get("description", "")
        if schema.get("airbyte_secret"):
            description += " Secret: never shown in logs or messages."
        rows.append(f"| {schema.get('title', key)} | `{key}` | {'Yes' if key in required else 'No'} | "
                    f"{_default(schema)} | {description} |\n")
    return HEADER + "".join(rows)


def regenerated(doc: str, spec: dict[str, Any]) -> str:
    """``doc`` with its configuration table replaced by :func:`table`."""
    new, count = _TABLE.subn(lambda match: match.group(1) + table(spec), doc)
    if count != 1:
        raise SystemExit("docs/kinesis.md has no table under '## Configuration reference'")
    return new


if __name__ == "__main__":
    DOC.write_text(regenerated(DOC.read_text(), json.loads((REPO_ROOT / "spec.json").read_text())))
