"""Building casework's case events from a case row (no personal data: surrogate ids and codes only)."""

from typing import Any, TypeVar

from baoxue.contracts.casework import CaseEvent
from casework.cases.models import Case

E = TypeVar("E", bound=CaseEvent)


def case_event(cls: type[E], case: Case, **fields: Any) -> E:
    return cls(
        case_id=case.id,
        child_id=case.child_id,
        school_code=case.school_code,
        hukou_town=case.hukou_town,
        state=case.state,  # type: ignore[arg-type]
        reason=case.reason,
        **fields,
    )
