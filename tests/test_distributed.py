"""``vm.diagnose(..., backend="dask", scheduler=...)`` and ``verzuim diagnose --scheduler`` against a
scheduler and two workers started as separate processes with ``dask scheduler`` and ``dask worker``
(as on a cluster, here on one host), including a worker killed mid-run.

The processes run in their own sessions and are always stopped by the fixture's finalizer (their
whole process groups); as a second line, the scheduler ends itself when idle and the workers when
they lose the scheduler.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import verzuimmodel as vm
from verzuimmodel.cli import app

from test_evaluate_cli import RARE_DESIGN  # the rare-event design of the CLI tests

RARE = vm.evaluate.ParallelTrial(n_clusters=8, cluster_size=10, icc=0.05, effect=0.5, outcome="binary",
                                 control_risk=0.03)
"""A rare binary outcome: some ``gee_logit`` fits warn (separation), so ``n_warned`` is compared too."""

START_SECONDS = 90
"""How long the scheduler and the workers may take to start (a loaded two-core machine)."""


def _dask_command() -> str:
    """The ``dask`` command of this environment (beside its Python)."""
    beside = Path(sys.executable).with_name("dask")
    found = str(beside) if beside.exists() else shutil.which("dask")
    if found is None:
        pytest.fail("the `dask` command (dask.distributed, a dependency) is not installed")
    return found


class Cluster:
    """A ``dask scheduler`` and ``dask worker`` processes, each in its own process group."""

    def __init__(self, root: Path):
        self.root = root
        self.dask = _dask_command()
        self.procs: dict[str, subprocess.Popen] = {}
        self.address: str | None = None

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "wb")
        try:
            p = subprocess.Popen([self.dask, *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 cwd=self.root, start_new_session=True)
        finally:
            log.close()
        self.procs[name] = p
        return p

    def start_scheduler(self) -> str:
        info = self.root / "scheduler.json"
        p = self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", "0",
                                      "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(info),
                                      "--idle-timeout", "300s"])
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if p.poll() is not None:
                pytest.fail(f"dask scheduler exited with {p.returncode}: {self.log('scheduler')}")
            try:
                self.address = json.loads(info.read_text())["address"]
                return self.address
            except (OSError, ValueError, KeyError):
                time.sleep(0.2)
        pytest.fail(f"dask scheduler did not start in {START_SECONDS} s: {self.log('scheduler')}")

    def start_worker(self, name: str) -> subprocess.Popen:
        local = self.root / name
        local.mkdir()
        return self._start(name, ["worker", self.address, "--name", name, "--nworkers", "1", "--nthreads", "1",
                                  "--local-directory", str(local), "--dashboard-address", "127.0.0.1:0",
                                  "--death-timeout", "60s"])

    def log(self, name: str) -> str:
        text = (self.root / f"{name}.log").read_text(errors="replace")
        return text[-2000:]

    def kill(self, name: str) -> None:
        """SIGKILL to the process group of ``name`` (a worker: its nanny and its worker process)."""
        try:
            os.killpg(self.procs[name].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.procs[name].wait(30)

    def stop(self) -> None:
        """End every process this cluster started (also their children), workers first."""
        for name in sorted(self.procs, key=lambda n: n == "scheduler"):
            p = self.procs[name]
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 30)):
                try:
                    os.killpg(p.pid, sig)     # the whole group: a nanny and its worker process
                except ProcessLookupError:
                    break
                try:
                    p.wait(wait)
                except subprocess.TimeoutExpired:
                    continue
                try:                          # the leader has ended; children of the group may not have
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                break


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, request):
    from distributed import Client

    c = Cluster(tmp_path_factory.mktemp("dask"))
    request.addfinalizer(c.stop)      # registered before anything starts: whatever fails, nothing is left behind
    c.start_scheduler()
    for name in ("worker-a", "worker-b"):
        c.start_worker(name)
    with Client(c.address, timeout=START_SECONDS) as client:
        try:
            client.wait_for_workers(2, timeout=START_SECONDS)
        except TimeoutError:
            pytest.fail(f"the dask workers did not start: {c.log('worker-a')} {c.log('worker-b')}")
        for module in ("verzuimmodel", "statsmodels.api"):   # imported on every worker before the runs
            client.run(importlib.import_module, module)
    return c


@pytest.fixture
def watchdog(cluster):
    """Stop the cluster if a test hangs (a run waiting for workers that are gone), so it fails instead."""
    timer = threading.Timer(240, cluster.stop)
    timer.start()
    yield
    timer.cancel()


def test_diagnose_with_separate_scheduler_and_workers_and_one_killed_mid_run(cluster, watchdog):
    from distributed import Client

    design = vm.Design(RARE, ["gee_logit"])
    serial = vm.diagnose(design, n_sims=240, seed=5, progress=False)
    assert serial.tidy()["n_warned"].iloc[0] > 0
    chunks_after_kill = []
    killed: dict = {}
    with Client(cluster.address) as client:
        client.wait_for_workers(2, timeout=START_SECONDS)
        pids = client.run(os.getpid)              # worker address -> pid of its worker process
        groups = {addr: os.getpgid(pid) for addr, pid in pids.items()}
        names = {p.pid: name for name, p in cluster.procs.items()}
        assert sorted(names[g] for g in groups.values()) == ["worker-a", "worker-b"]

        def kill_a_busy_worker(frame):
            if killed:
                chunks_after_kill.append(frame["replicate"].tolist())
                return
            busy = {addr: keys for addr, keys in client.processing().items() if keys}
            if not busy:                          # between tasks: try at the next chunk
                return
            addr = sorted(busy)[0]
            killed.update(address=addr, name=names[groups[addr]], running=list(busy[addr]))
            cluster.kill(killed["name"])          # SIGKILL, nanny and worker: as when a host goes down

        run = vm.diagnose(design, n_sims=240, seed=5, backend="dask", scheduler=cluster.address, chunk_size=20,
                          progress=False, on_chunk=kill_a_busy_worker)
        assert killed, "no worker was found running a replicate"
        assert killed["running"] and chunks_after_kill             # it was running a chunk; the run went on
        assert cluster.procs[killed["name"]].returncode == -signal.SIGKILL
        deadline = time.monotonic() + 30
        while killed["address"] in client.nthreads() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(client.nthreads()) == [a for a in groups if a != killed["address"]]
    # the chunks the killed worker was running were run again elsewhere: every replicate, the same numbers
    pd.testing.assert_frame_equal(run.replicates, serial.replicates)
    pd.testing.assert_frame_equal(run.tidy(), serial.tidy())
    pd.testing.assert_frame_equal(run.warned_by_type(), serial.warned_by_type())


def test_cli_diagnose_with_a_scheduler_address(cluster, watchdog, tmp_path):
    path = tmp_path / "rare.toml"
    path.write_text(RARE_DESIGN)
    runner = CliRunner()
    args = ["diagnose", str(path), "--sims", "30", "--seed", "3", "--no-progress"]
    remote = runner.invoke(app, [*args, "--backend", "dask", "--scheduler", cluster.address,
                                 "--out", str(tmp_path / "remote")])
    assert remote.exit_code == 0, remote.output
    local = runner.invoke(app, [*args, "--out", str(tmp_path / "serial")])
    assert local.exit_code == 0, local.output
    for name in ("diagnosis.csv", "warnings.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "remote" / name), pd.read_csv(tmp_path / "serial" / name))
    assert pd.read_csv(tmp_path / "remote" / "diagnosis.csv")["n_warned"].iloc[0] > 0
    assert "note: gee_logit:" in remote.stdout


def test_cli_unreachable_scheduler_is_one_error_line(tmp_path):
    import dask

    path = tmp_path / "rare.toml"
    path.write_text(RARE_DESIGN)
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        result = CliRunner().invoke(app, ["diagnose", str(path), "--sims", "2", "--backend", "dask", "--scheduler",
                                          "tcp://127.0.0.1:9", "--out", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "127.0.0.1:9" in lines[0], result.stderr
