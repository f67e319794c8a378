"""A hostile corpus of checkpoints, compressed policy files, teacher checkpoints and resumes.

Every case is a file made from a valid one by one mutation (a model_config field, a type, a
tensor's shape or values, truncated or random bytes, a file that is not a file, garbage
optimizer or RNG state). Loading, playing or resuming it must give a `SimcityError` naming
the file, or work; never another exception, a hang or a huge allocation.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")

from agents.policies import checks  # noqa: E402
from agents.policies.attention import AttentionConfig, AttentionPolicy  # noqa: E402
from agents.policies.checkpoint import TrainedPolicy, load_checkpoint  # noqa: E402
from agents.policies.compressed import (  # noqa: E402
    PrunedShape,
    load_model,
    load_policy,
    prune,
    quantize_int8,
    save_compressed,
)
from agents.training import teacher_checkpoint  # noqa: E402
from agents.training.config import TeacherConfig  # noqa: E402
from agents.training.learner import make_learner  # noqa: E402
from agents.training.resume import restore_run  # noqa: E402
from agents.training.teacher_checkpoint import load_teacher  # noqa: E402
from agents.training.train import TrainConfig, train  # noqa: E402
from simcity.config.scenario import Scenario, load_scenario  # noqa: E402
from simcity.env import CityEnv  # noqa: E402
from simcity.errors import SimcityError  # noqa: E402

MODEL = AttentionConfig(d_model=16, num_heads=2, num_layers=1, num_neighbours=4)
# PPO alone; its checkpoint is written after one update of two (mid-episode: 16-step days).
CONFIG = TrainConfig(
    total_steps=96,
    num_envs=2,
    num_steps=24,
    update_epochs=1,
    num_minibatches=2,
    seed=3,
    model=MODEL,
    teacher=TeacherConfig(days=0),
)
TEACHER_RUN = TrainConfig(
    **{
        **CONFIG.__dict__,
        "teacher": TeacherConfig(days=1, dagger_rounds=1, dagger_days=1, epochs=2),
    }
)
NAN, INF = math.nan, math.inf


class StopRunError(Exception):
    pass


def short_tiny() -> Scenario:
    scenario = load_scenario("tiny")
    return scenario.model_copy(update={"time": scenario.time.model_copy(update={"num_steps": 16})})


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Valid files: a PPO checkpoint (with Adam state), a pruned int8 file, a teacher.pt."""
    folder = tmp_path_factory.mktemp("valid")
    scenario = short_tiny()
    result = train(scenario, TrainConfig(**{**CONFIG.__dict__, "total_steps": 48}), folder / "run")
    model = load_checkpoint(result.checkpoint_path).build_model()
    compressed = save_compressed(
        folder / "int8.pt", quantize_int8(prune(model, PrunedShape(1, 16))), method="int8", extra={}
    )
    write = teacher_checkpoint.TeacherCheckpoints.write
    writes = 0

    def write_then_stop(self: Any, *args: Any) -> None:
        nonlocal writes
        write(self, *args)
        writes += 1
        if writes == 2:  # the first fit, one epoch in: samples, Adam and generator states
            raise StopRunError

    teacher_checkpoint.TeacherCheckpoints.write = write_then_stop  # type: ignore[method-assign]
    try:
        with pytest.raises(StopRunError):
            train(scenario, TEACHER_RUN, folder / "teacher", teacher_checkpoint_s=0)
    finally:
        teacher_checkpoint.TeacherCheckpoints.write = write  # type: ignore[method-assign]
    return {
        "checkpoint": result.checkpoint_path,
        "compressed": compressed,
        "teacher": folder / "teacher" / "teacher.pt",
    }


@pytest.fixture(scope="module")
def env() -> CityEnv:
    return CityEnv(short_tiny())


@pytest.fixture(autouse=True)
def keep_torch_rng() -> Any:
    """A resume sets torch's generator; every case starts and ends with the same one."""
    state = torch.get_rng_state()
    yield
    torch.set_rng_state(state)


def raw_of(path: Path) -> dict[str, Any]:
    return torch.load(path, weights_only=True)


def written(tmp_path: Path, payload: Any, name: str = "case.pt") -> Path:
    path = tmp_path / name
    torch.save(payload, path)
    return path


def expect_clear_error(action: Callable[[], Any], path: Path | None = None) -> None:
    """``action`` raises `SimcityError` (naming ``path`` when given) and nothing else."""
    with pytest.raises(SimcityError) as caught:
        action()
    if path is not None:
        assert caught.value.file == str(path), str(caught.value)
    assert "\n" not in str(caught.value)


def loads_or_clear_error(path: Path, env: CityEnv) -> None:
    """Load ``path`` as a policy and play one decision: a finite allocation or a
    `SimcityError`; any other exception fails the case."""
    try:
        policy = load_policy(path, env)
        obs, _ = env.reset(seed=0)
        action = policy.act(obs)
    except SimcityError:
        return
    assert np.all(np.isfinite(action)) and np.all(action >= 0)


# --- model_config --------------------------------------------------------------------

BAD_INTS = [0, -1, 10**5, 2**20, 2**70, 1.5, "8", None, True, NAN, [4], {"n": 4}]
INT_FIELDS = ["d_model", "num_heads", "num_layers", "num_neighbours", "mlp_ratio"]
MODEL_CONFIG_CASES = [(name, value) for name in INT_FIELDS for value in BAD_INTS] + [
    ("num_node_features", 14),
    ("num_node_features", 10**6),
    ("num_global_features", 11),
    ("num_global_features", 0),
    ("dropout", 2.0),
    ("dropout", -0.1),
    ("dropout", NAN),
    ("dropout", INF),
    ("dropout", "0"),
    ("dropout", None),
    ("init_log_std", NAN),
    ("init_log_std", -INF),
    ("init_log_std", 1e9),
    ("init_log_std", "x"),
    ("prior", "psychic"),
    ("prior", 3),
    ("prior", ["risk"]),
    ("unknown_field", 1),
]


@pytest.mark.parametrize(
    ("field", "value"), MODEL_CONFIG_CASES, ids=[f"{f}={v!r}" for f, v in MODEL_CONFIG_CASES]
)
def test_model_config_fields_are_checked_before_building(
    files: dict[str, Path], tmp_path: Path, field: str, value: Any
) -> None:
    for kind in ("checkpoint", "compressed"):
        raw = raw_of(files[kind])
        raw["model_config"][field] = value
        path = written(tmp_path, raw, f"{kind}.pt")
        expect_clear_error(lambda path=path: load_model(path), path)
        if kind == "checkpoint":
            expect_clear_error(lambda path=path: load_checkpoint(path), path)


@pytest.mark.parametrize("value", [[], "config", None, 3, torch.zeros(3)])
def test_a_model_config_that_is_not_a_dict(
    files: dict[str, Path], tmp_path: Path, value: Any
) -> None:
    raw = raw_of(files["checkpoint"])
    raw["model_config"] = value
    path = written(tmp_path, raw)
    expect_clear_error(lambda: load_checkpoint(path), path)


def test_heads_that_do_not_divide_the_width_and_huge_networks() -> None:
    file = Path("x.pt")
    base = {"d_model": 16, "num_heads": 3}
    with pytest.raises(SimcityError, match="do not divide"):
        checks.check_model_config(base, file=file)
    huge = {"d_model": 4096, "num_heads": 4, "num_layers": 64}  # ~13G parameters
    with pytest.raises(SimcityError, match="parameters"):
        checks.check_model_config(huge, file=file)
    # The analytic count is the real one.
    assert checks.parameter_count(MODEL) == sum(
        p.numel() for p in AttentionPolicy(MODEL).parameters()
    )


# --- top-level fields ----------------------------------------------------------------

TOP_LEVEL_CASES = [
    ("step", 1.5),
    ("step", "96"),
    ("step", None),
    ("step", -1),
    ("step", 2**70),
    ("step", True),
    ("step", torch.tensor(96)),
    ("update", 2.0),
    ("update", [2]),
    ("format", 3),
    ("format", "2"),
    ("format", None),
    ("format", torch.tensor(2)),
    ("extra", []),
    ("extra", "x"),
    ("extra", None),
    ("extra", {1: 2}),
    ("optimizer_state", []),
    ("optimizer_state", None),
    ("rng_states", "x"),
    ("state_dict", []),
    ("state_dict", None),
]


@pytest.mark.parametrize(
    ("field", "value"), TOP_LEVEL_CASES, ids=[f"{f}={v!r}" for f, v in TOP_LEVEL_CASES]
)
def test_top_level_fields(files: dict[str, Path], tmp_path: Path, field: str, value: Any) -> None:
    raw = raw_of(files["checkpoint"])
    raw[field] = value
    path = written(tmp_path, raw)
    expect_clear_error(lambda: load_checkpoint(path), path)


@pytest.mark.parametrize(
    "key",
    ["format", "model_config", "state_dict", "optimizer_state", "step", "update", "rng_states"],
)
def test_a_missing_field(files: dict[str, Path], tmp_path: Path, key: str) -> None:
    raw = raw_of(files["checkpoint"])
    del raw[key]
    path = written(tmp_path, raw)
    expect_clear_error(lambda: load_checkpoint(path), path)


@pytest.mark.parametrize("payload", [[], 3, "checkpoint", None, torch.zeros(2), (1, 2)])
def test_a_file_that_is_not_a_dict(tmp_path: Path, payload: Any) -> None:
    path = written(tmp_path, payload)
    expect_clear_error(lambda: load_checkpoint(path), path)
    expect_clear_error(lambda: load_model(path), path)


# --- weights -------------------------------------------------------------------------


def _nan_all(sd: dict[str, Any]) -> None:
    for key in sd:
        sd[key] = torch.full_like(sd[key], NAN)


WEIGHT_CASES: dict[str, Callable[[dict[str, Any]], None]] = {
    "one-nan": lambda sd: sd["node_head.weight"].view(-1).__setitem__(0, NAN),
    "one-inf": lambda sd: sd["blocks.0.mlp.0.bias"].view(-1).__setitem__(3, INF),
    "all-nan": _nan_all,
    "nan-log-std": lambda sd: sd.__setitem__("log_std", torch.tensor(NAN)),
    "wrong-shape": lambda sd: sd.__setitem__("node_embed.weight", torch.zeros(16, 14)),
    "transposed": lambda sd: sd.__setitem__("node_embed.weight", sd["node_embed.weight"].T),
    "float64": lambda sd: sd.__setitem__("norm.weight", sd["norm.weight"].double()),
    "int-tensor": lambda sd: sd.__setitem__("norm.weight", torch.ones(16, dtype=torch.int64)),
    "a-list": lambda sd: sd.__setitem__("norm.weight", [1.0] * 16),
    "a-number": lambda sd: sd.__setitem__("log_std", -0.5),
    "missing-key": lambda sd: sd.pop("norm.bias"),
    "extra-key": lambda sd: sd.__setitem__("evil", torch.zeros(1)),
    "int-key": lambda sd: sd.__setitem__(3, torch.zeros(1)),
    "sparse": lambda sd: sd.__setitem__("norm.weight", sd["norm.weight"].to_sparse()),
    "quantised": lambda sd: sd.__setitem__(
        "norm.weight", torch.quantize_per_tensor(sd["norm.weight"], 0.1, 0, torch.qint8)
    ),
    "huge-stride-view": lambda sd: sd.__setitem__("norm.weight", torch.zeros(1).expand(10**6)),
}


@pytest.mark.parametrize("case", list(WEIGHT_CASES))
def test_bad_weights(files: dict[str, Path], tmp_path: Path, env: CityEnv, case: str) -> None:
    raw = raw_of(files["checkpoint"])
    WEIGHT_CASES[case](raw["state_dict"])
    path = written(tmp_path, raw)
    expect_clear_error(lambda: load_checkpoint(path), path)
    expect_clear_error(lambda: load_policy(path, env), path)


def test_finite_weights_whose_output_overflows_stop_at_act_naming_the_file(
    files: dict[str, Path], tmp_path: Path, env: CityEnv
) -> None:
    raw = raw_of(files["checkpoint"])
    raw["state_dict"]["node_head.weight"].fill_(3e38)
    raw["state_dict"]["node_head.bias"].fill_(3e38)
    path = written(tmp_path, raw)
    for policy in (TrainedPolicy.from_checkpoint(path, env), load_policy(path, env)):
        obs, _ = env.reset(seed=0)
        with pytest.raises(SimcityError, match="not finite") as caught:
            policy.act(obs)
        assert caught.value.file == str(path)


def test_a_policy_too_big_for_the_city_is_refused_before_it_plays(env: CityEnv) -> None:
    wide = AttentionConfig(d_model=4096, num_heads=4, num_layers=1, num_neighbours=256)
    with pytest.raises(SimcityError, match="gather"):
        checks.check_gathered_size(wide, 10**4, file=Path("x.pt"))
    checks.check_gathered_size(MODEL, env.city.num_nodes, file=None)


# --- compressed files ----------------------------------------------------------------


def _packed(sd: dict[str, Any]) -> str:
    return next(k for k in sd if k.endswith("_packed_params._packed_params"))


COMPRESSED_CASES: dict[str, Callable[[dict[str, Any]], None]] = {
    "pruned-0-heads": lambda raw: raw["pruned"].__setitem__("num_heads", 0),
    "pruned-99-heads": lambda raw: raw["pruned"].__setitem__("num_heads", 99),
    "pruned-negative-mlp": lambda raw: raw["pruned"].__setitem__("mlp_hidden", -1),
    "pruned-huge-mlp": lambda raw: raw["pruned"].__setitem__("mlp_hidden", 10**9),
    "pruned-a-list": lambda raw: raw.__setitem__("pruned", [1, 16]),
    "pruned-extra-field": lambda raw: raw["pruned"].__setitem__("evil", 1),
    "pruned-float": lambda raw: raw["pruned"].__setitem__("num_heads", 1.0),
    "int8-a-string": lambda raw: raw.__setitem__("int8", "yes"),
    "int8-false": lambda raw: raw.__setitem__("int8", False),
    "method-unknown": lambda raw: raw.__setitem__("method", "zip"),
    "method-a-tensor": lambda raw: raw.__setitem__("method", torch.zeros(1)),
    "extra-a-list": lambda raw: raw.__setitem__("extra", []),
    "extra-missing": lambda raw: raw.pop("extra"),
    "state-dict-missing": lambda raw: raw.pop("state_dict"),
    "packed-short-tuple": lambda raw: raw["state_dict"].__setitem__(
        _packed(raw["state_dict"]), raw["state_dict"][_packed(raw["state_dict"])][:1]
    ),
    "packed-a-list": lambda raw: raw["state_dict"].__setitem__(
        _packed(raw["state_dict"]), list(raw["state_dict"][_packed(raw["state_dict"])])
    ),
    "packed-nan-bias": lambda raw: raw["state_dict"][_packed(raw["state_dict"])][1].data.fill_(NAN),
    "packed-float-weight": lambda raw: raw["state_dict"].__setitem__(
        _packed(raw["state_dict"]),
        (
            raw["state_dict"][_packed(raw["state_dict"])][0].dequantize(),
            raw["state_dict"][_packed(raw["state_dict"])][1],
        ),
    ),
    "dtype-entry": lambda raw: raw["state_dict"].__setitem__(
        _packed(raw["state_dict"]).removesuffix("._packed_params") + ".dtype", torch.float32
    ),
    "scale-nan": lambda raw: raw["state_dict"].__setitem__(
        _packed(raw["state_dict"]).split("_packed_params")[0] + "scale", torch.tensor(NAN)
    ),
    "zero-point-float": lambda raw: raw["state_dict"].__setitem__(
        _packed(raw["state_dict"]).split("_packed_params")[0] + "zero_point", torch.tensor(0.5)
    ),
    "d-model-32": lambda raw: raw["model_config"].__setitem__("d_model", 32),
}


@pytest.mark.parametrize("case", list(COMPRESSED_CASES))
def test_bad_compressed_files(
    files: dict[str, Path], tmp_path: Path, env: CityEnv, case: str
) -> None:
    raw = raw_of(files["compressed"])
    COMPRESSED_CASES[case](raw)
    path = written(tmp_path, raw)
    expect_clear_error(lambda: load_model(path), path)
    expect_clear_error(lambda: load_policy(path, env), path)


def test_the_valid_files_load_and_play(files: dict[str, Path], env: CityEnv) -> None:
    for kind in ("checkpoint", "compressed"):
        policy = load_policy(files[kind], env)
        obs, _ = env.reset(seed=0)
        assert np.all(np.isfinite(policy.act(obs)))


# --- bytes and paths -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["checkpoint", "compressed", "teacher"])
@pytest.mark.parametrize("keep", [0, 1, 22, 100, 0.5, -1])
def test_truncated_files(files: dict[str, Path], tmp_path: Path, kind: str, keep: float) -> None:
    data = files[kind].read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    path = tmp_path / "cut.pt"
    path.write_bytes(data[:cut])
    expect_clear_error(lambda: load_model(path), path)


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a checkpoint",
        b"PK\x03\x04" + b"\x00" * 100,  # a zip header and nothing
        "checkpoint ✓".encode(),
        pickle.dumps({"format": 2}),  # a plain pickle, not a torch file
        pickle.dumps(Evil()),  # code on load: weights_only refuses it
        bytes(range(256)) * 8,
    ],
    ids=["empty", "text", "zip-header", "unicode", "pickle", "evil-pickle", "byte-ramp"],
)
def test_files_that_are_not_torch_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes
) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    monkeypatch.chdir(tmp_path)
    expect_clear_error(lambda: load_checkpoint(path), path)
    expect_clear_error(lambda: load_model(path), path)
    assert not (tmp_path / "pwned").exists()


def test_an_evil_object_inside_a_torch_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": 2, "extra": Evil()}, path)
    expect_clear_error(lambda: load_checkpoint(path), path)


def test_paths_that_are_not_regular_files(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)
    link = tmp_path / "zero.pt"
    link.symlink_to("/dev/zero")
    for path in (fifo, tmp_path, Path("/dev/zero"), link, tmp_path / "missing.pt"):
        expect_clear_error(lambda path=path: load_checkpoint(path))
        expect_clear_error(lambda path=path: load_model(path))
    monkeypatch.setattr(checks, "POLICY_MAX_BYTES", 1000)
    expect_clear_error(lambda: load_checkpoint(files["checkpoint"]), files["checkpoint"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.binary(max_size=4000))
def test_random_bytes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "random.pt"
    path.write_bytes(content)
    expect_clear_error(lambda: load_model(path), path)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_byte_flips(
    files: dict[str, Path], tmp_path: Path, env: CityEnv, data: st.DataObject
) -> None:
    content = bytearray(
        files[data.draw(st.sampled_from(["checkpoint", "compressed"]))].read_bytes()
    )
    for _ in range(data.draw(st.integers(1, 4))):
        content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path / "flipped.pt"
    path.write_bytes(bytes(content))
    loads_or_clear_error(path, env)


ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from([f.name for f in dataclasses.fields(AttentionConfig)]),
    value=ANY_VALUE,
)
def test_random_model_config_values(
    files: dict[str, Path], tmp_path: Path, env: CityEnv, field: str, value: Any
) -> None:
    raw = raw_of(files["checkpoint"])
    raw["model_config"][field] = value
    path = written(tmp_path, raw)
    loads_or_clear_error(path, env)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field=st.sampled_from(["step", "update", "format", "extra", "rng_states"]), value=ANY_VALUE)
def test_random_top_level_values(
    files: dict[str, Path], tmp_path: Path, env: CityEnv, field: str, value: Any
) -> None:
    raw = raw_of(files["checkpoint"])
    raw[field] = value
    path = written(tmp_path, raw)
    loads_or_clear_error(path, env)


# --- resume: optimizer, RNG and run state --------------------------------------------


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        target = raw
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _drop(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        target = raw
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


OPT = ("optimizer_state",)
GROUP = (*OPT, "param_groups", 0)
ENTRY = (*OPT, "state", 0)
RESUME_CASES: dict[str, Callable[[dict[str, Any]], None]] = {
    "optimizer-empty": _set(OPT, {}),
    "optimizer-no-groups": _set((*OPT, "param_groups"), []),
    "optimizer-two-groups": lambda raw: raw["optimizer_state"]["param_groups"].append(
        copy.deepcopy(raw["optimizer_state"]["param_groups"][0])
    ),
    "optimizer-group-a-list": _set(GROUP, [1, 2]),
    "optimizer-params-short": _set((*GROUP, "params"), [0, 1]),
    "optimizer-params-strings": _set((*GROUP, "params"), ["a"]),
    "optimizer-lr-nan": _set((*GROUP, "lr"), NAN),
    "optimizer-lr-string": _set((*GROUP, "lr"), "fast"),
    "optimizer-betas-one": _set((*GROUP, "betas"), (0.9,)),
    "optimizer-betas-tensor": _set((*GROUP, "betas"), torch.tensor([0.9, 0.999])),
    "optimizer-eps-none": _set((*GROUP, "eps"), None),
    "optimizer-amsgrad-on": _set((*GROUP, "amsgrad"), True),
    "optimizer-unknown-setting": _set((*GROUP, "evil"), 1),
    "optimizer-state-a-list": _set((*OPT, "state"), []),
    "optimizer-state-key-999": lambda raw: raw["optimizer_state"]["state"].__setitem__(
        999, raw["optimizer_state"]["state"][0]
    ),
    "optimizer-state-key-string": lambda raw: raw["optimizer_state"]["state"].__setitem__(
        "0", raw["optimizer_state"]["state"][0]
    ),
    "optimizer-entry-empty": _set(ENTRY, {}),
    "optimizer-entry-no-exp-avg": _drop((*ENTRY, "exp_avg")),
    "optimizer-step-int": _set((*ENTRY, "step"), 3),
    "optimizer-step-nan": _set((*ENTRY, "step"), torch.tensor(NAN)),
    "optimizer-step-vector": _set((*ENTRY, "step"), torch.ones(3)),
    "optimizer-exp-avg-shape": _set((*ENTRY, "exp_avg"), torch.zeros(3, 3)),
    "optimizer-exp-avg-nan": lambda raw: raw["optimizer_state"]["state"][0]["exp_avg"].fill_(NAN),
    "optimizer-exp-avg-sq-negative": lambda raw: raw["optimizer_state"]["state"][0][
        "exp_avg_sq"
    ].fill_(-1.0),
    "optimizer-exp-avg-float64": lambda raw: raw["optimizer_state"]["state"][0].__setitem__(
        "exp_avg", raw["optimizer_state"]["state"][0]["exp_avg"].double()
    ),
    "rng-empty": _set(("rng_states",), {}),
    "rng-a-list": _set(("rng_states", "torch"), []),
    "rng-float": _set(("rng_states", "torch"), torch.zeros(5056)),
    "rng-short": _set(("rng_states", "torch"), torch.zeros(10, dtype=torch.uint8)),
    "rng-2d": _set(("rng_states", "torch"), torch.zeros(2, 2528, dtype=torch.uint8)),
    "returns-std-missing": _drop(("extra", "returns_std")),
    "returns-std-short": _set(("extra", "returns_std"), [1.0, 2.0]),
    "returns-std-nan": _set(("extra", "returns_std"), [NAN, 0.0, 0.0]),
    "returns-std-negative": _set(("extra", "returns_std"), [-1.0, 0.0, 0.0]),
    "returns-std-string": _set(("extra", "returns_std"), "std"),
    "actions-missing": _drop(("extra", "episode_actions")),
    "actions-wrong-shape": _set(("extra", "episode_actions"), torch.zeros(3, 2, 5)),
    "actions-nan": lambda raw: raw["extra"]["episode_actions"].fill_(NAN),
    "actions-float64": lambda raw: raw["extra"].__setitem__(
        "episode_actions", raw["extra"]["episode_actions"].double()
    ),
    "actions-a-list": _set(("extra", "episode_actions"), []),
    "train-config-missing": _drop(("extra", "train_config")),
    "train-config-a-list": _set(("extra", "train_config"), []),
    "train-config-tensor-seed": _set(("extra", "train_config", "seed"), torch.tensor(3)),
    "train-config-other-seed": _set(("extra", "train_config", "seed"), 4),
    "train-config-float-seed": _set(("extra", "train_config", "seed"), 3.5),
    "scenario-tensor": _set(("extra", "scenario"), torch.zeros(1)),
    "scenario-other": _set(("extra", "scenario"), "downtown"),
    "step-inconsistent": _set(("step",), 5),
}


def _resume(path: Path) -> None:
    torch.manual_seed(0)
    learner = make_learner(AttentionPolicy(MODEL), CONFIG, short_tiny_city())
    restore_run(path, CONFIG, short_tiny().name, learner, 16)


_CITY: list[Any] = []


def short_tiny_city() -> Any:
    if not _CITY:
        _CITY.append(CityEnv(short_tiny()).city)
    return _CITY[0]


def test_the_valid_checkpoint_resumes(files: dict[str, Path]) -> None:
    _resume(files["checkpoint"])


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_checks_what_it_restores(files: dict[str, Path], tmp_path: Path, case: str) -> None:
    raw = raw_of(files["checkpoint"])
    assert raw["optimizer_state"]["state"], "the valid checkpoint has Adam state"
    RESUME_CASES[case](raw)
    path = written(tmp_path, raw)
    expect_clear_error(lambda: _resume(path), path)


# --- teacher checkpoints -------------------------------------------------------------

TEACHER_CASES: dict[str, Callable[[dict[str, Any]], None]] = {
    "round-99": _set(("round",), 99),
    "round-negative": _set(("round",), -1),
    "round-float": _set(("round",), 0.0),
    "days-done-99": _set(("days_done",), 99),
    "epochs-done-99": _set(("epochs_done",), 99),
    "epochs-before-days": lambda raw: raw.update(round=1, days_done=0, epochs_done=1),
    "nodes-wrong-shape": _set(("nodes",), torch.zeros(3, 4, 5)),
    "nodes-nan": lambda raw: raw["nodes"].view(-1).__setitem__(0, NAN),
    "targets-inf": lambda raw: raw["targets"].view(-1).__setitem__(0, INF),
    "globals-a-list": _set(("globals",), [[0.0]]),
    "losses-too-many": _set(("losses",), [0.1, 0.2, 0.3]),
    "epoch-losses-nan": _set(("epoch_losses",), [NAN]),
    "generator-short": _set(("generator_state",), torch.zeros(3, dtype=torch.uint8)),
    "rng-float": _set(("rng_state",), torch.zeros(5056)),
    "fit-optimizer-none": _set(("fit_optimizer",), None),
    "fit-optimizer-garbage": _set(("fit_optimizer",), {"state": 3, "param_groups": "x"}),
    "fit-optimizer-nan": lambda raw: next(iter(raw["fit_optimizer"]["state"].values()))[
        "exp_avg"
    ].fill_(NAN),
    "train-config-other": _set(("train_config", "seed"), 9),
    "scenario-other": _set(("scenario",), "downtown"),
    "format-other": _set(("format",), "simcity-teacher/0"),
    "format-tensor": _set(("format",), torch.zeros(1)),
    "state-dict-nan": lambda raw: raw["state_dict"]["log_std"].fill_(NAN),
    "model-config-other": _set(("model_config", "d_model"), 32),
    "missing-samples": _drop(("nodes",)),
}


@pytest.mark.parametrize("case", list(TEACHER_CASES))
def test_teacher_checkpoints_are_checked(files: dict[str, Path], tmp_path: Path, case: str) -> None:
    raw = raw_of(files["teacher"])
    assert raw["fit_optimizer"] is not None and raw["epochs_done"] == 1
    TEACHER_CASES[case](raw)
    path = written(tmp_path, raw, "teacher.pt")
    city = short_tiny_city()
    expect_clear_error(
        lambda: load_teacher(path, AttentionPolicy(MODEL), TEACHER_RUN, "tiny", city.num_nodes, 16),
        path,
    )


def test_the_valid_teacher_checkpoint_loads(files: dict[str, Path]) -> None:
    city = short_tiny_city()
    progress = load_teacher(
        files["teacher"], AttentionPolicy(MODEL), TEACHER_RUN, "tiny", city.num_nodes, 16
    )
    assert (progress.round, progress.days_done, progress.epochs_done) == (0, 1, 1)
    assert len(progress.samples) == 16
