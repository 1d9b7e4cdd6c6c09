"""One rule per kind of numeric option, shared by the commands that take it (`predict`, `serve`):
checked before any work, each failure one CrackSegError line naming the flag, the value and the
accepted range."""

from __future__ import annotations

import math

from crackseg.errors import CrackSegError


def check_threshold(value: float | None, flag: str = "--threshold") -> None:
    """A crack probability threshold: None (use the run's) or a number in [0, 1], ends included
    (0 marks every pixel crack, 1 only certain ones)."""
    if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise CrackSegError(f"{flag} must be between 0 and 1 (inclusive), got {value}")


def check_positive(value: float | None, flag: str, what: str = "") -> None:
    """None (not given) or a finite number > 0; `what` says what the number means."""
    if value is not None and not (math.isfinite(value) and value > 0):
        meaning = f" ({what})" if what else ""
        raise CrackSegError(f"{flag} must be a positive number{meaning}, got {value}")


def check_count(value: int | None, flag: str, minimum: int = 1) -> None:
    """None (not given) or a whole number >= `minimum`."""
    if value is not None and value < minimum:
        raise CrackSegError(f"{flag} must be a whole number >= {minimum}, got {value}")
