"""Turning GraphQL input objects into the plain data resolvers take."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from enum import Enum
from typing import Any

import strawberry


def given(value: Any) -> Any:
    """An input as plain data: the fields the client gave (UNSET left out, an explicit null kept as None),
    nested input objects as dicts, enum members as their values, under the Python (snake_case) names.

    This is what a partial update needs: a field that is absent does not change, one given as null does.
    """
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [given(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {field.name: given(getattr(value, field.name)) for field in fields(value)
                if getattr(value, field.name) is not strawberry.UNSET}
    return value
