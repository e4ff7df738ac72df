"""All gpuops logic. Nothing here imports Qt (tests/test_layering.py enforces it)."""
