"""Parameters of the computation (docs/COMPUTATION.md), with the specification's defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from lux.config import Settings


@dataclass(frozen=True)
class Params:
    """Thresholds every computation uses; `timezone` decides what a day is."""

    timezone: str = "Europe/London"
    no_coms_days: int = 3
    zero_read_days: int = 3
    max_daily_yield: float = 8.0
    low_signal_csq: float = 10.0
    performance_threshold: float = 80.0
    flat_tolerance_kwh: float = 0.0005

    @classmethod
    def of(cls, settings: Settings) -> Params:
        """The parameters of a deployment: the specification's thresholds in its fleet time zone."""
        return cls(timezone=settings.timezone)

    def as_sql(self) -> dict[str, object]:
        """The parameters as bind values for the computation SQL."""
        return asdict(self)
