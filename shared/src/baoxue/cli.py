"""The ``baoxue`` command: run, serve, migrate, token, gen, audit, dead letters, calendar."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from baoxue.catalog import installed_services, load_service

NATS_CHECK_SECONDS = 10.0
"""How long ``pii reindex`` waits for NATS to tell its consumers' state before it refuses."""


def _cmd_token(args: argparse.Namespace) -> int:
    from baoxue.auth.tokens import ensure_dev_keypair, mint_token
    from baoxue.settings import ServiceSettings

    settings = ServiceSettings()
    key = ensure_dev_keypair(Path(args.key or settings.jwt_public_key_file or "var/dev-jwt-key.pem"))
    token = mint_token(
        key,
        subject=args.sub or f"demo-{'-'.join(args.role)}-{args.org}",
        roles=args.role,
        org=args.org,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl=dt.timedelta(minutes=args.ttl_minutes),
        name=args.name,
    )
    print(token)
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from baoxue.migrations import upgrade

    for name in args.service or installed_services():
        spec = load_service(name)
        url = spec.settings_cls().resolved_database_url()
        upgrade(spec.migrations_dir, url, args.revision)
        print(f"{name}: migrated to {args.revision}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from baoxue.app import create_app

    spec = load_service(args.service)
    settings = spec.settings_cls()
    if args.migrate:
        from baoxue.migrations import upgrade

        upgrade(spec.migrations_dir, settings.resolved_database_url())
    app = create_app(spec, settings)
    uvicorn.run(app, host=settings.host, port=args.port or settings.port, log_config=None, access_log=False)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from baoxue.runner import run

    return run(args.service or None, exit_when_ready=args.exit_when_ready)


async def _with_context(service: str, work):  # type: ignore[no-untyped-def]
    from baoxue.app import build_context

    spec = load_service(service)
    ctx = build_context(spec, spec.settings_cls())
    try:
        return await work(ctx)
    finally:
        await ctx.db.dispose()


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    anchor = None
    if args.anchor:
        index, _, digest = args.anchor.partition(":")
        if not (index.isdigit() and len(digest) == 64) or not args.service or len(args.service) != 1:
            print(
                "--anchor INDEX:HASH (a head printed earlier) goes with exactly one --service",
                file=sys.stderr,
            )
            return 2
        anchor = (int(index), digest)

    async def work(ctx):  # type: ignore[no-untyped-def]
        await ctx.audit.seal(ctx.db)
        return await ctx.audit.verify_chain(ctx.db, anchor=anchor)

    failed = 0
    for name in args.service or installed_services():
        report = asyncio.run(_with_context(name, work))
        if report.first_broken_position is not None:
            state = f"BROKEN at position {report.first_broken_position}"
        elif report.anchor_missing:
            state = f"BROKEN: the anchor {args.anchor} is no longer in the chain (entries after it deleted?)"
        else:
            state = "intact"
        head = f"; head {report.head[0]}:{report.head[1]}" if report.head else ""
        print(f"{name}: {report.entries} entries, {report.unsealed} unsealed, chain {state}{head}")
        failed += 0 if report.intact else 1
    return 1 if failed else 0


def _cmd_deadletters(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    async def work(ctx):  # type: ignore[no-untyped-def]
        table = ctx.spec.tables.events.dead_letter
        if args.action == "list":
            async with ctx.db.transaction() as session:
                rows = (await session.execute(select(table).order_by(table.c.id))).mappings().all()
            for row in rows:
                row = dict(row)
                row.pop("envelope")
                print(json.dumps(row, default=str, ensure_ascii=False))
            return 0
        from baoxue.events.bus import EventBus
        from baoxue.events.consumer import ConsumerRunner

        runner = ConsumerRunner(
            ctx.spec.name, ctx.db, ctx.spec.tables.events, ctx.bus, ctx.spec.subscriptions(ctx)
        )
        _ = EventBus
        for dl_id in args.ids:
            print(dl_id, await runner.replay_dead_letter(dl_id))
        return 0

    return int(asyncio.run(_with_context(args.service, work)))


def _cmd_calendar_validate(args: argparse.Namespace) -> int:
    from baoxue.workdays import validate_arrangement_file

    arrangement = validate_arrangement_file(Path(args.file))
    print(
        f"ok: {arrangement.year}: {len(arrangement.holidays)} holidays, {len(arrangement.workdays)} make-up days"
    )
    return 0


def _cmd_pii_rotate(args: argparse.Namespace) -> int:
    from baoxue.pii.rotation import ColumnRotation, rotate_all

    def progress(name: str) -> Callable[[ColumnRotation], None]:
        def report(column: ColumnRotation) -> None:
            print(f"{name}: {column} (batch {column.batches})", flush=True)

        return report

    async def work(ctx):  # type: ignore[no-untyped-def]
        name, columns = ctx.spec.name, ctx.spec.encrypted_columns
        print(
            f"{name}: {len(columns)} encrypted columns, active key {ctx.cipher.active_key_id} "
            f"({ctx.cipher.algorithm})",
            flush=True,
        )
        return await rotate_all(ctx.db, ctx.cipher, columns, batch=args.batch, progress=progress(name))

    failed = 0
    for name in args.service or installed_services():
        reports = asyncio.run(_with_context(name, work))
        if not reports:
            print(f"{name}: no encrypted columns declared")
        for column in reports.values():
            print(f"{name}: done: {column}")
            if column.failed:
                failed += column.failed
                print(f"{name}:   first keys that failed: {column.failed_keys}")
    if failed:
        print(
            f"{failed} values could not be decrypted (missing key or wrong associated data); run again after the fix"
        )
        return 1
    print("done: every declared column is under the active key (a second run reports 0 rewritten)")
    return 0


def _cmd_pii(args: argparse.Namespace) -> int:
    return _cmd_pii_reindex(args) if args.action == "reindex" else _cmd_pii_rotate(args)


async def _consumer_backlogs(contexts: list[Any]) -> list[str] | None:
    """``service: backlog`` for every consumer that has not applied all it subscribes to; ``None`` (and
    the reason on stderr) if NATS cannot be asked."""
    from baoxue.events.consumer import backlogs

    behind: list[str] = []
    for ctx in contexts:
        subscriptions = ctx.spec.subscriptions(ctx)
        if not subscriptions:
            continue
        try:
            await asyncio.wait_for(ctx.bus.connect(), timeout=NATS_CHECK_SECONDS)
            found = await asyncio.wait_for(
                backlogs(ctx.bus, ctx.spec.name, subscriptions), timeout=NATS_CHECK_SECONDS
            )
        except Exception as exc:
            print(
                f"{ctx.spec.name}: cannot read its consumers' state from NATS ({type(exc).__name__}); "
                "refused: the check that no event with an old index is still to be applied needs NATS "
                "(--no-consumer-check skips it when you have made sure otherwise)",
                file=sys.stderr,
            )
            return None
        finally:
            await ctx.bus.close()
        behind += [f"{ctx.spec.name}: {backlog}" for backlog in found if not backlog.drained]
    return behind


def _cmd_pii_reindex(args: argparse.Namespace) -> int:
    """Recompute every stored blind index under NEW_BLIND_INDEX_KEY, in every service (writes stopped)."""
    from sqlalchemy import func, select

    from baoxue.app import build_context
    from baoxue.pii.crypto import BlindIndex
    from baoxue.pii.reindex import BlindIndexMap, ColumnReindex, recompute, translate

    names = args.service or installed_services()
    specs = [load_service(name) for name in names]
    settings = [spec.settings_cls() for spec in specs]
    try:
        keys = []
        for spec, s in zip(specs, settings, strict=True):
            if not s.new_blind_index_key:
                print(
                    f"{spec.name}: NEW_BLIND_INDEX_KEY is not set (BAOXUE_NEW_BLIND_INDEX_KEY: the key to "
                    "recompute every blind index under)",
                    file=sys.stderr,
                )
                return 2
            keys.append(
                (
                    BlindIndex.from_setting(s.blind_index_key),
                    BlindIndex.from_setting(s.new_blind_index_key, name="new_blind_index_key"),
                )
            )
        old, new = keys[0]
        if any(not (o.same_key_as(old) and n.same_key_as(new)) for o, n in keys):
            print(
                "every service must have the same BLIND_INDEX_KEY and the same NEW_BLIND_INDEX_KEY: their "
                "blind indexes are compared with each other's",
                file=sys.stderr,
            )
            return 2
        index_map = BlindIndexMap(old, new)
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2

    def progress(name: str) -> Callable[[ColumnReindex], None]:
        def report(column: ColumnReindex) -> None:
            print(f"{name}: {column.column}: {column.recomputed} recomputed", flush=True)

        return report

    async def work() -> dict[str, dict[str, ColumnReindex]]:
        contexts = [build_context(spec, s) for spec, s in zip(specs, settings, strict=True)]
        try:
            unpublished = {}
            for ctx in contexts:
                outbox = ctx.spec.tables.events.outbox
                async with ctx.db.transaction() as session:
                    count = (
                        await session.execute(select(func.count()).where(outbox.c.published_at.is_(None)))
                    ).scalar_one()
                if count:
                    unpublished[ctx.spec.name] = count
            if unpublished:
                for name, count in unpublished.items():
                    print(f"{name}: {count} events in the outbox are not published yet", file=sys.stderr)
                print(
                    "refused: those events carry blind indexes under the old key. Let the services publish "
                    "them (and their consumers apply them) with writes stopped, stop the services, and run "
                    "again.",
                    file=sys.stderr,
                )
                return {}
            if not args.no_consumer_check:
                behind = await _consumer_backlogs(contexts)
                if behind is None:
                    return {}
                if behind:
                    for line in behind:
                        print(line, file=sys.stderr)
                    print(
                        "refused: those events carry blind indexes under the old key, and their consumers "
                        "would write them into the read models after the change. Let the services apply "
                        "them (with writes stopped), stop the services, and run again.",
                        file=sys.stderr,
                    )
                    return {}
            reports: dict[str, dict[str, ColumnReindex]] = {}
            for ctx in contexts:
                mine = reports[ctx.spec.name] = {}
                for column in ctx.spec.blind_index_columns:
                    if column.source is not None:
                        mine[column.name] = await recompute(
                            ctx.db,
                            ctx.cipher,
                            column,
                            index_map,
                            batch=args.batch,
                            progress=progress(ctx.spec.name),
                        )
            print(f"{len(index_map)} distinct values recomputed under the new key", flush=True)
            for ctx in contexts:
                if ctx.spec.blind_index_columns:
                    await translate(
                        ctx.db, list(ctx.spec.blind_index_columns), index_map, reports[ctx.spec.name]
                    )
            return reports
        finally:
            for ctx in contexts:
                await ctx.db.dispose()

    reports = asyncio.run(work())
    if not reports:
        return 2
    failed = unknown = 0
    for name, columns in reports.items():
        if not columns:
            print(f"{name}: no blind-index columns declared")
        for column in columns.values():
            print(f"{name}: done: {column}")
            failed += column.failed
            unknown += column.unknown
            if column.failed:
                print(f"{name}:   first keys that failed: {column.failed_keys}")
    if failed:
        print(
            f"{failed} rows could not be recomputed (a token that does not decrypt with PII_KEYS, or an index "
            "that is its value's under neither key); they are left as they are: fix the cause and run again"
        )
        return 1
    if unknown:
        print(
            f"{unknown} stored indexes are known to no token of any service (e.g. provincial records of "
            "children not registered here): they match nothing under the new key until their source "
            "sends them again (for provincial records: the next import)"
        )
    print(
        "done: set BLIND_INDEX_KEY to the new key in every service (and unset NEW_BLIND_INDEX_KEY), then "
        "start them; running this again before that reports 0 rewritten"
    )
    return 0


def _cmd_asyncapi(args: argparse.Namespace) -> int:
    from baoxue.asyncapi import build_document

    text = json.dumps(build_document(), ensure_ascii=False, indent=2) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baoxue", description="Baoxue (保学) command line")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="start every service on the embedded default (make run)")
    p.add_argument("--service", action="append", help="only these services (repeatable)")
    p.add_argument(
        "--exit-when-ready", action="store_true", help="stop again once all are ready (smoke test)"
    )
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("serve", help="run one service in this process")
    p.add_argument("service")
    p.add_argument("--port", type=int)
    p.add_argument(
        "--migrate", action="store_true", help="apply the service's migrations to its database first"
    )
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("migrate", help="apply migrations to each service's configured database")
    p.add_argument("--service", action="append")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("token", help="mint a development JWT from the demo identity provider")
    p.add_argument("--role", action="append", required=True, help="role code (repeatable)")
    p.add_argument("--org", required=True, help="organisation code from the directory")
    p.add_argument("--sub", help="subject (user id)")
    p.add_argument("--name")
    p.add_argument("--ttl-minutes", type=int, default=480)
    p.add_argument("--key", help="private key file (default: var/dev-jwt-key.pem)")
    p.set_defaults(func=_cmd_token)

    sub.add_parser("gen", help="generate a synthetic district (options: baoxue gen --help)", add_help=False)

    p = sub.add_parser("audit", help="audit log tools")
    p.add_argument("action", choices=["verify"])
    p.add_argument("--service", action="append")
    p.add_argument(
        "--anchor",
        help="INDEX:HASH, a head printed by an earlier verify: also fail if that entry is gone (the newest deleted)",
    )
    p.set_defaults(func=_cmd_audit_verify)

    p = sub.add_parser("deadletters", help="list or replay dead-lettered events")
    actions = p.add_subparsers(dest="action", required=True)
    # one sub-parser per action, so the ids may follow --service (`replay --service casework 12 13`)
    listing = actions.add_parser("list", help="id, event type, error type and code, deliveries")
    listing.add_argument("--service", required=True)
    listing.set_defaults(func=_cmd_deadletters, ids=[])
    replay = actions.add_parser("replay", help="apply dead letters again after a fix (once, by the inbox)")
    replay.add_argument("--service", required=True)
    replay.add_argument("ids", nargs="+", type=int)
    replay.set_defaults(func=_cmd_deadletters)

    p = sub.add_parser(
        "pii",
        help="personal-data keys: rotate (re-encrypt under the active key), reindex (blind indexes under "
        "NEW_BLIND_INDEX_KEY)",
    )
    p.add_argument("action", choices=["rotate", "reindex"])
    p.add_argument("--service", action="append", help="one service (repeatable); default: all")
    p.add_argument("--batch", type=int, default=1000, help="rows per transaction or read (default 1000)")
    p.add_argument(
        "--no-consumer-check",
        action="store_true",
        help="reindex: do not ask NATS whether every consumer has applied its events (only when you "
        "have made sure of it otherwise)",
    )
    p.set_defaults(func=_cmd_pii)

    p = sub.add_parser("asyncapi", help="write the AsyncAPI document of every event (from the contracts)")
    p.add_argument("--out", default="docs/asyncapi.json")
    p.set_defaults(func=_cmd_asyncapi)

    p = sub.add_parser("calendar", help="validate a year's State Council holiday arrangement file")
    p.add_argument("action", choices=["validate"])
    p.add_argument("file")
    p.set_defaults(func=_cmd_calendar_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["gen"]:  # the generator parses its own options (argparse would reject them here)
        from baoxue.synth import main as synth_main

        return int(synth_main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
