"""HTTP of the review queue (bureau) and merges."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from registry.linkage import service
from registry.linkage.schemas import MergePublic, ReviewDecision, ReviewItemPublic

router = APIRouter(tags=["review and linkage"])
Reader = Annotated[Principal, Depends(requires("review:read"))]
Decider = Annotated[Principal, Depends(requires("review:decide"))]


@router.get(
    "/review-items", summary="Review queue: link candidates, conflicts, lapsed flags, unmatched addresses"
)
async def list_items(
    session: SessionDep,
    ctx: Ctx,
    principal: Reader,
    limit: Limit = 100,
    cursor: Cursor = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=10)] = None,
) -> Page[ReviewItemPublic]:
    after = decode_cursor(cursor, int)
    rows = await service.list_items(
        session=session, ctx=ctx, principal=principal, kind=kind, status=status, after=after, limit=limit
    )
    return page_of([ReviewItemPublic.model_validate(r) for r in rows], limit, lambda r: r.id)


@router.get(
    "/review-items/{item_id}",
    summary="One review item (an ID collision or link candidate names the other record if it is yours to see)",
)
async def get_item(item_id: int, session: SessionDep, ctx: Ctx, principal: Reader) -> ReviewItemPublic:
    row = await service.get_item(session=session, ctx=ctx, principal=principal, item_id=item_id)
    return ReviewItemPublic.model_validate(row)


ACCEPT_DOC = """What accepting does, by the item's kind (the body names the value where one is kept):
- `link_candidate`: the two records are merged (undoable: `POST /v1/merges/{id}/undo`);
- `id_collision`: the row's record is merged into the child holding its ID number;
- `conflict`: `assertion_id`, one of the conflicting values in the child's provenance, becomes the child's;
- `flag_lapsed`: the flag ends (rejecting keeps it);
- `address_unmatched`: `hukou_village` (or `hukou_town`) from the directory becomes the hukou place;
- `id_sex_mismatch`: `sex` (`M` or `F`) becomes the child's; `id_birth_date_mismatch`: `birth_date`, which
  must be of compulsory school age (6-14) on the cut-off date of the period of the item's batch. The value
  may be the ID number's, the row's or another; it is recorded with the reviewer's decision as its source
  (history `sex_resolved` / `birth_date_resolved`, and `evidence.chosen` on the item: whose value it agrees
  with, never the value) and audited. Missing: 422 `review_choice_required`; not valid or not this item's
  attribute: 422 `review_value_invalid`;
- `id_address_code_unknown`, `id_address_code_not_in_use`: the decision is recorded; the value concerned
  is the ID number itself, which the police's feed corrects.

A decided item is not opened again by a later row with the same values; a changed value opens a new one."""


@router.post(
    "/review-items/{item_id}/accept",
    summary=(
        "Accept: a link candidate or ID collision merges the records; a conflict keeps the chosen value; "
        "a lapsed flag ends; an unmatched address takes the chosen village or town; a sex or birth date "
        "that disagrees with the ID number takes the value kept"
    ),
    description=ACCEPT_DOC,
)
async def accept(
    item_id: int,
    session: SessionDep,
    ctx: Ctx,
    principal: Decider,
    decision: Annotated[ReviewDecision | None, Body()] = None,
) -> ReviewItemPublic:
    row = await service.decide(
        session=session,
        ctx=ctx,
        principal=principal,
        item_id=item_id,
        accept=True,
        assertion_id=decision.assertion_id if decision is not None else None,
        hukou_town=decision.hukou_town if decision is not None else None,
        hukou_village=decision.hukou_village if decision is not None else None,
        sex=decision.sex if decision is not None else None,
        birth_date=decision.birth_date if decision is not None else None,
    )
    return ReviewItemPublic.model_validate(row)


@router.post(
    "/review-items/{item_id}/reject",
    summary="Reject (a link candidate: they are different children; a lapsed flag: it is kept)",
)
async def reject(item_id: int, session: SessionDep, ctx: Ctx, principal: Decider) -> ReviewItemPublic:
    row = await service.decide(session=session, ctx=ctx, principal=principal, item_id=item_id, accept=False)
    return ReviewItemPublic.model_validate(row)


@router.get(
    "/merges", summary="Merges of child records (automatic links, accepted candidates, duplicate hukou)"
)
async def list_merges(
    session: SessionDep,
    principal: Reader,
    limit: Limit = 100,
    cursor: Cursor = None,
    child_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[MergePublic]:
    rows = await service.list_merges(
        session=session, child_id=child_id, after=decode_cursor(cursor, int), limit=limit
    )
    return page_of([MergePublic.model_validate(r) for r in rows], limit, lambda m: m.id)


UNDO_DOC = """The merged record gets its previous status back and the records concerned are announced again.

What was fed while the records were merged goes back to the record it was about:
- rows whose ID number was the merged record's (a later feed naming a hukou duplicate's ID number reached the
  record that remains) are the merged record's again, wherever they went: to the record it was merged into,
  or to the record that one was merged into afterwards (a chain of merges is followed; the rows of records
  merged into the merged record before go back with it, and those records name it again as the record that
  remains). With them go their provenance (the assertions of the records are rebuilt from their rows for
  those departments) and the contact values they set last (current address, guardian, phone; DPF's
  disability);
- review items those rows opened go with them: an open item of a row's reason (`id_sex_mismatch`,
  `address_unmatched`, …) moves to the record given back; a decided one stays with the record its decision
  acted on, and the record given back gets an open item of that reason, as nobody decided about it there. An
  open conflict that no longer holds on the record that lost the rows moves to the record given back where
  its values conflict, or ends (`undone`); the record given back gets a conflict item where the rows brought
  it a value its own rows did not have and its values now conflict;
- the category flags of the records are replayed from the rows that count for each (lapses, and their
  review items, included);
- rows without a usable ID number that linkage linked are their own record's already;
- the undoing of a link (automatic, or an accepted link candidate) holds: a later row without a usable ID
  number that describes the child as the merged record's row did (the same name, sex, birth date, hukou
  village and guardian, from any department) is not linked to the survivor again, automatically or as a
  candidate; it is linked to the record given back if that is still there (so that record's flags are
  confirmed, not lapsed). A row describing the child differently is new to decide on. The merge's review
  item, if any, ends as `undone`.

Not undone:
- a reviewer's choice of a contact value (an accepted `guardian_phone` conflict) that those rows had set
  gives way to the latest row's value of each record. The choice was made between the values of the merged
  records together, two children's departments and periods mixed; whether the reviewer would have chosen
  the same for either record alone is not known, and moving it to one of them would record a decision
  nobody took about that record. It stays in the history and on the item of the record it was made on;
  the records' values can be decided again;
- what the bureau decided about the record that remains in between (an accepted conflict, a sex or birth
  date kept) is kept;
- a lapsed flag of the records that a reviewer kept (rejected its item) lapses again in the replay (a new
  item; one a reviewer ended stays ended)."""


@router.post(
    "/merges/{merge_id}/undo",
    summary="Undo a merge: both records are separate again, with what was fed to each",
    description=UNDO_DOC,
)
async def undo(merge_id: int, session: SessionDep, ctx: Ctx, principal: Decider) -> MergePublic:
    return MergePublic.model_validate(
        await service.undo(session=session, ctx=ctx, principal=principal, merge_id=merge_id)
    )
