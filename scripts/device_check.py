"""The device check of issue 17, driven by scripts/device_check.sh (which installs zcnas first).

Runs, each step in its own process with a time limit, and writes one JSON of the figures
(``device_check.json``, rewritten after every step so that a killed run still leaves what it had)
into ``--out`` (default ``$OUT``, else ``zcnas_out/device_check``):

``cuda_test``    pytest of the CUDA consistency tests (``test_cuda_matches_cpu``: CPU and GPU
                 scores agree; ``test_streams_give_the_single_net_values_on_cuda``). They are
                 marked ``gpu`` and skipped without CUDA: on a GPU a skip is a failure, on the
                 CPU the skip (and its reason) is what is recorded.
``bench``        ``zcnas bench``: floor, gradsign, gradalign, their batch-1 loops, the
                 channels_last variant, peak memory.
``precision``    per-weight sign counts of the vectorised path, channels_last and autocast
                 (bfloat16; float16 on CUDA) against the batch-1 loop, with the dead-zone rule.
``throughput``   ``zcnas bench --suite throughput``: serial, prefetch, processes (and CUDA
                 streams) on the same nets, values compared with the serial ones.
``score_space``  a timed ``zcnas score-space --slice 0:N`` into a fresh SQLite file, and the
                 first stored values compared with the single-net path.

Without CUDA the GPU part is skipped and the JSON says so (``gpu.measured`` false, with the
reason); the CPU half runs at ``--size`` (``tiny`` for CI, ``small`` by default on a CPU,
``full`` by default on a GPU). Exit status 0 when every step that ran passed its checks.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import datetime as dt
import json
import os
from pathlib import Path
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any
import xml.etree.ElementTree as ET


ROOT = Path(__file__).resolve().parents[1]
NB201_SIZE = 15625

SIZES: dict[str, dict[str, Any]] = {
    # threads: torch threads of every step (None: torch's default). On a busy 2-core machine two
    # OpenMP threads spin-wait on each other: one thread was 10x cheaper per net at batch 4.
    # a few nets and a tiny slice: CI, well under a minute on 2 cores
    "tiny": {"bench_n": 1, "bench_batch": 4, "repeats": 1, "precision_n": 1,
             "precision_batch": 4, "thr_n": 2, "thr_batch": 4, "thr_modes": "serial,prefetch",
             "ss_n": 4, "ss_batch": 4, "ss_workers": 1, "threads": 1},
    # a CPU run by hand: minutes
    "small": {"bench_n": 3, "bench_batch": 64, "repeats": 3, "precision_n": 2,
              "precision_batch": 16, "thr_n": 8, "thr_batch": 16,
              "thr_modes": "serial,prefetch,processes", "ss_n": 32, "ss_batch": 16,
              "ss_workers": 2, "threads": 1},
    # the GPU run: well under 10 minutes on an H200 (every step has a time limit)
    "full": {"bench_n": 5, "bench_batch": 64, "repeats": 3, "precision_n": 4,
             "precision_batch": 64, "thr_n": 64, "thr_batch": 64,
             "thr_modes": "serial,prefetch,streams,processes", "ss_n": 3000, "ss_batch": 64,
             "ss_workers": 4, "threads": None},
}
CUDA_TESTS = [
    "tests/proxies_tests/test_gradsign.py::test_cuda_matches_cpu",
    "tests/test_throughput.py::test_streams_give_the_single_net_values_on_cuda",
]
# issue 17's targets, on one H200
TARGETS = {"gradsign_over_floor_max": 1.3, "loop_over_gradsign_min": 10.0,
           "full_space_seconds_max": 300.0}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _tail(text: str, n: int = 2000) -> str:
    return text[-n:]


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


LAST_CPU: list[float] = [0.0]  # CPU seconds of the last _run's process tree


def _run(cmd: Sequence[str], timeout: float, env: dict[str, str] | None = None
         ) -> tuple[int | None, str, str, float]:
    """(returncode or None on timeout, stdout, stderr, seconds); its CPU time in LAST_CPU."""
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.Popen(list(cmd), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=max(1.0, timeout))
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the whole group: score-space's worker processes too
        out, err = proc.communicate()
        code = None
    LAST_CPU[0] = _children_cpu() - cpu
    return code, out, err, time.perf_counter() - start


def _zcnas(*args: str) -> list[str]:
    return [sys.executable, "-m", "zcnas", *args]


def _threads(size: dict[str, Any]) -> list[str]:
    return [] if size["threads"] is None else ["--threads", str(size["threads"])]


class Check:
    """The JSON being built; written to disk after every step."""

    def __init__(self, out_dir: Path, budget: float, cuda: bool) -> None:
        self.cuda = cuda
        self.path = out_dir / "device_check.json"
        self.deadline = time.monotonic() + budget
        self.data: dict[str, Any] = {"started": _now(), "steps": {}}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def limit(self, gpu_cap: float) -> float:
        """A step's time limit: ``gpu_cap`` seconds on a GPU (a 10-minute lease), on a CPU
        whatever is left of the budget; never more than is left."""
        return min(gpu_cap, self.left()) if self.cuda else self.left()

    def step(self, name: str, rec: dict[str, Any]) -> None:
        rec.setdefault("cpu_seconds", LAST_CPU[0])
        self.data["steps"][name] = rec
        self.write()
        status = "ok" if rec.get("ok") else ("skipped" if rec.get("skipped") else "FAILED")
        print(f"device_check: {name}: {status} ({rec.get('seconds', 0):.1f} s, "
              f"{rec['cpu_seconds']:.1f} CPU s)"
              + (f": {rec['error']}" if rec.get("error") else ""), flush=True)

    def write(self) -> None:
        self.data["finished"] = _now()
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        tmp.replace(self.path)


def environment(cuda: bool) -> dict[str, Any]:
    import torch

    import zcnas

    env: dict[str, Any] = {
        "python": platform.python_version(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "cuda_available": torch.cuda.is_available(),
        "zcnas": zcnas.__version__, "zcnas_path": str(Path(zcnas.__file__).parent),
        "install": os.environ.get("ZCNAS_CHECK_INSTALL", "as found"),
        "zcnas_data": os.environ.get("ZCNAS_DATA"),
    }
    if cuda:
        env.update({"cuda": torch.version.cuda, "device_name": torch.cuda.get_device_name(0),
                    "device_count": torch.cuda.device_count(),
                    "total_memory_gib": torch.cuda.get_device_properties(0).total_memory / 2**30})
        smi = shutil.which("nvidia-smi")
        if smi:
            q = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total",
                                "--format=csv,noheader"], capture_output=True, text=True)
            env["nvidia_smi"] = q.stdout.strip() or q.stderr.strip()
    return env


def step_cuda_test(check: Check, cuda: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        code, out, err, secs = _run([sys.executable, "-m", "pytest", *CUDA_TESTS, "-q", "-rs",
                                     "-p", "no:cacheprovider", f"--junitxml={xml}"],
                                    timeout=check.limit(240))
        tests: dict[str, dict[str, str]] = {}
        if xml.is_file():
            for case in ET.parse(xml).getroot().iter("testcase"):
                name = case.get("name", "?")
                outcome, reason = "passed", ""
                for tag in ("failure", "error", "skipped"):
                    el = case.find(tag)
                    if el is not None:
                        outcome, reason = {"failure": "failed", "error": "error",
                                           "skipped": "skipped"}[tag], el.get("message", "")
                tests[name] = {"outcome": outcome, "reason": reason}
    outcomes = [t["outcome"] for t in tests.values()]
    want = "passed" if cuda else "skipped"
    ok = len(tests) == len(CUDA_TESTS) and all(o == want for o in outcomes)
    rec: dict[str, Any] = {"ok": ok, "seconds": secs, "returncode": code, "tests": tests,
                           "expected": want, "marker": "gpu + skipif(not torch.cuda.is_available())"}
    if not ok:
        rec["error"] = f"expected every CUDA test {want}, got {outcomes or 'no result'}"
        rec["output"] = _tail(out + err)
    check.step("cuda_test", rec)


def _json_step(check: Check, name: str, args: list[str], limit: float) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "out.json"
        code, out, err, secs = _run(_zcnas(*args, "--out", str(out_file)), timeout=limit)
        if code != 0 or not out_file.is_file():
            check.step(name, {"ok": False, "seconds": secs, "returncode": code,
                              "error": "timed out" if code is None else f"exit code {code}",
                              "output": _tail(out + err)})
            return None
        result = json.loads(out_file.read_text())
    result["seconds"] = secs
    result["command"] = "zcnas " + " ".join(args)
    result["table"] = out.strip()
    return result


def step_bench(check: Check, device: str, size: dict[str, Any], cuda: bool) -> None:
    args = ["bench", "--device", device, "--n", str(size["bench_n"]),
            "--batch-size", str(size["bench_batch"]), "--proxy", "gradsign,gradalign",
            "--repeats", str(size["repeats"]), "--variants", "channels_last", "--no-progress",
            *_threads(size)]
    result = _json_step(check, "bench", args, check.limit(300))
    if result is None:
        return
    summary = result["summary"]
    gs, loop = summary["gradsign"], summary["gradsign:loop"]
    result["targets"] = {
        "applies": cuda, "gradsign_over_floor": gs["median_ratio_floor"],
        "gradsign_over_floor_max": TARGETS["gradsign_over_floor_max"],
        "loop_over_gradsign": loop["median_loop_over_vectorised"],
        "loop_over_gradsign_min": TARGETS["loop_over_gradsign_min"],
        "met": (gs["median_ratio_floor"] <= TARGETS["gradsign_over_floor_max"]
                and loop["median_loop_over_vectorised"] >= TARGETS["loop_over_gradsign_min"]),
    }
    scores_agree = all(
        abs(net["methods"][f"{p}:loop"]["score"] - net["methods"][p]["score"])
        <= 1e-2 * max(1.0, abs(net["methods"][p]["score"]))
        for net in result["nets"] for p in ("gradsign", "gradalign"))
    result["ok"] = scores_agree
    if not scores_agree:
        result["error"] = "a batch-1 loop score differs from its vectorised score by > 1%"
    check.step("bench", result)


def step_precision(check: Check, device: str, size: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "precision.json"
        code, out, err, secs = _run(
            [sys.executable, str(Path(__file__)), "precision", "--device", device,
             "--n", str(size["precision_n"]), "--batch-size", str(size["precision_batch"]),
             "--out", str(out_file), *_threads(size)], timeout=check.limit(240))
        if code != 0 or not out_file.is_file():
            check.step("precision", {"ok": False, "seconds": secs, "returncode": code,
                                     "error": "timed out" if code is None else f"exit {code}",
                                     "output": _tail(out + err)})
            return
        result = json.loads(out_file.read_text())
    result["seconds"] = secs
    result["ok"] = True  # a measurement: nothing here is required to pass
    check.step("precision", result)


def step_throughput(check: Check, device: str, size: dict[str, Any], workers: int) -> None:
    args = ["bench", "--suite", "throughput", "--device", device, "--n", str(size["thr_n"]),
            "--batch-size", str(size["thr_batch"]), "--proxy", "gradsign",
            "--modes", size["thr_modes"], "--workers", str(workers), "--streams", str(workers),
            *_threads(size)]
    result = _json_step(check, "throughput", args, check.limit(300))
    if result is None:
        return
    for rec in result["modes"].values():
        rec.pop("values", None)
    bad = [m for m, rec in result["modes"].items() if not rec["identical"]]
    result["ok"] = not bad
    if bad:
        result["error"] = f"values differ from serial in mode(s) {', '.join(bad)}"
    result["best_mode"] = max(result["modes"], key=lambda m: result["modes"][m]["nets_per_second"])
    check.step("throughput", result)


def step_score_space(check: Check, device: str, size: dict[str, Any], n: int, workers: int,
                     cuda: bool) -> None:
    import optuna
    from optuna.trial import TrialState

    shm = Path("/dev/shm")
    tmp = Path(tempfile.mkdtemp(prefix="zcnas-check-",
                                dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))
    url = f"sqlite:///{tmp / 'score_space.db'}"
    args = ["score-space", "--space", "nb201", "--proxy", "gradsign", "--slice", f"0:{n}",
            "--batch-size", str(size["ss_batch"]), "--device", device, "--workers", str(workers),
            "--storage", url, "--json", "--no-progress", *_threads(size)]
    limit = max(10.0, check.left() - 20)
    try:
        code, out, err, secs = _run(_zcnas(*args), timeout=limit)
        rec: dict[str, Any] = {"command": "zcnas " + " ".join(args), "seconds": secs,
                               "returncode": code, "timed_out": code is None, "limit_s": limit}
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        names = optuna.get_all_study_names(storage=url) if (tmp / "score_space.db").exists() else []
        trials = optuna.load_study(study_name=names[0], storage=url).get_trials() if names else []
        done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.FAIL)]
        rec["finished"] = len(done)
        rec["complete"] = sum(t.state == TrialState.COMPLETE for t in done)
        rec["archs_per_second"] = len(done) / secs if secs > 0 else 0.0
        if code == 0:
            summary = json.loads(next(line for line in reversed(out.splitlines())
                                      if line.startswith("{")))
            rec["summary"] = {k: summary[k] for k in (
                "total", "complete", "failed", "seconds", "archs_per_second", "workers", "done")}
        if done:
            starts = [t.datetime_start for t in done if t.datetime_start]
            ends = [t.datetime_complete for t in done if t.datetime_complete]
            if starts and ends:
                span = (max(ends) - min(starts)).total_seconds()
                rec["trial_span_seconds"] = span
                rec["archs_per_second_after_start"] = len(done) / span if span > 0 else None
        rate = rec["archs_per_second"]
        rec["projected_full_space_seconds"] = NB201_SIZE / rate if rate else None
        rec["targets"] = {"applies": cuda, "full_space_seconds_max": TARGETS[
            "full_space_seconds_max"], "met": bool(rate) and NB201_SIZE / rate <= TARGETS[
            "full_space_seconds_max"]}
        rec["same_as_single_net"] = _compare_stored(
            trials, size["ss_batch"], device, size["threads"] or (1 if workers > 1 else None))
        rec["ok"] = (code == 0 and rec["complete"] == n and rec["same_as_single_net"] is True) or (
            code is None and rec["complete"] > 0 and rec["same_as_single_net"] is True)
        if not rec["ok"]:
            rec["error"] = ("timed out before any trial finished" if code is None else
                            f"exit {code}, {rec['complete']}/{n} complete, same values: "
                            f"{rec['same_as_single_net']}")
            rec["output"] = _tail(out + err)
        elif code is None:
            rec["note"] = (f"stopped at the step's time limit ({limit:.0f} s) with "
                           f"{rec['finished']}/{n} finished; the rate is from those")
        check.step("score_space", rec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _compare_stored(trials: list, batch_size: int, device: str, threads: int | None
                    ) -> bool | None:
    """The first two stored values equal the single-net path's (``compute_score``, with the
    workers' torch threads)? None if nothing was stored."""
    import torch

    from zcnas.data import load_batch
    from zcnas.proxies import get_proxy
    from zcnas.scoring import compute_score
    from zcnas.spaces import get_space

    done = sorted((t for t in trials if t.value is not None and "space_index" in t.user_attrs),
                  key=lambda t: t.user_attrs["space_index"])[:2]
    if not done:
        return None
    space, proxy = get_space("nb201"), get_proxy("gradsign")
    batch = load_batch("cifar10", batch_size)
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)  # as each score-space worker ran (1 with --workers > 1)
    try:
        return all(compute_score(space, proxy, space.arch_at(t.user_attrs["space_index"]), batch,
                                 0, device) == t.value for t in done)
    finally:
        torch.set_num_threads(old)


# --- the precision measurement (its own process) ----------------------------------------------
def precision(device: str, n: int, batch_size: int) -> dict[str, Any]:
    """Per net: sign-count agreement and score difference with the batch-1 loop, for the
    vectorised path, channels_last, and autocast (bfloat16; float16 too on CUDA; loop path,
    since vmap's backward fails under CPU autocast)."""
    import torch

    from zcnas.data import Batch
    from zcnas.data import load_batch
    from zcnas.proxies._gradsign import gradsign_from_counts
    from zcnas.proxies._gradsign import sign_counts
    from zcnas.scoring import fresh_model
    from zcnas.spaces import get_space

    space = get_space("nb201")
    batch = load_batch("cifar10", batch_size).to(device)
    batch_cl = Batch(batch.inputs.contiguous(memory_format=torch.channels_last), batch.targets,
                     batch.num_classes, batch.source)
    dtypes = {"autocast_bf16": torch.bfloat16}
    if device.startswith("cuda"):
        dtypes["autocast_fp16"] = torch.float16
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    dev_type = "cuda" if device.startswith("cuda") else "cpu"

    def agree(a: dict, b: dict) -> dict[str, float]:
        same = sum(int((a[k] == b[k]).sum()) for k in a)
        total = sum(a[k].numel() for k in a)
        sa, sb = gradsign_from_counts(a), gradsign_from_counts(b)
        rel = abs(sa - sb) / abs(sa) if sa else 0.0
        return {"same_counts": same / total, "score_rel_diff": rel,
                "meets_rule": same / total > 0.97 and rel < 1e-4}

    nets = []
    for arch in space.sample(n, seed=0):
        def model(arch: dict = arch) -> torch.nn.Module:
            return fresh_model(space, arch, batch.num_classes, 0, device)

        loop = sign_counts(model(), batch, loop=True)
        row = {"arch": space.key(arch), "vectorised": agree(loop, sign_counts(model(), batch)),
               "channels_last": agree(loop, sign_counts(
                   model().to(memory_format=torch.channels_last), batch_cl))}
        for name, dtype in dtypes.items():
            with torch.autocast(dev_type, dtype=dtype):
                row[name] = agree(loop, sign_counts(model(), batch, loop=True))
        nets.append(row)
    variants = [k for k in nets[0] if k != "arch"]
    return {
        "device": device, "n": n, "batch_size": batch_size, "reference": "batch-1 loop, float32",
        "rule": "> 97% of per-weight sign counts identical and score within 1e-4 (relative)",
        "nets": nets,
        "summary": {v: {"min_same_counts": min(r[v]["same_counts"] for r in nets),
                        "max_score_rel_diff": max(r[v]["score_rel_diff"] for r in nets),
                        "all_meet_rule": all(r[v]["meets_rule"] for r in nets)}
                    for v in variants},
    }


def main(argv: list[str] | None = None) -> int:
    import torch

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["precision"]:
        p = argparse.ArgumentParser(prog="device_check.py precision")
        p.add_argument("--device", default="cpu")
        p.add_argument("--n", type=int, default=2)
        p.add_argument("--batch-size", type=int, default=16)
        p.add_argument("--out", required=True)
        p.add_argument("--threads", type=int, default=None)
        a = p.parse_args(argv[1:])
        if a.threads:
            torch.set_num_threads(a.threads)
        Path(a.out).write_text(json.dumps(precision(a.device, a.n, a.batch_size), indent=2))
        return 0

    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(prog="device_check.sh", description=__doc__.split("\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default=os.environ.get("ZCNAS_CHECK_SIZE"),
                   help="tiny (CI), small (default on a CPU), full (default on a GPU)")
    p.add_argument("--out", default=None, help="folder of device_check.json (default $OUT, "
                                               "else zcnas_out/device_check)")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds for all steps (default 480 on a GPU, 1800 on a CPU)")
    p.add_argument("--slice-size", type=int, default=None,
                   help="score-space slice 0:N (default by --size)")
    p.add_argument("--workers", type=int, default=None,
                   help="score-space --workers, throughput processes and streams (default by "
                        "--size)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of every step (default by --size: 1 on a CPU, torch's "
                        "default on a GPU)")
    args = p.parse_args(argv)
    size_name = args.size or ("full" if cuda else "small")
    size = dict(SIZES[size_name])
    if args.threads:
        size["threads"] = args.threads
    out_dir = Path(args.out or os.environ.get("OUT") or ROOT / "zcnas_out" / "device_check")
    out_dir.mkdir(parents=True, exist_ok=True)
    check = Check(out_dir, args.budget or (480.0 if cuda else 1800.0), cuda)
    device = "cuda" if cuda else "cpu"
    workers = args.workers or size["ss_workers"]
    n = args.slice_size or size["ss_n"]
    check.data.update({
        "size": size_name, "settings": size, "device": device,
        "gpu": {"measured": cuda, "skipped_reason": None if cuda else (
            "no CUDA device visible to torch (torch.cuda.is_available() is False): the GPU part "
            "was skipped and only the CPU half ran; no GPU figure here")},
        "environment": environment(cuda),
    })
    check.write()
    if not cuda:
        print(f"device_check: GPU part SKIPPED: {check.data['gpu']['skipped_reason']}",
              flush=True)
    print(f"device_check: size {size_name} on {device}, writing {check.path}", flush=True)

    LAST_CPU[0] = 0.0
    step_cuda_test(check, cuda)
    for name, fn in [("bench", lambda: step_bench(check, device, size, cuda)),
                     ("precision", lambda: step_precision(check, device, size)),
                     ("throughput", lambda: step_throughput(check, device, size, max(2, workers))),
                     ("score_space", lambda: step_score_space(check, device, size, n, workers,
                                                              cuda))]:
        if check.left() < 15:
            check.step(name, {"ok": False, "skipped": True, "seconds": 0.0,
                              "error": "no time left in --budget"})
            continue
        LAST_CPU[0] = 0.0
        try:
            fn()
        except Exception as exc:  # one broken step must not lose the others' figures
            check.step(name, {"ok": False, "seconds": 0.0,
                              "error": f"{type(exc).__name__}: {exc}"})
    steps = check.data["steps"]
    check.data["ok"] = all(s.get("ok") for s in steps.values())
    check.write()
    print(f"device_check: {'all steps passed' if check.data['ok'] else 'SOME STEPS FAILED'}; "
          f"figures in {check.path}" + ("" if cuda else " (CPU half only; GPU not measured)"),
          flush=True)
    return 0 if check.data["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
