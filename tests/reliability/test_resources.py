"""Resource bounds: the peak memory of the worker while it takes in a 30 MB message, measured and reported.

The worker runs as `postmottak run --once` against a real Dovecot; its own peak RSS comes from VmHWM at exit,
and the whole process tree (worker plus form-reader children) is sampled from /proc while it runs. The figure is
printed for the README; the only assert is a generous bound. (PDF parsing in a child process with time and memory
limits is intake/form_worker.py; the PDF and DOCX bombs of test_hostile_mail.py run through it.)
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from tests import mailfactory as mf
from tests.servers.dovecot import DovecotServer

from .helpers import REPO, group_members, worker_env, write_config
from .hostile import big_attachment

MEMORY_BOUND_MB = 300  # the README's bound, with a 41 MB message
# VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across exec, so it would report the (large) pytest
# process that started the worker; VmHWM belongs to the worker's own address space.
PEAK_PROBE = (
    "import atexit, runpy, sys\n"
    "def _hwm():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            return int(line.split()[1])\n"
    "atexit.register(lambda: sys.stderr.write(f'PEAK_RSS_KB {_hwm()}\\n'))\n"
    "sys.argv = ['postmottak', *sys.argv[1:]]\n"
    "runpy.run_module('postmottak', run_name='__main__')\n"
)


def _tree_rss_kb(pgid: int) -> int:
    total = 0
    for pid in group_members(pgid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def measured_run(config: Path, env: dict[str, str]) -> tuple[int, int, str]:
    """(worker peak RSS in MB, peak RSS of its whole process tree in MB, stderr) of one `run --once`."""
    process = subprocess.Popen(
        [sys.executable, "-c", PEAK_PROBE, "--config", str(config), "run", "--once"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    peak_tree = [0]

    def sample() -> None:
        while process.poll() is None:
            peak_tree[0] = max(peak_tree[0], _tree_rss_kb(process.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate(timeout=300)
    sampler.join()
    assert process.returncode == 0, stderr[-3000:]
    peak_kb = int(stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    return peak_kb // 1024, peak_tree[0] // 1024, stderr


def test_peak_memory_while_a_30_mb_message_is_processed(
    dovecot_server: DovecotServer, tmp_path: Path, db_url: str, figures
) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, db_url=db_url, imap=dovecot_server)
    env = worker_env(tmp_path, dovecot_server.password)
    dovecot_server.append(mf.response_mail(org="NITO"), datetime(2022, 9, 20, 10, 0, tzinfo=mf.OSLO))
    baseline, baseline_tree, _ = measured_run(config, env)

    big = big_attachment(30)
    dovecot_server.append(big, datetime(2022, 9, 20, 11, 0, tzinfo=mf.OSLO))
    peak, peak_tree, stderr = measured_run(config, env)
    assert "fetched 1" in stderr and "registered 1" in stderr

    print(
        f"worker peak RSS: {peak} MB with a {len(big) >> 20} MB message (baseline {baseline} MB); "
        f"process tree {peak_tree} MB (baseline {baseline_tree} MB)"
    )
    figures(
        backend=db_url.split(":")[0],
        message_mb=len(big) >> 20,
        worker_peak_mb=peak,
        baseline_peak_mb=baseline,
        tree_peak_mb=peak_tree,
        tree_baseline_mb=baseline_tree,
    )
    assert peak < MEMORY_BOUND_MB
