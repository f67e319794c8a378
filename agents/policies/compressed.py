"""Cheaper policies: int8 dynamic quantisation, structured pruning, and their files.

Dims: B batch, N nodes, D model width, H heads kept, Dh head width, K neighbours.

Int8 (`quantize_int8`): every ``nn.Linear`` becomes a dynamically quantised one
(``torch.ao.quantization.quantize_dynamic``): int8 weights, activations quantised per call,
int8 matmuls. `torch.utils.flop_counter` does not see those matmuls, so `policy_cost`
counts them apart, as int8 ops (2 per multiply-add, from the layers' shapes), and the
device bills them at its int8 rate (`simcity.config.devices.DeviceProfile.billed_flop`).
Those kernels exist on the CPU only, so an int8 policy's ``device`` is a CPU profile
(`CompressedPolicy`), where `simcity compress` bills it at its measured latency.

Pruning (`prune`): whole units go, so the layers really shrink and the FLOPs fall. In every
block the ``mlp_hidden`` MLP hidden units with the largest ``|w_in| * |w_out|`` (the L2 norms
of a unit's input row and output column) and the ``num_heads`` attention heads with the
largest ``|q, k, v rows| * |proj columns|`` are kept, in their original order, the same
number in every layer. A head keeps its width Dh, so the attention's inner width becomes
H * Dh, which `AttentionConfig` cannot say yet (it ties it to ``d_model``): pruned blocks
are rebuilt with `PrunedAttention` and smaller MLP layers, and saved in the compressed file
format below with their `PrunedShape`.

Files. Distilled policies are ordinary checkpoints (`agents.policies.checkpoint`). Pruned and int8
ones are ``{"format": COMPRESSED_FORMAT, "method", "model_config", "pruned", "int8",
"state_dict", "extra"}``: tensors, numbers, strings and dicts only (quantised tensors and
``torch.dtype`` are on torch's ``weights_only`` allow-list), so they load with
``torch.load(weights_only=True)`` into a skeleton rebuilt from the config. `load_policy`
plays either kind and bills its real cost.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, cast

import torch
from torch import nn

from agents.policies.attention import (
    AttentionConfig,
    AttentionPolicy,
    Block,
    NeighbourhoodAttention,
    count_flops_per_decision,
)
from agents.policies.checkpoint import TrainedPolicy, load_checkpoint, save_torch_atomic
from agents.policies.checks import (
    check_dict,
    check_int,
    check_like,
    check_model_config,
    read_torch_file,
)
from simcity.config.devices import DeviceProfile, device_profile
from simcity.env import CityEnv
from simcity.errors import SimcityError
from simcity.safe_io import excerpt

COMPRESSED_FORMAT = "simcity-compressed/1"
METHODS = ("int8", "prune", "distill")
EXPECTED_POLICY = "a checkpoint from `simcity train` or a file from `simcity compress`"


@dataclass(frozen=True)
class PrunedShape:
    """Units kept in every block: attention heads (each Dh wide) and MLP hidden units."""

    num_heads: int
    mlp_hidden: int


class PrunedAttention(NeighbourhoodAttention):
    """`NeighbourhoodAttention` with ``num_heads`` heads of the original width Dh."""

    def __init__(self, config: AttentionConfig, num_heads: int) -> None:
        super().__init__(config)
        inner = num_heads * config.head_dim
        self.num_heads = num_heads
        self.qkv = nn.Linear(config.d_model, 3 * inner)
        self.proj = nn.Linear(inner, config.d_model)
        hidden = _linear(self.bias.net[0]).out_features
        self.bias.net[2] = nn.Linear(hidden, num_heads)


def _linear(module: nn.Module) -> nn.Linear:
    assert isinstance(module, nn.Linear), type(module)
    return module


def _blocks(model: AttentionPolicy) -> list[Block]:
    return [cast(Block, block) for block in model.blocks]


def pruned_shape(model: AttentionPolicy) -> PrunedShape | None:
    """The model's `PrunedShape`, or None when it has its config's full widths (int8 too)."""
    c = model.config
    first = _blocks(model)[0]
    mlp_hidden = int(cast(Any, first.mlp[0]).out_features)  # nn.Linear or int8 Linear
    shape = PrunedShape(first.attention.num_heads, mlp_hidden)
    return None if shape == PrunedShape(c.num_heads, c.mlp_ratio * c.d_model) else shape


def prune(model: AttentionPolicy, shape: PrunedShape) -> AttentionPolicy:
    """A copy of ``model`` keeping, in every block, the largest-norm heads and MLP units."""
    c = model.config
    current = pruned_shape(model) or PrunedShape(c.num_heads, c.mlp_ratio * c.d_model)
    if not 1 <= shape.num_heads <= current.num_heads:
        raise SimcityError(
            f"keeps {shape.num_heads} heads", field="heads", expected=f"1..{current.num_heads}"
        )
    if not 1 <= shape.mlp_hidden <= current.mlp_hidden:
        raise SimcityError(
            f"keeps {shape.mlp_hidden} units",
            field="mlp_hidden",
            expected=f"1..{current.mlp_hidden}",
        )
    pruned = copy.deepcopy(model)
    Dh = c.head_dim
    with torch.no_grad():
        for block in _blocks(pruned):
            old = block.attention
            qkv_w, proj_w = old.qkv.weight, old.proj.weight  # (3 H Dh, D), (D, H Dh)
            heads = qkv_w.view(3, current.num_heads, Dh, c.d_model)
            score = heads.pow(2).sum(dim=(0, 2, 3)).sqrt() * (
                proj_w.view(c.d_model, current.num_heads, Dh).pow(2).sum(dim=(0, 2)).sqrt()
            )  # (H,)
            keep = score.topk(shape.num_heads).indices.sort().values  # (H',)
            rows = (
                torch.arange(3).view(3, 1, 1) * current.num_heads * Dh
                + keep.view(1, -1, 1) * Dh
                + torch.arange(Dh).view(1, 1, Dh)
            ).reshape(-1)  # (3 H' Dh,)
            cols = (keep.view(-1, 1) * Dh + torch.arange(Dh).view(1, Dh)).reshape(-1)
            new = PrunedAttention(c, shape.num_heads)
            _copy_linear(new.qkv, old.qkv, rows=rows)
            _copy_linear(new.proj, old.proj, cols=cols)
            new.bias.net[0].load_state_dict(old.bias.net[0].state_dict())
            _copy_linear(_linear(new.bias.net[2]), _linear(old.bias.net[2]), rows=keep)
            block.attention = new

            first, second = _linear(block.mlp[0]), _linear(block.mlp[2])  # (h, D), (D, h)
            unit = first.weight.norm(dim=1) * second.weight.norm(dim=0)  # (hidden,)
            kept = unit.topk(shape.mlp_hidden).indices.sort().values
            block.mlp[0] = nn.Linear(c.d_model, shape.mlp_hidden)
            block.mlp[2] = nn.Linear(shape.mlp_hidden, c.d_model)
            _copy_linear(_linear(block.mlp[0]), first, rows=kept)
            _copy_linear(_linear(block.mlp[2]), second, cols=kept)
    return pruned.eval()


def _copy_linear(
    new: nn.Linear,
    old: nn.Linear,
    rows: torch.Tensor | None = None,
    cols: torch.Tensor | None = None,
) -> None:
    weight = old.weight if rows is None else old.weight[rows]
    new.weight.copy_(weight if cols is None else weight[:, cols])
    new.bias.copy_(old.bias if rows is None else old.bias[rows])


@contextmanager
def _quiet_quantization() -> Iterator[None]:
    """torch.ao.quantization warns that it is deprecated on every call; it still works in
    the pinned torch, and its successor (torchao) is not a dependency."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\..*")
        warnings.filterwarnings("ignore", message=r".*(quantiz|TypedStorage).*")
        yield


def quantize_int8(model: AttentionPolicy) -> AttentionPolicy:
    """A copy of ``model`` with every ``nn.Linear`` dynamically quantised to int8."""
    from torch.ao.quantization import quantize_dynamic

    with _quiet_quantization():
        quantized = quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
    assert isinstance(quantized, AttentionPolicy)
    return quantized.eval()


def _int8_linears(model: nn.Module) -> list[nn.Module]:
    with _quiet_quantization():
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    return [m for m in model.modules() if isinstance(m, DynamicLinear)]


def is_int8(model: nn.Module) -> bool:
    return bool(_int8_linears(model))


class PolicyCost(NamedTuple):
    """Size and cost of one decision (B = 1) of a policy network."""

    num_params: int
    weight_bytes: int  # parameters and int8 weights as stored
    flop: int  # floating-point FLOPs (FlopCounterMode, attention products included)
    int8_op: int  # int8 ops of the quantised matmuls (2 per multiply-add)

    def billed_flop(self, device: DeviceProfile) -> float:
        """FLOP-equivalents at ``device``'s precision: what the env is told to bill."""
        return device.billed_flop(self.flop, self.int8_op)


def policy_cost(
    model: AttentionPolicy,
    num_nodes: int,
    neighbours: torch.Tensor,
    distances: torch.Tensor,
    flop: int | None = None,
) -> PolicyCost:
    """Parameters, bytes, FLOPs and int8 ops of one decision on ``num_nodes`` nodes.

    ``flop``: the model's FLOPs per decision already counted
    (`agents.policies.attention.count_flops_per_decision`), so a float model is not run
    through the counter again; an int8 one is (its int8 ops are counted in that pass)."""
    linears = _int8_linears(model)
    int8_op = 0
    if flop is not None and not linears:
        return _sizes(model, linears, flop, int8_op)

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal int8_op
        linear = cast(Any, module)  # an int8 Linear: in_features, out_features are ints
        rows = inputs[0].numel() // linear.in_features
        int8_op += 2 * rows * linear.in_features * linear.out_features

    hooks = [m.register_forward_hook(count) for m in linears]
    try:
        with _quiet_quantization():
            flop = count_flops_per_decision(model, num_nodes, neighbours, distances)
    finally:
        for hook in hooks:
            hook.remove()
    return _sizes(model, linears, int(flop), int8_op)


def _sizes(model: AttentionPolicy, linears: list[nn.Module], flop: int, int8_op: int) -> PolicyCost:
    params = [p for p in model.parameters()]
    num_params = sum(p.numel() for p in params)
    weight_bytes = sum(p.numel() * p.element_size() for p in params)
    for m in linears:
        fan_in, fan_out = int(cast(Any, m).in_features), int(cast(Any, m).out_features)
        num_params += fan_in * fan_out + fan_out
        weight_bytes += fan_in * fan_out + 4 * fan_out  # int8 weights, fp32 biases
    return PolicyCost(num_params, weight_bytes, flop, int8_op)


def env_device(env: CityEnv) -> DeviceProfile:
    """The device profile ``env``'s scenario bills its compute on."""
    compute = env.scenario.compute
    return device_profile(compute.device, compute.devices_file)


def policy_device(env: CityEnv) -> DeviceProfile:
    """The profile ``env``'s scenario runs the policy on (``policy_device``, else ``device``)."""
    compute = env.scenario.compute
    return device_profile(compute.policy_device or compute.device, compute.devices_file)


CPU_DEVICE = "epyc_9654_2s"
"""The CPU profile int8 policies run on unless told otherwise: torch's dynamic quantisation
(`quantize_int8`) has CPU kernels only. A profile from `simcity calibrate --device cpu` is
this machine's; the shipped one is a datasheet server CPU."""


def find_profile(name: str, env: CityEnv) -> DeviceProfile:
    """The profile ``name`` from ``env``'s scenario's devices file, else a shipped one."""
    devices_file = env.scenario.compute.devices_file
    if devices_file is not None:
        try:
            return device_profile(name, devices_file)
        except SimcityError as err:
            if not err.message.startswith("unknown device"):  # a broken file, not a miss
                raise
    return device_profile(name)


class CompressedPolicy(TrainedPolicy):
    """A `TrainedPolicy` whose ``flops_per_decision`` counts int8 ops at the env's device's
    int8 rate (`PolicyCost.billed_flop`): the env bills the real cost. An int8 model runs on
    the CPU (dynamic quantisation has no GPU kernels): its ``device`` is the CPU profile
    ``cpu_device`` (`find_profile`), which must execute int8."""

    def __init__(
        self,
        model: AttentionPolicy,
        env: CityEnv,
        name: str = "compressed",
        *,
        cpu_device: str = CPU_DEVICE,
        source: str | Path | None = None,
    ) -> None:
        super().__init__(model, env, name, source=source)
        self.cost = policy_cost(
            model, self.num_nodes, self.neighbours, self.distances, self.flops_per_decision
        )
        self.flops_per_decision = round(self.cost.billed_flop(env_device(env)))
        if self.cost.int8_op:
            cpu = find_profile(cpu_device, env)
            if not cpu.executes("int8"):
                raise SimcityError(
                    f"{cpu.name} does not execute int8 (formats {list(cpu.executed_formats)})",
                    field="cpu_device",
                    expected="a CPU profile whose formats include int8",
                )
            self.device = cpu.name
            self.precision = "int8"


# --- files -------------------------------------------------------------------------


def save_compressed(
    path: str | Path, model: AttentionPolicy, *, method: str, extra: dict[str, Any]
) -> Path:
    """Write a pruned and/or int8 ``model`` atomically to ``path`` (module doc's format)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = pruned_shape(model)
    payload = {
        "format": COMPRESSED_FORMAT,
        "method": method,
        "model_config": dataclasses.asdict(model.config),
        "pruned": None if shape is None else dataclasses.asdict(shape),
        "int8": is_int8(model),
        "state_dict": model.state_dict(),
        "extra": extra,
    }
    return save_torch_atomic(payload, path)


def load_model(path: str | Path) -> tuple[AttentionPolicy, dict[str, Any]]:
    """The network in a checkpoint or compressed file, in eval mode, and the file's extra.

    The file is read through `simcity.safe_io` and every field checked
    (`agents.policies.checks`) before the network is built: a `SimcityError` naming the file
    and field for anything that does not fit, weights that are not finite included.
    """
    path = Path(path)
    raw = read_torch_file(path, expected=EXPECTED_POLICY, kind="policy")
    if not (isinstance(raw, dict) and raw.get("format") == COMPRESSED_FORMAT):
        checkpoint = load_checkpoint(path)
        return checkpoint.build_model(), dict(checkpoint.extra)
    for key in ("method", "model_config", "pruned", "int8", "state_dict", "extra"):
        if key not in raw:
            raise SimcityError("missing", file=path, field=key, expected=EXPECTED_POLICY)
    if not isinstance(raw["method"], str) or raw["method"] not in METHODS:
        raise SimcityError(
            f"is {excerpt(raw['method'])}", file=path, field="method", expected=f"one of {METHODS}"
        )
    config = check_model_config(raw["model_config"], file=path)
    shape = _check_pruned(raw["pruned"], config, path)
    if type(raw["int8"]) is not bool:
        raise SimcityError(f"is {excerpt(raw['int8'])}", file=path, field="int8", expected="a bool")
    extra = check_dict(raw["extra"], file=path, field="extra")
    model = AttentionPolicy(config)
    if shape is not None:
        model = prune(model, shape)
    if raw["int8"]:
        model = quantize_int8(model)
    with _quiet_quantization():
        check_like(model.state_dict(), raw["state_dict"], file=path, field="state_dict")
        try:
            model.load_state_dict(raw["state_dict"])
        except (RuntimeError, KeyError, TypeError, ValueError) as err:
            first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise SimcityError(
                excerpt(first_line, 120),
                file=path,
                field="state_dict",
                expected="weights fitting the config",
            ) from None
    return model.eval(), dict(extra)


def _check_pruned(raw: Any, config: AttentionConfig, path: Path) -> PrunedShape | None:
    """The file's `PrunedShape` (None: not pruned), within ``config``'s widths."""
    if raw is None:
        return None
    raw = check_dict(raw, file=path, field="pruned")
    names = {f.name for f in dataclasses.fields(PrunedShape)}
    if set(raw) != names:
        raise SimcityError(
            f"has fields {excerpt(sorted(raw))}", file=path, field="pruned", expected=str(names)
        )
    return PrunedShape(
        num_heads=check_int(
            raw["num_heads"], file=path, field="pruned.num_heads", low=1, high=config.num_heads
        ),
        mlp_hidden=check_int(
            raw["mlp_hidden"],
            file=path,
            field="pruned.mlp_hidden",
            low=1,
            high=config.mlp_ratio * config.d_model,
        ),
    )


def load_policy(
    path: str | Path, env: CityEnv, name: str | None = None, *, cpu_device: str = CPU_DEVICE
) -> CompressedPolicy:
    """Play a checkpoint or compressed file in ``env``; its ``flops_per_decision`` is the
    FLOP-equivalent the env bills (int8 ops at the device's int8 rate); an int8 one runs on
    ``cpu_device``."""
    model, _ = load_model(path)
    return CompressedPolicy(model, env, name or Path(path).stem, cpu_device=cpu_device, source=path)
