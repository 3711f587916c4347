"""Who is calling: the owner every service call is scoped to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `owner_id` scopes every read and write; `actor` names the
    credential in audit entries (`apikey:<id>`, `jwt:<sub>`, `cli`)."""

    owner_id: uuid.UUID
    actor: str
