"""Alertmanager as the shared alert state: its API v2 read and written (`--alertmanager URL`).

`core.alerts.alertmanager` only pushes gpuops' own alerts there; this client reads what
Alertmanager holds (its alerts, those Prometheus fires included, and its silences), makes
silences there and expires them, so a team muting an alert from the console or from
`gpuops alerts silence --alertmanager` mutes it for on-call too.

Alerts come back as `AmAlert` rows named like gpuops' alerts (rule, severity, node, gpu index and
uuid, summary, description) from dcgm-exporter's and our forwarder's labels. Silence matchers are
gpuops' (`core.alerts.silences.Matcher`); their labels are translated to the names Alertmanager
sees (`rule` is `alertname`, `gpu` is `UUID`, `model` is `modelName`, `node` is `Hostname`).

Every call has a deadline (`core.sources.http_fetch`), runs in the caller's thread and raises
`AlertmanagerError` with one line naming Alertmanager and why (refused, timed out, its own error
text for a 4xx).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from gpuops.core import jsontext
from gpuops.core.alerts.alertmanager import ENV_PREFIX
from gpuops.core.alerts.silences import Matcher
from gpuops.core.allocations.audit import os_user
from gpuops.core.sources.http_fetch import FetchError, HttpFetcher, HttpOptions
from gpuops.core.timefmt import BadTime, iso_utc, parse_iso_ms

DEFAULT_TIMEOUT_S = 5.0
MAX_ANSWER_BYTES = 32 * 2**20
#: gpuops matcher label -> the label Alertmanager holds: dcgm-exporter's names, which the forwarder,
#: the exported rules and hand-written rules on dcgm-exporter's series all carry (`node` only the
#: first two, so a node matcher is `Hostname`).
SILENCE_LABELS = {"rule": "alertname", "gpu": "UUID", "model": "modelName", "node": "Hostname"}


class AlertmanagerError(Exception):
    """Alertmanager could not answer or refused; one line naming it and why."""


@dataclass(frozen=True)
class AmAlert:
    """One alert as Alertmanager holds it, with gpuops' names for the common labels."""

    fingerprint: str
    labels: Mapping[str, str]
    summary: str
    description: str
    started_at: float | None
    ends_at: float | None
    state: str  # active, suppressed or unprocessed
    silenced_by: tuple[str, ...]
    inhibited_by: tuple[str, ...]
    generator_url: str

    @property
    def rule(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str | None:
        return self.labels.get("severity")

    @property
    def node(self) -> str | None:
        return self.labels.get("node") or self.labels.get("Hostname")

    @property
    def gpu_index(self) -> str | None:
        return self.labels.get("gpu")

    @property
    def gpu_uuid(self) -> str | None:
        return self.labels.get("UUID")

    @property
    def muted(self) -> bool:
        return self.state == "suppressed"

    def to_json(self) -> dict:
        """The `gpuops alerts --alertmanager URL --json` object."""
        return {
            "fingerprint": self.fingerprint, "rule": self.rule, "severity": self.severity, "state": self.state,
            "node": self.node, "gpu_index": self.gpu_index, "gpu_uuid": self.gpu_uuid,
            "started_at": self.started_at, "ends_at": self.ends_at, "summary": self.summary,
            "description": self.description, "labels": dict(self.labels),
            "silenced_by": list(self.silenced_by), "inhibited_by": list(self.inhibited_by),
            "generator_url": self.generator_url,
        }


@dataclass(frozen=True)
class AmSilence:
    id: str
    matchers: tuple[str, ...]  # label=value etc., with Alertmanager's label names
    starts_at: float | None
    ends_at: float | None
    created_by: str
    comment: str
    state: str  # active, pending or expired

    def to_json(self) -> dict:
        return {
            "id": self.id, "matchers": list(self.matchers), "starts_at": self.starts_at, "ends_at": self.ends_at,
            "author": self.created_by, "comment": self.comment, "state": self.state,
        }


def am_matcher(matcher: Matcher) -> dict[str, Any]:
    """A gpuops matcher as an Alertmanager silence matcher."""
    return {
        "name": SILENCE_LABELS.get(matcher.label, matcher.label), "value": matcher.value,
        "isRegex": matcher.op in ("=~", "!~"), "isEqual": matcher.op in ("=", "=~"),
    }


def _ts(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_iso_ms(text) / 1000
    except BadTime:
        return None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _alert(item: Mapping[str, Any]) -> AmAlert:
    status = _mapping(item.get("status"))
    annotations = _strings(item.get("annotations"))
    return AmAlert(
        fingerprint=str(item.get("fingerprint", "")), labels=_strings(item.get("labels")),
        summary=annotations.get("summary", ""), description=annotations.get("description", ""),
        started_at=_ts(item.get("startsAt")), ends_at=_ts(item.get("endsAt")),
        state=str(status.get("state", "unprocessed")),
        silenced_by=tuple(str(s) for s in status.get("silencedBy") or ()),
        inhibited_by=tuple(str(s) for s in status.get("inhibitedBy") or ()),
        generator_url=str(item.get("generatorURL", "")),
    )


def _matcher_text(raw: Mapping[str, Any]) -> str:
    op = ("=" if raw.get("isEqual", True) else "!=") if not raw.get("isRegex") else ("=~" if raw.get("isEqual", True) else "!~")
    return f"{raw.get('name', '')}{op}{raw.get('value', '')}"


def _silence(item: Mapping[str, Any]) -> AmSilence:
    status = _mapping(item.get("status"))
    return AmSilence(
        id=str(item.get("id", "")),
        matchers=tuple(_matcher_text(m) for m in item.get("matchers") or () if isinstance(m, dict)),
        starts_at=_ts(item.get("startsAt")), ends_at=_ts(item.get("endsAt")),
        created_by=str(item.get("createdBy", "")), comment=str(item.get("comment", "")),
        state=str(status.get("state", "")),
    )


class AlertmanagerClient:
    """Alertmanager's API v2 at `url` (its base, e.g. http://alertmanager:9093)."""

    def __init__(self, url: str, *, options: HttpOptions | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Alertmanager URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self._fetcher = HttpFetcher(options or HttpOptions.from_env(ENV_PREFIX), timeout_s=timeout_s,
                                    max_bytes=MAX_ANSWER_BYTES)

    def alerts(
        self, *, filters: Iterable[str] = (), active: bool = True, silenced: bool = True, inhibited: bool = True,
    ) -> list[AmAlert]:
        """Alertmanager's alerts; `filters` are its matchers (`alertname="x"`, `node=~"n.*"`)."""
        query = [("active", _flag(active)), ("silenced", _flag(silenced)), ("inhibited", _flag(inhibited))]
        query += [("filter", f) for f in filters]
        answer = self._call("GET", "/api/v2/alerts?" + urlencode(query), "list alerts")
        if not isinstance(answer, list):
            raise AlertmanagerError(f"Alertmanager {self.url}: the alerts answer is not a list")
        return [_alert(item) for item in answer if isinstance(item, dict)]

    def silences(self, *, include_expired: bool = False) -> list[AmSilence]:
        answer = self._call("GET", "/api/v2/silences", "list silences")
        if not isinstance(answer, list):
            raise AlertmanagerError(f"Alertmanager {self.url}: the silences answer is not a list")
        found = [_silence(item) for item in answer if isinstance(item, dict)]
        return [s for s in found if include_expired or s.state != "expired"]

    def create_silence(
        self, matchers: Sequence[Matcher], starts_at: float, ends_at: float, comment: str, *, created_by: str | None = None,
    ) -> str:
        """Make a silence (created by the OS user unless given); its Alertmanager id."""
        body = {
            "matchers": [am_matcher(m) for m in matchers], "startsAt": iso_utc(starts_at), "endsAt": iso_utc(ends_at),
            "createdBy": created_by or os_user(), "comment": comment,
        }
        answer = self._call("POST", "/api/v2/silences", "create the silence", jsontext.dumps(body).encode())
        silence_id = answer.get("silenceID") if isinstance(answer, dict) else None
        if not isinstance(silence_id, str):
            raise AlertmanagerError(f"Alertmanager {self.url} made a silence but gave no silenceID")
        return silence_id

    def expire_silence(self, silence_id: str) -> None:
        self._call("DELETE", f"/api/v2/silence/{quote(silence_id, safe='')}", f"expire silence {silence_id}")

    def close(self) -> None:
        """Abort a request in progress (from any thread)."""
        self._fetcher.close()

    def _call(self, method: str, path: str, what: str, body: bytes | None = None) -> Any:
        headers = {"Content-Type": "application/json"} if body is not None else None
        try:
            text = self._fetcher.request(method, self.url + path, body, headers)
        except FetchError as exc:
            if str(exc).startswith("HTTP "):
                detail = _error_text(exc.body)
                reason = f"{exc}: {detail}" if detail else str(exc)
                raise AlertmanagerError(f"Alertmanager {self.url} refused to {what}: {reason}") from None
            raise AlertmanagerError(f"cannot reach Alertmanager {self.url} to {what}: {exc}") from None
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise AlertmanagerError(f"Alertmanager {self.url}: the answer to {what} is not JSON") from None


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _error_text(body: bytes) -> str:
    """Alertmanager's reason for a refusal, on one line (its JSON `message`, else the text)."""
    text = body[:500].decode("utf-8", "replace").strip()
    try:
        document = json.loads(text)
    except ValueError:
        document = text
    if isinstance(document, dict):
        document = document.get("message") or document.get("error") or text
    return " ".join(str(document).split())
