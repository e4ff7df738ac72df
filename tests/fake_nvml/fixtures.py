"""pytest fixtures for the fake NVML driver (registered via pytest_plugins in tests/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_nvml.build import PROFILES, build_fake_nvml
from tests.fake_nvml.control import DEFAULT_BUILD_DIR, FakeNvml, load_fake_nvml

# The driver family the in-process NVML cases run on: tests/test_source_nvml_profiles.py runs them
# again in a child pytest per family that boots the "default" fleet.
PROFILE_VARIABLE = "FAKE_NVML_PROFILE"


@pytest.fixture(scope="session")
def fake_nvml_library() -> Path:
    """The fake libnvidia-ml.so.1 (built once per source change) of driver family $FAKE_NVML_PROFILE
    (default "current"); its directory goes on LD_LIBRARY_PATH."""
    return build_fake_nvml(DEFAULT_BUILD_DIR, os.environ.get(PROFILE_VARIABLE, "current"))


@pytest.fixture(scope="session")
def legacy_fake_nvml_library() -> Path:
    """A fake driver predating the clocks-event API and field ids >= 185 (for subprocess tests)."""
    return build_fake_nvml(DEFAULT_BUILD_DIR, "legacy")


@pytest.fixture
def fake_nvml(fake_nvml_library: Path) -> Iterator[FakeNvml]:
    """The fake loaded in this process with the "default" scenario, reset again afterwards."""
    fake = load_fake_nvml(fake_nvml_library)
    fake.reset("default")
    yield fake
    fake.reset("default")


@pytest.fixture(scope="session", params=tuple(PROFILES))
def nvml_profile(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """(profile name, its fake library): a test taking this runs once per driver family."""
    return request.param, build_fake_nvml(DEFAULT_BUILD_DIR, request.param)
