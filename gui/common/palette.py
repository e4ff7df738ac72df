"""Colours of the fleet grid: one 256-entry RGBA lookup table and the codes that index it.

The grid is drawn as one uint8 image whose pixels are codes into this table, so a repaint
costs the same whatever the fleet size. Values use viridis (perceptually uniform and readable
with the common colour-vision deficiencies). A few entries are reserved for states that must
never be mistaken for a value: no data, lost, and the gap between node blocks. Stale values
(a node the source could not reach this poll) use a washed-out copy of the value range, so the
last known data stays readable but visibly old.

Colouring by health uses the Okabe-Ito colours (told apart with every common colour-vision
deficiency): blue OK, yellow warning, vermillion critical, grey stale; lost keeps its magenta
and X. The value map is viridis or cividis (cividis is built for red-green deficiencies).
Colouring by customer uses the Okabe-Ito colours too (see `gui.customer_colors`).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

#: Number of distinct value colours; codes [0, VALUE_LEVELS) are fresh values.
VALUE_LEVELS = 120
#: Codes [STALE_BASE, STALE_BASE + VALUE_LEVELS) are the same values, washed out.
STALE_BASE = VALUE_LEVELS
NO_DATA = 240  # metric not supported or not readable, or GPU state unknown
LOST = 241  # GPU fell off the bus / stopped answering
LOST_STALE = 242  # lost, on a node whose data is stale
HEALTH_OK = 243
HEALTH_WARNING = 244
HEALTH_CRITICAL = 245
HEALTH_STALE = 246
#: Colouring by customer: CUSTOMER_BASE + slot for the biggest customers, OTHER_CUSTOMERS for the
#: rest (unallocated GPUs take NO_DATA's colour then).
CUSTOMER_BASE = 247
OTHER_CUSTOMERS = 254
GAP = 255  # space between node blocks: transparent

#: A mid grey: at least 3:1 against the dark theme's window and the light theme's (a dark grey
#: vanished on the dark theme), and apart from stale grey (150) and other customers (187).
NO_DATA_RGB = (118, 118, 124)
LOST_RGB = (230, 20, 120)
STALE_TOWARD_RGB = np.array([205, 205, 205], dtype=np.float64)
STALE_MIX = 0.62  # share of the washed-out grey in a stale colour

HEALTH_RGB: dict[int, tuple[int, int, int]] = {
    HEALTH_OK: (0, 114, 178),
    HEALTH_WARNING: (240, 228, 66),
    HEALTH_CRITICAL: (213, 94, 0),
    HEALTH_STALE: (150, 150, 150),
}
#: Okabe-Ito without black (told apart with every common colour-vision deficiency), in slot order.
CUSTOMER_RGB: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0), (204, 121, 167),
)
OTHER_CUSTOMERS_RGB = (187, 187, 187)
#: Grid code of each `core.condition.Condition` (OK, STALE, UNKNOWN, WARNING, CRITICAL, LOST).
CONDITION_CODES = np.array([HEALTH_OK, HEALTH_STALE, NO_DATA, HEALTH_WARNING, HEALTH_CRITICAL, LOST], dtype=np.uint8)

COLOR_MAP_NAME = "viridis"
#: Value maps offered to people: perceptually uniform and colour-blind safe.
COLOR_MAPS: tuple[str, ...] = ("viridis", "cividis")


def value_colors(cmap_name: str = COLOR_MAP_NAME) -> np.ndarray:
    """The VALUE_LEVELS fresh value colours as an (n, 4) uint8 RGBA array, low to high."""
    cmap = pg.colormap.get(cmap_name)
    return np.asarray(cmap.getLookupTable(0.0, 1.0, VALUE_LEVELS, alpha=True), dtype=np.uint8)


def washed_out(rgba: np.ndarray) -> np.ndarray:
    """The stale look of colours: mixed toward light grey, alpha kept."""
    out = rgba.copy()
    rgb = rgba[..., :3].astype(np.float64)
    out[..., :3] = np.round(rgb * (1 - STALE_MIX) + STALE_TOWARD_RGB * STALE_MIX).astype(np.uint8)
    return out


def _rgba(rgb: tuple[int, int, int]) -> np.ndarray:
    return np.array([*rgb, 255], dtype=np.uint8)


def build_lut(all_stale: bool = False, cmap_name: str = COLOR_MAP_NAME) -> np.ndarray:
    """The (256, 4) uint8 RGBA table. With `all_stale`, every entry takes its stale look:
    used while the source is not answering, so the whole grid greys out at once."""
    lut = np.zeros((256, 4), dtype=np.uint8)  # unused codes and GAP: transparent
    fresh = value_colors(cmap_name)
    stale = washed_out(fresh)
    lut[:VALUE_LEVELS] = stale if all_stale else fresh
    lut[STALE_BASE : STALE_BASE + VALUE_LEVELS] = stale
    lut[NO_DATA] = _rgba(NO_DATA_RGB)
    lut[LOST] = washed_out(_rgba(LOST_RGB)) if all_stale else _rgba(LOST_RGB)
    lut[LOST_STALE] = washed_out(_rgba(LOST_RGB))
    for code, rgb in HEALTH_RGB.items():
        lut[code] = washed_out(_rgba(rgb)) if all_stale and code != HEALTH_STALE else _rgba(rgb)
    for code, rgb in zip(range(CUSTOMER_BASE, OTHER_CUSTOMERS), CUSTOMER_RGB, strict=True):
        lut[code] = washed_out(_rgba(rgb)) if all_stale else _rgba(rgb)
    lut[OTHER_CUSTOMERS] = washed_out(_rgba(OTHER_CUSTOMERS_RGB)) if all_stale else _rgba(OTHER_CUSTOMERS_RGB)
    return lut


def encode_conditions(condition: np.ndarray) -> np.ndarray:
    """Grid codes for `core.condition.Condition` values."""
    return CONDITION_CODES[condition]


def encode(
    values: np.ndarray,
    low: float,
    high: float,
    lost: np.ndarray,
    no_data: np.ndarray,
    stale: np.ndarray | None = None,
) -> np.ndarray:
    """Map values to uint8 codes on the fixed scale [low, high] (clipped).

    NaN values and `no_data` GPUs become NO_DATA, `lost` GPUs LOST (LOST_STALE where also
    stale), and `stale` GPUs use the washed-out range. All masks are boolean, one per GPU.
    """
    scaled = (values - low) * ((VALUE_LEVELS - 1) / (high - low))
    finite = np.isfinite(scaled)
    np.clip(scaled, 0, VALUE_LEVELS - 1, out=scaled)
    codes = np.where(finite, np.rint(np.where(finite, scaled, 0)), NO_DATA).astype(np.uint8)
    if stale is not None:
        codes[stale & finite] += STALE_BASE
    codes[no_data] = NO_DATA
    codes[lost] = LOST if stale is None else np.where(stale[lost], LOST_STALE, LOST)
    return codes
