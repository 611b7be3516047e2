"""The case state machine: the only transitions there are, and what a closure needs.

    suspected ──► confirmed ──► persuading ──► returned ──► closed
        │             │             │  ▲          │ ▲
        │             │             │  └──────────┘ │ (stopped attending again before closure)
        │             │             ├──► placed ──► closed
        │             │             ├──► escalated ──► returned | placed | persuading | closed
        │             │             └──► closed (excluded)
        └──► closed   └──► closed (excluded)
    (unfounded | excluded)

A closed case is reopened (→ suspected) only by a new dropout signal inside its relapse watch.
"""

from typing import Final

from baoxue.errors import Conflict

OPEN_STATES: Final = ("suspected", "confirmed", "persuading", "returned", "placed", "escalated")
CONFIRMED_STATES: Final = ("confirmed", "persuading", "returned", "placed", "escalated")
"""The open states of a confirmed dropout (the confirmed ledger's)."""

TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "suspected": frozenset({"confirmed", "closed"}),
    "confirmed": frozenset({"persuading", "closed"}),
    "persuading": frozenset({"returned", "placed", "escalated", "closed"}),
    "escalated": frozenset({"returned", "placed", "persuading", "closed"}),
    "returned": frozenset({"closed", "persuading"}),
    "placed": frozenset({"closed"}),
    "closed": frozenset(),
}

# Which closure reasons each state may close with (and each needs its proof: see cases/transitions.py;
# returned and unfounded both need an active student record and the days of attendance confirmed since
# the return or the opening).
CLOSURE_REASONS_FROM: Final[dict[str, frozenset[str]]] = {
    "suspected": frozenset({"unfounded", "excluded"}),
    "confirmed": frozenset({"excluded"}),
    "persuading": frozenset({"excluded"}),
    "escalated": frozenset({"excluded"}),
    "returned": frozenset({"returned", "excluded"}),
    "placed": frozenset({"placed", "excluded"}),
}


def transitions_text() -> str:
    """The allowed moves as one line of text (for the API's descriptions), from the table itself."""
    return "; ".join(
        f"{source} → {' | '.join(sorted(targets))}" for source, targets in TRANSITIONS.items() if targets
    )


def ensure_transition(from_state: str, to_state: str) -> None:
    """409 ``transition_not_allowed`` naming ``from_state``, ``to_state`` and the allowed targets unless
    the move is allowed."""
    allowed = sorted(TRANSITIONS.get(from_state, frozenset()))
    if to_state in allowed:
        return
    if from_state == "closed":
        detail = (
            "A closed case cannot be moved: only a new dropout signal inside its relapse watch reopens it."
        )
    else:
        detail = (
            f"A case cannot move from '{from_state}' to '{to_state}'; "
            f"from '{from_state}' it can move to: {', '.join(allowed)}."
        )
    raise Conflict(
        detail,
        code="transition_not_allowed",
        from_state=from_state,
        to_state=to_state,
        allowed=allowed,
    )


def ensure_closure_reason(from_state: str, reason: str) -> None:
    """409 ``closure_reason_not_allowed`` unless a case in ``from_state`` may close for ``reason``."""
    allowed = CLOSURE_REASONS_FROM.get(from_state, frozenset())
    if reason not in allowed:
        raise Conflict(
            f"A case in '{from_state}' cannot be closed as '{reason}'.",
            code="closure_reason_not_allowed",
            from_state=from_state,
            closure_reason=reason,
            allowed=sorted(allowed),
        )
