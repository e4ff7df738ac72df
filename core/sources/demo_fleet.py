"""The shape of the simulated GPU cloud: sites, racks, 8-GPU nodes, models, what each node is
for and which few GPUs are failing. Built once per source from the seed; never changes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

import numpy as np

from gpuops.core.sources.demo_profiles import GpuProfile, load_profiles
from gpuops.core.telemetry import GpuInventory

GPUS_PER_NODE = 8
# Four 8-GPU HGX nodes (about 10 kW each) is what an air-cooled rack can take.
NODES_PER_RACK = 4

DRIVER_VERSION = "590.48.01"
NVML_VERSION = "13.590.48.01"
CUDA_VERSION = "13.1"

# PCI bus numbers of the eight GPUs on an HGX baseboard, in NVML index order.
HGX_BUS_NUMBERS = (0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB)


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    utc_offset_h: float  # standard time; the demo ignores daylight saving
    share: float


SITES = (Site("ams1", 1.0, 0.45), Site("iad3", -5.0, 0.35), Site("fra2", 1.0, 0.20))

# Share of nodes per model; H100 is the workhorse of most GPU clouds today.
MODEL_SHARES = {"H100": 0.40, "H200": 0.20, "B200": 0.15, "A100": 0.15, "L40S": 0.10}

# Nodes that can run multi-node training; PCIe boards (L40S) serve inference.
TRAINING_FORM_FACTORS = frozenset({"SXM"})


class Role(IntEnum):
    """What a node is used for."""

    IDLE = 0
    TRAINING = 1
    INFERENCE = 2


class Failure(IntEnum):
    """How a GPU is broken, if it is."""

    NONE = 0
    THERMAL = 1  # runs into thermal slowdown under load
    ECC = 2  # uncorrectable memory errors, rows waiting to be remapped
    XID = 3  # its applications keep crashing with XID 13/31/43
    LOST = 4  # falls off the bus (XID 79) and stays lost for hours


ROLE_WEIGHTS_TRAINING_CAPABLE = {Role.TRAINING: 0.55, Role.INFERENCE: 0.30, Role.IDLE: 0.15}
ROLE_WEIGHTS_INFERENCE_ONLY = {Role.INFERENCE: 0.75, Role.IDLE: 0.25}

# Fraction of GPUs per failure kind: about 2 % of the fleet is failing.
FAILURE_FRACTIONS = {Failure.THERMAL: 0.004, Failure.ECC: 0.005, Failure.XID: 0.008, Failure.LOST: 0.003}
# From this fleet size on, every failure kind is present (lost twice, so one is always down).
GUARANTEED_FAILURES_FROM = 64
GUARANTEED_COUNTS = {Failure.THERMAL: 1, Failure.ECC: 1, Failure.XID: 1, Failure.LOST: 2}


@dataclass(frozen=True)
class FleetLayout:
    """Inventory plus per-GPU integer columns the simulation indexes by."""

    gpus: tuple[GpuInventory, ...]
    profiles: tuple[GpuProfile, ...]
    model_of_gpu: np.ndarray  # index into `profiles`
    node_of_gpu: np.ndarray
    local_index: np.ndarray  # NVML index within the node
    role_of_gpu: np.ndarray  # Role codes, the node's role
    failure_of_gpu: np.ndarray  # Failure codes
    utc_offset_s: np.ndarray  # the site's offset from UTC
    rack_of_gpu: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.node_of_gpu[-1]) + 1


def _apportion(total: int, shares: list[float], minimum: int) -> list[int]:
    """Split `total` by `shares` (largest remainder), giving each at least `minimum` if possible."""
    floor_each = minimum if total >= minimum * len(shares) else 0
    rest = total - floor_each * len(shares)
    exact = [rest * s / sum(shares) for s in shares]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: rest - sum(counts)]:
        counts[i] += 1
    return [c + floor_each for c in counts]


def _node_models(n_nodes: int, rng: np.random.Generator) -> list[str]:
    """Models laid out in contiguous blocks, as racks are filled one SKU at a time."""
    names = list(MODEL_SHARES)
    counts = _apportion(n_nodes, [MODEL_SHARES[m] for m in names], minimum=1)
    order = rng.permutation(len(names))
    return [names[i] for i in order for _ in range(counts[i])]


def _node_roles(models: list[str], profiles: dict[str, GpuProfile], rng: np.random.Generator) -> np.ndarray:
    roles = np.empty(len(models), dtype=np.int64)
    trains = np.array([profiles[m].form_factor in TRAINING_FORM_FACTORS for m in models])
    for i, can_train in enumerate(trains):
        weights = ROLE_WEIGHTS_TRAINING_CAPABLE if can_train else ROLE_WEIGHTS_INFERENCE_ONLY
        choices = list(weights)
        roles[i] = choices[rng.choice(len(choices), p=list(weights.values()))]
    if len(models) >= 3:
        _ensure_every_role(roles, trains)
    return roles


def _ensure_every_role(roles: np.ndarray, trains: np.ndarray) -> None:
    """Small fleets still show each kind of work: convert a node from the most common role."""
    for role in (Role.TRAINING, Role.INFERENCE, Role.IDLE):
        if (roles == role).any():
            continue
        counts = np.bincount(roles, minlength=len(Role))
        donors = [i for i in range(len(roles)) if counts[roles[i]] > 1 and (role != Role.TRAINING or trains[i])]
        if donors:
            roles[max(donors, key=lambda i: (counts[roles[i]], -i))] = role


def _failures(n_gpus: int, role_of_gpu: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    failure = np.zeros(n_gpus, dtype=np.int64)
    for kind, fraction in FAILURE_FRACTIONS.items():
        if n_gpus >= GUARANTEED_FAILURES_FROM:
            count = max(GUARANTEED_COUNTS[kind], round(fraction * n_gpus))
        else:
            count = int(fraction * n_gpus + rng.random())
        healthy = failure == Failure.NONE
        if kind == Failure.THERMAL:
            candidates = healthy & (role_of_gpu == Role.TRAINING)
        elif kind == Failure.XID:
            candidates = healthy & (role_of_gpu != Role.IDLE)
        else:
            candidates = healthy
        pool = np.flatnonzero(candidates)
        chosen = rng.choice(pool, size=min(count, pool.size), replace=False)
        failure[chosen] = kind
    return failure


def _uuid(raw: np.ndarray) -> str:
    h = raw.tobytes().hex()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


#: The demo book leaves about one busy GPU per this many unallocated (at least one): enough that
#: busy-but-unallocated shows, not so many that a new user's first picture is an alert flood.
BUSY_UNALLOCATED_PER_GPUS = 128


def follow_book(layout: FleetLayout, held: np.ndarray, seed: int) -> FleetLayout:
    """The layout with its workloads where the book puts customers (`held[i]`: GPU i is allocated):
    the busy GPUs nobody holds go idle but a handful, chosen by `seed`. Failing GPUs keep their
    work, since their failure shows through it (they count towards the handful)."""
    busy_free = (layout.role_of_gpu != Role.IDLE) & ~held
    failing = busy_free & (layout.failure_of_gpu != Failure.NONE)
    keep = max(1, len(layout.gpus) // BUSY_UNALLOCATED_PER_GPUS) - int(failing.sum())
    candidates = np.flatnonzero(busy_free & ~failing)
    rng = np.random.default_rng([seed, len(layout.gpus), 0x626F6F6B])
    kept = rng.choice(candidates, size=min(max(keep, 0), len(candidates)), replace=False)
    idle = busy_free & ~failing
    idle[kept] = False
    roles = layout.role_of_gpu.copy()
    roles[idle] = Role.IDLE
    return replace(layout, role_of_gpu=roles)


def build_fleet(n_gpus: int, seed: int) -> FleetLayout:
    """The simulated fleet for `seed`: the same seed always gives the same fleet."""
    rng = np.random.default_rng([seed, n_gpus, 0x6D6F6465])
    profiles = load_profiles()
    n_nodes = -(-n_gpus // GPUS_PER_NODE)
    n_racks = -(-n_nodes // NODES_PER_RACK)
    sites = SITES[: min(len(SITES), n_racks)]
    racks_per_site = _apportion(n_racks, [s.share for s in sites], minimum=1)
    rack_site = [site for site, count in zip(sites, racks_per_site, strict=True) for _ in range(count)]
    rack_number = [sum(1 for s in rack_site[:r] if s is rack_site[r]) + 1 for r in range(n_racks)]

    node_models = _node_models(n_nodes, rng)
    node_roles = _node_roles(node_models, profiles, rng)
    model_names = list(MODEL_SHARES)

    node_of_gpu = np.arange(n_gpus) // GPUS_PER_NODE
    local_index = np.arange(n_gpus) % GPUS_PER_NODE
    rack_of_gpu = node_of_gpu // NODES_PER_RACK
    role_of_gpu = node_roles[node_of_gpu]
    model_of_gpu = np.array([model_names.index(node_models[n]) for n in node_of_gpu], dtype=np.int64)
    utc_offset_s = np.array([rack_site[r].utc_offset_h * 3600.0 for r in rack_of_gpu])

    uuid_bytes = rng.integers(0, 256, size=(n_gpus, 16), dtype=np.uint8)
    node_serial_base = rng.integers(1_320_000_000_000, 1_659_999_999_000, size=n_nodes)
    failure = _failures(n_gpus, role_of_gpu, rng)

    gpus = []
    for i in range(n_gpus):
        node, rack = int(node_of_gpu[i]), int(rack_of_gpu[i])
        site = rack_site[rack]
        rack_name = f"{site.name}-r{rack_number[rack]:02d}"
        profile = profiles[node_models[node]]
        gpus.append(
            GpuInventory(
                uuid=_uuid(uuid_bytes[i]),
                index=int(local_index[i]),
                node=f"{rack_name}-n{node % NODES_PER_RACK + 1:02d}",
                name=profile.name,
                serial=str(int(node_serial_base[node]) + int(local_index[i])),
                pci_bus_id=f"00000000:{HGX_BUS_NUMBERS[local_index[i]]:02X}:00.0",
                mem_total_bytes=profile.mem_total_bytes,
                power_limit_w=profile.power_limit_w,
                driver_version=DRIVER_VERSION,
                nvml_version=NVML_VERSION,
                cuda_version=CUDA_VERSION,
                mig_mode=False if profile.mig_capable else None,
                architecture=profile.architecture,
                vbios_version=profile.vbios_version,
                slowdown_temp_c=profile.slowdown_temp_c,
                shutdown_temp_c=profile.shutdown_temp_c,
                mem_max_temp_c=None if np.isnan(profile.mem_max_temp_c) else profile.mem_max_temp_c,
                site=site.name,
                rack=rack_name,
            )
        )
    return FleetLayout(
        gpus=tuple(gpus),
        profiles=tuple(profiles[m] for m in model_names),
        model_of_gpu=model_of_gpu,
        node_of_gpu=node_of_gpu,
        local_index=local_index,
        role_of_gpu=role_of_gpu,
        failure_of_gpu=failure,
        utc_offset_s=utc_offset_s,
        rack_of_gpu=rack_of_gpu,
    )
