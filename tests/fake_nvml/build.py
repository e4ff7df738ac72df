"""Build the fake libnvidia-ml.so.1 against NVIDIA's official nvml.h.

The header is not vendored: it comes from NVIDIA's `nvidia-nvml-dev` wheel, downloaded once into
the build directory with pip, so the fake always matches the real ABI that pynvml talks to.
A build is keyed on the hash of the C source, the compiler flags and the header wheel, so an edit
of fake_nvml.c rebuilds and nothing else does.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HEADER_WHEEL = "nvidia-nvml-dev==13.5.37"
HEADER_IN_WHEEL = "nvidia/cu13/include/nvml.h"
SOURCE = Path(__file__).with_name("fake_nvml.c")
LIBRARY_NAME = "libnvidia-ml.so.1"
_CFLAGS = ("-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-shared", "-fPIC")
# Driver families: (compiler defines that leave out what the family lacks, scenario it boots with).
# vGPU guests and MIG-enabled GPUs have every symbol; what differs is how the devices answer.
PROFILES: dict[str, tuple[tuple[str, ...], str]] = {
    "current": ((), "default"),
    "no-field-values": (("-DFAKE_NVML_NO_FIELD_VALUES",), "default"),
    "legacy": (("-DFAKE_NVML_LEGACY",), "default"),
    "vgpu": ((), "vgpu"),
    "mig": ((), "mig"),
}


class FakeNvmlBuildError(RuntimeError):
    """The fake driver could not be built (no network for pip, no gcc, a compile error)."""


@contextmanager
def _build_lock(build_dir: Path) -> Iterator[None]:
    """Serialise builds: several pytest processes may share one build directory."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise FakeNvmlBuildError(f"{what} failed ({' '.join(command)}):\n{detail}")


def _cached_wheel(wheel_dir: Path) -> Path | None:
    version = HEADER_WHEEL.split("==")[1]
    matches = sorted(wheel_dir.glob(f"nvidia_nvml_dev-{version}-*.whl"))
    return matches[0] if matches else None


def _nvml_header(build_dir: Path) -> Path:
    """nvml.h from the nvidia-nvml-dev wheel, downloading the wheel only if it is not cached."""
    include_dir = build_dir / "include" / HEADER_WHEEL.replace("==", "-")
    header = include_dir / "nvml.h"
    if header.exists():
        return header
    wheel_dir = build_dir / "wheels"
    wheel = _cached_wheel(wheel_dir)
    if wheel is None:
        _run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--quiet", "--dest", str(wheel_dir), HEADER_WHEEL],
            f"downloading {HEADER_WHEEL} for nvml.h",
        )
        wheel = _cached_wheel(wheel_dir)
    if wheel is None:
        raise FakeNvmlBuildError(f"pip reported success but no {HEADER_WHEEL} wheel is in {wheel_dir}")
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(HEADER_IN_WHEEL)
    include_dir.mkdir(parents=True, exist_ok=True)
    partial = header.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(data)
    os.replace(partial, header)
    return header


def build_fake_nvml(build_dir: Path, profile: str = "current") -> Path:
    """Path of the fake library of driver family `profile` (a key of PROFILES), built if needed;
    its directory suits LD_LIBRARY_PATH. Profiles with the same symbols share one library."""
    if profile not in PROFILES:
        raise ValueError(f"unknown fake NVML profile {profile!r}; expected one of {tuple(PROFILES)}")
    if shutil.which("gcc") is None:
        raise FakeNvmlBuildError("gcc is needed to build the fake NVML driver and is not on PATH")
    build_dir = build_dir.resolve()
    defines = PROFILES[profile][0]
    flags = _CFLAGS + defines
    digest = hashlib.sha256()
    digest.update(SOURCE.read_bytes())
    digest.update("\0".join(flags + (HEADER_WHEEL,)).encode())
    variant = "-".join(d.removeprefix("-DFAKE_NVML_").lower() for d in defines) or "current"
    out_dir = build_dir / f"{variant}-{digest.hexdigest()[:16]}"
    library = out_dir / LIBRARY_NAME
    if library.exists():
        return library
    with _build_lock(build_dir):
        if library.exists():
            return library
        header = _nvml_header(build_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        partial = out_dir / f".{LIBRARY_NAME}.{os.getpid()}.tmp"
        _run(
            ["gcc", *flags, f"-I{header.parent}", f"-Wl,-soname,{LIBRARY_NAME}",
             "-o", str(partial), str(SOURCE)],
            "compiling the fake NVML driver",
        )
        os.replace(partial, library)
        for stale in build_dir.glob(f"{variant}-*"):
            if stale != out_dir:
                shutil.rmtree(stale, ignore_errors=True)
    return library
