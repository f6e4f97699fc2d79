"""Who may be named as the member asking: refused before anything is logged under the name."""

from __future__ import annotations

from cleanroom.config import Collaboration
from protocols import PolicyRefusal


def not_a_member(collab: Collaboration) -> PolicyRefusal:
    """The refusal for a name that is not a member. It does not repeat the name: a typed
    name could be anything (an email address, terminal escape codes)."""
    return PolicyRefusal("members", "that name is not a member of the collaboration "
                         f"(members: {', '.join(collab.members)})")


def require_member(collab: Collaboration, member: str) -> None:
    """Refuse a name that is not a member of `collab`."""
    if member not in collab.members:
        raise not_a_member(collab)
