"""How a request's ``class_label`` becomes one class per image: the rule of every route.

Usage (in a route)::

    given = parse_class_label(form_value)                      # "7", "1,7", 7, [1, 7] or None
    labels = per_image(given, model, count, default=[s % model.num_classes for s in seeds])

The rule, the same on ``/generate``, ``/score``, ``/animate``, ``/complete`` and ``/encode``:
one integer is the class of every image; a list is applied in turn, image (or key frame) ``i``
getting entry ``i`` modulo the list's length, so one entry per image gives each its own class
and a shorter list repeats (entries past the last image are unused). An unconditional model
refuses any class. Without a class each route has its own default (``default``), or none.
The rule takes any list length because a request's JSON Schema cannot tie the length of one
list to another's: a schema-valid request is then always a valid one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from service.errors import InvalidRequest

if TYPE_CHECKING:  # the schemas import this module for CLASS_LIST_TEXT: no model code needed
    from service.repository.repository import LoadedModel

# The rule in words, for the schema descriptions of every class_label field.
CLASS_LIST_TEXT = (
    "One class for all images, or a list applied in turn (image i gets entry i modulo the "
    "list's length: one per image, or a shorter list that repeats)."
)


def int_or_none(value: Any, name: str) -> int | None:
    """An integer field given as text (a form field, a query parameter) or as a number."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidRequest(f"{name} must be an integer, not {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{name} must be an integer, not {value!r}") from None


def parse_class_label(raw: Any) -> int | list[int] | None:
    """``class_label`` as given: an int, a list, or text such as ``"7"`` or ``"1,7"``."""
    if isinstance(raw, str) and "," in raw:
        raw = raw.split(",")
    if isinstance(raw, list):
        labels = [int_or_none(value, "class_label") for value in raw]
        if any(label is None for label in labels):
            raise InvalidRequest("class_label has an empty entry; give one integer per image")
        return [label for label in labels if label is not None]
    return int_or_none(raw, "class_label")


def per_image(
    class_label: int | list[int] | None,
    model: LoadedModel,
    count: int,
    default: Sequence[int] | None = None,
) -> np.ndarray | None:
    """int32 [count] classes of ``count`` images by the rule above.

    An unconditional model gets zeros (and a 422 for any class given). A conditional model
    without ``class_label`` gets ``default`` (one class per image), or None when the route has
    no default: the route then searches every class or asks for one.
    """
    if model.num_classes == 0:
        if class_label is not None:
            raise InvalidRequest(f"model {model.name!r} is unconditional; omit class_label")
        return np.zeros(count, np.int32)
    if class_label is None:
        return None if default is None else np.asarray(default, np.int32)
    given = [class_label] if isinstance(class_label, int) else list(class_label)
    if not given:
        raise InvalidRequest("class_label is an empty list; give a class or a list of classes")
    for label in given:  # every entry, used or not: a class the model lacks is a mistake
        if not 0 <= label < model.num_classes:
            raise InvalidRequest(
                f"class_label {label} is out of range; model {model.name!r} has classes "
                f"0..{model.num_classes - 1}"
            )
    return np.array([given[i % len(given)] for i in range(count)], np.int32)


def labels_or_rows(
    class_label: int | list[int] | None, model: LoadedModel, rows: Sequence[int]
) -> np.ndarray:
    """int32 labels of ``len(rows)`` images by the rule above; without a class, each row (seed
    or index) modulo the number of classes."""
    default = [row % max(model.num_classes, 1) for row in rows]
    labels = per_image(class_label, model, len(rows), default)
    assert labels is not None  # a default was given
    return labels
