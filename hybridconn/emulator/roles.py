"""Azure RBAC for the emulator: which Entra ID principal holds which Azure Relay role, where.

Azure grants a Microsoft Entra ID principal the data-plane rights by role
assignments, at the namespace or at one hybrid connection; the token only says
who the principal is (its ``oid``). The built-in roles:

======================  ==========================
Azure Relay Owner       Listen, Send (and Manage)
Azure Relay Listener    Listen
Azure Relay Sender      Send
======================  ==========================

Unless told otherwise the emulator has one assignment, as it has one SAS rule:
:data:`DEV_PRINCIPAL_ID` is Azure Relay Owner of the whole namespace.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, Iterator, List, Optional, Tuple, Union

__all__ = [
    "DEV_PRINCIPAL_ID",
    "OWNER",
    "LISTENER",
    "SENDER",
    "ROLE_RIGHTS",
    "RoleAssignment",
    "RoleAssignmentLike",
    "RoleAssignments",
]

#: The object ID of the development principal: the default owner, and whom the dev credential
#: and the dev identity endpoint's system-assigned identity stand for. Not a real identity.
DEV_PRINCIPAL_ID = "00000000-0000-4000-8000-0000000000d1"

OWNER = "Azure Relay Owner"
LISTENER = "Azure Relay Listener"
SENDER = "Azure Relay Sender"

#: The rights each built-in role grants.
ROLE_RIGHTS: Dict[str, FrozenSet[str]] = {
    OWNER: frozenset({"Listen", "Send", "Manage"}),
    LISTENER: frozenset({"Listen"}),
    SENDER: frozenset({"Send"}),
}
_ROLE_NAMES = {name.lower(): name for name in ROLE_RIGHTS}
_ROLE_NAMES.update({name.lower().replace("azure relay ", ""): name for name in ROLE_RIGHTS})


def _role_name(role: str) -> str:
    canonical = _ROLE_NAMES.get(" ".join(str(role).split()).lower())
    if canonical is None:
        raise ValueError(f"unknown Azure Relay role {role!r}: one of {', '.join(ROLE_RIGHTS)}")
    return canonical


@dataclass(frozen=True)
class RoleAssignment:
    """``principal_id`` holds ``role`` on ``hybrid_connection`` (None: the whole namespace).

    ``role`` is a built-in role's name (``"Azure Relay Listener"``, or just ``"Listener"``,
    any case); it is stored as the full name.
    """

    principal_id: str
    role: str
    hybrid_connection: Optional[str] = None

    def __post_init__(self) -> None:
        if not isinstance(self.principal_id, str) or not self.principal_id.strip():
            raise ValueError("a role assignment needs a principal id (the token's oid)")
        object.__setattr__(self, "role", _role_name(self.role))
        if self.hybrid_connection is not None:
            object.__setattr__(self, "hybrid_connection", self.hybrid_connection.strip("/"))

    def covers(self, entity: str) -> bool:
        """True at namespace scope, or on this hybrid connection (names compare case-insensitively)."""
        return self.hybrid_connection is None or self.hybrid_connection.lower() == entity.strip("/").lower()

    @property
    def scope(self) -> str:
        return f"hybrid connection {self.hybrid_connection!r}" if self.hybrid_connection else "the namespace"


RoleAssignmentLike = Union[RoleAssignment, Tuple[str, str], Tuple[str, str, Optional[str]]]


def _as_assignment(item: RoleAssignmentLike) -> RoleAssignment:
    if isinstance(item, RoleAssignment):
        return item
    if isinstance(item, tuple) and len(item) in (2, 3):
        return RoleAssignment(*item)
    raise ValueError(
        f"a role assignment is a RoleAssignment or (principal_id, role[, hybrid_connection]), not {item!r}"
    )


class RoleAssignments:
    """The emulator's role assignments; changes apply to the next token check (a live channel
    keeps the rights it was admitted with until it renews its token or reconnects)."""

    def __init__(self, assignments: Optional[Iterable[RoleAssignmentLike]] = None) -> None:
        if assignments is None:
            assignments = [RoleAssignment(DEV_PRINCIPAL_ID, OWNER)]
        self._lock = threading.Lock()
        self._items: List[RoleAssignment] = []
        for item in assignments:
            self.assign(item)

    def assign(self, principal_id: Union[str, RoleAssignmentLike], role: Optional[str] = None,
               hybrid_connection: Optional[str] = None) -> RoleAssignment:
        """Give ``principal_id`` the ``role`` on ``hybrid_connection`` (or the namespace); or add
        an assignment given whole (a :class:`RoleAssignment` or a tuple)."""
        if isinstance(principal_id, str):
            assignment = RoleAssignment(principal_id, role or "", hybrid_connection)
        else:
            assignment = _as_assignment(principal_id)
        with self._lock:
            if assignment not in self._items:
                self._items.append(assignment)
        return assignment

    def revoke(self, principal_id: str, role: Optional[str] = None, hybrid_connection: Optional[str] = None) -> int:
        """Remove ``principal_id``'s assignments (only of ``role``/at ``hybrid_connection`` when given).
        Returns how many were removed."""
        wanted_role = _role_name(role) if role is not None else None
        scope = hybrid_connection.strip("/") if hybrid_connection is not None else None

        def matches(item: RoleAssignment) -> bool:
            return (item.principal_id == principal_id and (wanted_role is None or item.role == wanted_role)
                    and (hybrid_connection is None or item.hybrid_connection == scope))

        with self._lock:
            kept = [item for item in self._items if not matches(item)]
            removed = len(self._items) - len(kept)
            self._items = kept
        return removed

    def roles_of(self, principal_id: str, entity: str) -> List[str]:
        """The roles ``principal_id`` holds on ``entity`` (at its scope or the namespace's)."""
        with self._lock:
            items = list(self._items)
        return sorted({item.role for item in items if item.principal_id == principal_id and item.covers(entity)})

    def rights(self, principal_id: str, entity: str) -> FrozenSet[str]:
        """The rights those roles grant."""
        granted: FrozenSet[str] = frozenset()
        for role in self.roles_of(principal_id, entity):
            granted = granted | ROLE_RIGHTS[role]
        return granted

    def __iter__(self) -> Iterator[RoleAssignment]:
        with self._lock:
            return iter(list(self._items))

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __repr__(self) -> str:
        return f"RoleAssignments({list(self)!r})"
