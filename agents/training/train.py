"""PPO for the graph-attention policy in `CityEnv`, in one loop read top to bottom.

Shapes: T rollout steps per env, E parallel envs, N nodes, F node features, G global
features, M samples in one minibatch.

Credit per node. With ``TrainConfig.node_credit`` (the default) every action slot is
credited with its own cost, as in multi-agent PPO with shared weights (one "agent" per
node): the env's ``info["node_cost"]`` splits each step's cost over the nodes (the damage
of incidents there, its estimation error, compute in proportion to its units), node i's
log-weight is trained on the advantage of its own cost under its own value head, and the
"unused" slot on the whole city's reward. A node's allocation mostly changes its own
incidents' detection, so this cuts the variance of a 225-dimensional joint action's
policy gradient by orders of magnitude; what it leaves out is a node's effect on its
neighbours (monitoring spill) and, through the shared budget, on every other node. With
``node_credit=False`` it is textbook PPO on the joint action (summed log-probabilities,
one value). Value targets are divided by a running std of the returns (`RunningStd`).

Budget coupling. The nodes share one budget (the shares are a softmax of the log-weights),
so a node that takes more leaves less to the rest. With ``TrainConfig.budget_coupling``
(the default) each node's advantage also carries what its extra share cost the other
nodes (`agents.training.ppo_math.couple_budget`), which makes the per-node policy gradients add
up to the city's. Without it per-node credit is biased: every node is pulled up by its
own marginal benefit and down by its own compute bill, whatever the others lose. On
``downtown`` (20k steps, 24 held-out days, 8 epochs, std e^-1) the coupling took the
trained policy from 18% to 37% of the uniform-to-oracle gap; with 4 epochs and std
e^-0.5 (the defaults) to 45%. ``TrainConfig.spill_credit`` also credits a node with the
watch its units spill onto its neighbours (``monitoring.spill``); it is exact in the
same sense (tests) but measured no gain there (44% vs 45%), so it is off by default.

Twin rollouts. With ``TrainConfig.twins`` (the default) env i and env i + E/2 play the
same day (the same reset seed) and explore with opposite noise (log-weights
``logits ± std * eps``). `CityEnv` gives runs from one seed the same incidents with the
same detection luck (`simcity.monitoring.incidents`, "Common random numbers"), so the difference
of the twins' advantages (`agents.training.ppo_math.mirrored_advantages`) keeps what the
allocations did and drops which incidents happened: antithetic sampling, a baseline
that cancels exactly in the gradient of the mean action. The exploration std is fixed
(its gradient cancels over a pair too); the critic still learns, for GAE.

Teacher. With ``TrainConfig.teacher`` (days > 0) a fresh network (no ``init_from``)
first learns the allocation of a privileged teacher, a Bayes search that knows the true
arrival rates and reads the sensors' evidence, by DAgger on training days
(`agents.policies.teacher`), and PPO starts from there; its first ``teacher.critic_updates``
updates train only the value head (the distilled actor has no critic yet, and the value
loss through the shared layers otherwise undoes the teacher's lesson in one update:
approx. KL 80), and PPO's learning rate is then ``teacher.ppo_lr``, smaller than a run
from scratch needs. A resume skips the teacher (the checkpoint holds its result).

Resume semantics. ``train(..., resume=True)`` continues from ``out_dir/checkpoint.pt`` and
ends with the same parameters, bit for bit, as an uninterrupted run with the same
`TrainConfig`. The checkpoint holds the weights, the Adam state, the step and update
counts, torch's RNG state, and the actions taken so far in the episodes under way. Env
state is not pickled: every episode starts from ``reset(seed=episode_seed(seed, env, k))``
and `CityEnv` is deterministic given its seed and its actions, so a resumed run rebuilds
the envs by resetting them with the same seeds and replaying those actions. This relies on
every env's episodes having one fixed length (`CityEnv` days truncate after
``time.num_steps`` and never terminate), so all envs start their episodes together.
A resume with a larger ``total_steps`` keeps going but anneals the learning rate over the
new length, so it is no longer identical to any uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from agents.policies.attention import (
    AttentionPolicy,
    PolicyOutput,
    action_distribution,
    count_flops_per_decision,
    to_weights,
)
from agents.policies.checkpoint import city_neighbours, load_checkpoint, save_checkpoint
from agents.training.config import TrainConfig
from agents.training.ppo_math import (
    RunningStd,
    compute_gae,
    couple_budget,
    linear_schedule,
    mirrored_advantages,
    ppo_loss,
)
from agents.training.teacher import pretrain_from_teacher
from agents.training.train_io import (
    UpdateStats,
    append_progress,
    check_resumable,
    start_progress_file,
    tensorboard_writer,
)
from simcity.config.scenario import Scenario, load_scenario
from simcity.env import CityEnv
from simcity.monitoring.monitor import neighbour_mean

CHECKPOINT_NAME = "checkpoint.pt"
PROGRESS_NAME = "progress.csv"


@dataclass(frozen=True)
class TrainResult:
    """Where the run wrote its files and how far it got."""

    checkpoint_path: Path
    progress_path: Path
    step: int
    update: int
    last: UpdateStats | None  # None when a resume found nothing left to do


TEACHER_ENV_INDEX = 1_000_000
"""`episode_seed`'s env index for the teacher's days: no vector env has that many envs."""


def episode_seed(seed: int, env_index: int, episode: int) -> int:
    """Reset seed of episode ``episode`` of env ``env_index``: a hash, so runs never overlap."""
    return int(np.random.SeedSequence([seed, env_index, episode]).generate_state(1)[0])


def slot_rewards(
    reward: np.ndarray, node_cost: np.ndarray, scale: float, node_credit: bool
) -> torch.Tensor:
    """Rewards per action slot (E, S) from the env's reward (E,) and ``node_cost`` (E, N).

    With ``node_credit``, S = N + 1: node i earns ``-node_cost_i * scale * N`` (its own
    cost, scaled so that the mean over nodes equals the env's reward) and the "unused"
    slot the env's reward. Otherwise S = 1: the env's reward.
    """
    if not node_credit:
        return torch.as_tensor(reward, dtype=torch.float32).unsqueeze(1)  # (E, 1)
    n = node_cost.shape[1]
    per_node = -np.asarray(node_cost, dtype=np.float64) * scale * n  # (E, N)
    return torch.as_tensor(np.concatenate([per_node, reward[:, None]], axis=1), dtype=torch.float32)


def train(
    scenario: str | Path | Scenario,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: Callable[[UpdateStats], None] | None = None,
) -> TrainResult:
    """Train an `AttentionPolicy` with PPO; write ``checkpoint.pt`` and ``progress.csv``.

    ``progress`` is called after every update. See the module doc for ``resume``.
    """
    torch.set_num_threads(1)  # small matrices: threads cost more than they give, and vary results
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path, progress_path = out_dir / CHECKPOINT_NAME, out_dir / PROGRESS_NAME
    scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    T, E = config.num_steps, config.num_envs

    # Envs: one city shared by all; we reset them ourselves to choose every episode's seed.
    first = CityEnv(scenario)
    city, day_len = first.city, scenario.time.num_steps
    envs: VectorEnv
    if config.async_envs:  # one worker process per env; results are the same
        envs = AsyncVectorEnv(
            [lambda: CityEnv(scenario, city=city) for _ in range(E)],
            autoreset_mode=AutoresetMode.DISABLED,
        )
    else:
        envs = SyncVectorEnv(
            [lambda: first] + [lambda: CityEnv(scenario, city=city) for _ in range(E - 1)],
            autoreset_mode=AutoresetMode.DISABLED,
        )
    N = city.num_nodes
    S = N + 1 if config.node_credit else 1  # action slots credited separately

    def per_slot(tensor: torch.Tensor) -> torch.Tensor:
        """Per-slot log-probs or values (..., N + 1) as the (..., S) the loss uses."""
        if config.node_credit:
            return tensor
        return tensor.sum(-1, keepdim=True)  # joint log-probability

    def slot_values(value: torch.Tensor) -> torch.Tensor:
        return value if config.node_credit else value[..., -1:]  # (..., S)

    # Model, optimiser, and everything a resume restores.
    torch.manual_seed(config.seed)
    model = AttentionPolicy(config.model)
    if config.init_from is not None:  # fine-tuning: start from another run's weights
        model.load_state_dict(
            load_checkpoint(config.init_from, expected_config=config.model).state_dict
        )
    if config.learns_from_teacher and not resume:  # learn the teacher's allocation first
        plan = config.teacher
        days = plan.days + plan.dagger_rounds * plan.dagger_days
        seeds = [episode_seed(config.seed, TEACHER_ENV_INDEX, k) for k in range(days)]
        pretrain_from_teacher(model, first, plan, seeds)
    if config.freeze_encoder:
        for module in (model.node_embed, model.global_embed, model.blocks):
            module.requires_grad_(False)
    if config.twins:  # its gradient cancels over a pair; minibatches would only add noise
        model.log_std.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    critic = {id(p) for p in model.value_head.parameters()}
    actor_parameters = [p for p in trainable if id(p) not in critic]
    optimizer = torch.optim.Adam(trainable, lr=config.ppo_lr, eps=1e-5)
    neighbours, distances = city_neighbours(city, config.model.num_neighbours)  # (N, K) x 2
    flops = count_flops_per_decision(model, N, neighbours, distances)
    returns_std = RunningStd()
    update, step = 0, 0
    episode_actions = torch.zeros(0, E, N + 1)  # (S, E, N + 1) of the episodes under way
    if resume:
        checkpoint = load_checkpoint(checkpoint_path, expected_config=config.model)
        update, step = checkpoint.update, checkpoint.step
        episode_actions = check_resumable(
            checkpoint, config, scenario.name, ((step // E) % day_len, E, N + 1)
        )
        model.load_state_dict(checkpoint.state_dict)
        optimizer.load_state_dict(checkpoint.optimizer_state)
        torch.set_rng_state(checkpoint.rng_states["torch"])
        returns_std = RunningStd(*checkpoint.extra["returns_std"])
    start_progress_file(progress_path, keep_through_update=update if resume else 0)
    board = tensorboard_writer(out_dir)
    reward_scale = scenario.reward.scale

    def reset_envs() -> dict[str, np.ndarray]:
        episode = (step // E) // day_len
        days = [i % (E // 2) if config.twins else i for i in range(E)]  # twins: same day
        seeds: list[int | None] = [episode_seed(config.seed, d, episode) for d in days]
        obs, _ = envs.reset(seed=seeds, options={"policy_flop_per_decision": flops})
        return obs

    def act(obs: dict[str, np.ndarray]) -> PolicyOutput:
        return model(
            torch.as_tensor(obs["nodes"]), torch.as_tensor(obs["globals"]), neighbours, distances
        )

    obs = reset_envs()
    spill = scenario.monitoring.spill if config.spill_credit else 0.0
    spill_matrix = None  # (N, N) sparse neighbour mean, for the spill credit
    if config.spill_credit:
        w = neighbour_mean(city).tocoo()
        index = torch.as_tensor(np.vstack([w.row, w.col]), dtype=torch.long)
        spill_matrix = torch.sparse_coo_tensor(
            index, torch.as_tensor(w.data, dtype=torch.float32), (N, N), check_invariants=True
        ).coalesce()
    episode_return = np.zeros(E)
    for action in episode_actions:  # replay the episodes under way at the checkpoint
        obs, reward, _, _, _ = envs.step(to_weights(action).numpy())
        episode_return += reward

    # Rollout buffers.
    obs_nodes = torch.zeros(T, E, N, config.model.num_node_features)  # (T, E, N, F)
    obs_globals = torch.zeros(T, E, config.model.num_global_features)  # (T, E, G)
    actions = torch.zeros(T, E, N + 1)  # (T, E, N + 1) log-weights
    mean_actions = torch.zeros(T, E, N + 1)  # (T, E, N + 1) the logits they were drawn around
    log_probs = torch.zeros(T, E, S)  # (T, E, S)
    rewards = torch.zeros(T, E, S)  # (T, E, S)
    values = torch.zeros(T, E, S)  # (T, E, S)
    dones = torch.zeros(T, E, dtype=torch.bool)  # (T, E) episode ended after step t
    end_values = torch.zeros(T, E, S)  # (T, E, S) value of a truncated episode's final obs

    last: UpdateStats | None = None
    while update < config.num_updates:
        started = time.perf_counter()
        lr = linear_schedule(config.ppo_lr, 0.0, update / config.num_updates)
        for group in optimizer.param_groups:
            group["lr"] = lr
        std = returns_std.std  # critic outputs are in units of this std

        # Collect a rollout.
        finished: list[float] = []
        for t in range(T):
            nodes = torch.as_tensor(obs["nodes"])  # (E, N, F)
            globals_ = torch.as_tensor(obs["globals"])  # (E, G)
            with torch.no_grad():
                output = act(obs)
                dist = action_distribution(output.logits, model.log_std)
                if config.twins:  # mirrored noise: env i + E/2 explores opposite env i
                    eps = torch.randn(E // 2, N + 1)
                    action = output.logits + dist.stddev * torch.cat([eps, -eps])  # (E, N + 1)
                else:
                    action = dist.sample()  # (E, N + 1)
            obs_nodes[t], obs_globals[t], actions[t] = nodes, globals_, action
            mean_actions[t] = output.logits
            log_probs[t] = per_slot(dist.log_prob(action))
            values[t] = slot_values(output.value) * std
            obs, reward, terminated, truncated, info = envs.step(to_weights(action).numpy())
            step += E
            rewards[t] = slot_rewards(reward, info["node_cost"], reward_scale, config.node_credit)
            episode_return += reward
            episode_actions = torch.cat([episode_actions, action.unsqueeze(0)])
            ended = terminated | truncated  # (E,)
            dones[t] = torch.as_tensor(ended)
            end_values[t] = 0.0
            if ended.any():
                if not ended.all():
                    raise RuntimeError("envs fell out of step; resume needs equal episode lengths")
                with torch.no_grad():  # obs is the final observation: DISABLED autoreset
                    final = slot_values(act(obs).value) * std  # (E, S)
                end_values[t] = torch.where(torch.as_tensor(truncated)[:, None], final, 0.0)
                finished.extend(episode_return.tolist())
                episode_return[:] = 0.0
                episode_actions = torch.zeros(0, E, N + 1)
                obs = reset_envs()

        # Advantages per slot: GAE over (T, E * S), every slot of an env sharing its dones.
        with torch.no_grad():
            next_value = slot_values(act(obs).value) * std  # (E, S)
        slot_dones = dones.repeat_interleave(S, dim=1)  # (T, E * S)
        advantages, returns = compute_gae(
            rewards.flatten(1),
            values.flatten(1),
            slot_dones,
            next_value.flatten(),
            slot_dones[-1],
            gamma=config.gamma,
            lam=config.gae_lambda,
            truncated_bootstrap=end_values.flatten(1),
        )  # (T, E * S) each
        returns_std.update(returns)
        std = returns_std.std
        if config.twins:  # each env's advantage less its pair's mean: (A_e - A_twin) / 2
            advantages = mirrored_advantages(advantages.view(T, E, S)).view(T, E * S)
        if config.node_credit and config.budget_coupling:  # what each node's share did to others
            noise = (actions - mean_actions) / model.log_std.exp().detach()  # (T, E, N + 1)
            advantages = couple_budget(
                advantages.view(T, E, S), noise, mean_actions, spill_matrix, spill
            ).view(T, E * S)

        # Update: epochs of shuffled minibatches of the flattened (T * E) batch.
        b_nodes = obs_nodes.flatten(0, 1)  # (T * E, N, F)
        b_globals = obs_globals.flatten(0, 1)  # (T * E, G)
        b_actions = actions.flatten(0, 1)  # (T * E, N + 1)
        b_log_probs = log_probs.flatten(0, 1)  # (T * E, S)
        b_values = values.flatten(0, 1) / std  # (T * E, S), in the new units
        b_advantages = advantages.view(T * E, S)  # (T * E, S)
        b_returns = returns.view(T * E, S) / std  # (T * E, S)
        critic_only = config.learns_from_teacher and update < config.teacher.critic_updates
        for _ in range(config.update_epochs):
            order = torch.randperm(config.batch_size)
            for start in range(0, config.batch_size, config.minibatch_size):
                mb = order[start : start + config.minibatch_size]  # (M,)
                output = model(b_nodes[mb], b_globals[mb], neighbours, distances)
                dist = action_distribution(output.logits, model.log_std)
                loss = ppo_loss(
                    per_slot(dist.log_prob(b_actions[mb])).flatten(),  # (M * S,)
                    b_log_probs[mb].flatten(),
                    b_advantages[mb].flatten(),
                    slot_values(output.value).flatten(),
                    b_values[mb].flatten(),
                    b_returns[mb].flatten(),
                    per_slot(dist.entropy()).flatten(),
                    clip_coef=config.clip_coef,
                    vf_coef=config.vf_coef,
                    ent_coef=config.ent_coef,
                    clip_value=config.clip_value,
                    normalise_advantages=config.normalise_advantages,
                )
                optimizer.zero_grad()
                if critic_only:  # after the teacher: the critic catches up before the actor moves
                    (config.vf_coef * loss.value).backward()
                    for parameter in actor_parameters:
                        parameter.grad = None  # Adam skips them: no step, no state
                else:
                    loss.total.backward()
                torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
                optimizer.step()
        update += 1

        # Log (the last minibatch's losses, as CleanRL does).
        last = UpdateStats(
            update=update,
            num_updates=config.num_updates,
            step=step,
            lr=lr,
            mean_episode_reward=float(np.mean(finished)) if finished else math.nan,
            episodes=len(finished),
            policy_loss=loss.policy.item(),
            value_loss=loss.value.item(),
            entropy=loss.entropy.item() / (1 if config.node_credit else N + 1),
            action_std=model.log_std.exp().item(),
            approx_kl=loss.approx_kl.item(),
            clip_fraction=loss.clip_fraction.item(),
            steps_per_s=config.batch_size / (time.perf_counter() - started),
        )
        append_progress(progress_path, last)
        if board is not None:
            for name, value in dataclasses.asdict(last).items():
                board.add_scalar(f"train/{name}", value, step)

        # Checkpoint every K updates and at the end.
        if update % config.checkpoint_every == 0 or update == config.num_updates:
            save_checkpoint(
                checkpoint_path,
                model_config=config.model,
                state_dict=model.state_dict(),
                optimizer_state=optimizer.state_dict(),
                step=step,
                update=update,
                rng_states={"torch": torch.get_rng_state()},
                extra={
                    "train_config": config.as_dict(),
                    "scenario": scenario.name,
                    "flops_per_decision": flops,
                    "episode_actions": episode_actions.clone(),
                    "returns_std": returns_std.state(),
                },
            )
        if progress is not None:
            progress(last)
    envs.close()
    if board is not None:
        board.close()
    return TrainResult(checkpoint_path, progress_path, step, update, last)
