"""The storage parameters of one database, fixed when it is created and kept in its meta table,
so that data written under one set of parameters is always read back with the same ones."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cached_property

from gpuops.core.store.columns import STATS_OF_KIND, Kind, MetricSpec, Stat, default_metric_specs


@dataclass(frozen=True)
class Level:
    """One resolution of per-GPU history: its table, bucket width (0 = every poll) and chunk window."""

    name: str
    table: str
    fleet_table: str
    bucket_ms: int
    window_ms: int

    @property
    def watermark_key(self) -> str:
        """Meta key of the time before which every window of this level is complete in its table."""
        return "compacted_until_ms" if self.bucket_ms == 0 else f"rolled_{self.name}_until_ms"

    @property
    def cursor_key(self) -> str:
        """Meta key of the next GPU id to roll up in the window being built."""
        return f"rolled_{self.name}_cursor"


@dataclass(frozen=True)
class StoreLayout:
    #: GPUs whose database id // block_size is equal share one head/keyframe blob per poll.
    block_size: int = 64
    #: Raw chunks hold one GPU for one aligned window of this many ms (300 polls at 1 Hz).
    raw_window_ms: int = 300_000
    #: 1-minute rollup chunks hold one GPU for 6 h (360 buckets).
    rollup_1m_window_ms: int = 6 * 3_600_000
    #: 1-hour rollup chunks hold one GPU for 7 days (168 buckets).
    rollup_1h_window_ms: int = 7 * 86_400_000
    #: The first poll of every interval of this length is kept whole for replay after compaction.
    keyframe_interval_ms: int = 60_000
    #: State first, then metrics; positions are chunk columns (after the timestamp column).
    metrics: tuple[MetricSpec, ...] = default_metric_specs()

    @property
    def levels(self) -> tuple[Level, Level, Level]:
        return (
            Level("raw", "samples", "fleet_samples", 0, self.raw_window_ms),
            Level("1m", "rollup_1m", "fleet_1m", 60_000, self.rollup_1m_window_ms),
            Level("1h", "rollup_1h", "fleet_1h", 3_600_000, self.rollup_1h_window_ms),
        )

    @cached_property
    def rollup_columns(self) -> tuple[tuple[str, Stat], ...]:
        """Columns of a rollup chunk after the timestamp: the sample count, then each metric's stats."""
        columns: list[tuple[str, Stat]] = [("n", Stat.LAST)]
        for spec in self.metrics:
            columns.extend((spec.name, stat) for stat in STATS_OF_KIND[spec.kind])
        return tuple(columns)

    @cached_property
    def rollup_column_index(self) -> dict[tuple[str, Stat], int]:
        """Chunk column of each rollup column (the timestamp is column 0)."""
        return {column: j for j, column in enumerate(self.rollup_columns, start=1)}

    def spec(self, name: str) -> MetricSpec:
        return self._specs_by_name[name]

    @cached_property
    def _specs_by_name(self) -> dict[str, MetricSpec]:
        return {spec.name: spec for spec in self.metrics}

    def to_json(self) -> str:
        return json.dumps(
            {
                "block_size": self.block_size,
                "raw_window_ms": self.raw_window_ms,
                "rollup_1m_window_ms": self.rollup_1m_window_ms,
                "rollup_1h_window_ms": self.rollup_1h_window_ms,
                "keyframe_interval_ms": self.keyframe_interval_ms,
                "metrics": [[s.name, s.resolution, s.kind.value] for s in self.metrics],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> StoreLayout:
        data = json.loads(text)
        metrics = tuple(MetricSpec(name, float(res), Kind(kind)) for name, res, kind in data.pop("metrics"))
        return cls(metrics=metrics, **data)

    def with_new_metrics(self) -> StoreLayout:
        """This layout plus any metric the telemetry model gained since the database was created,
        appended so that existing chunks keep their column positions (they read back NaN)."""
        known = {spec.name for spec in self.metrics}
        added = tuple(spec for spec in default_metric_specs() if spec.name not in known)
        return replace(self, metrics=self.metrics + added) if added else self
