"""External programs the tests drive (desktop-file-validate, poppler's pdfinfo, ...)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """The tool's path; in CI a missing tool fails the test, since a skip would hide a missing install."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; scripts/dev.sh test should install it")
        pytest.skip(f"{name} not installed")
    return path
