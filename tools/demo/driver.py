"""The demo's command line and the order of the statutory year's stages."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from baoxue.auth.tokens import ensure_dev_keypair
from baoxue.infra import free_port
from baoxue.settings import DEV_JWT_KEY_FILE, ServiceSettings
from baoxue.synth import SynthConfig, generate_district
from demo import summary
from demo.api import SERVICES, Api, default_urls
from demo.context import Demo
from demo.stack import ProvincialPlatform, answering, embedded_stack, pick_port
from demo.stages import casework, census, leaks, notify, registry, review, students, verification
from demo.truth import load_district

T = TypeVar("T")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tools/demo/run.py", description="Play one statutory year through Baoxue."
    )
    p.add_argument("--children", type=int, default=60_000, help="children in the generated district (60000)")
    p.add_argument("--seed", type=int, default=2026, help="generator seed (2026)")
    p.add_argument("--out", type=Path, default=Path("var/demo"), help="output folder (var/demo)")
    for name in SERVICES:
        p.add_argument(f"--{name}-url", default=default_urls()[name], help=f"the {name} service")
    p.add_argument("--key", type=Path, default=Path(DEV_JWT_KEY_FILE), help="signing key of the demo IdP")
    p.add_argument("--provincial-port", type=int, default=8190, help="provincial platform simulator port")
    p.add_argument(
        "--free-ports",
        action="store_true",
        help="start the embedded stack on free ports (ignores the --*-url options; for a private run "
        "next to other stacks on 8101-8104)",
    )
    p.add_argument("--workers", type=int, default=8, help="concurrent clients (schools work in parallel)")
    p.add_argument(
        "--student-batch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="register the 学籍 through POST /students/batch, 1,000 per call (the default; used when "
        "enrollment offers it); --no-student-batch: one POST /students per record",
    )
    p.add_argument(
        "--scan-database",
        action="append",
        default=[],
        metavar="SERVICE=URL",
        help="leak scan of a stack the demo did not start: a service's database (repeatable)",
    )
    p.add_argument(
        "--scan-log", action="append", default=[], type=Path, help="a log file to scan (repeatable)"
    )
    p.add_argument("--scan-nats", help="the NATS server whose streams to scan")
    p.add_argument("--scan-namespace", default="baoxue", help="their event namespace (baoxue)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return p


def scan_targets(args: argparse.Namespace) -> leaks.ScanTargets | None:
    """The leak scan's targets given on the command line (or by the end-to-end test), else None."""
    given = getattr(args, "scan_targets", None)
    if given is not None:
        return given  # type: ignore[no-any-return]
    databases = dict(d.split("=", 1) for d in getattr(args, "scan_database", []))
    if not databases and not getattr(args, "scan_nats", None):
        return None
    return leaks.ScanTargets(
        databases=databases,
        logs=list(getattr(args, "scan_log", [])),
        nats_url=args.scan_nats,
        namespace=args.scan_namespace,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so a stack the demo started is stopped with it.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    result = play(args)
    return 0 if not result.get("problems") else 1


def play(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the district, make sure the services run, play the year; returns the summary."""
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if getattr(args, "free_ports", False):
        urls = {name: f"http://127.0.0.1:{free_port()}" for name in SERVICES}
    else:
        urls = {name: getattr(args, f"{name}_url") for name in SERVICES}
    timings: dict[str, float] = {}
    started = time.monotonic()
    district_dir = out / "district"
    shutil.rmtree(district_dir, ignore_errors=True)
    config = SynthConfig(children=args.children, seed=args.seed)
    generate_district(config, district_dir)
    timings["generate"] = time.monotonic() - started
    district = load_district(district_dir, config.periods)
    key = ensure_dev_keypair(args.key.resolve())
    settings = ServiceSettings()
    targets = scan_targets(args)
    with contextlib.ExitStack() as stack:
        platform = _platform(args, urls)
        if platform is not None:
            stack.callback(platform.stop)
        if not answering(urls):
            stack_dir = out / "stack"
            shutil.rmtree(stack_dir, ignore_errors=True)
            os.environ["BAOXUE_JWT_PUBLIC_KEY_FILE"] = str(key)
            t0 = time.monotonic()
            provincial = platform.url if platform else f"http://127.0.0.1:{args.provincial_port}"
            stack.enter_context(embedded_stack(urls, stack_dir, provincial_url=provincial))
            targets = targets or leaks.embedded_targets(stack_dir)
            timings["start_services"] = time.monotonic() - t0
            if not args.quiet:
                print(f"services started in {timings['start_services']:.1f}s: {urls}", flush=True)
        api = Api(urls, key, issuer=settings.jwt_issuer, audience=settings.jwt_audience, workers=args.workers)
        stack.callback(api.close)
        demo = Demo(api=api, district=district, out=out, quiet=args.quiet, timings=timings)
        demo.state["student_batch"] = getattr(args, "student_batch", True)
        demo.say("generate", f"{args.children} children, seed {args.seed} → {district_dir}")
        play_year(demo, args.seed, platform)
        t0 = time.monotonic()
        result = summary.collect(demo)
        timings["summary"] = time.monotonic() - t0
        t0 = time.monotonic()
        result["leak_scan"] = leaks.scan(demo, targets)  # while the stack (its NATS) still runs
        timings["leak_scan"] = time.monotonic() - t0
        result["timings_seconds"] = {k: round(v, 1) for k, v in timings.items()}
        result["timings_seconds"]["total"] = round(time.monotonic() - started, 1)
        (out / "summary.json").write_text(
            json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        summary.show(result, out / "summary.json", quiet=args.quiet)
        return result


def _platform(args: argparse.Namespace, urls: dict[str, str]) -> ProvincialPlatform | None:
    """The simulator on the port enrollment is configured for; a free port when we start the stack."""
    port = args.provincial_port if answering(urls) else pick_port(args.provincial_port)
    try:
        return ProvincialPlatform(port).start()
    except RuntimeError:
        return None  # a simulator already answers there (another demo run's): enrollment uses that one


@contextlib.contextmanager
def _timed(demo: Demo, name: str) -> Iterator[None]:
    t0 = time.monotonic()
    yield
    demo.timings[name] = demo.timings.get(name, 0.0) + time.monotonic() - t0


def _stage(demo: Demo, name: str, fn: Callable[[], T]) -> T:
    t0 = time.monotonic()
    with _timed(demo, name):
        result = fn()
    demo.say(name, f"stage done in {time.monotonic() - t0:.1f}s")
    return result


def play_year(demo: Demo, seed: int, platform: ProvincialPlatform | None) -> None:
    """The statutory year, in the notice's order."""
    s = demo.summary
    _stage(demo, "feeds", lambda: registry.feeds(demo, seed))
    s["review_queue"] = _stage(demo, "review", lambda: review.work_queue(demo))
    mapped = _stage(demo, "child_map", lambda: registry.map_children(demo))
    demo.say("registry", f"{mapped} registry records matched to generated persons (by ID number)")
    s["hukou_corrections"] = dict(_stage(demo, "hukou", lambda: registry.hukou_cleanup(demo)))
    demo.say("hukou", f"police corrections: {s['hukou_corrections']}")
    s["student_registrations"] = dict(_stage(demo, "students", lambda: students.register_students(demo)))
    demo.say("students", f"schools registered 学籍: {s['student_registrations']}")
    s["census_filed"] = _stage(demo, "census", lambda: census.census(demo, seed))
    with ThreadPoolExecutor(1) as background:
        # The home visits (casework: rosters and visit batches, the heaviest stage after the 学籍) need
        # only the enrolled records: they run alongside the enrollment and case stages, and the rosters
        # are topped up at the end with the students who joined or left meanwhile.
        visits = background.submit(_stage, demo, "visits", lambda: casework.visits(demo))
        s["provincial_import"] = _stage(
            demo, "provincial", lambda: students.provincial_import(demo, platform)
        )
        demo.say("students", f"provincial import: {s['provincial_import']}")
        s["deferral_applications"] = dict(_stage(demo, "deferrals", lambda: verification.deferrals(demo)))
        s["placements_made"] = dict(_stage(demo, "placements", lambda: verification.placements(demo)))
        demo.say("enrollment", f"deferrals {s['deferral_applications']}  placements {s['placements_made']}")
        _stage(demo, "september", lambda: september(demo))
        _stage(demo, "casework", lambda: casework.play(demo))
        _stage(demo, "ladder", lambda: notify.ladder(demo))
        _stage(demo, "november", lambda: november(demo))
        visits.result()
    _stage(demo, "visits_top_up", lambda: casework.visits_top_up(demo))


def september(demo: Demo) -> None:
    expected = registry.count_children(demo, 6, 14, status="active")
    campaign = verification.open_campaign(demo, "september_verification", "2026-09-30", "2026-10-31")
    demo.state["september"] = campaign["id"]
    progress = verification.run_campaign(demo, campaign["id"], expected)
    tasks = sum(r["tasks_open"] for r in progress)
    demo.say("verify", f"September run: {sum(r['in_scope'] for r in progress)} in scope, {tasks} tasks")
    resolved = verification.resolve_tasks(demo, campaign["id"])
    demo.say("verify", f"school districts resolved: {dict(resolved)}")
    demo.summary["september_resolutions"] = dict(resolved)
    demo.state["september_result"] = verification.freeze(demo, campaign["id"])


def november(demo: Demo) -> None:
    expected = registry.count_children(demo, 6, 14, status="active")
    campaign = verification.open_campaign(demo, "november_comparison", "2026-11-20", "2026-11-30")
    demo.state["november"] = campaign["id"]
    verification.run_campaign(demo, campaign["id"], expected)
    resolved = verification.resolve_tasks(demo, campaign["id"])
    demo.summary["november_resolutions"] = dict(resolved)
    demo.state["november_result"] = verification.freeze(demo, campaign["id"])
    demo.say("november", f"comparison resolved {dict(resolved)}; result frozen")
    notify.bulletin(demo)
