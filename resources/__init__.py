"""Data files shipped with gpuops (catalogues, icons, styles), with their provenance."""

from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """Absolute path of a shipped resource file; raises FileNotFoundError if absent."""
    path = RESOURCES_DIR / name
    if not path.exists():
        raise FileNotFoundError(f"gpuops resource missing: {path}")
    return path
