"""Export files as deliveries: which files count for each billing period, so that nothing is summed
twice.

Clouds deliver a billing period again and again (AWS Data Exports and Azure exports rewrite the
month to date every day, and may keep every version), and a folder can hold the same export twice
(``.csv`` beside ``.csv.gz``). Per billing period:

* Where a manifest lists the files of each delivery (AWS Data Exports ``*-Manifest.json``, Azure
  Cost Management ``manifest.json``), the newest delivery whose files are all present counts; the
  files of earlier deliveries are superseded, and files of the export that no manifest of the
  period lists are left out (``unlisted``). Such a period is *complete*: a day missing from it was
  really removed by the provider.
* Without a manifest, files are compared by their rows' values (a fingerprint independent of file
  name, compression, format and row order): a file with the same rows as a newer one is a
  duplicate; a file that shares at least half of its line items with a newer one is an earlier
  version of it (superseded). Parts of one delivery share no line items, so all of them count.

This module decides; ``staging`` reads the files and the warehouse keeps the decisions
(``billing_deliveries``).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

SKETCH_SIZE = 64  # bottom-k row hashes kept per file and period: enough to tell parts from versions
VERSION_OVERLAP = 0.5  # share of the smaller file's line items two versions of a period have in common

# How fingerprints are made, the prefix of each: a ledger entry made another way is computed again
# (v2: a file's own columns only, not ``key=value`` folder names).
FINGERPRINT_VERSION = "v2"

COUNTED, DUPLICATE, SUPERSEDED, UNLISTED = "counted", "duplicate", "superseded", "unlisted"


@dataclass(frozen=True)
class FilePeriod:
    """One export file's line items in one billing period, as fingerprinted."""

    file: Path
    period: date  # first day of the billing month
    line_items: int
    fingerprint: str  # version, count and sum of the rows' hashes: equal for equal rows in any order
    sketch: tuple[int, ...]  # the SKETCH_SIZE smallest row hashes
    modified: datetime
    size: int


@dataclass(frozen=True)
class Manifest:
    """One delivery of one billing period, as its manifest lists it."""

    path: Path
    execution_id: str
    period: date | None
    data_files: tuple[str, ...]  # as listed: S3 URIs, blob names or paths

    @property
    def root(self) -> Path:
        """The export's folder: the one holding ``metadata/`` (AWS), else the manifest's own."""
        for parent in self.path.parents:
            if parent.name == "metadata":
                return parent.parent
        return self.path.parent


@dataclass(frozen=True)
class Decision:
    file: Path
    period: date
    status: str
    reason: str | None = None
    manifest: Manifest | None = None


@dataclass
class Plan:
    decisions: list[Decision] = field(default_factory=list)
    complete_periods: set[date] = field(default_factory=set)  # a manifest vouches for the whole period
    warnings: list[str] = field(default_factory=list)

    def excluded(self) -> dict[Path, set[date]]:
        """Per file, the billing periods whose rows must not be loaded from it."""
        out: dict[Path, set[date]] = defaultdict(set)
        for d in self.decisions:
            if d.status != COUNTED:
                out[d.file].add(d.period)
        return dict(out)


def is_manifest(path: Path) -> bool:
    return path.name.lower().endswith("manifest.json")


_PERIOD_IN_PATH = re.compile(r"BILLING_PERIOD=(\d{4})-(\d{2})", re.IGNORECASE)
_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")


def _month(text: str | None) -> date | None:
    match = _DATE.search(text or "")
    return date(int(match[1]), int(match[2]), 1) if match else None


def read_manifest(path: Path) -> Manifest:
    """An AWS Data Exports or Azure Cost Management export manifest. Raises ``ValueError``
    naming the file when it is neither."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable manifest ({exc})") from None
    if isinstance(doc, dict) and "dataFiles" in doc:  # AWS Data Exports (CUR 2.0, FOCUS)
        period = _month((doc.get("billingPeriod") or {}).get("start"))
        if period is None and (match := _PERIOD_IN_PATH.search(str(path))):
            period = date(int(match[1]), int(match[2]), 1)
        return Manifest(path, str(doc.get("executionId") or path.parent.name), period, tuple(doc["dataFiles"] or ()))
    if isinstance(doc, dict) and "blobs" in doc:  # Azure Cost Management exports
        run = doc.get("runInfo") or {}
        return Manifest(path, str(run.get("runId") or path.parent.name), _month(run.get("startDate")),
                        tuple(b["blobName"] for b in doc["blobs"] or ()))
    raise ValueError(f"{path}: neither an AWS Data Exports nor an Azure export manifest (no dataFiles or blobs)")


def _local(listed: str, files: list[Path], root: Path) -> Path | None:
    """The local copy of a file a manifest lists (an S3 URI or blob name): the file under the
    export's folder whose path ends with the most of the listed path's components, and at least
    with its folder too (parts of two executions share their file names)."""
    parts = [p for p in re.sub(r"^[a-z0-9]+://[^/]+/", "", listed).split("/") if p]
    best, best_len = None, min(len(parts), 2) - 1
    for f in files:
        if f.name != parts[-1] or root not in f.parents:
            continue
        common = 0
        for a, b in zip(reversed(f.parts), reversed(parts)):
            if a != b:
                break
            common += 1
        if common > best_len:
            best, best_len = f, common
    return best


def _overlap(a: FilePeriod, b: FilePeriod) -> float:
    """Estimated share of the smaller file's line items that the other holds too (bottom-k
    sketches: exact when both files have at most SKETCH_SIZE rows)."""
    union = sorted(set(a.sketch) | set(b.sketch))[:SKETCH_SIZE]
    if not union:
        return 0.0
    shared = sum(1 for h in union if h in a.sketch and h in b.sketch)
    jaccard = shared / len(union)
    both = jaccard * (a.line_items + b.line_items) / (1 + jaccard)
    return both / max(1, min(a.line_items, b.line_items))


def plan(parts: list[FilePeriod], manifests: list[Manifest]) -> Plan:
    """Decide, per file and billing period, whether its rows count."""
    result = Plan()
    by_period: dict[date, list[FilePeriod]] = defaultdict(list)
    for part in parts:
        by_period[part.period].append(part)
    manifests_by_period: dict[date, list[Manifest]] = defaultdict(list)
    for m in manifests:
        if m.period is not None:
            manifests_by_period[m.period].append(m)
    files = sorted({p.file for p in parts})
    for period, period_parts in sorted(by_period.items()):
        chosen = _chosen_manifest(period, manifests_by_period.get(period, []), files, result)
        if chosen is not None:
            _decide_by_manifest(period, period_parts, manifests_by_period[period], chosen, files, result)
        else:
            _decide_by_content(period, period_parts, result)
    return result


def _chosen_manifest(period: date, manifests: list[Manifest], files: list[Path], result: Plan) -> Manifest | None:
    """The newest delivery of ``period`` whose listed files are all here."""
    newest_first = sorted(manifests, key=lambda m: (m.path.stat().st_mtime_ns, m.execution_id), reverse=True)
    for m in newest_first:
        missing = [f for f in m.data_files if _local(f, files, m.root) is None]
        if not missing:
            return m
        result.warnings.append(
            f"billing period {period:%Y-%m}: delivery {m.execution_id} ({m.path}) is incomplete, {len(missing)} of its "
            f"{len(m.data_files)} file(s) are missing (first: {missing[0]}); using an earlier complete delivery if any"
        )
    return None


def _decide_by_manifest(period: date, parts: list[FilePeriod], manifests: list[Manifest], chosen: Manifest,
                        files: list[Path], result: Plan) -> None:
    result.complete_periods.add(period)
    listed = {_local(f, files, m.root): m for m in manifests for f in m.data_files}
    counted = {_local(f, files, chosen.root) for f in chosen.data_files}
    for part in parts:
        if part.file in counted:
            result.decisions.append(Decision(part.file, period, COUNTED, manifest=chosen))
        elif part.file in listed:
            old = listed[part.file]
            result.decisions.append(Decision(
                part.file, period, SUPERSEDED,
                f"delivery {old.execution_id} of {period:%Y-%m} is superseded by delivery {chosen.execution_id} ({chosen.path})",
                manifest=old))
        else:
            result.decisions.append(Decision(
                part.file, period, UNLISTED, f"no manifest of billing period {period:%Y-%m} lists it ({chosen.path} is the latest)"))


def _decide_by_content(period: date, parts: list[FilePeriod], result: Plan) -> None:
    kept: list[FilePeriod] = []
    seen: list[FilePeriod] = []
    # Newest first: of two versions, the newer counts.
    for part in sorted(parts, key=lambda p: (p.modified, str(p.file)), reverse=True):
        same = next((k for k in seen if k.fingerprint == part.fingerprint), None)
        seen.append(part)
        if same is not None:
            result.decisions.append(Decision(part.file, period, DUPLICATE, f"same line items as {same.file}"))
            continue
        newer = next((k for k in kept if _overlap(k, part) >= VERSION_OVERLAP), None)
        if newer is not None:
            result.decisions.append(Decision(
                part.file, period, SUPERSEDED,
                f"an earlier version of billing period {period:%Y-%m}: shares most line items with the newer {newer.file}"))
            continue
        kept.append(part)
        result.decisions.append(Decision(part.file, period, COUNTED))
