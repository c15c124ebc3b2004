from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
import importlib.util
import os
from pathlib import Path
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import textwrap
import time
from types import ModuleType

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
import torch

import zcnas
from zcnas.data import Batch
from zcnas.data import data_dir


RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
BEST_C10 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)
# index 0 of NB201: a weak cell (85.9% on CIFAR-10)
WEAK = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
# output not connected to the input: chance accuracy (10%)
DISCONNECTED = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = data_dir()
    if not (path / "nb201" / "nb201_tss_accuracies.csv").is_file():
        pytest.fail(f"shared data not found at {path}; set ZCNAS_DATA")
    return path


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite database, on /dev/shm when available: Optuna commits ~30 times per trial
    and each fsync on this disk costs ~30 ms, which would dominate the tests."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        d = Path(tempfile.mkdtemp(prefix="zcnas-test-", dir=shm))
        try:
            yield f"sqlite:///{d / 'zcnas.db'}"
        finally:
            shutil.rmtree(d, ignore_errors=True)
    else:
        yield f"sqlite:///{tmp_path / 'zcnas.db'}"


@pytest.fixture()
def postgres_url() -> str:
    """``$ZCNAS_TEST_POSTGRES_URL`` (start one with scripts/pg_local.sh). Unset: skip, but fail
    under CI=true so that CI cannot skip the PostgreSQL tests silently."""
    url = os.environ.get("ZCNAS_TEST_POSTGRES_URL")
    if not url:
        reason = ("ZCNAS_TEST_POSTGRES_URL is not set; start a server with "
                  "`export ZCNAS_TEST_POSTGRES_URL=$(scripts/pg_local.sh start /tmp/zcnas_pg 55432)`")
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs twice: on a fresh SQLite file and on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@contextmanager
def failing_sql(match: Callable[[str], bool], message: str = "database or disk is full",
                times: int | None = None) -> Iterator[list[str]]:
    """In this process, every SQL statement ``match`` accepts raises
    ``sqlite3.OperationalError(message)`` (the first ``times`` of them, or all), exactly as
    SQLite reports a full disk: SQLAlchemy wraps it in its ``OperationalError``. Yields the
    statements failed so far."""
    hits: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202
        if match(statement) and (times is None or len(hits) < times):
            hits.append(statement)
            raise sqlite3.OperationalError(message)

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield hits
    finally:
        event.remove(Engine, "before_cursor_execute", before)


def writes(statement: str) -> bool:
    """``failing_sql`` matcher: every write (a full disk fails writes, not reads)."""
    return statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")


def build(arch: str, dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.nn.Module:
    """A freshly initialised NB201 network in train mode (as the scoring choke point builds it)."""
    space = zcnas.get_space("nb201")
    torch.manual_seed(seed)
    model = space.build(space.parse(arch)).to(dtype)
    model.train()
    return model


def slow_study_file(path: Path, storage: str, name: str, n_trials: int, *, init_seed: int,
                    grace: int = 3) -> Path:
    """Write a ``zcnas run`` study file to ``path``: the ``slow_test`` proxy (``slowproxy.py``)
    on tiny NB201 networks, a synthetic batch of 2, random sampling, 1 s heartbeats and a
    ``grace`` s grace period. ``init_seed`` keeps cached scores of other tests out."""
    path.write_text(textwrap.dedent(f"""
        [study]
        name = "{name}"
        storage = "{storage}"
        n_trials = {n_trials}
        seed = 0
        heartbeat_interval = 1
        grace_period = {grace}

        [space]
        name = "nb201"
        params = {{ channels = 4, cells_per_stage = 1 }}

        [objective]
        kind = "proxy"
        proxy = "slow_test"
        init_seed = {init_seed}

        [sampler]
        name = "RandomSampler"

        [data]
        source = "synthetic"
        batch_size = 2
    """))
    return path


def he_normal_init_by_hand(model: torch.nn.Module) -> None:
    """What AZ-NAS and VKDNW re-initialise with, written out for the tests' independent
    re-derivations: He-normal (fan_in, ReLU gain) conv/linear weights and zero biases, BatchNorm
    weight 1 and bias 0, module by module in ``modules()`` order (the RNG draws' order)."""
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
        elif isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(m.weight)
            torch.nn.init.zeros_(m.bias)


def kill_mid_trial(proc: subprocess.Popen, find_study: Callable[[], optuna.Study | None], *,
                   delay: float = 0.0, timeout: float = 240.0) -> str:
    """SIGKILL worker ``proc`` once its study (``find_study()``; None while it does not exist)
    has two COMPLETE trials and one RUNNING, ``delay`` seconds after seeing that; returns the
    study's name. Fails the test if the worker ends first or never gets there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        if proc.poll() is not None:
            pytest.fail(f"worker ended before it could be killed: {proc.communicate()[1]}")
        study = find_study()
        if study is None:
            continue
        states = [t.state for t in study.get_trials(deepcopy=False)]
        if states.count(TrialState.COMPLETE) >= 2 and TrialState.RUNNING in states:
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            return study.study_name
    proc.kill()
    pytest.fail("the worker never had two finished trials and one running")


def assert_recovered(trials: Mapping[int, FrozenTrial], before: Mapping[int, float | None],
                     killed_number: int) -> tuple[FrozenTrial, FrozenTrial]:
    """After a rerun: every trial finished before the kill is unchanged, the killed trial is
    FAIL and exactly one retry of it is COMPLETE. Returns (killed, retry)."""
    for number, value in before.items():
        assert trials[number].state == TrialState.COMPLETE and trials[number].value == value
    killed = trials[killed_number]
    assert killed.state == TrialState.FAIL
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    return killed, retries[0]


def oom_above(monkeypatch: pytest.MonkeyPatch, limit: int) -> list[int]:
    """Make every per-sample chunk larger than ``limit`` raise a (fake) CUDA out-of-memory;
    returns the list of chunk sizes tried, in order."""
    from zcnas.proxies import _persample

    real = _persample._vmap_chunk
    seen: list[int] = []

    def fake(model, inputs, targets, names, **kw):  # noqa: ANN001, ANN003, ANN202
        seen.append(len(inputs))
        if len(inputs) > limit:
            raise torch.OutOfMemoryError("fake: CUDA out of memory")
        return real(model, inputs, targets, names, **kw)

    monkeypatch.setattr(_persample, "_vmap_chunk", fake)
    return seen


def as_dtype(batch: Batch, dtype: torch.dtype) -> Batch:
    return Batch(batch.inputs.to(dtype), batch.targets, batch.num_classes, batch.source)


@pytest.fixture(scope="module")
def batch16(shared_data) -> Batch:  # noqa: ANN001
    return zcnas.load_batch("cifar10", 16, seed=0)


@pytest.fixture(scope="module")
def batch8_f64(shared_data) -> Batch:  # noqa: ANN001
    """float64 is slow on CPU: 8 samples suffice to compare the two paths to ~1e-15."""
    return as_dtype(zcnas.load_batch("cifar10", 8, seed=0), torch.float64)


@pytest.fixture
def load_script() -> Callable[[str], ModuleType]:
    """``load_script("label_budgets")``: the module of ``scripts/label_budgets.py`` (the
    scripts are not a package)."""
    def load(name: str) -> ModuleType:
        path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load
