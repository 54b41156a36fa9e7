"""Staff roles and the identity a request acts as (docs/staff.md "Roles")."""

from __future__ import annotations

import re
from dataclasses import dataclass

CLERK, MANAGER = "clerk", "manager"
ROLES = (CLERK, MANAGER)  # each may do what the ones before it may
ADMIN = "admin"  # the configured staff token's identity: a manager, for automation
NAME_RULE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")  # also a JSON Schema pattern
MIN_PASSWORD, MAX_PASSWORD = 8, 200  # characters


@dataclass(frozen=True)
class Identity:
    """Who is acting: an account's name and its role now."""

    name: str
    role: str

    def may(self, needed: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(needed)


def article(role: str) -> str:
    return f"a {role}" if role in ROLES else role
