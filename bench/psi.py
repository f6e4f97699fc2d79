"""PSI end to end (party A, party B and the engine role on this machine) versus OpenMined PSI.

    python -m bench.psi                 # in-process, 100k x 100k, 3 runs each, medians
    python -m bench.psi --quick         # 10k x 10k
    python -m bench.psi --size 1000000 --repeat 1
    python -m bench.psi --cli           # the real `cleanroom psi` commands, 50k and 100k
    python -m bench.psi --cli --size 1000000 --repeat 1 --no-openmined

cleanroom: both parties normalize, hash to curve25519 (RFC 9380) and blind their emails
(`psi_blind_file`), re-blind each other's round-1 file (`psi_reblind_file`), and the engine
finishes both token files (`psi_finish_file`); the intersection is then read with DuckDB.
OpenMined PSI 2.0 (P-256, C++): server setup message (GCS, fpr 1e-9), client request, server
response, client intersection. Both get the same normalized e-mail sets; the intersections
must be equal. Throughput = (|A| + |B|) / seconds. OpenMined is optional
(`pip install openmined-psi`, not a project dependency).

In-process mode runs every role in this process (worker processes on all cores) and
OpenMined in one process, as its Python API runs.

`--cli` runs each step as its own `cleanroom psi ...` process, as users run it: the two
parties' steps side by side, each process pinned to one core (CPU affinity set in the child),
blind || blind, then reblind || reblind, then the engine's two finish steps side by side.
OpenMined runs under the same conditions: its client and server as separate processes, one
core each, messages passed as files (setup || request, then response, then intersection).
It prints each step's wall time per value next to its primitives' cost per value measured
in the same run on one core (hash_to_curve + X25519 for blind, X25519 for reblind, plus the
on-curve check reblind makes), the start-up of one `cleanroom psi` process, and the load
average at start and end (other jobs share these cores, so compare within one run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from nacl.bindings import crypto_scalarmult

import protocols
from protocols import hazmat

COLLAB = "0b7c3f4e-5a61-4d2b-9c8e-7f1a2b3c4d5e"
_FIRST = ("james", "mary", "wei", "fatima", "lukas", "sofia", "arjun", "yuki", "olga", "diego",
          "chloe", "kwame", "elena", "omar", "hannah", "mateo", "aiko", "noah", "priya", "liam")
_LAST = ("smith", "garcia", "chen", "muller", "rossi", "kim", "okafor", "silva", "novak",
         "haddad", "jensen", "tanaka", "dubois", "kowalski", "nguyen", "brown", "patel")
_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "web.de", "free.fr",
            "hotmail.co.uk", "acme-corp.com")


def emails(ids: np.ndarray) -> list[str]:
    """Deterministic, realistic-looking, distinct e-mail addresses for person ids."""
    return [f"{_FIRST[i % 20]}.{_LAST[(i // 20) % 17]}{i}@{_DOMAINS[(i * 7) % 8]}"
            for i in ids.tolist()]


def make_sets(n: int) -> tuple[list[str], list[str]]:
    """A has persons 0..n-1, B has n/2..3n/2-1, both shuffled: |A ∩ B| = n/2."""
    rng = np.random.default_rng(20261129)
    a = emails(rng.permutation(np.arange(0, n)))
    b = emails(rng.permutation(np.arange(n // 2, n // 2 + n)))
    return a, b


def cpu_seconds() -> float:
    """CPU time of this process and its finished worker processes."""
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def run_cleanroom(a: list[str], b: list[str], work: Path) -> tuple[float, float, set[str]]:
    """Wall and CPU seconds of the whole three-role flow, and the intersection (A's e-mails)."""
    for name, items in (("a", a), ("b", b)):
        pacsv.write_csv(pa.table({"email": items, "uid": [str(i) for i in range(len(items))]}),
                        work / f"{name}.csv")
    ka, kb = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    t0, c0 = time.perf_counter(), cpu_seconds()
    for name, key in (("a", ka), ("b", kb)):
        protocols.psi_blind_file(work / f"{name}.csv", party=name, key=key,
                                 collaboration_id=COLLAB, ids=[("email", "email")],
                                 attrs=["uid"], out_round1=work / f"{name}.r1",
                                 out_attrs=work / f"{name}.attrs")
    protocols.psi_reblind_file(work / "a.r1", key=kb, out=work / "a.r2")
    protocols.psi_reblind_file(work / "b.r1", key=ka, out=work / "b.r2")
    for name, peer in (("a", "b"), ("b", "a")):
        protocols.psi_finish_file(round2=work / f"{name}.r2", attrs=work / f"{name}.attrs",
                                  party=name, out=work / f"{name}.tokens.parquet",
                                  peer_round2=work / f"{peer}.r2")
    uids = duckdb.sql(
        "SELECT a.uid FROM read_parquet(?) a JOIN read_parquet(?) b ON a.email = b.email",
        params=[str(work / "a.tokens.parquet"), str(work / "b.tokens.parquet")],
    ).fetchall()
    return time.perf_counter() - t0, cpu_seconds() - c0, {a[int(u)] for (u,) in uids}


def run_openmined(a: list[str], b: list[str]) -> tuple[float, float, set[str]] | None:
    """Wall and CPU seconds of OpenMined PSI (A client, B server), or None if not installed."""
    try:
        import private_set_intersection.python as om
    except ImportError:
        return None
    t0, c0 = time.perf_counter(), cpu_seconds()
    client = om.client.CreateWithNewKey(True)
    server = om.server.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(1e-9, len(a), b, om.DataStructure.GCS)
    response = server.ProcessRequest(client.CreateRequest(a))
    idx = client.GetIntersection(setup, response)
    return time.perf_counter() - t0, cpu_seconds() - c0, {a[i] for i in idx}


def primitive_costs(n: int = 4000, clock: Callable[[], float] = time.perf_counter
                    ) -> dict[str, float]:
    """Per-element cost of the building blocks in microseconds, this process, one core
    (median of three runs, timed with `clock`: wall by default, or CPU time)."""
    msgs = [e.encode() for e in emails(np.arange(n))]
    dst = b"cleanroom-psi-v1:bench:email"
    key = X25519PrivateKey.generate()

    def per(fn: Callable[[], object], count: int) -> float:
        times = []
        for _ in range(3):
            start = clock()
            fn()
            times.append(clock() - start)
        return statistics.median(times) / count * 1e6

    pts = hazmat.hash_to_curve_u_many(msgs, dst)
    load, ex = X25519PublicKey.from_public_bytes, key.exchange
    raw = key.private_bytes_raw()
    return {
        "h2c": per(lambda: hazmat.hash_to_curve_u_many(msgs, dst, hazmat.SUITE_RO), n),
        "h2c_nu": per(lambda: hazmat.hash_to_curve_u_many(msgs, dst, hazmat.SUITE_NU), n),
        "h2c_ref": per(lambda: [hazmat.hash_to_curve(m, dst) for m in msgs[:200]], 200),
        # X25519 as the steps call it (libsodium, one call per value), and through OpenSSL's
        # key objects for comparison
        "x25519": per(lambda: [crypto_scalarmult(raw, p) for p in pts], n),
        "x25519_openssl": per(lambda: [ex(load(p)) for p in pts], n),
        "on_curve": per(lambda: hazmat.first_off_curve(pts), n),
    }


def ristretto_costs(n: int, clock: Callable[[], float]) -> tuple[float, float] | None:
    """us/element of libsodium's ristretto255 hash-to-group (from SHA-512) and scalar
    multiplication, called straight through rbcl's bundled libsodium; None without rbcl.
    What a protocol version on ristretto255 would pay per blinding."""
    try:
        import ctypes

        from rbcl._sodium import _sodium as sodium  # rbcl bundles libsodium
    except ImportError:
        return None
    hashes = [hashlib.sha512(e.encode()).digest() for e in emails(np.arange(n))]
    out = ctypes.create_string_buffer(32)
    scalar = bytes(31) + b"\x01"  # any scalar; the cost does not depend on it
    points = []
    start = clock()
    for h in hashes:
        sodium.crypto_core_ristretto255_from_hash(out, h)
        points.append(out.raw)
    from_hash = (clock() - start) / n * 1e6
    start = clock()
    for p in points:
        sodium.crypto_scalarmult_ristretto255(out, scalar, p)
    return from_hash, (clock() - start) / n * 1e6


def components(n: int = 4000, clock: Callable[[], float] = time.perf_counter,
               what: str = "") -> dict[str, float]:
    """Print (and return) the per-element cost of the building blocks, one core."""
    c = primitive_costs(n, clock)
    print(f"components, one core, {what}us/element: hash_to_curve RO {c['h2c']:.1f} (gmpy2) vs "
          f"{c['h2c_ref']:.1f} (pure-Python reference, {c['h2c_ref'] / c['h2c']:.1f}x); "
          f"NU {c['h2c_nu']:.1f}; X25519 {c['x25519']:.1f} (libsodium; "
          f"{c['x25519_openssl']:.1f} through OpenSSL key objects); on-curve check "
          f"{c['on_curve']:.1f}")
    ristretto = ristretto_costs(n, clock)
    if ristretto is not None:
        print(f"  for comparison, ristretto255 (libsodium, via rbcl): hash to group "
              f"{ristretto[0]:.1f}, scalar multiplication {ristretto[1]:.1f}: blind "
              f"{sum(ristretto):.1f} vs {c['h2c'] + c['x25519']:.1f}, reblind {ristretto[1]:.1f} "
              f"vs {c['x25519'] + c['on_curve']:.1f}")
    return c


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_in_process(n: int, repeat: int, openmined: bool) -> None:
    """Every role in this process (workers on all cores); OpenMined in one process."""
    print(f"PSI {n:,} x {n:,} (|A ∩ B| = {n // 2:,}), in-process, {os.cpu_count()} cores, "
          f"median of {repeat}, load average {_loadavg()}")
    components()
    a, b = make_sets(n)
    ours, base = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeat):
            work = Path(tmp) / f"run{r}"
            work.mkdir()
            sec, cpu, inter = run_cleanroom(a, b, work)
            assert len(inter) == n // 2, "cleanroom PSI found a wrong intersection"
            ours.append((sec, cpu))
            print(f"  cleanroom run {r + 1}: {sec:.2f} s wall, {cpu:.2f} s CPU")
            if openmined:
                got = run_openmined(a, b)
                if got is None:
                    print("  OpenMined PSI is not installed (pip install openmined-psi): "
                          "no baseline")
                    openmined = False
                    continue
                base.append(got[:2])
                same = got[2] == inter
                print(f"  openmined run {r + 1}: {got[0]:.2f} s wall, {got[1]:.2f} s CPU, "
                      f"intersection {'equal' if same else 'DIFFERENT'} ({len(got[2]):,})")
                assert same, "intersections differ"
    w_ours, c_ours = (statistics.median(x) for x in zip(*ours, strict=True))
    print(f"cleanroom PSI (3 roles, {os.cpu_count()} cores): {w_ours:.2f} s wall = "
          f"{2 * n / w_ours:,.0f} elements/s; {c_ours:.2f} CPU s")
    if base:
        w_base, c_base = (statistics.median(x) for x in zip(*base, strict=True))
        print(f"OpenMined PSI 2.0 (P-256, one process): {w_base:.2f} s wall = "
              f"{2 * n / w_base:,.0f} elements/s; {c_base:.2f} CPU s")
        print(f"throughput ratio cleanroom / OpenMined: {w_base / w_ours:.2f}x wall-clock "
              f"(target >= 2x), {c_base / c_ours:.2f}x per CPU second")


# ---- --cli: the real commands, each party's process on one core ------------------------------

ROOT = Path(__file__).resolve().parents[1]
Steps = dict[str, list[tuple[float, float]]]  # step -> (wall, CPU) seconds of each process


def _cleanroom_command() -> list[str]:
    """The installed `cleanroom` console script (the one next to this Python first)."""
    here = Path(sys.executable).with_name("cleanroom")
    found = str(here) if here.exists() else shutil.which("cleanroom")
    if not found:
        raise SystemExit("the `cleanroom` command is not installed (pip install -e .)")
    return [found]


def _party_cores() -> tuple[int | None, int | None]:
    """The cores parties A and B are pinned to (None: this platform cannot pin)."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    return cores[0], cores[1 % len(cores)]


def _pin(core: int | None) -> Callable[[], None] | None:
    if core is None:
        return None
    return lambda: os.sched_setaffinity(0, {core})


def run_side_by_side(jobs: Sequence[tuple[list[str], int | None]]) -> list[tuple[float, float]]:
    """Start every command at once, each pinned to its core in the child before it runs;
    return each one's (wall seconds, CPU seconds). A failing command stops the benchmark.
    CPU seconds are what a process got of its core: on a shared machine, wall seconds also
    count the time other jobs held it."""
    started = [(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, preexec_fn=_pin(core)),
                time.perf_counter(), cmd) for cmd, core in jobs]

    def wait(item: tuple[subprocess.Popen[bytes], float, list[str]]) -> tuple[float, float]:
        proc, t0, cmd = item
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stderr.close()
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed: {err.decode(errors='replace')[-800:]}")
        return elapsed, usage.ru_utime + usage.ru_stime

    with ThreadPoolExecutor(len(started)) as pool:
        return list(pool.map(wait, started))


def run_cleanroom_cli(a: list[str], b: list[str], work: Path) -> tuple[float, Steps, set[str]]:
    """`cleanroom psi blind || blind`, `reblind || reblind`, `finish || finish`, then the
    intersection from the two token files: wall seconds, each step's seconds, A's e-mails."""
    cr = _cleanroom_command()
    for name, items in (("a", a), ("b", b)):
        pacsv.write_csv(pa.table({"email": items, "uid": [str(i) for i in range(len(items))]}),
                        work / f"{name}.csv")
        subprocess.run(cr + ["keys", "pair", "--out", str(work / name)], check=True,
                       stdout=subprocess.DEVNULL)
    core = dict(zip("ab", _party_cores(), strict=True))
    other = {"a": "b", "b": "a"}

    def blind(p: str) -> tuple[list[str], int | None]:
        return cr + ["psi", "blind", str(work / f"{p}.csv"), "--party", p,
                     "--key", str(work / f"{p}.key"), "--collaboration-id", COLLAB,
                     "--id", "email=email", "--attr", "uid",
                     "--out-round1", str(work / f"{p}.r1"),
                     "--out-attrs", str(work / f"{p}.attrs")], core[p]

    def reblind(p: str) -> tuple[list[str], int | None]:  # p re-blinds the other's round 1
        q = other[p]
        return cr + ["psi", "reblind", str(work / f"{q}.r1"), "--key", str(work / f"{p}.key"),
                     "--out", str(work / f"{q}.r2")], core[p]

    def finish(p: str) -> tuple[list[str], int | None]:
        return cr + ["psi", "finish", "--round2", str(work / f"{p}.r2"),
                     "--attrs", str(work / f"{p}.attrs"), "--party", p,
                     "--peer-round2", str(work / f"{other[p]}.r2"),
                     "--out", str(work / f"{p}.tokens.parquet")], core[p]

    t0 = time.perf_counter()
    steps = {step.__name__: run_side_by_side([step("a"), step("b")])
             for step in (blind, reblind, finish)}
    uids = duckdb.sql(
        "SELECT a.uid FROM read_parquet(?) a JOIN read_parquet(?) b ON a.email = b.email",
        params=[str(work / "a.tokens.parquet"), str(work / "b.tokens.parquet")],
    ).fetchall()
    wall = time.perf_counter() - t0
    return wall, steps, {a[int(u)] for (u,) in uids}


def run_openmined_cli(a: list[str], b: list[str], work: Path
                      ) -> tuple[float, Steps, set[str]] | None:
    """OpenMined PSI as two parties' processes, one core each: setup || request, response,
    intersection. None if it is not installed."""
    try:
        import private_set_intersection.python  # noqa: F401
    except ImportError:
        return None
    (work / "om_a.txt").write_text("\n".join(a))
    (work / "om_b.txt").write_text("\n".join(b))
    (work / "om_a.count").write_text(str(len(a)))
    core_a, core_b = _party_cores()

    def step(name: str) -> list[str]:
        return [sys.executable, "-m", "bench._psi_openmined", name, str(work)]

    t0 = time.perf_counter()
    steps = {"setup || request": run_side_by_side([(step("server-setup"), core_b),
                                                   (step("client-request"), core_a)]),
             "response": run_side_by_side([(step("server-response"), core_b)]),
             "intersection": run_side_by_side([(step("client-intersection"), core_a)])}
    wall = time.perf_counter() - t0
    return wall, steps, {a[i] for i in json.loads((work / "om_result.json").read_text())}


def _openmined_one_process(work: Path) -> list[str]:
    return [sys.executable, "-m", "bench._psi_openmined", "one-process", str(work)]


def startup_seconds(runs: int = 3) -> tuple[float, float]:
    """Median (wall, CPU) seconds of `cleanroom psi --help` on one core: the fixed cost of a
    step's process (interpreter, imports)."""
    core, _ = _party_cores()
    got = [run_side_by_side([(_cleanroom_command() + ["psi", "--help"], core)])[0]
           for _ in range(runs)]
    return statistics.median(w for w, _ in got), statistics.median(c for _, c in got)


def _slower(runs: list[Steps], which: int) -> dict[str, float]:
    """Per step, the median over runs of the slower party's wall (which=0) or CPU (1)
    seconds: the slower party bounds the phase."""
    return {k: statistics.median(max(t[which] for t in r[k]) for r in runs) for k in runs[0]}


def _critical(runs: list[Steps], which: int) -> float:
    """Median over runs of the sum over phases of the slower party's seconds."""
    return statistics.median(sum(max(t[which] for t in steps) for steps in r.values())
                             for r in runs)


def _show(steps: Steps) -> str:
    return ", ".join(f"{k} " + " / ".join(f"{w:.2f} ({c:.2f})" for w, c in v)
                     for k, v in steps.items())


def _pinned_primitives(core: int | None, show: bool = False) -> dict[str, float]:
    """The building blocks' CPU cost per element with this process pinned to `core`."""
    if core is not None:
        everything = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {core})
    try:
        if show:
            return components(clock=time.process_time, what="CPU ")
        return primitive_costs(clock=time.process_time)
    finally:
        if core is not None:
            os.sched_setaffinity(0, everything)


def run_cli(n: int, repeat: int, openmined: bool) -> None:
    """The real commands, both parties side by side, one core each."""
    core_a, core_b = _party_cores()
    print(f"\nPSI through the CLI, {n:,} x {n:,} (|A ∩ B| = {n // 2:,}): each party's "
          f"processes on one core (A: {core_a}, B: {core_b}), median of {repeat}; "
          f"load average {_loadavg()}")
    prims = [_pinned_primitives(core_a, show=True)]
    start_wall, start_cpu = startup_seconds()
    a, b = make_sets(n)
    ours: list[tuple[float, Steps]] = []
    base: list[tuple[float, Steps]] = []
    single: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeat):
            work = Path(tmp) / f"run{r}"
            work.mkdir()
            if r:  # the primitives again before each run: other jobs' load changes
                prims.append(_pinned_primitives(core_a))
            wall, steps, inter = run_cleanroom_cli(a, b, work)
            assert len(inter) == n // 2, "cleanroom PSI found a wrong intersection"
            ours.append((wall, steps))
            print(f"  cleanroom run {r + 1}: {wall:.2f} s end to end; wall (CPU) s of A / B: "
                  f"{_show(steps)}")
            if openmined:
                got = run_openmined_cli(a, b, work)
                if got is None:
                    print("  OpenMined PSI is not installed (pip install openmined-psi): "
                          "no baseline")
                    openmined = False
                    continue
                base.append(got[:2])
                same = got[2] == inter
                print(f"  openmined run {r + 1}: {got[0]:.2f} s end to end; {_show(got[1])}; "
                      f"intersection {'equal' if same else 'DIFFERENT'} ({len(got[2]):,})")
                assert same, "intersections differ"
                one = run_side_by_side([(_openmined_one_process(work), core_a)])[0]
                single.append(one)
                got1 = {a[i] for i in json.loads((work / "om_result1.json").read_text())}
                print(f"  openmined in one process (one core): {one[0]:.2f} s ({one[1]:.2f} "
                      f"CPU s), intersection {'equal' if got1 == inter else 'DIFFERENT'}")
                assert got1 == inter, "intersections differ"
    prim = {k: statistics.median(p[k] for p in prims) for k in prims[0]}
    if len(prims) > 1:
        print("primitives, CPU us/element, median of the " + str(len(prims)) + " measurements: "
              + ", ".join(f"{k} {prim[k]:.1f}" for k in ("h2c", "x25519", "on_curve")))
    cpu = {k: v / n * 1e6 for k, v in _slower([s for _, s in ours], 1).items()}
    wall = {k: v / n * 1e6 for k, v in _slower([s for _, s in ours], 0).items()}
    floor = {"blind": prim["h2c"] + prim["x25519"], "reblind": prim["x25519"]}
    print(f"start-up of one `cleanroom psi` process (--help, one core): {start_wall:.2f} s wall, "
          f"{start_cpu:.2f} s CPU")
    print("steps, slower party, CPU us/value and x its primitives' CPU cost: "
          f"blind {cpu['blind']:.1f} = {cpu['blind'] / floor['blind']:.2f}x "
          f"(hash_to_curve + X25519 = {floor['blind']:.1f}); "
          f"reblind {cpu['reblind']:.1f} = {cpu['reblind'] / floor['reblind']:.2f}x "
          f"(X25519 = {floor['reblind']:.1f}; "
          f"{cpu['reblind'] / (floor['reblind'] + prim['on_curve']):.2f}x counting the on-curve "
          f"check); finish {cpu['finish']:.1f} (no primitive)")
    print("  less one process start-up per step: " + "; ".join(
        f"{k} {cpu[k] - start_cpu / n * 1e6:.1f} = "
        f"{(cpu[k] - start_cpu / n * 1e6) / floor[k]:.2f}x" for k in ("blind", "reblind")))
    print("  wall us/value (other jobs' time on the core included): " + "; ".join(
        f"{k} {v:.1f}" for k, v in wall.items()))
    w_ours = statistics.median(w for w, _ in ours)
    c_ours = _critical([s for _, s in ours], 1)
    print(f"cleanroom PSI through the CLI: {w_ours:.2f} s end to end = "
          f"{2 * n / w_ours:,.0f} elements/s; critical path {c_ours:.2f} CPU s")
    if base:
        w_base = statistics.median(w for w, _ in base)
        c_base = _critical([s for _, s in base], 1)
        print(f"OpenMined PSI 2.0 (P-256), two processes one core each: {w_base:.2f} s = "
              f"{2 * n / w_base:,.0f} elements/s; critical path {c_base:.2f} CPU s")
        w_one, c_one = (statistics.median(x) for x in zip(*single, strict=True))
        print(f"OpenMined PSI 2.0 in one process, as its Python API runs: {w_one:.2f} s = "
              f"{2 * n / w_one:,.0f} elements/s; {c_one:.2f} CPU s")
        print(f"throughput ratio cleanroom / OpenMined at {n:,} (target >= 2x): against two "
              f"processes {w_base / w_ours:.2f}x wall-clock, {c_base / c_ours:.2f}x on the "
              f"critical path's CPU seconds; against one process {w_one / w_ours:.2f}x "
              f"wall-clock, {c_one / c_ours:.2f}x")
    print(f"load average at the end: {_loadavg()} (other jobs share these cores)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10k x 10k")
    ap.add_argument("--size", type=int, action="append",
                    help="elements per party, repeatable (default 100k; --cli: 50k and 100k)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side (median)")
    ap.add_argument("--no-openmined", action="store_true", help="skip the baseline")
    ap.add_argument("--cli", action="store_true",
                    help="run the real `cleanroom psi` commands, each party on one core")
    args = ap.parse_args(argv)
    sizes = [10_000] if args.quick else args.size or ([50_000, 100_000] if args.cli
                                                      else [100_000])
    for n in sizes:
        if args.cli:
            run_cli(n, args.repeat, not args.no_openmined)
        else:
            run_in_process(n, args.repeat, not args.no_openmined)
            print(f"load average at the end: {_loadavg()} (other jobs share these cores)")


if __name__ == "__main__":
    main()
