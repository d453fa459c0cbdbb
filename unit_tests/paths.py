"""Where the tests find the repository's files."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).parent.parent
RESOURCES = Path(__file__).parent / "resources"
