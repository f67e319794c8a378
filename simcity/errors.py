"""The one exception type for problems a user can cause (bad files, bad values)."""

from __future__ import annotations

from pathlib import Path


class SimcityError(ValueError):
    """A user-fixable problem, naming the file, the field and what was expected.

    >>> str(SimcityError("is negative", file="city.toml", field="city.rows", expected="> 0"))
    'city.toml: city.rows: is negative (expected > 0)'
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        field: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.field = field
        self.expected = expected
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        text = ": ".join([*parts, self.message])
        return f"{text} (expected {self.expected})" if self.expected else text

    def with_file(self, file: str | Path) -> SimcityError:
        """The same error, attributed to ``file`` when it names none yet."""
        if self.file is not None:
            return self
        return SimcityError(self.message, file=file, field=self.field, expected=self.expected)
