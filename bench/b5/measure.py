"""B5's records: throughput (events/s, paired with raw JetStream) and paced p99 latency."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from harness import PeakMemory, Record, paired_medians_async, percentile, ratio

from b5.data import Side
from b5.path import PACE_PER_SECOND, baoxue_latency, baoxue_throughput
from b5.raw import raw_messages, raw_path
from baoxue.contracts.registry import ChildRegistered


@dataclass(frozen=True)
class Setup:
    publisher: Side
    consumer: Side
    nats_url: str
    backend: str
    repeats: int
    txn_size: int
    separate: bool = True  # the consumer in a process of its own (two services are two processes)
    handler: str = "set"  # "set": the set-based batch handler; "per-event": one INSERT per event

    @property
    def variant(self) -> dict[str, object]:
        return {
            "consumer": "library",
            "consumer_process": "separate" if self.separate else "same",
            "handler": self.handler,
        }

    @property
    def label(self) -> str:
        return "PostgreSQL" if self.backend == "postgresql" else "SQLite"


async def measure_throughput(setup: Setup, events: list[ChildRegistered]) -> Record:
    """Events/s of Baoxue's path and of raw JetStream, alternating, ``setup.repeats`` times each."""
    size = len(events)
    messages = raw_messages(list(events))
    worst = {"lost": 0, "duplicates": 0, "raw_lost": 0}
    peak = PeakMemory(include_children=False)

    async def baoxue_sample() -> float:
        with peak:
            outcome = await baoxue_throughput(
                setup.publisher,
                setup.consumer,
                setup.nats_url,
                events,
                setup.txn_size,
                separate=setup.separate,
                handler=setup.handler,
            )
        worst["lost"] = max(worst["lost"], outcome.lost)
        worst["duplicates"] = max(worst["duplicates"], outcome.duplicates)
        return size / outcome.seconds

    async def raw_sample() -> float:
        outcome = await raw_path(setup.nats_url, messages)
        worst["raw_lost"] = max(worst["raw_lost"], outcome.lost)
        return size / outcome.seconds

    ours, theirs = await paired_medians_async(baoxue_sample, raw_sample, setup.repeats)
    r = ratio(ours.median, theirs.median)
    return Record(
        benchmark=f"B5 events throughput ({setup.label})",
        size=size,
        baoxue=round(ours.median, 1),
        comparator=round(theirs.median, 1),
        unit="events/s",
        ratio=r,
        goal="≥ 0.2, 0 lost",
        met=r is not None and r >= 0.2 and worst["lost"] == 0,
        peak_memory_mb=peak.mb,
        median_of=setup.repeats,
        extra={
            "backend": setup.backend,
            **setup.variant,
            "lost": worst["lost"],
            "duplicates": worst["duplicates"],
            "comparator_lost": worst["raw_lost"],
            "transaction_size": setup.txn_size,
            "baoxue_samples": [round(x, 1) for x in ours.samples],
            "comparator_samples": [round(x, 1) for x in theirs.samples],
        },
    )


async def measure_latency(setup: Setup, events: list[ChildRegistered]) -> Record:
    """p99 commit→effect of Baoxue's path at PACE_PER_SECOND, beside raw publish→receipt at that pace;
    also the median over runs of each stage's p99 (relay, delivery, consumer)."""
    messages = raw_messages(list(events))
    p99s: list[float] = []
    p50s: list[float] = []
    raw_p99s: list[float] = []
    rates: list[float] = []
    stage_p99s: dict[str, list[float]] = {}
    lost = failed_writes = 0
    peak = PeakMemory(include_children=False)
    for _ in range(setup.repeats):
        with peak:
            outcome = await baoxue_latency(
                setup.publisher,
                setup.consumer,
                setup.nats_url,
                events,
                separate=setup.separate,
                handler=setup.handler,
            )
        raw = await raw_path(setup.nats_url, messages, pace=PACE_PER_SECOND)
        lost = max(lost, outcome.lost)
        failed_writes = max(failed_writes, outcome.failed_writes)
        p99s.append(percentile(outcome.latencies_ms, 99))
        p50s.append(percentile(outcome.latencies_ms, 50))
        raw_p99s.append(percentile(raw.latencies_ms, 99))
        rates.append(outcome.achieved_per_second or 0.0)
        for stage, values in outcome.stages_ms.items():
            if values:
                stage_p99s.setdefault(stage, []).append(percentile(values, 99))
    p99, raw_p99 = statistics.median(p99s), statistics.median(raw_p99s)
    achieved = statistics.median(rates)
    return Record(
        benchmark=f"B5 events p99 latency at 1,000/s ({setup.label})",
        size=len(events),
        baoxue=round(p99, 1),
        comparator=round(raw_p99, 1),
        unit="ms p99 commit→effect",
        ratio=ratio(p99, raw_p99),
        goal="< 100 ms at ≥ 950 writes/s, 0 lost, 0 failed writes",
        met=p99 < 100 and lost == 0 and failed_writes == 0 and achieved >= 0.95 * PACE_PER_SECOND,
        peak_memory_mb=peak.mb,
        median_of=setup.repeats,
        extra={
            "backend": setup.backend,
            **setup.variant,
            "p99_ms": round(p99, 1),
            "p50_ms": round(statistics.median(p50s), 1),
            "stage_p99_ms": {k: round(statistics.median(v), 1) for k, v in stage_p99s.items()},
            "lost": lost,
            "pace_per_second": PACE_PER_SECOND,
            "achieved_writes_per_second": round(achieved, 1),
            "failed_writes": failed_writes,
            "baoxue_samples": [round(x, 1) for x in p99s],
            "comparator_samples": [round(x, 1) for x in raw_p99s],
        },
    )
