"""The deployment's labs, loaded once per process from LAB_STEPS_DIR."""

from __future__ import annotations

import functools

from django.conf import settings

from labapp.catalog.loader import LabInvalid, validate_labs
from labapp.catalog.spec import LabSpec


class LabNotFound(LookupError):
    pass


@functools.cache
def all_labs() -> dict[str, LabSpec]:
    labs, problems = validate_labs(settings.LAB_STEPS_DIR)
    if problems:
        raise LabInvalid(problems)
    return {lab.id: lab for lab in labs}


def get_lab(lab_id: str) -> LabSpec:
    try:
        return all_labs()[lab_id]
    except KeyError:
        raise LabNotFound(f"no lab {lab_id!r}") from None
