"""A real Prometheus whose data the test wrote: series are written as OpenMetrics, turned into
TSDB blocks by `promtool tsdb create-blocks-from openmetrics` in the server's data directory,
and the server is then started on loopback with no scrape target, so every value and timestamp
it answers is one the test chose."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port, stop, wait_until
from tests.tools import require_tool

STARTUP_LIMIT_S = 60.0


@dataclass(frozen=True)
class Written:
    """One series: its metric name, labels, type and (ts seconds, value) samples in time order."""

    name: str
    labels: Mapping[str, str]
    samples: Sequence[tuple[float, float]]
    kind: str = "gauge"


def _label_text(labels: Mapping[str, str]) -> str:
    return ",".join(f"{key}={json.dumps(value)}" for key, value in sorted(labels.items()))


def write_openmetrics(path: Path, series: Iterable[Written]) -> None:
    """The OpenMetrics text promtool reads: each family once, each series once with its samples
    (from every Written of the same name and labels) in time order."""
    families: dict[str, dict[str, list[tuple[float, float]]]] = {}
    kinds: dict[str, str] = {}
    for s in series:
        families.setdefault(s.name, {}).setdefault(_label_text(s.labels), []).extend(s.samples)
        kinds.setdefault(s.name, s.kind)
    with path.open("w", encoding="utf-8") as out:
        for name, members in families.items():
            # OpenMetrics names a counter family without the _total its samples carry; a counter
            # named without it (DCGM's are) is written untyped: the TSDB keeps no type anyway.
            counter = kinds[name] == "counter" and name.endswith("_total")
            out.write(f"# TYPE {name.removesuffix('_total') if counter else name} {'counter' if counter else 'gauge'}\n")
            for labels, samples in members.items():
                for ts, value in sorted(samples):
                    out.write(f"{name}{{{labels}}} {float(value)!r} {float(ts):.3f}\n")
        out.write("# EOF\n")


@contextmanager
def backfilled_prometheus(
    tmp_path: Path, series: Iterable[Written], *, web_config: Path | None = None, scheme: str = "http",
    query_log: Path | None = None,
) -> Iterator[str]:
    """A Prometheus serving exactly `series` (up to a year old); yields its base URL. With
    `query_log`, Prometheus logs there every query it answers (read them with `logged_queries`)."""
    prometheus = require_tool("/usr/bin/prometheus", "prometheus", install="apt-get install -y prometheus")
    promtool = require_tool("/usr/bin/promtool", "promtool", install="apt-get install -y prometheus")
    data = tmp_path / "prometheus-data"
    data.mkdir()
    source = tmp_path / "backfill.om"
    write_openmetrics(source, series)
    made = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        capture_output=True, text=True, timeout=300,
    )
    assert made.returncode == 0, made.stderr
    config = tmp_path / "prometheus.yml"
    log_line = f"  query_log_file: {json.dumps(str(query_log))}\n" if query_log is not None else ""
    config.write_text("global:\n  scrape_interval: 1h\n" + log_line)
    port = free_port()
    base = f"{scheme}://127.0.0.1:{port}"
    args = [
        prometheus, f"--config.file={config}", f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=400d", "--log.level=error",
    ]
    if web_config is not None:
        args.append(f"--web.config.file={web_config}")
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if web_config is None:
            wait_until("the backfilled Prometheus to be ready", lambda: _ready(base), STARTUP_LIMIT_S)
        else:
            wait_until("the backfilled Prometheus to listen", lambda: process.poll() is not None or _listening(port),
                       STARTUP_LIMIT_S)
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
        yield base
    finally:
        stop(process)


def _ready(base: str) -> bool:
    with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as answer:
        return answer.status == 200


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def logged_queries(query_log: Path) -> list[str]:
    """The PromQL of every query in Prometheus' query log, in the order answered."""
    if not query_log.exists():
        return []
    lines = query_log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["params"]["query"] for line in lines if line.strip()]


def series_from_api_answers(documents: Iterable[dict]) -> list[tuple[dict[str, str], float]]:
    """(labels with __name__, value) of saved /api/v1/query answers (vectors)."""
    return [(row["metric"], float(row["value"][1])) for document in documents for row in document["data"]["result"]]


def at(series: Iterable[tuple[Mapping[str, str], float]], ts: float) -> list[Written]:
    """Each (labels with __name__, value) as a series with that one sample at `ts`."""
    written = []
    for labels, value in series:
        rest = {k: v for k, v in labels.items() if k != "__name__"}
        written.append(Written(labels["__name__"], rest, [(ts, value)]))
    return written
