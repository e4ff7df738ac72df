"""Load the fake NVML driver and steer it from Python (tests and benchmarks).

In-process: `load_fake_nvml()` must run before pynvml's first nvmlInit. It loads the library with
RTLD_GLOBAL, so pynvml's own `CDLL("libnvidia-ml.so.1")` resolves to it by soname. pynvml itself
is never touched. Subprocesses get the fake the production way, via LD_LIBRARY_PATH
(`subprocess_env`).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from tests.fake_nvml.build import build_fake_nvml

DEFAULT_BUILD_DIR = Path(__file__).resolve().parent.parent / ".fake-nvml-build"

SCENARIOS = ("default", "eight", "driver-not-loaded", "no-permission", "slow", "vgpu", "mig", "eight-vgpu", "eight-mig")

# The "default" scenario's GPUs, by NVML index (see default_fleet() in fake_nvml.c).
SXM_INDEX = 0  # H100 SXM: fan NOT_SUPPORTED; runs this process and FOREIGN_PID
ECC_INDEX = 1  # H100 with ECC errors and a pending row remap
LOST_INDEX = 2  # H100 answering NVML_ERROR_GPU_IS_LOST to all but its identity (UUID, name, serial, PCI)
PCIE_INDEX = 3  # RTX 6000 Ada PCIe card whose fan works
DEFAULT_GPU_COUNT = 4
FOREIGN_PID = 4_000_000  # a process in another PID namespace: not visible on this OS

NVML_ERROR_GPU_IS_LOST = 15
NVML_VALUE_NOT_AVAILABLE = 0xFFFF_FFFF_FFFF_FFFF
NO_INSTANCE = 0xFFFF_FFFF  # gpuInstanceId of a process on a GPU without MIG

_c = ctypes
_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "fake_nvml_reset": (_c.c_int, [_c.c_char_p]),
    "fake_nvml_set_init_error": (None, [_c.c_int]),
    "fake_nvml_set_device_error": (_c.c_int, [_c.c_uint, _c.c_int, _c.c_int]),
    "fake_nvml_set_latency_ms": (None, [_c.c_uint]),
    "fake_nvml_set_device_count": (_c.c_int, [_c.c_uint]),
    "fake_nvml_set_value": (_c.c_int, [_c.c_uint, _c.c_char_p, _c.c_longlong]),
    "fake_nvml_get_value": (_c.c_int, [_c.c_uint, _c.c_char_p, _c.POINTER(_c.c_longlong)]),
    "fake_nvml_get_string": (_c.c_int, [_c.c_uint, _c.c_char_p, _c.c_char_p, _c.c_uint]),
    "fake_nvml_add_process": (_c.c_int, [_c.c_uint, _c.c_int, _c.c_uint, _c.c_ulonglong]),
    "fake_nvml_clear_processes": (_c.c_int, [_c.c_uint]),
    "fake_nvml_get_device_error": (_c.c_int, [_c.c_uint]),
    "fake_nvml_get_process": (
        _c.c_int,
        [_c.c_uint, _c.c_int, _c.c_uint, _c.POINTER(_c.c_uint), _c.POINTER(_c.c_ulonglong), _c.POINTER(_c.c_uint)],
    ),
    "fake_nvml_mig_count": (_c.c_int, [_c.c_uint]),
    "fake_nvml_get_mig_value": (_c.c_int, [_c.c_uint, _c.c_uint, _c.c_char_p, _c.POINTER(_c.c_longlong)]),
    "fake_nvml_get_mig_string": (_c.c_int, [_c.c_uint, _c.c_uint, _c.c_char_p, _c.c_char_p, _c.c_uint]),
    "fake_nvml_inject_xid": (_c.c_int, [_c.c_uint, _c.c_ulonglong]),
    "fake_nvml_call_count": (_c.c_ulonglong, []),
    "fake_nvml_wait_count": (_c.c_ulonglong, []),
    "fake_nvml_init_count": (_c.c_uint, []),
    "fake_nvml_first_unknown_field": (_c.c_uint, []),
}
_UNSUPPORTED = -1


class FakeNvml:
    """Control handle for the loaded fake driver. Values are the driver's raw units (mW, mJ, bytes)."""

    def __init__(self, library: ctypes.CDLL, path: Path) -> None:
        self.path = path
        self._lib = library
        for name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(library, name)
            function.restype = restype
            function.argtypes = argtypes

    @property
    def library_dir(self) -> Path:
        return self.path.parent

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            raise ValueError(f"fake NVML refused {what}")

    def reset(self, scenario: str = "default") -> None:
        """Forget all state (init count, event sets, call counters) and load a scenario."""
        status = self._lib.fake_nvml_reset(scenario.encode())
        self._check(status, f"unknown scenario {scenario!r}; expected {SCENARIOS}")

    def set_init_error(self, code: int) -> None:
        """nvmlInit answers `code` (an NVML_ERROR_*), or succeeds again with 0."""
        self._lib.fake_nvml_set_init_error(code)

    def set_device_error(self, index: int, code: int, *, identity_answers: bool = False) -> None:
        """Every per-device query on GPU `index` answers `code` (0 = healthy again); with
        `identity_answers` its UUID, name, serial and PCI info still answer (from the driver's cache)."""
        identity_code = 0 if identity_answers else code
        self._check(self._lib.fake_nvml_set_device_error(index, code, identity_code), f"GPU index {index}")

    def set_lost(self, index: int, lost: bool = True, *, identity_answers: bool = False) -> None:
        self.set_device_error(index, NVML_ERROR_GPU_IS_LOST if lost else 0, identity_answers=identity_answers)

    def set_latency_ms(self, ms: int) -> None:
        """Every NVML call sleeps `ms` first, like a driver stuck behind a hung GPU."""
        self._lib.fake_nvml_set_latency_ms(ms)

    def set_device_count(self, count: int) -> None:
        """Keep the first `count` GPUs; extra ones are boards on which every field answers."""
        self._check(self._lib.fake_nvml_set_device_count(count), f"{count} GPUs")

    def set_value(self, index: int, key: str, value: int | None) -> None:
        """Set a numeric property (names as in FAKE_KEYS in fake_nvml.c); None = not supported."""
        raw = _UNSUPPORTED if value is None else value
        self._check(self._lib.fake_nvml_set_value(index, key.encode(), raw), f"setting {key!r} on GPU {index}")

    def value(self, index: int, key: str) -> int | None:
        """A numeric property as the driver holds it now; None when not supported."""
        out = ctypes.c_longlong()
        status = self._lib.fake_nvml_get_value(index, key.encode(), ctypes.byref(out))
        self._check(status, f"reading {key!r} on GPU {index}")
        return None if out.value == _UNSUPPORTED else out.value

    def text(self, index: int, key: str) -> str:
        """A string property: name, uuid, serial, vbios ("" = not supported) or pci_bus_id."""
        out = ctypes.create_string_buffer(96)
        status = self._lib.fake_nvml_get_string(index, key.encode(), out, len(out))
        self._check(status, f"reading {key!r} on GPU {index}")
        return out.value.decode()

    def uuid(self, index: int) -> str:
        return self.text(index, "uuid")

    def has(self, symbol: str) -> bool:
        """Whether this driver build exports `symbol` (profiles leave out what their family lacks)."""
        return hasattr(self._lib, symbol)

    def device_error(self, index: int) -> int:
        """The NVML_ERROR_* every query of GPU `index` answers now (0 = healthy)."""
        code = int(self._lib.fake_nvml_get_device_error(index))
        self._check(0 if code >= 0 else code, f"GPU index {index}")
        return code

    def processes(self, index: int, *, graphics: bool = False) -> list[tuple[int, int | None, int | None]]:
        """(pid, used bytes or None when not available, GPU instance id or None without MIG) of GPU
        `index`'s compute or graphics list."""
        listed: list[tuple[int, int | None, int | None]] = []
        pid, used, instance = ctypes.c_uint(), ctypes.c_ulonglong(), ctypes.c_uint()
        out = (ctypes.byref(pid), ctypes.byref(used), ctypes.byref(instance))
        while self._lib.fake_nvml_get_process(index, int(graphics), len(listed), *out) == 0:
            listed.append((
                pid.value,
                None if used.value == NVML_VALUE_NOT_AVAILABLE else used.value,
                None if instance.value == NO_INSTANCE else instance.value,
            ))
        return listed

    def mig_count(self, index: int) -> int:
        """How many MIG devices GPU `index` is split into (0 without MIG)."""
        count = int(self._lib.fake_nvml_mig_count(index))
        self._check(0 if count >= 0 else count, f"GPU index {index}")
        return count

    def mig_value(self, index: int, slot: int, key: str) -> int:
        """A numeric property (mem_total, mem_used, gpu_instance_id, compute_instance_id) of MIG device
        `slot` of GPU `index`."""
        out = ctypes.c_longlong()
        status = self._lib.fake_nvml_get_mig_value(index, slot, key.encode(), ctypes.byref(out))
        self._check(status, f"reading {key!r} of MIG device {slot} on GPU {index}")
        return out.value

    def mig_text(self, index: int, slot: int, key: str) -> str:
        """name, uuid or profile (e.g. "3g.40gb") of MIG device `slot` of GPU `index`."""
        out = ctypes.create_string_buffer(96)
        status = self._lib.fake_nvml_get_mig_string(index, slot, key.encode(), out, len(out))
        self._check(status, f"reading {key!r} of MIG device {slot} on GPU {index}")
        return out.value.decode()

    def add_process(self, index: int, pid: int, used_bytes: int | None, *, graphics: bool = False) -> None:
        raw = NVML_VALUE_NOT_AVAILABLE if used_bytes is None else used_bytes
        self._check(self._lib.fake_nvml_add_process(index, int(graphics), pid, raw), f"adding pid {pid} to GPU {index}")

    def clear_processes(self, index: int) -> None:
        self._check(self._lib.fake_nvml_clear_processes(index), f"GPU index {index}")

    def inject_xid(self, index: int, xid: int) -> int:
        """Raise XID `xid` on GPU `index`; returns how many registered event sets received it."""
        delivered = self._lib.fake_nvml_inject_xid(index, xid)
        self._check(0 if delivered >= 0 else delivered, f"GPU index {index}")
        return delivered

    def call_count(self) -> int:
        """NVML calls since the last reset, excluding blocking nvmlEventSetWait_v2 calls."""
        return int(self._lib.fake_nvml_call_count())

    def wait_count(self) -> int:
        return int(self._lib.fake_nvml_wait_count())

    def first_unknown_field(self) -> int:
        """The lowest field id this driver build does not know (answers INVALID_ARGUMENT for)."""
        return int(self._lib.fake_nvml_first_unknown_field())

    def init_count(self) -> int:
        """nvmlInit calls not yet balanced by nvmlShutdown."""
        return int(self._lib.fake_nvml_init_count())


_loaded: FakeNvml | None = None


def load_fake_nvml(library: Path | None = None) -> FakeNvml:
    """Build (if needed) and load the fake into this process, before pynvml's first nvmlInit.

    Loading is once per process: a second call returns the same handle, and asking for a
    different build in the same process raises RuntimeError.
    """
    global _loaded
    path = (library or build_fake_nvml(DEFAULT_BUILD_DIR)).resolve()
    if _loaded is not None:
        if _loaded.path != path:
            raise RuntimeError(f"fake NVML {_loaded.path} is already loaded; cannot also load {path}")
        return _loaded
    import pynvml

    if pynvml.nvmlLib is not None and not hasattr(pynvml.nvmlLib, "fake_nvml_reset"):
        raise RuntimeError("pynvml already loaded another libnvidia-ml.so.1; load the fake before nvmlInit")
    _loaded = FakeNvml(ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL), path)
    return _loaded


def subprocess_env(
    library: Path, scenario: str = "default", *, latency_ms: int | None = None, base: dict[str, str] | None = None
) -> dict[str, str]:
    """Environment for a child process that finds the fake as libnvidia-ml.so.1 through LD_LIBRARY_PATH."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; expected {SCENARIOS}")
    env = dict(os.environ if base is None else base)
    inherited = env.get("LD_LIBRARY_PATH")
    env["LD_LIBRARY_PATH"] = str(library.parent) + (os.pathsep + inherited if inherited else "")
    env["FAKE_NVML_SCENARIO"] = scenario
    env.pop("FAKE_NVML_LATENCY_MS", None)
    if latency_ms is not None:
        env["FAKE_NVML_LATENCY_MS"] = str(latency_ms)
    return env
