"""The UI configuration (``web/config.yaml`` or ``settings.web_config``), typed and checked.

A bad file is a start-up error naming the file and the field, never a half-working page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")

TILES = ("waiting", "longest_wait", "service_level", "service_level_30m", "abandoned_today")
#: tiles where a lower number is worse (warn/alert when the value falls to or below the threshold)
LOWER_IS_WORSE = frozenset({"service_level", "service_level_30m"})


class WebConfigError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Disposition(_Strict):
    code: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")
    ko: str = Field(min_length=1, max_length=80)
    en: str = Field(min_length=1, max_length=80)


class Label(_Strict):
    ko: str = Field(min_length=1, max_length=80)
    en: str = Field(min_length=1, max_length=80)


class Threshold(_Strict):
    warn: float
    alert: float


class Wallboard(_Strict):
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    queues: dict[str, dict[str, Threshold]] = Field(default_factory=dict)
    stale_after_seconds: float = Field(3.0, gt=0)
    #: how often the KPI tiles (ASA, AHT, abandon rate, service level, Erlang C staffing) are
    #: computed from the report store (an owned periodic task, never per event)
    kpi_refresh_seconds: float = Field(15.0, gt=0, le=600)
    #: the push's coalescing window: a change goes out at once when no ``wallboard.update`` went
    #: out in the last this-many seconds, else at the window's end with every change since
    push_window_seconds: float = Field(0.1, gt=0, le=5)

    @field_validator("thresholds")
    @classmethod
    def _known_tiles(cls, v: dict[str, Threshold]) -> dict[str, Threshold]:
        _check_tiles(v)
        return v

    @field_validator("queues")
    @classmethod
    def _known_queue_tiles(cls, v: dict[str, dict[str, Threshold]]) -> dict[str, dict[str, Threshold]]:
        for tiles in v.values():
            _check_tiles(tiles)
        return v


def _check_tiles(tiles: dict[str, Threshold]) -> None:
    for name, t in tiles.items():
        if name not in TILES:
            raise ValueError(f"unknown tile {name!r} (tiles: {', '.join(TILES)})")
        if name in LOWER_IS_WORSE and t.alert > t.warn:
            raise ValueError(f"{name}: lower is worse, so alert ({t.alert}) must be <= warn ({t.warn})")
        if name not in LOWER_IS_WORSE and t.alert < t.warn:
            raise ValueError(f"{name}: alert ({t.alert}) must be >= warn ({t.warn})")


class WebConfig(_Strict):
    dispositions: list[Disposition] = Field(min_length=1)
    pause_reasons: dict[str, Label] = Field(default_factory=dict)
    wallboard: Wallboard = Field(default_factory=Wallboard)

    @model_validator(mode="after")
    def _unique_codes(self) -> "WebConfig":
        codes = [d.code for d in self.dispositions]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise ValueError(f"duplicate disposition codes: {', '.join(dup)}")
        return self

    @property
    def disposition_codes(self) -> set[str]:
        return {d.code for d in self.dispositions}

    def thresholds_for(self, queue: str) -> dict[str, dict[str, float]]:
        """The tile thresholds of one queue: the defaults with the queue's overrides."""
        merged = {**self.wallboard.thresholds, **self.wallboard.queues.get(queue, {})}
        return {name: t.model_dump() for name, t in merged.items()}

    def public(self, pause_reasons: list[str], queues: list[str]) -> dict[str, Any]:
        """What the page receives (``GET /api/web/config``)."""
        return {
            "dispositions": [d.model_dump() for d in self.dispositions],
            "pause_reasons": [
                {"code": code, **(self.pause_reasons[code].model_dump() if code in self.pause_reasons else {"ko": code, "en": code})}
                for code in pause_reasons
            ],
            "wallboard": {
                "tiles": list(TILES),
                "lower_is_worse": sorted(LOWER_IS_WORSE),
                "default": self.thresholds_for(""),
                "queues": {q: self.thresholds_for(q) for q in sorted(set(queues) | set(self.wallboard.queues))},
                "stale_after_seconds": self.wallboard.stale_after_seconds,
                "kpi_refresh_seconds": self.wallboard.kpi_refresh_seconds,
            },
        }


def load_config(path: Path | None = None) -> WebConfig:
    path = Path(path) if path is not None else DEFAULT_CONFIG
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WebConfigError(f"{path}: cannot read the web UI config: {exc}") from None
    except yaml.YAMLError as exc:
        raise WebConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return WebConfig.model_validate(raw or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise WebConfigError(f"{path}: {problems}") from None
