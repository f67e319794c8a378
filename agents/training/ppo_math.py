"""The math of PPO as plain functions: GAE, the clipped loss, a linear schedule.

The trainer's loop calls these; the tests check them against hand-computed numbers.
Conventions follow CleanRL's ``ppo.py`` unless a docstring says otherwise.

Shapes: T rollout steps, E parallel envs, M samples in one minibatch.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

ADVANTAGE_EPS = 1e-8


class PPOLoss(NamedTuple):
    """The PPO loss and its parts, all 0-d tensors.

    ``total``, ``policy``, ``value`` and ``entropy`` keep their graph (call
    ``total.backward()``); ``approx_kl`` and ``clip_fraction`` are detached diagnostics.
    """

    total: torch.Tensor  # policy - ent_coef * entropy + vf_coef * value
    policy: torch.Tensor  # clipped surrogate, as a loss (to minimise)
    value: torch.Tensor  # 0.5 * mean squared error, clipped if asked
    entropy: torch.Tensor  # mean entropy of the new policy
    approx_kl: torch.Tensor  # mean of (ratio - 1) - log(ratio), Schulman's k3 estimator
    clip_fraction: torch.Tensor  # share of samples with |ratio - 1| > clip_coef


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    next_done: torch.Tensor,
    *,
    gamma: float,
    lam: float,
    truncated_bootstrap: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and value targets for one rollout (Schulman et al. 2016).

    Convention: row ``t`` is one transition ``(obs_t, action_t, rewards[t])``, and
    ``dones[t]`` is true when the episode ended *after* step ``t`` — terminated or
    truncated. The one-step target of step ``t`` bootstraps from:

    - ``values[t + 1]`` (``next_value`` for ``t = T - 1``) when ``dones[t]`` is false;
    - ``truncated_bootstrap[t]`` when ``dones[t]`` is true. The caller puts there the
      value of the final observation the env returned for a *truncated* (time-limit)
      step, and 0 for a *terminated* step, whose future is worth nothing. Entries where
      ``dones[t]`` is false are ignored. ``None`` means every episode end is terminal.

    The advantage recursion stops at every episode end either way, since ``t + 1``
    belongs to the next episode (auto-reset)::

        delta_t = rewards[t] + gamma * bootstrap_t - values[t]
        A_t = delta_t + gamma * lam * (1 - dones[t]) * A_{t+1},   A_T = 0

    ``next_done`` is whether ``next_obs`` (the observation after step ``T - 1``) starts a
    new episode. Under this convention it equals ``dones[T - 1]``; it is checked so that a
    buffer stored the CleanRL way (``dones[t]`` = "``obs_t`` starts an episode") fails
    loudly instead of shifting every episode end by one step.

    Computed without gradient: the results are regression targets, not functions of the
    policy being trained.

    Args:
        rewards: (T, E) reward of each step.
        values: (T, E) critic value of ``obs_t``.
        dones: (T, E) bool, episode ended after step ``t``.
        next_value: (E,) critic value of ``next_obs``.
        next_done: (E,) bool, ``next_obs`` starts a new episode.
        gamma: discount factor.
        lam: GAE lambda; 1 gives Monte-Carlo returns minus values, 0 the one-step TD error.
        truncated_bootstrap: (T, E) or None, see above.

    Returns:
        ``(advantages, returns)``, both (T, E), with ``returns = advantages + values``.

    Raises:
        ValueError: on mismatched shapes or ``next_done != dones[-1]``.
    """
    if rewards.ndim != 2:
        raise ValueError(f"rewards must be (T, E), got shape {tuple(rewards.shape)}")
    num_steps, num_envs = rewards.shape
    for name, tensor in (("values", values), ("dones", dones)):
        if tensor.shape != rewards.shape:
            raise ValueError(
                f"{name} must be (T, E) = {tuple(rewards.shape)}, got {tuple(tensor.shape)}"
            )
    for name, tensor in (("next_value", next_value), ("next_done", next_done)):
        if tensor.shape != (num_envs,):
            raise ValueError(f"{name} must be (E,) = ({num_envs},), got {tuple(tensor.shape)}")
    if truncated_bootstrap is not None and truncated_bootstrap.shape != rewards.shape:
        raise ValueError(
            f"truncated_bootstrap must be (T, E) = {tuple(rewards.shape)}, "
            f"got {tuple(truncated_bootstrap.shape)}"
        )
    if num_steps > 0 and not torch.equal(next_done.bool(), dones[-1].bool()):
        raise ValueError(
            "next_done must equal dones[-1]: dones[t] means the episode ended "
            "after step t (was the buffer stored CleanRL-style, one step late?)"
        )

    with torch.no_grad():
        ended = dones.bool()  # (T, E)
        next_values = torch.cat([values[1:], next_value.unsqueeze(0)], dim=0)  # (T, E)
        end_values = (
            torch.zeros_like(values) if truncated_bootstrap is None else truncated_bootstrap
        )  # (T, E)
        bootstrap = torch.where(ended, end_values, next_values)  # (T, E)
        deltas = rewards + gamma * bootstrap - values  # (T, E)
        carry = gamma * lam * (~ended).to(values.dtype)  # (T, E)

        advantages = torch.zeros_like(values)  # (T, E)
        last_advantage = torch.zeros_like(next_value)  # (E,)
        for t in reversed(range(num_steps)):
            last_advantage = deltas[t] + carry[t] * last_advantage
            advantages[t] = last_advantage
        returns = advantages + values  # (T, E)
    return advantages, returns


def mirrored_advantages(advantages: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Advantages of mirrored twin rollouts, each less the mean of its pair.

    Along ``dim`` the first half of the envs are twinned with the second half: same
    seed, opposite exploration noise. Subtracting the pair's mean is a baseline that
    cancels exactly in the policy gradient of the mean action (the twins' scores are
    opposite), while the noise the twins share (which incidents happen, and when) cancels
    from the advantage: ``(A_e - A_twin) / 2``.

    >>> mirrored_advantages(torch.tensor([[3.0, 1.0, 1.0, 5.0]])).tolist()
    [[1.0, -2.0, -1.0, 2.0]]
    """
    size = advantages.shape[dim]
    if size % 2:
        raise ValueError(f"{size} envs cannot be paired; expected an even number")
    twin = advantages.roll(size // 2, dims=dim)
    return 0.5 * (advantages - twin)


def couple_budget(
    advantages: torch.Tensor,
    noise: torch.Tensor,
    logits: torch.Tensor,
    neighbour_mean: torch.Tensor | None = None,
    spill: float = 0.0,
) -> torch.Tensor:
    """Per-node advantages (..., N + 1) that also count what their node's share did to the
    other nodes: the budget it took from them, and the watch it spilled onto them.

    Node j is watched by ``m_j = s_j + spill * sum_k W_jk s_k`` (shares ``s = softmax(z)``
    of one budget; ``W`` = ``neighbour_mean`` (N, N), row j the mean over j's neighbours;
    `simcity.monitoring.incidents.detection_hazard_per_min`), and its cost ``c_j(m_j)``. Under
    per-node credit node i's log-weight ``z_i = logit_i + std * noise_i`` is trained on
    the advantage ``A_i`` of its own cost alone, so its policy gradient estimates
    ``g_i = c_i' s_i (1 - m_i)``. The city's gradient is

        g_i + s_i * (spill * sum_j W_ji x_j - sum_{j != i} x_j m_j),  x_j = g_j / (s_j (1 - m_j))

    (a larger ``z_i`` shrinks every other share, and watches i's neighbours). That term
    enters through the advantage, where PPO's clipping still bounds it:
    ``A'_i = A_i + noise_i * s_i * (...)`` with ``A_j noise_j`` for ``g_j``; its
    score-function gradient ``E[A'_i noise_i] / std`` is the term, as noise_i has unit
    variance and is independent of the other nodes' ``A_j noise_j`` (to first order).
    Shares below a quarter of the mean node share count at that floor in ``x_j``, so a
    nearly unwatched node cannot blow the estimate up. Without it, per-node credit pulls
    every node's share up by its own marginal benefit and bills it its own compute, and
    which bias is larger decides whether the allocation drifts to concentrate or to
    spread. The unused slot (last), credited with the city's reward, is left as it is.

    >>> a = torch.tensor([[1.0, 0.0, 0.0]])  # node 0 did better; node 1 the same
    >>> eps = torch.tensor([[1.0, -1.0, 0.0]])  # node 0 took share from node 1
    >>> couple_budget(a, eps, torch.tensor([[0.0, 0.0, -1e9]])).tolist()  # s = 1/2, 1/2
    [[1.0, 1.0, 0.0]]

    Node 1's giving way is credited with node 0's gain.
    """
    shares = torch.softmax(logits, dim=-1)[..., :-1]  # (..., N)
    floored = shares.clamp_min(0.25 / shares.shape[-1])  # (..., N)
    w = neighbour_mean.to(shares.dtype) if neighbour_mean is not None and spill > 0 else None
    spilled = torch.zeros_like(shares)  # (..., N) spill * sum_k W_jk s_k
    if w is not None:  # (N, N), dense or sparse
        spilled = spill * _rows_times(shares, w.t())
    a, eps = advantages[..., :-1], noise[..., :-1]  # (..., N) each
    own = a * eps / (1.0 - shares - spilled).clamp_min(1e-6)  # (..., N) x_j s_j
    x_watch = own * (1.0 + spilled / floored)  # (..., N) x_j m_j
    term = x_watch - x_watch.sum(dim=-1, keepdim=True)  # (..., N) -sum_{j != i} x_j m_j
    if w is not None:
        term = term + spill * _rows_times(own / floored, w)  # (..., N) + spill sum_j W_ji x_j
    coupled = a + eps * shares * term  # (..., N)
    return torch.cat([coupled, advantages[..., -1:]], dim=-1)


def _rows_times(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``x @ matrix`` for rows x (..., N) and a dense or sparse (N, N) matrix."""
    flat = x.reshape(-1, x.shape[-1])  # (R, N)
    if matrix.is_sparse:
        return torch.sparse.mm(matrix.t(), flat.t()).t().reshape(x.shape)
    return (flat @ matrix).reshape(x.shape)


def standardise_advantages(advantages: torch.Tensor) -> torch.Tensor:
    """Advantages shifted to mean 0 and scaled to (sample) std 1 within the minibatch.

    Uses the unbiased std and ``ADVANTAGE_EPS`` in the denominator, as CleanRL does. A
    minibatch of one sample has no spread; it comes back centred (zero) rather than NaN.
    """
    centred = advantages - advantages.mean()  # (M,)
    if advantages.numel() < 2:
        return centred
    return centred / (advantages.std() + ADVANTAGE_EPS)


def ppo_loss(
    new_log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    new_value: torch.Tensor,
    old_value: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    *,
    clip_coef: float,
    vf_coef: float,
    ent_coef: float,
    clip_value: bool,
    normalise_advantages: bool,
) -> PPOLoss:
    """The clipped PPO loss on one minibatch (Schulman et al. 2017; CleanRL's ``ppo.py``).

    With ``ratio = exp(new_log_prob - old_log_prob)``, the policy loss is the pessimistic
    ``mean(max(-A * ratio, -A * clip(ratio, 1 - clip_coef, 1 + clip_coef)))``. The value
    loss is ``0.5 * mean((new_value - returns) ** 2)``; with ``clip_value`` it takes the
    elementwise max with the loss of ``old_value + clip(new_value - old_value, ±clip_coef)``.
    ``total = policy - ent_coef * entropy + vf_coef * value``.

    Args:
        new_log_prob: (M,) log-probability of the taken actions under the current policy.
        old_log_prob: (M,) the same under the policy that collected the rollout.
        advantages: (M,) advantage estimates, e.g. from `compute_gae`.
        new_value: (M,) current critic values.
        old_value: (M,) critic values at collection time (used only when ``clip_value``).
        returns: (M,) value targets.
        entropy: (M,) entropy of the current policy at each observation.
        clip_coef: the clip range for the ratio, and for the value change if ``clip_value``.
        vf_coef: weight of the value loss.
        ent_coef: weight of the entropy bonus.
        clip_value: clip the value loss as PPO2/CleanRL do.
        normalise_advantages: standardise ``advantages`` within this minibatch first.
    """
    log_ratio = new_log_prob - old_log_prob  # (M,)
    ratio = log_ratio.exp()  # (M,)

    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = ((ratio - 1.0).abs() > clip_coef).to(ratio.dtype).mean()

    if normalise_advantages:
        advantages = standardise_advantages(advantages)  # (M,)
    unclipped = -advantages * ratio  # (M,)
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef)  # (M,)
    policy = torch.max(unclipped, clipped).mean()

    value_error = (new_value - returns) ** 2  # (M,)
    if clip_value:
        clipped_value = old_value + torch.clamp(new_value - old_value, -clip_coef, clip_coef)
        value_error = torch.max(value_error, (clipped_value - returns) ** 2)  # (M,)
    value = 0.5 * value_error.mean()

    mean_entropy = entropy.mean()
    total = policy - ent_coef * mean_entropy + vf_coef * value
    return PPOLoss(
        total=total,
        policy=policy,
        value=value,
        entropy=mean_entropy,
        approx_kl=approx_kl,
        clip_fraction=clip_fraction,
    )


def linear_schedule(start: float, end: float, progress: float) -> float:
    """The value a fraction ``progress`` of the way from ``start`` to ``end``.

    ``progress`` is clamped to [0, 1], so a last update that overshoots stays at ``end``.

    >>> linear_schedule(3e-4, 0.0, 0.25)
    0.000225
    >>> linear_schedule(1.0, 0.0, 1.5)
    0.0
    """
    progress = min(max(progress, 0.0), 1.0)
    return start + (end - start) * progress


class RunningStd:
    """Running standard deviation of every value seen (Chan et al.'s parallel update).

    The trainer divides value targets by it, so the critic learns numbers of order 1
    whatever the scenario's money scale; its state is three floats, saved in checkpoints.

    >>> s = RunningStd()
    >>> s.update(torch.tensor([1.0, 3.0])); s.update(torch.tensor([5.0, 7.0]))
    >>> round(s.std, 6)  # population std of 1, 3, 5, 7
    2.236068
    """

    def __init__(self, count: float = 0.0, mean: float = 0.0, m2: float = 0.0) -> None:
        self.count, self.mean, self.m2 = count, mean, m2

    @property
    def std(self) -> float:
        """Standard deviation so far; 1 before any spread was seen."""
        if self.count < 2 or self.m2 <= 0.0:
            return 1.0
        return math.sqrt(self.m2 / self.count)

    def update(self, values: torch.Tensor) -> None:
        x = values.detach().double().flatten()
        n = x.numel()
        if n == 0:
            return
        mean = float(x.mean())
        m2 = float(((x - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total

    def state(self) -> list[float]:
        return [self.count, self.mean, self.m2]
