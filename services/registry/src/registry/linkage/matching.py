"""Record linkage of a batch's rows without a usable ID number against the known children.

Each such row first becomes a provisional child record; blocking on birth date and on name pinyin
finds candidates; :mod:`registry.linkage.scoring` decides. Confident links are merges recorded with
their evidence (undoable); uncertain pairs become ``link_candidate`` review items.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.collector import collector_paused
from baoxue.db import utcnow
from registry.children.models import Child, ChildHistory, ChildMerge, ReviewItem
from registry.feeds.models import FeedRow
from registry.linkage.scoring import MARGIN, REVIEW, Person, decide, near_date, score

CHUNK = 400
# A name block of more candidates than this is indexed (``_NameBlockIndex``) the first time a row needs
# it; a shorter one is scanned (a few comparisons each, cheaper than building the index). Indexing every
# block instead made ``best_matches`` at 1M 10.9 / 11.8 s against 9.3 / 9.6 s (29 Nov, cached records).
NAME_BLOCK_SCANNED = 64
_PERSON_COLUMNS = (
    "id",
    "name",
    "name_pinyin",
    "sex",
    "birth_date",
    "hukou_town",
    "hukou_village",
    "guardian_name",
)
_children = Child.__table__  # type: ignore[attr-defined]
_merges = ChildMerge.__table__  # type: ignore[attr-defined]
_history = ChildHistory.__table__  # type: ignore[attr-defined]
_reviews = ReviewItem.__table__  # type: ignore[attr-defined]


@dataclass
class LinkOutcome:
    auto: int = 0
    review: int = 0
    earlier_merged: list[tuple[str, str, str]] = field(default_factory=list)
    """(merged, survivor, previous status) of each automatic link that merged a record of an earlier batch
    (one its consumers know) into another: the feed announces it as a duplicate (ChildStatusChanged)."""
    repointed: list[tuple[str, str, str]] = field(default_factory=list)
    """(record, survivor, ``duplicate``) of each record merged before into a record this batch merged: it
    names the record that remains now, and the feed announces that (ChildStatusChanged, duplicate to
    duplicate, ``merged_into`` the survivor)."""


@collector_paused()  # builds a million lists of positions at a million children (no cycles, no awaits)
def best_matches(
    people: list[Person],
    candidates: list[Person],
    *,
    holds_id: Callable[[str], bool] | None = None,
    separated: Mapping[str, Collection[str]] | None = None,
) -> list[tuple[Person, Person, float, dict[str, str], str]]:
    """For each person, the best candidate sharing a block, and the decision.

    ``holds_id``: whether the candidate of a key holds an ID number (None: none is known to). Two that do
    are two children (the registry holds one record per ID number), however alike they score: the best
    and a runner-up within ``MARGIN`` of it are then an ambiguity (twins born the same day to the same
    guardian, with names that read alike), never "the same child themselves", and the person goes to
    review. ``separated``: for a person's key, the keys of candidates a reviewer separated that description
    from (:func:`_separated`): they are not its candidates at all.

    The blocks are the children born on the person's birth date and those of the same name pinyin and
    sex, but only the children who can score ``REVIEW`` or more are scored: of those born the same day,
    the ones whose name starts with the same character or pinyin syllable (any other name scores −3, and
    the candidate at most 5 points); of those of the same name, the ones born the same day, one slip of
    a field apart, or of an unknown birth date, or else of the same village and guardian (a birth date
    that differs costs 3 points; see :func:`_may_score_enough`). A candidate below ``REVIEW`` is also
    more than ``MARGIN`` under ``AUTO_LINK``: it could be neither the pair decided on nor the runner-up
    that makes an automatic link ambiguous, so the decisions are those of scoring both blocks whole
    (``tests/registry/test_linkage_blocks.py``). Both blocks grow with the registry (≈ 300 children a
    day of birth per million; thousands of a common name); scoring them whole made linkage grow with the
    square of the registry's size, while passing over a candidate costs a comparison or two and
    allocates nothing. The blocks keep their order, so ties are broken as before.
    """
    # Positions in ``candidates`` of the children born on one day, by the first character of their name
    # and by its first pinyin syllable; and of the children of one name pinyin and sex. Positions keep
    # the candidates' order, which breaks ties between equal scores.
    # Looked up with ``get`` only, so that a row's lookups add no empty entries.
    by_birth: defaultdict[dt.date, tuple[defaultdict[str, list[int]], defaultdict[str, list[int]]]]
    by_birth = defaultdict(lambda: (defaultdict(list), defaultdict(list)))
    # Name blocks only for the names the rows have: most of a large registry's names are no row's.
    wanted = {(p.name_pinyin, p.sex) for p in people if p.name_pinyin}
    by_name: defaultdict[tuple[str, str | None], list[int]] = defaultdict(list)
    for position, c in enumerate(candidates):
        name, pinyin = c.name, c.name_pinyin
        if c.birth_date is not None and name:
            by_first_character, by_first_syllable = by_birth[c.birth_date]
            by_first_character[name[0]].append(position)
            if pinyin:
                by_first_syllable[pinyin.partition(" ")[0]].append(position)
        if pinyin and (key := (pinyin, c.sex)) in wanted:
            by_name[key].append(position)
    long_blocks: dict[tuple[str, str | None], _NameBlockIndex] = {}
    out = []
    for p in people:
        not_with = separated.get(p.key, ()) if separated else ()
        born: set[int] = set()
        day = by_birth.get(p.birth_date) if p.name and p.birth_date is not None else None
        if day is not None:
            assert p.name is not None
            born.update(day[0].get(p.name[0], ()))
            if p.name_pinyin:
                born.update(day[1].get(p.name_pinyin.partition(" ")[0], ()))
        block = sorted(born)
        if p.name_pinyin:
            key = (p.name_pinyin, p.sex)
            named = by_name.get(key, [])
            if len(named) > NAME_BLOCK_SCANNED:
                if (index := long_blocks.get(key)) is None:
                    index = long_blocks[key] = _NameBlockIndex(named, candidates)
                kept = index.may_score_enough(p)
            else:
                kept = _may_score_enough(p, named, candidates)
            block += [i for i in kept if i not in born]
        # The best candidate and the runner-up, as a stable sort by descending points would order them.
        best: tuple[float, dict[str, str], Person] | None = None
        second: tuple[float, dict[str, str], Person] | None = None
        for i in block:
            c = candidates[i]
            if c.key == p.key or c.key in not_with:
                continue
            points, evidence = score(p, c, needed=REVIEW)
            if points < REVIEW:  # neither the pair decided on nor a runner-up that could change a decision
                continue
            if best is None or points > best[0]:
                best, second = (points, evidence, c), best
            elif second is None or points > second[0]:
                second = (points, evidence, c)
        if best is None:
            continue
        points, evidence, cand = best
        runner_up = second[0] if second is not None else None
        if (
            second is not None
            and points - second[0] < MARGIN
            and not (holds_id is not None and holds_id(cand.key) and holds_id(second[2].key))
        ):
            # Two close candidates are no ambiguity when they are clearly the same child themselves (but
            # two records with different ID numbers are two children: ``holds_id``).
            between_points, between = score(cand, second[2])
            if decide(between_points, None, between) == "auto":
                runner_up = None
        verdict = decide(points, runner_up, evidence)
        if verdict != "none":
            out.append((p, cand, points, evidence, verdict))
    return out


def _may_score_enough(p: Person, named: Iterable[int], candidates: list[Person]) -> list[int]:
    """Which of ``named`` (positions of candidates of ``p``'s name pinyin and sex) can score ``REVIEW``
    or more against ``p``.

    With birth dates that differ (neither equal nor one slip apart) such a candidate scores at most 6
    points (the exact name 4, birth date −3, sex 1, village 2, guardian 2), and then only with the same
    village and the same guardian; every other one is below ``REVIEW`` and more than ``MARGIN`` under
    ``AUTO_LINK``, so it changes no decision. The test is written out in one loop rather than a call per
    candidate; a block longer than ``NAME_BLOCK_SCANNED`` is not scanned but looked up in its
    :class:`_NameBlockIndex` (scanning every block meant 3.2 million tests for the 81,297 rows without an
    ID number of the generated 1M district, most of them in the blocks of common names).
    """
    a = p.birth_date
    if a is None:
        return list(named)
    village, guardian = p.hukou_village, p.guardian_name
    kept = []
    for i in named:
        c = candidates[i]
        b = c.birth_date
        if (
            b is None
            or b == a
            or (village is not None and c.hukou_village == village and c.guardian_name == guardian)
            or near_date(a, b)
        ):
            kept.append(i)
    return kept


class _NameBlockIndex:
    """A long name block (the positions of the candidates of one name pinyin and sex) indexed so that
    :func:`_may_score_enough`'s candidates are found by a few lookups instead of a scan.

    A common name has thousands of candidates in a large registry, and most rows of that name keep a few
    dozen of them: those of an unknown birth date, those whose birth date shares two of year, month and
    day with the row's (the same date included) or is the row's with month and day swapped, and those of
    the row's village and guardian. Built the first time a row of the name needs it.
    """

    def __init__(self, named: list[int], candidates: list[Person]) -> None:
        self.named = named
        self.undated: list[int] = []
        self.by_year_month: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
        self.by_year_day: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
        self.by_month_day: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
        self.by_date: defaultdict[dt.date, list[int]] = defaultdict(list)
        self.by_home: defaultdict[tuple[str | None, str | None], list[int]] = defaultdict(list)
        for i in named:
            c = candidates[i]
            b = c.birth_date
            if b is None:
                self.undated.append(i)
            else:
                self.by_year_month[b.year, b.month].append(i)
                self.by_year_day[b.year, b.day].append(i)
                self.by_month_day[b.month, b.day].append(i)
                self.by_date[b].append(i)
            self.by_home[c.hukou_village, c.guardian_name].append(i)

    def may_score_enough(self, p: Person) -> list[int]:
        """The same positions as ``_may_score_enough(p, self.named, candidates)``, in the same order."""
        a = p.birth_date
        if a is None:
            return list(self.named)
        kept = set(self.undated)
        kept.update(self.by_year_month.get((a.year, a.month), ()))
        kept.update(self.by_year_day.get((a.year, a.day), ()))
        kept.update(self.by_month_day.get((a.month, a.day), ()))
        if a.day <= 12:  # month and day swapped
            kept.update(self.by_date.get(dt.date(a.year, a.day, a.month), ()))
        if p.hukou_village is not None:
            kept.update(self.by_home.get((p.hukou_village, p.guardian_name), ()))
        return sorted(kept)


async def _candidates(
    session: AsyncSession, people: list[Person], own: set[str]
) -> tuple[list[Person], set[str]]:
    """Known children sharing a block with any of ``people`` (birth date, or name pinyin), and the ids of
    those of them without an ID number (provisional records: far fewer than those with one)."""
    births = sorted({p.birth_date for p in people if p.birth_date})
    names = sorted({p.name_pinyin for p in people if p.name_pinyin})
    cols = [
        _children.c[c]
        for c in (
            "id",
            "name",
            "name_pinyin",
            "sex",
            "birth_date",
            "hukou_town",
            "hukou_village",
            "guardian_name",
        )
    ]
    cols.append(_children.c.id_blind.is_(None).label("provisional"))
    found: dict[str, Person] = {}
    provisional: set[str] = set()
    for i in range(0, max(len(births), len(names)), CHUNK):
        query = select(*cols).where(
            _children.c.status != "duplicate",
            or_(
                _children.c.birth_date.in_(births[i : i + CHUNK]),
                _children.c.name_pinyin.in_(names[i : i + CHUNK]),
            ),
        )
        rows = (await session.execute(query)).mappings()  # buffered: the loop below does not await
        with collector_paused():  # a Person per known child of the blocks: a million at a million children
            for r in rows:
                if r["id"] not in own:
                    found[r["id"]] = Person.of(r, r["id"])
                    if r["provisional"]:
                        provisional.add(r["id"])
    return list(found.values()), provisional


async def _provisional(session: AsyncSession, own: set[str]) -> list[Person]:
    """Active records without an ID number from earlier batches (rows that could not be linked then)."""
    cols = [_children.c[c] for c in _PERSON_COLUMNS]
    query = select(*cols).where(_children.c.status != "duplicate", _children.c.id_blind.is_(None))
    return [Person.of(r, r["id"]) for r in (await session.execute(query)).mappings() if r["id"] not in own]


_SAME_DESCRIPTION = ("name", "sex", "birth_date", "hukou_village", "guardian_name")
"""What identifies "the same row" without an ID number from one period to the next: the values linkage
compares (the town follows from the village; a row whose village matched nothing compares its absence)."""


async def _separated(session: AsyncSession, rows: Sequence[Any]) -> dict[str, set[str]]:
    """For the batch's ``rows`` without an ID number: the records a reviewer separated their description
    from (by the row's record, the key ``best_matches`` knows it by).

    A linkage merge undone (``linkage_auto``, or ``linkage_review``: an accepted candidate) is the reviewer's
    decision that the merged record's row is not the child of the survivor. A row with the same description
    as that row (:data:`_SAME_DESCRIPTION`, whatever its department) is the same row again, so the decision
    holds for it, as a decided review item holds for a department repeating its row
    (``merge.open_conflicts``): the survivor (the record that remains for it) is not its candidate, neither
    for an automatic link nor for review. The record the undo gave back, if it is still there, is; a
    description that changed is new to decide on. The descriptions of the undone merges are read in one
    statement (few: a reviewer's undoings), the rows matched against them here.
    """
    m, s = _merges.alias("m"), _children.alias("s")
    d = FeedRow.__table__.alias("d")  # type: ignore[attr-defined]
    query = (
        select(*(d.c[c] for c in _SAME_DESCRIPTION), func.coalesce(s.c.merged_into, s.c.id))
        .select_from(m)
        .join(d, (d.c.child_id == m.c.merged_id) & (d.c.outcome == "accepted"))
        .join(s, s.c.id == m.c.survivor_id)
        .where(m.c.undone_at.is_not(None), m.c.reason.in_(("linkage_auto", "linkage_review")))
    )
    survivors_of: dict[tuple[Any, ...], set[str]] = {}
    for *description, survivor in await session.execute(query):
        survivors_of.setdefault(tuple(description), set()).add(survivor)
    if not survivors_of:
        return {}
    out = {}
    for r in rows:
        found = survivors_of.get(tuple(r[c] for c in _SAME_DESCRIPTION))
        if found and not r["id_blind"]:
            out[r["child_id"]] = found
    return out


async def link_batch(session: AsyncSession, batch_id: str, *, actor: str) -> LinkOutcome:
    """Link the batch's provisional records (rows without a usable ID number) to known children."""
    fr = FeedRow.__table__  # type: ignore[attr-defined]
    query = select(
        *(
            fr.c[c]
            for c in (
                "child_id",
                "id_blind",
                "name",
                "name_pinyin",
                "sex",
                "birth_date",
                "hukou_town",
                "hukou_village",
                "guardian_name",
            )
        )
    ).where(fr.c.batch_id == batch_id, fr.c.outcome == "accepted", fr.c.link == "new")
    rows = (await session.execute(query)).mappings().all()
    outcome = LinkOutcome()
    if not rows:
        return outcome
    # Rows without an ID number look at every known child; new children with an ID number look only at
    # provisional records (no ID number): two different ID numbers are two people (or a police matter).
    own = {r["child_id"] for r in rows}
    has_id = {r["child_id"] for r in rows if r["id_blind"]}
    without_id = [Person.of(r, r["child_id"]) for r in rows if not r["id_blind"]]
    candidates, provisional_ids = await _candidates(session, without_id, own)
    found = best_matches(
        without_id,
        candidates,
        holds_id=lambda key: key not in provisional_ids,
        separated=await _separated(session, rows),
    )
    provisional = await _provisional(session, own)
    if provisional:  # only rows sharing a block with a provisional record need a closer look
        births = {p.birth_date for p in provisional}
        names = {p.name_pinyin for p in provisional}
        with_id = [
            Person.of(r, r["child_id"])
            for r in rows
            if r["id_blind"] and (r["birth_date"] in births or r["name_pinyin"] in names)
        ]
        found += best_matches(with_id, provisional)
    now = utcnow()
    merges, reviews = [], []
    merged_already: set[str] = set()
    for p, cand, points, evidence, verdict in found:
        detail = json.dumps({"score": points, "evidence": evidence})
        # The record with an ID number survives; between two without, the one known longer.
        survivor, merged = (p.key, cand.key) if p.key in has_id else (cand.key, p.key)
        if verdict == "auto":
            if merged in merged_already or survivor in merged_already:
                continue
            merged_already.add(merged)
            merges.append(
                {
                    "survivor_id": survivor,
                    "merged_id": merged,
                    "reason": "linkage_auto",
                    "evidence": detail,
                    "previous_status": "active",
                    "created_by": actor,
                    "created_at": now,
                }
            )
        else:
            reviews.append(
                {
                    "kind": "link_candidate",
                    "status": "open",
                    "child_id": merged,
                    "other_child_id": survivor,
                    "batch_id": batch_id,
                    "score": points,
                    "detail": detail,
                    "hukou_town": p.hukou_town,
                    "created_at": now,
                }
            )
    if merges:
        # ``merged_into`` names the record that remains (``merging.merge_records``): a record merged into
        # one that this batch merges in turn names the last one.
        survivor_of = {str(m["merged_id"]): str(m["survivor_id"]) for m in merges}

        def remains(child: object) -> str:
            found = str(child)
            while found in survivor_of:
                found = survivor_of[found]
            return found

        # The batch's own provisional records are new (active, never announced); a record of an earlier
        # batch may be in another status (moved out, missing) and is known to the consumers.
        earlier = [m["merged_id"] for m in merges if m["merged_id"] not in own]
        if earlier:
            current = await session.execute(
                select(_children.c.id, _children.c.status).where(_children.c.id.in_(earlier))
            )
            statuses: dict[str, str] = {child: status for child, status in current}
            for m in merges:
                if m["merged_id"] in statuses:
                    m["previous_status"] = statuses[str(m["merged_id"])]
                    outcome.earlier_merged.append(
                        (str(m["merged_id"]), remains(m["survivor_id"]), statuses[str(m["merged_id"])])
                    )
        await session.execute(insert(_merges), merges)
        await session.execute(
            update(_children)
            .where(_children.c.id == bindparam("mid"))
            .values(status="duplicate", merged_into=bindparam("sid")),
            [{"mid": m["merged_id"], "sid": remains(m["survivor_id"])} for m in merges],
        )
        if earlier:  # only a record of an earlier batch can have had records merged into it
            named = await session.execute(
                select(_children.c.id, _children.c.merged_into)
                .where(_children.c.merged_into.in_(earlier))
                .order_by(_children.c.id)
            )
            outcome.repointed = [(child, remains(was), "duplicate") for child, was in named]
            await session.execute(
                update(_children)
                .where(_children.c.merged_into == bindparam("mid"))
                .values(merged_into=bindparam("sid")),
                [{"mid": m, "sid": remains(m)} for m in earlier],
            )
        await session.execute(
            insert(_history),
            [
                {
                    "child_id": m["merged_id"],
                    "kind": "merged_into",
                    "reference": m["survivor_id"],
                    "batch_id": batch_id,
                    "at": now,
                    "detail": m["evidence"],
                }
                for m in merges
            ]
            + [
                {
                    "child_id": m["survivor_id"],
                    "kind": "absorbed",
                    "reference": m["merged_id"],
                    "batch_id": batch_id,
                    "at": now,
                    "detail": m["evidence"],
                }
                for m in merges
            ],
        )
    if reviews:
        await session.execute(insert(_reviews), reviews)
    outcome.auto, outcome.review = len(merges), len(reviews)
    return outcome
