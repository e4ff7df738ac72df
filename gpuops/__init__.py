"""gpuops: an operations console for a GPU cloud.

One import name for everything installed: `gpuops.cli` and `gpuops.commands` (the command
line), `gpuops.core` (all logic, no Qt; the repository's core/), `gpuops.gui` (Qt views; gui/)
and `gpuops.resources` (shipped data; resources/). setup.py maps the folders.
"""

__version__ = "0.1.0"
