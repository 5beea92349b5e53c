"""The results as a Markdown table (printed, and written into benchmarks/README.md with --write)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

START = "<!-- results:start (written by scripts/benchmark --write) -->"
END = "<!-- results:end -->"

TARGET_FLOOR_RATIO = 1.5
TARGET_PDFIUM_RATIO = 10.0
TARGET_SPEEDUP = 1.7
TARGET_IDLE_RATIO = 2.0
TARGET_RSS_MB = 300.0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _worker_cpu_s(result: dict[str, Any]) -> float:
    """The worker's CPU during the cycle (runs before it was recorded give the whole process, start-up included)."""
    return float(result.get("cycle_cpu_s", result["main_cpu_s"]))


def _others_on_core(run: dict[str, Any], n: int) -> str:
    if "dovecot_cpu_s" not in run:
        return ""
    return (
        f", {_ms(run['dovecot_cpu_s'] / n)} ms/mail in Dovecot and {_ms(run['runner_cpu_s'] / n)} ms/mail in the "
        "benchmark's own process (the SMTP sink's thread on the core, and the RSS/CPU sampler, kept on the other core)"
    )


def render_markdown(r: dict[str, Any]) -> str:
    n = r["mails"]
    runs = r["backlog"]
    one, two_one, two_two = runs[0], runs[1], runs[2]
    floors = r["floors"]
    lines = [
        f"Measured {r['date']} on {r['machine']['cpu']}, {r['machine']['memory']} RAM, {r['machine']['os']}, "
        f"Python {r['machine']['python']}; commit {r['git']}{' with uncommitted changes' if r.get('git_dirty') else ''}; "
        "SQLite database and document store on local disk.",
        "",
        f"Load average (1, 5, 15 min) at the start: {r['machine'].get('load_average_at_start', '?')}; at the end: "
        f"{r.get('load_average_at_end', '?')} (the machine is shared; wall times grow with it, CPU times less).",
        "",
        f"Command: `{r['command']}` (whole run {r['total_s'] / 60:.1f} min; appending the {n} mails, "
        f"{r['backlog_mb']:.0f} MB, to Dovecot took {r['append_s']:.0f} s).",
        "",
        f"### 1. Backlog: {n} responses with a 2-3 page form PDF, `run --once`, receipts over SMTP",
        "",
        "Per-mail milliseconds in the worker, by stage, summed over its threads: mails are prepared (store, MIME) "
        "in two threads while the main thread registers them, and receipts are sent by a thread of their own "
        "alongside the cycle (SMTP = time in that thread's passes), so the stages overlap and do not add up to "
        "ms/mail. PDF wait = time the main thread waited for the form readers; PDF parse = CPU in the form reader "
        "processes; worker CPU = CPU of the worker process during the cycle (start-up not counted).",
        "",
        "| run | mails/s | ms/mail | fetch | MIME | store | PDF wait | database | SMTP | PDF parse (CPU) "
        "| worker CPU | peak RSS worker / reader / all |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        res = run["result"]
        t = res["timings"]
        cycle = res["cycle_s"]
        lines.append(
            f"| {run['label']} | {n / cycle:.1f} | {_ms(cycle / n)} | {_ms(t.get('fetch', 0) / n)} "
            f"| {_ms(t.get('mime', 0) / n)} | {_ms(t.get('store', 0) / n)} | {_ms(t.get('pdf_wait', 0) / n)} "
            f"| {_ms(t.get('db', 0) / n)} | {_ms(res['smtp_s'] / n)} "
            f"| {_ms(run['readers_cpu_s'] / n)} | {_ms(_worker_cpu_s(res) / n)} "
            f"| {run['main_peak_rss_mb']:.0f} / {run['readers_peak_rss_mb']:.0f} / {run['tree_peak_rss_mb']:.0f} MB |"
        )
    per_mail_one_core = one["result"]["cycle_s"] / n
    cpu_one_core = (_worker_cpu_s(one["result"]) + one["readers_cpu_s"]) / n
    speedup = (n / two_two["result"]["cycle_s"]) / (n / one["result"]["cycle_s"])
    speedup_workers = (n / two_two["result"]["cycle_s"]) / (n / two_one["result"]["cycle_s"])
    lines += [
        "",
        f"Process start-up (settings, migrations, forkserver) is outside the cycle: "
        f"{one['result']['startup_s']:.1f} s per `run --once`.",
        "",
        "### 2. Floors over the same PDFs (one core; median of 3 per distinct PDF, weighted by use)",
        "",
        f"Pipeline on 1 core: {_ms(per_mail_one_core)} ms/mail wall (everything: Dovecot, the SMTP sink, the worker "
        f"and its form reader share the core); of it {_ms(cpu_one_core)} ms/mail CPU in the worker and its form "
        f"reader{_others_on_core(one, n)}.",
        "",
        "| floor | ms/mail | pipeline ms/mail on 1 core / floor | worker + reader CPU per mail / floor |",
        "|---|---:|---:|---:|",
        f"| pdfplumber `extract_words`, every page | {_ms(floors['pdfplumber_s'])} "
        f"| {per_mail_one_core / floors['pdfplumber_s']:.2f} | {cpu_one_core / floors['pdfplumber_s']:.2f} |",
        f"| pypdfium2 text (`get_text_range`), every page | {_ms(floors['pdfium_s'])} "
        f"| {per_mail_one_core / floors['pdfium_s']:.2f} | {cpu_one_core / floors['pdfium_s']:.2f} |",
    ]
    idle = r["idle"]
    small, large = [k for k in idle if k.isdigit()]
    lines += [
        "",
        f"### 3. Idle poll (a full `run` cycle with nothing new; median of {len(idle[small]['all_s'])})",
        "",
        "| folder | idle poll |",
        "|---|---:|",
        f"| {int(small):,} processed mails | {_ms(idle[small]['median_s'])} ms |",
        f"| {int(large):,} processed mails | {_ms(idle[large]['median_s'])} ms |",
        f"| ratio | {idle['ratio']:.2f} |",
    ]
    big = r["big"]
    lines += [
        "",
        "### 4. Memory (peak RSS; the worker process and its children measured separately)",
        "",
        "| case | worker process | largest form reader | forkserver | whole tree at once |",
        "|---|---:|---:|---:|---:|",
        f"| backlog, 2 cores, 2 readers | {two_two['main_peak_rss_mb']:.0f} MB | "
        f"{two_two['readers_peak_rss_mb']:.0f} MB | {two_two['helpers_peak_rss_mb']:.0f} MB | "
        f"{two_two['tree_peak_rss_mb']:.0f} MB |",
        f"| one {big['result']['raw_mb']:.1f} MB mail | {big['main_peak_rss_mb']:.0f} MB | "
        f"{big['readers_peak_rss_mb']:.0f} MB | {big['helpers_peak_rss_mb']:.0f} MB | {big['tree_peak_rss_mb']:.0f} MB |",
        "",
        "### 5. Cores",
        "",
        f"Backlog throughput 2 cores + 2 readers / 1 core + 1 reader: **{speedup:.2f}x**; "
        f"2 readers / 1 reader, both on 2 cores: {speedup_workers:.2f}x.",
    ]
    imp = r["import"]
    lines += [
        "",
        f"### 6. Backfill: `postmottak import` of {imp['mails']} .eml files in a pseudo-terminal",
        "",
        f"{imp['mails_per_s']:.1f} mails/s including start-up; exit code {imp['exit_code']}; the bar was redrawn "
        f"{imp['redraws_mid_import']} times before the end, {imp['with_rate']} of them with a rate and "
        f"{imp['with_eta']} with an ETA. A frame from the middle:",
        "",
        "```",
        imp["sample_line"],
        imp["finished_line"],
        re.sub(r"folder://\S*/export", "folder://…/export", imp["summary"]),  # the run's own temp directory
        "```",
    ]
    fleet = r.get("fleet")
    if fleet:
        one_w, two_w = fleet["one_worker"], fleet["two_workers"]
        lines += [
            "",
            f"### 7. Several workers: two mailboxes of {one_w['mails'] // one_w['mailboxes']} mails each on PostgreSQL "
            "(benchmarks/fleet.py, leases, receipts off)",
            "",
            "| run | mails | seconds | mails/s | peak RSS per worker |",
            "|---|---:|---:|---:|---|",
        ]
        for label, run in (("1 worker, 2 mailboxes", one_w), ("2 workers, 2 mailboxes", two_w)):
            rss = " / ".join(f"{mb} MB" for mb in run["peak_rss_mb"])
            lines.append(f"| {label} | {run['mails']} | {run['seconds']:.1f} | {run['mails_per_s']:.2f} | {rss} |")
        lines += [
            "",
            f"Throughput two workers / one: **{fleet['throughput_ratio']:.2f}x**. Takeover after a SIGKILL of a "
            f"holder: **{two_w.get('takeover_s')} s** with a {fleet['lease_s']} s lease renewed every "
            f"{fleet['renew_s']} s.",
        ]
    worker_peak = max(two_two["main_peak_rss_mb"], big["main_peak_rss_mb"])
    reader_peak = max(two_two["readers_peak_rss_mb"], big["readers_peak_rss_mb"])
    ratio = per_mail_one_core / floors["pdfplumber_s"]
    lines += [
        "",
        "### Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
        f"| per-mail cost on one core <= {TARGET_FLOOR_RATIO} x pdfplumber floor | {ratio:.2f} x "
        f"({_ms(per_mail_one_core)} vs {_ms(floors['pdfplumber_s'])} ms) | {_met(ratio <= TARGET_FLOOR_RATIO)} |",
        f"| per-mail cost on one core <= {TARGET_PDFIUM_RATIO:g} x pypdfium2 floor | "
        f"{per_mail_one_core / floors['pdfium_s']:.1f} x ({_ms(per_mail_one_core)} vs {_ms(floors['pdfium_s'])} ms) "
        f"| {_met(per_mail_one_core / floors['pdfium_s'] <= TARGET_PDFIUM_RATIO)} |",
        f"| speed-up 1 -> 2 cores >= {TARGET_SPEEDUP} x | {speedup:.2f} x | {_met(speedup >= TARGET_SPEEDUP)} |",
        f"| idle-poll ratio {int(large):,} vs {int(small):,} < {TARGET_IDLE_RATIO:g} | {idle['ratio']:.2f} "
        f"| {_met(idle['ratio'] < TARGET_IDLE_RATIO)} |",
        f"| peak RSS < {TARGET_RSS_MB:.0f} MB incl. the {big['result']['raw_mb']:.0f} MB mail (worker process; "
        f"each form reader) | {worker_peak:.0f} MB; {reader_peak:.0f} MB | "
        f"{_met(worker_peak < TARGET_RSS_MB and reader_peak < TARGET_RSS_MB)} |",
        f"| import shows a progress bar with rate and ETA | {imp['with_rate']} / {imp['with_eta']} frames "
        f"| {_met(imp['ok'])} |",
    ]
    return "\n".join(lines) + "\n"


def write_readme(path: Path, table: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip() + f"\n\n{START}\n{END}\n"
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    path.write_text(pattern.sub(lambda _m: f"{START}\n{table}{END}", text), encoding="utf-8")
