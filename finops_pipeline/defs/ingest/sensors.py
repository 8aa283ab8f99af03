"""Ingest: the sensor that reloads the days a provider restated."""

import hashlib
import json
from datetime import datetime, time, timedelta, timezone

import duckdb
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetKey,
    DefaultSensorStatus,
    MetadataValue,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from finops_pipeline.defs.ingest.checks import EXPORT_FILES_CHECK
from finops_pipeline.defs.partitions import PARTITIONED_STAGES, billing_partitions
from finops_pipeline.errors import BillingDataError
from finops_pipeline.grain import DAILY, contiguous_ranges
from finops_pipeline.settings import Settings
from finops_pipeline.sources.staging import changed_days, day_fingerprints, discover

# Marks the runs that reload restated days, for people reading the run list.
RESTATEMENT_TAG = {"finops/reason": "restatement"}


def _midnight(day) -> float:
    return datetime.combine(day, time(), timezone.utc).timestamp()


def build_restatements_sensor(settings: Settings) -> SensorDefinition:
    partitions = billing_partitions(settings)

    @sensor(
        asset_selection=PARTITIONED_STAGES,
        minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.RUNNING,
        description="Reloads the days a provider restated: when FOCUS export files change, requests "
        "exactly the changed days, one single run per block of consecutive days. An export file that "
        "disappears is a data gap, not a restatement: it fails the export_files_present check (a warning) "
        "and launches nothing.",
    )
    def focus_restatements_sensor(context: SensorEvaluationContext):
        if "focus" not in settings.sources:
            return SkipReason("FINOPS_SOURCE does not include focus: no export files to watch")
        if not settings.focus_path:
            return SkipReason("FINOPS_SOURCE includes focus but FINOPS_FOCUS_PATH is not set")
        state = json.loads(context.cursor) if context.cursor else None
        known = (state or {}).get("files", {})
        files = {}
        with duckdb.connect() as con:
            for path in discover(settings.focus_path):
                stat = path.stat()
                stamp = [stat.st_size, stat.st_mtime_ns]
                entry = known.get(str(path))
                if entry and entry["stamp"] == stamp:
                    days = entry["days"]  # unchanged file: no need to read it again
                else:
                    try:
                        days = day_fingerprints(con, path)
                    except BillingDataError as exc:
                        # The load will fail on it with the full message; nothing to compare yet.
                        context.log.warning(str(exc))
                        continue
                files[str(path)] = {"stamp": stamp, "days": days}
        cursor = json.dumps({"files": files}, sort_keys=True)
        if state is None:
            # First look: record what is there; the initial load is the user's backfill.
            return SensorResult(skip_reason=SkipReason(f"Watching {len(files)} export file(s)"), cursor=cursor)
        events = []
        vanished = sorted(set(known) - set(files))
        if vanished:
            days = sorted({d for f in vanished for d in known[f]["days"]})
            context.log.warning(
                f"{len(vanished)} export file(s) disappeared ({', '.join(vanished[:5])}{' …' if len(vanished) > 5 else ''}), "
                f"which held {len(days)} day(s) of line items ({days[0]}..{days[-1]}): treated as a gap in the data, "
                "not a restatement; their loaded rows stay. Restore the files, or reload those days with "
                "allow_deletes if the provider really removed them."
            )
            events.append(AssetCheckEvaluation(
                asset_key=AssetKey("raw_billing"), check_name=EXPORT_FILES_CHECK, passed=False,
                severity=AssetCheckSeverity.WARN,
                metadata={"vanished_files": MetadataValue.json(vanished[:50]), "days": len(days),
                          "first_day": days[0], "last_day": days[-1]},
            ))
        valid = set(partitions.get_partition_keys())
        changed = changed_days({f: e["days"] for f, e in known.items()}, {f: e["days"] for f, e in files.items()})
        requests = []
        for first, last in contiguous_ranges(changed):
            days = DAILY.periods(first, last + timedelta(days=1))
            keys = [k for k in (partitions.get_partition_key_for_timestamp(_midnight(d)) for d in days) if k in valid]
            if not keys:
                continue
            requests.append(RunRequest(
                run_key=f"restatement-{keys[0]}-{keys[-1]}-{hashlib.sha256(cursor.encode()).hexdigest()[:12]}",
                tags={
                    "dagster/asset_partition_range_start": keys[0],
                    "dagster/asset_partition_range_end": keys[-1],
                    **RESTATEMENT_TAG,
                },
            ))
        return SensorResult(run_requests=requests, cursor=cursor, asset_events=events)

    return focus_restatements_sensor
