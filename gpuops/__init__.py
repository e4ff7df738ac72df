"""gpuops: an operations console for a GPU cloud.

The package `gpuops` is the application shell (command line, entry points). The logic lives in
the top-level package `core` (no Qt) and the views in `gui` (Qt only).
"""

__version__ = "0.1.0"
