"""Fault and bad-input probes: every test marked ``fault_probe`` (a fault an operator meets: a bad
or vanished export, a duplicated delivery, a killed run, a blocked run, a bad setting), run through
pytest, printed as a table: probe, expected, observed, pass. Exit status 1 if any probe fails.

    python benchmarks/fault_probes.py [-k EXPR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# What an operator should see, per probe (the test's name without test_).
EXPECTED = {
    "a_header_only_export_never_wipes_loaded_days_unless_allowed":
        "run fails naming days, line items and file; nothing deleted; allow_deletes empties them and tags the run",
    "a_vanished_export_is_a_data_gap_not_a_restatement":
        "sensor launches nothing, warns via export_files_present; a reload of its days fails, nothing deleted",
    "the_same_export_delivered_twice_counts_once": "counted once; .csv.gz and copy recorded as duplicates",
    "two_versions_of_a_billing_period_without_a_manifest_count_once": "newer version counts, older superseded",
    "the_latest_manifest_delivery_counts_and_may_remove_a_day":
        "newest complete execution counts, older superseded, unlisted file left out, a removed day removed",
    "wide_quantities_load_exactly_and_a_cost_out_of_range_says_so":
        "5e13 quantity loads exactly; a $12 billion cost is 'out of range', not 'not a number'",
    "one_bad_month_is_rejected_and_named_while_the_other_eleven_load": "11 months load, the bad one named",
    "a_bad_quantity_is_loaded_as_null_and_the_check_warns": "cost loads, quantity NULL, fields_parse warns",
    "a_truncated_csv_says_where_parsing_stopped": "'truncated or malformed CSV' with the line, not 'missing columns'",
    "a_killed_run_is_recovered_by_the_same_command_run_again":
        "no dbt or Prophet child left; the same command recovers, completes, tables equal a clean run",
    "a_run_waiting_for_the_pool_sleeps_says_who_holds_it_and_stops_on_sigterm":
        "INFO naming the holding run, under a core of CPU, stops on SIGTERM",
    "the_cli_reports_a_configuration_error_in_one_line_and_fails": "exit ≠ 0, one line naming the variable",
    "every_bad_value_names_its_variable_and_what_it_accepts": "error names the variable and allowed values",
    "a_focus_path_that_matches_nothing_fails_at_load_showing_the_path": "fails at load, path shown",
    "negative_usage_is_loaded_scored_and_reported": "loaded, scored, listed in metadata, check warns",
    "a_bad_row_fails_the_partition_whole_and_is_quarantined": "month rejected, rows quarantined, old rows kept",
    "mixed_currency_in_one_billing_account_is_an_error_not_a_sum": "rejected, naming the currency rule",
    "unreadable_files_are_named": "the file named",
    "a_restated_billing_period_reloads_exactly_the_changed_days": "exactly the changed days requested once",
    "several_sources_load_side_by_side_and_one_failing_keeps_the_others": "others written, failing source named",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", default=None, help="pytest -k expression, to run some probes only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "probes.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-m", "fault_probe", "-p", "no:cacheprovider",
                   f"--junitxml={report}", *(["-k", args.k] if args.k else [])]
        subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        cases = ET.parse(report).getroot().iter("testcase")
        rows = []
        for case in cases:
            name = case.get("name", "").removeprefix("test_").split("[")[0]
            param = case.get("name", "").partition("[")[2].rstrip("]")
            problem = next((c for c in case if c.tag in ("failure", "error")), None)
            skipped = next((c for c in case if c.tag == "skipped"), None)
            observed = ("skipped: " + (skipped.get("message") or "")) if skipped is not None else \
                ("as expected" if problem is None else (problem.get("message") or "failed").splitlines()[0][:120])
            rows.append((name + (f" [{param}]" if param else ""), EXPECTED.get(name, "?"), observed,
                         problem is None and skipped is None, float(case.get("time", 0))))
    print(f"| probe | expected | observed | pass | s |\n|---|---|---|---|---:|")
    for probe, expected, observed, ok, seconds in rows:
        print(f"| {probe.replace('_', ' ')} | {expected} | {observed} | {'yes' if ok else 'NO'} | {seconds:.0f} |")
    passed = sum(ok for *_, ok, _ in rows)
    print(f"\n{passed} of {len(rows)} probes pass")
    return 0 if rows and passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
