"""Progress: plain lines in a log (per finished job, and from a timer while a job runs), rich bars on a terminal."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pytest

from harness.progress import PlainProgress, make_progress
from tests.conftest import REPO
from tests.matrix_fixtures import add_profile, seed_corpus


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


class TTYBuffer(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines_of(buf: io.StringIO) -> list[str]:
    return buf.getvalue().splitlines()


def test_plain_line_counts_elapsed_and_eta_with_a_fake_clock() -> None:
    clock, buf = FakeClock(), io.StringIO()
    prog = PlainProgress(stream=buf, every_s=20, clock=clock)  # no context: no timer thread, beats by hand
    task = prog.add_task("features", total=4, info="")
    clock.now_s = 10
    prog.advance(task)
    assert lines_of(buf) == ["progress: features 1/4 (25%) elapsed 0:00:10 eta 0:00:30"]
    clock.now_s = 29.9
    prog.beat()  # 19.9 s since the last line: nothing yet
    assert len(lines_of(buf)) == 1
    clock.now_s = 30
    prog.beat()
    assert lines_of(buf)[-1] == "progress: features 1/4 (25%) elapsed 0:00:30 eta 0:01:30"
    clock.now_s = 40
    prog.update(task, advance=3, info="ok 4 failed 0")
    assert lines_of(buf)[-1] == "progress: features 4/4 (100%) elapsed 0:00:40 eta 0:00:00 | ok 4 failed 0"
    clock.now_s = 100
    prog.beat()  # a finished task is not repeated
    assert len(lines_of(buf)) == 3


def test_plain_eta_is_unknown_before_the_first_job_and_the_timer_reports_it() -> None:
    clock, buf = FakeClock(), io.StringIO()
    prog = PlainProgress(stream=buf, every_s=20, clock=clock)
    prog.add_task("small models", total=6, info="")
    clock.now_s = 21
    prog.beat()
    assert lines_of(buf) == ["progress: small models 0/6 (0%) elapsed 0:00:21 eta ?"]


def test_plain_advance_lines_are_rate_limited_but_the_last_one_always_shows() -> None:
    clock, buf = FakeClock(), io.StringIO()
    prog = PlainProgress(stream=buf, every_s=20, min_gap_s=1.0, clock=clock)
    task = prog.add_task("cells (smoke)", total=100, info="")
    for i in range(100):
        clock.now_s = 0.1 * (i + 1)  # ten jobs a second
        prog.advance(task)
    counts = [re.search(r" (\d+)/100 ", line).group(1) for line in lines_of(buf)]  # type: ignore[union-attr]
    assert counts == ["10", "20", "30", "40", "50", "60", "70", "80", "90", "100"]


def test_inner_bars_print_only_their_last_line_and_the_timers() -> None:
    clock, buf = FakeClock(), io.StringIO()
    with make_progress(plain=True, stream=buf, every_s=30, clock=clock) as outer:  # timer polls every 6 s
        stage = outer.add_task("features", total=2, info="")
        with make_progress() as inner:  # nested in the live plain display
            utts = inner.add_task("extract mfcc en", total=50, info="")
            for i in range(49):
                clock.now_s = 2.0 * (i + 1)
                inner.advance(utts)
                if i == 20:
                    outer._p.beat()  # the timer's call, at a known time
            per_advance = [line for line in lines_of(buf) if "extract" in line]
            assert per_advance == ["progress: extract mfcc en 21/50 (42%) elapsed 0:00:42 eta 0:00:58"]
            clock.now_s = 100
            inner.advance(utts)
        outer.advance(stage)
    assert lines_of(buf)[-2:] == ["progress: extract mfcc en 50/50 (100%) elapsed 0:01:40 eta 0:00:00",
                                  "progress: features 1/2 (50%) elapsed 0:01:40 eta 0:01:40"]
    assert "progress: features 0/2 (0%) elapsed 0:00:42 eta ?" in lines_of(buf)


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_plain_progress_over_a_process_pool_reports_while_a_long_job_runs() -> None:
    buf = io.StringIO()
    with make_progress(stream=buf, every_s=0.25) as prog, ProcessPoolExecutor(2) as pool:  # a StringIO: plain
        task = prog.add_task("jobs", total=3, info="")
        futures = [pool.submit(_sleep, s) for s in (0.05, 0.1, 1.5)]
        for fut in as_completed(futures):
            fut.result()
            prog.advance(task)
    lines = lines_of(buf)
    assert "\x1b" not in buf.getvalue()  # no terminal control codes in a log
    assert all(re.fullmatch(r"progress: jobs \d/3 \(\d+%\) elapsed \d:\d\d:\d\d eta (\d:\d\d:\d\d|\?)", ln)
               for ln in lines), lines
    counts = [int(re.search(r" (\d)/3 ", ln).group(1)) for ln in lines]  # type: ignore[union-attr]
    assert counts == sorted(counts) and counts[-1] == 3, counts
    # the 1.5 s job runs alone for over a second: the timer reports 2/3 several times meanwhile
    assert counts.count(2) >= 3, lines


def test_plain_every_s_above_thirty_is_refused() -> None:
    with pytest.raises(ValueError, match="every_s"):
        PlainProgress(stream=io.StringIO(), every_s=60)


def test_a_terminal_gets_rich_bars() -> None:
    buf = TTYBuffer()
    with make_progress(stream=buf, transient=False) as prog:
        task = prog.add_task("cells (smoke)", total=3, info="")
        for _ in range(3):
            prog.update(task, advance=1, info="ok")
    out = buf.getvalue()
    assert "\x1b[" in out and "━" in out  # rich's live display: control codes and a bar
    assert "cells (smoke)" in out and "3/3" in out
    assert "progress:" not in out


def test_bench_without_a_terminal_writes_plain_lines() -> None:
    """The CLI path: stderr is a pipe, so `make_progress()` with no arguments picks plain lines."""
    code = ("from harness.progress import make_progress\n"
            "with make_progress() as p:\n"
            "    t = p.add_task('stage', total=2, info='')\n"
            "    p.advance(t); p.advance(t)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stderr.splitlines()[-1].startswith("progress: stage 2/2 (100%) elapsed 0:00:0"), proc.stderr


@pytest.mark.slow
def test_bench_matrix_into_a_log_shows_every_stage(workspace_dir: Path, synth_corpora: Path, tmp_path: Path) -> None:
    """``bench matrix > log 2>&1``: stderr is a pipe; each stage writes plain lines, the last one done/total."""
    seed_corpus(tmp_path / "cache", synth_corpora)
    add_profile(workspace_dir, "logged", upstreams=["mfcc"], downstreams=["gender", "emotion"])
    env = {**os.environ, "BENCH_CACHE": str(tmp_path / "cache"), "BENCH_RESULTS": str(tmp_path / "results"),
           "BENCH_MODELS": str(tmp_path / "models"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "--root", str(workspace_dir), "matrix", "--profile",
                           "logged", "--workers", "1", "--no-leaderboard"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    log = proc.stdout
    assert "\x1b" not in log and "━" not in log, log[-3000:]
    for stage, total in (("features", 1), ("layer sweeps", 2), ("cells (logged)", 2)):
        assert re.search(rf"^progress: {re.escape(stage)} {total}/{total} \(100%\) elapsed ", log, re.M), log
    assert "ran 2" in log
