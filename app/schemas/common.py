"""Shapes shared by every router: pages and query parameters."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

T = TypeVar("T")


class ReadModel(BaseModel):
    """Base of every response model: built from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


# (MAX_PAGE - 1) * MAX_PAGE_SIZE must fit the databases' 64-bit OFFSET with room to
# spare; a larger page is refused with 422 instead of overflowing in the database.
MAX_PAGE = 1_000_000_000
MAX_PAGE_SIZE = 100


def unsafe_text_reason(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can.

    PostgreSQL refuses NUL in text and both drivers refuse lone surrogates
    (which JSON's ``\\ud800`` escapes can produce), so such strings are turned
    away with 422 where they come in, never reaching a query.
    """
    if "\x00" in value:
        return "must not contain NUL (U+0000) characters"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text (no lone surrogates)"
    return None


def _refuse_unsafe_text(value: Any) -> Any:
    if isinstance(value, str) and (reason := unsafe_text_reason(value)) is not None:
        raise PydanticCustomError("unsafe_text", reason)
    return value


Text = Annotated[str, AfterValidator(_refuse_unsafe_text)]
"""A client string that is checked like every request-body field (form fields use it)."""

Name = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"\S")]
"""A name (of a project, an API key): stored without surrounding whitespace, and one of
only whitespace is refused with 422. Add ``Field(min_length=1, max_length=…)``."""


class RequestModel(BaseModel):
    """Base of every request body: strict, no unknown fields, every string storable."""

    model_config = ConfigDict(strict=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return _refuse_unsafe_text(value)
