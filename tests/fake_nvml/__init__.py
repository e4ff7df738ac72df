"""A fake NVIDIA driver (C, built at test time against the official nvml.h) and its controls.

Tests and benchmarks drive the real pynvml bindings against it; see control.py for how it is
loaded and build.py for how it is built.
"""

from tests.fake_nvml.build import PROFILES, FakeNvmlBuildError, build_fake_nvml
from tests.fake_nvml.control import (
    DEFAULT_BUILD_DIR,
    DEFAULT_GPU_COUNT,
    ECC_INDEX,
    FOREIGN_PID,
    LOST_INDEX,
    PCIE_INDEX,
    SCENARIOS,
    SXM_INDEX,
    FakeNvml,
    load_fake_nvml,
    subprocess_env,
)

__all__ = [
    "DEFAULT_BUILD_DIR",
    "DEFAULT_GPU_COUNT",
    "ECC_INDEX",
    "FOREIGN_PID",
    "LOST_INDEX",
    "PCIE_INDEX",
    "PROFILES",
    "SCENARIOS",
    "SXM_INDEX",
    "FakeNvml",
    "FakeNvmlBuildError",
    "build_fake_nvml",
    "load_fake_nvml",
    "subprocess_env",
]
