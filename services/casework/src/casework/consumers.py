"""The events the casework service consumes, and the handler of each."""

from baoxue.contracts.enrollment import (
    DropoutSuspected,
    StudentLinked,
    StudentRegistered,
    StudentStatusChanged,
)
from baoxue.contracts.notify import EscalationAdvanced, EscalationRaised, EscalationResolved
from baoxue.contracts.registry import ChildStatusChanged
from baoxue.events.consumer import Subscription
from baoxue.service import ServiceContext
from casework.cases.handlers import make_handlers as case_handlers
from casework.readmodels.handlers import make_batch_handlers as readmodel_batch_handlers
from casework.readmodels.handlers import make_handlers as readmodel_handlers


def subscriptions(ctx: ServiceContext) -> list[Subscription]:
    cases = case_handlers(ctx)
    students = readmodel_handlers()
    many = readmodel_batch_handlers()  # a registration batch is one StudentRegistered per record
    return [
        Subscription(
            "enrollment",
            {
                DropoutSuspected: cases["dropout_suspected"],
                StudentRegistered: students["student_record"],
                StudentStatusChanged: students["student_record"],
                StudentLinked: cases["student_linked"],
            },
            batch_handlers={
                StudentRegistered: many["student_record"],
                StudentStatusChanged: many["student_record"],
            },
        ),
        Subscription(
            "notify",
            {
                EscalationRaised: cases["escalation_raised"],
                EscalationAdvanced: cases["escalation_advanced"],
                EscalationResolved: cases["escalation_resolved"],
            },
        ),
        Subscription("registry", {ChildStatusChanged: cases["child_status_changed"]}),
    ]
