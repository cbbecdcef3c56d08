"""IPPO and MAPPO: the black-box baselines (paper §V, reference [36]).

They share the environment, the devices, the data and the primal–dual outer loop of
the gradient trainers, but never the environment's gradient: they learn from
per-agent, per-step rewards, minus each agent's share of the Lagrangian
(`StepTrace.lagrangian`), so that the agents' rewards summed over a day are minus the
Lagrangian the gradient trainers minimise. The voltage term, a network violation no
agent causes alone, is in every agent's reward whole.

PPO as in the MAPPO authors' code (Yu et al., "The surprising effectiveness of PPO
in cooperative multi-agent games"), with one independent actor per agent (their
`separated` runner): GAE, ratio clipping, a clipped Huber value loss, per-agent
advantage normalisation, returns normalised by running statistics (their
`ValueNorm`), epochs of minibatch updates over each batch, gradient-norm clipping
per agent (an agent's step never depends on another agent's gradient). Choices of
ours, each said where it is made: an undiscounted return (`gamma = 1`; the objective
is the day's sum and the observation carries the time of day), normalisation
statistics updated once per primal step (weight 0.9 on the past, where theirs is
0.99999 per minibatch, with the old predictions re-expressed in the new units for the
value clip), `epochs * minibatches` = Table I's 80 inner updates. Smaller
differences: a variance floor of 1e-4 (theirs 1e-2) and Adam's default epsilon.
"""

import abc
import dataclasses
from typing import ClassVar, TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from .._misc import default_float
from ..env import Environment, OBS_NAMES, PolicyController
from ..policies import (
    AbstractPolicy,
    Dense,
    gaussian_entropy,
    gaussian_log_prob,
    PolicyConfig,
)
from ._base import (
    AbstractTrainer,
    adam_unless,
    apply_updates,
    init_state,
    next_state,
    optimiser_field,
    policy_outputs,
    rollout_metrics,
    sample_days,
    TrainState,
)


if TYPE_CHECKING:
    from typing import ClassVar as AbstractClassVar
else:
    from equinox import AbstractClassVar


# --- what an on-policy learner sees of a rollout --------------------------------------


class Transitions(eqx.Module):
    """A batch of episodes as a reinforcement learner sees them, without the
    environment's gradient (a forward rollout).

    - `obs`, `actions`: each agent's observation and raw action at every step.
    - `log_prob`: the log-density of the action under the policy that acted.
    - `rewards`: minus each agent's share of the episode's Lagrangian at that step
        (`StepTrace.lagrangian`): summed over agents and steps, minus the Lagrangian.
        Zero in failed episodes.
    - `ok`: episodes whose power flows all converged (the others are masked out).
    - `lagrangian`, `cost`, `channels`, `n_failed`, `n_non_finite_actions`: the
        rollout's figures, as the gradient trainers report them.
    """

    obs: Float[Array, "episode step agent obs"]
    actions: Float[Array, "episode step agent"]
    log_prob: Float[Array, "episode step agent"]
    rewards: Float[Array, "episode step agent"]
    ok: Bool[Array, " episode"]
    lagrangian: Float[Array, ""]
    cost: Float[Array, ""]
    channels: dict[str, Float[Array, ""]]
    n_failed: Array
    n_non_finite_actions: Array


def transitions(
    env: Environment,
    policy: AbstractPolicy,
    lambdas: dict[str, Float[Array, ""]],
    key: PRNGKeyArray,
    days: Array,
) -> Transitions:
    """Roll out `days` under `policy` and `lambdas` and return what an on-policy
    learner needs: per-agent, per-step observations, actions, log-probabilities and
    rewards. Costs about a forward rollout (no adjoint is built).

    **Arguments:**

    - `env`: the environment.
    - `policy`: the agents' policies (they act stochastically).
    - `lambdas`: dual variables by channel (they weigh the rewards).
    - `key`: PRNG key (initial states and exploration noise).
    - `days`: training-day indices, one per episode.

    **Returns:** `Transitions`.
    """
    r = env.rollout(PolicyController(policy), lambdas, key, days, record=True)
    trace = r.episodes.trace
    assert trace is not None and trace.obs is not None and trace.outputs is not None
    mu, sigma = trace.outputs[..., 0], trace.outputs[..., 1]
    ok = r.episodes.ok
    rewards = jnp.where(ok[:, None, None], -trace.lagrangian, 0.0)
    return Transitions(
        obs=trace.obs,
        actions=trace.action,
        log_prob=gaussian_log_prob(trace.action, mu, jnp.log(sigma)),
        rewards=rewards,
        ok=ok,
        lagrangian=r.lagrangian,
        cost=r.cost,
        channels=r.channels,
        n_failed=r.n_failed,
        n_non_finite_actions=r.n_non_finite_actions,
    )


def gae(
    rewards: Float[Array, "episode step agent"],
    values: Float[Array, "episode step agent"],
    gamma: float,
    lam: float,
) -> tuple[Float[Array, "episode step agent"], Float[Array, "episode step agent"]]:
    """Generalised advantage estimation over days that end at their last step.

    **Returns:** `(advantages, returns)`, `returns = advantages + values`.
    """
    next_values = jnp.concatenate(
        [values[:, 1:], jnp.zeros_like(values[:, :1])], axis=1
    )
    deltas = rewards + gamma * next_values - values

    def back(carry, delta):
        adv = delta + gamma * lam * carry
        return adv, adv

    _, adv = jax.lax.scan(
        back, jnp.zeros_like(deltas[:, 0]), jnp.moveaxis(deltas, 1, 0), reverse=True
    )
    adv = jnp.moveaxis(adv, 0, 1)
    return adv, adv + values


# --- critics --------------------------------------------------------------------------


def _mlp_init(key, sizes: tuple[int, ...]) -> tuple[Dense, ...]:
    dtype = default_float()
    layers = []
    for k, (n_in, n_out) in zip(
        jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])
    ):
        bound = 1 / n_in**0.5
        w = jax.random.uniform(k, (n_out, n_in), dtype, -bound, bound)
        layers.append(Dense(w, jnp.zeros(n_out, dtype)))
    return tuple(layers)


def _stacked_mlp_init(key, n_agents: int, sizes: tuple[int, ...]) -> tuple[Dense, ...]:
    """One MLP per agent, stacked on a leading agent axis, each with its own key."""
    return eqx.filter_vmap(lambda k: _mlp_init(k, sizes))(
        jax.random.split(key, n_agents)
    )


def _mlp(layers: tuple[Dense, ...], x: Float[Array, " in"]) -> Float[Array, " out"]:
    for layer in layers[:-1]:
        x = jnp.tanh(layer(x))
    return layers[-1](x)


def _per_agent_mlp(
    layers: tuple[Dense, ...],
    x: Float[Array, "agent step in"] | Float[Array, "step in"],
) -> Float[Array, "agent step out"]:
    """Each agent's MLP (parameters stacked on a leading agent axis) on a batch of
    steps: of that agent's inputs, or of inputs without an agent axis that every
    agent sees. The agent axis leads every product, so XLA runs one batched matmul
    per layer without transposing: at 1,000 agents the critic's gradient takes half
    the time of a `vmap` over steps of a per-step critic, whose agent axis sits in
    the middle."""
    in_axis = 0 if x.ndim == 3 else None
    return jax.vmap(
        lambda a, xs: jax.vmap(lambda v: _mlp(a, v))(xs), in_axes=(0, in_axis)
    )(layers, x)


class AbstractCritic(eqx.Module):
    """A value function: every agent's value at each of a batch of steps, from the
    observations.

    `per_agent` says whether every parameter has a leading agent axis (one critic per
    agent, as IPPO's): its gradient is then clipped agent by agent, like the actors'.
    A critic acts on a batch of steps (the samples of a minibatch), so that each
    design lays out its products for its parameters (`_per_agent_mlp`). Its outputs
    are in normalised units (the trainer keeps the return statistics).
    """

    per_agent: AbstractClassVar[bool]

    @classmethod
    @abc.abstractmethod
    def init(
        cls, key: PRNGKeyArray, n_agents: int, obs_dim: int, hidden: tuple[int, ...]
    ) -> "AbstractCritic":
        """A freshly initialised critic for `n_agents` agents observing `obs_dim`
        numbers each, with hidden layers of the sizes `hidden`."""

    @abc.abstractmethod
    def __call__(
        self, obs: Float[Array, "step agent obs"]
    ) -> Float[Array, "step agent"]:
        """Each agent's value (normalised) at each step."""


class LocalCritic(AbstractCritic):
    """IPPO's critics: one MLP per agent on its own observation (stacked, never
    shared)."""

    layers: tuple[Dense, ...]
    per_agent: ClassVar[bool] = True

    @classmethod
    def init(
        cls, key: PRNGKeyArray, n_agents: int, obs_dim: int, hidden: tuple[int, ...]
    ) -> "LocalCritic":
        return cls(layers=_stacked_mlp_init(key, n_agents, (obs_dim, *hidden, 1)))

    def __call__(self, obs):
        return _per_agent_mlp(self.layers, jnp.swapaxes(obs, 0, 1))[..., 0].T


class CentralCritic(AbstractCritic):
    """MAPPO's critic (the paper's choice): one MLP fed every agent's observation,
    concatenated, returning a value per agent."""

    layers: tuple[Dense, ...]
    per_agent: ClassVar[bool] = False

    @classmethod
    def init(
        cls, key: PRNGKeyArray, n_agents: int, obs_dim: int, hidden: tuple[int, ...]
    ) -> "CentralCritic":
        return cls(layers=_mlp_init(key, (n_agents * obs_dim, *hidden, n_agents)))

    def __call__(self, obs):
        return jax.vmap(lambda o: _mlp(self.layers, o.reshape(-1)))(obs)


class PerAgentCentralCritic(AbstractCritic):
    """One centralised critic per agent, each fed every agent's observation and
    returning its own agent's value: the MAPPO authors' `separated` runner (no
    parameter shared between agents). Its parameters grow with the square of the
    number of agents (100 agents, 2 x 64: 5.6 M; 1,000 agents: 581 M), which is
    why `MAPPO` shares one `CentralCritic` by default."""

    layers: tuple[Dense, ...]
    per_agent: ClassVar[bool] = True

    @classmethod
    def init(
        cls, key: PRNGKeyArray, n_agents: int, obs_dim: int, hidden: tuple[int, ...]
    ) -> "PerAgentCentralCritic":
        sizes = (n_agents * obs_dim, *hidden, 1)
        return cls(layers=_stacked_mlp_init(key, n_agents, sizes))

    def __call__(self, obs):
        everyone = obs.reshape(obs.shape[0], -1)
        return _per_agent_mlp(self.layers, everyone)[..., 0].T


MAPPO_CRITICS: dict[str, type[AbstractCritic]] = {
    "shared": CentralCritic,
    "per_agent": PerAgentCentralCritic,
}
"""MAPPO's critic designs by name (names, so that they are plain data in
`config.toml`)."""


# --- the trainers' own state ----------------------------------------------------------


class PPOState(eqx.Module):
    """What IPPO and MAPPO carry besides the actors: the critic, its optimiser
    state, and each agent's return statistics (exponential moving averages of the
    return and its square, with the bias correction of `debias`)."""

    critic: AbstractCritic
    critic_opt_state: PyTree
    return_mean: Float[Array, " agent"]
    return_sq: Float[Array, " agent"]
    debias: Float[Array, ""]

    def normaliser(self) -> tuple[Float[Array, " agent"], Float[Array, " agent"]]:
        """Each agent's return mean and standard deviation."""
        d = jnp.maximum(self.debias, jnp.finfo(self.debias.dtype).tiny)
        mean = self.return_mean / d
        var = jnp.maximum(self.return_sq / d - mean**2, 1e-4)
        # Before the first update: the identity.
        seen = self.debias > 0
        return jnp.where(seen, mean, 0.0), jnp.where(seen, jnp.sqrt(var), 1.0)


def _clip_per_agent(grads: PyTree, max_norm: float) -> PyTree:
    """Scale each agent's slice of `grads` to norm at most `max_norm`."""
    leaves = jax.tree.leaves(grads)
    sq = sum(jnp.sum(x.reshape(x.shape[0], -1) ** 2, axis=1) for x in leaves)
    factor = jnp.minimum(1.0, max_norm / (jnp.sqrt(sq) + 1e-12))
    return jax.tree.map(
        lambda x: x * factor.reshape((-1,) + (1,) * (x.ndim - 1)).astype(x.dtype),
        grads,
    )


def _clip_global(grads: PyTree, max_norm: float) -> PyTree:
    norm = jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(grads)))
    factor = jnp.minimum(1.0, max_norm / (norm + 1e-12))
    return jax.tree.map(lambda x: x * factor.astype(x.dtype), grads)


def clipped_surrogate(
    log_ratio: Float[Array, "*shape"], advantages: Float[Array, "*shape"], clip: float
) -> Float[Array, "*shape"]:
    """PPO's clipped objective per sample, to be maximised:
    `min(r A, clip(r, 1 - clip, 1 + clip) A)` with `r = exp(log_ratio)`.

    Its gradient is `A` times the ratio's where the ratio may still move the
    objective, and zero once a step has moved the ratio past the clip in the
    direction the advantage favours: the bound on how far one batch pulls a policy.
    """
    ratio = jnp.exp(log_ratio)
    clipped = jnp.clip(ratio, 1 - clip, 1 + clip)
    return jnp.minimum(ratio * advantages, clipped * advantages)


def _huber(x: Array, delta: float) -> Array:
    a = jnp.abs(x)
    return jnp.where(a <= delta, 0.5 * x**2, delta * (a - 0.5 * delta))


class PPOConfig(eqx.Module):
    """PPO's settings, the same for IPPO and MAPPO.

    - `gamma`, `gae_lambda`: discount and GAE parameter. `gamma = 1`: the objective
        is the day's undiscounted sum (the Lagrangian), and the observation carries
        the time of day, so values are well defined.
    - `clip`: ratio clipping; `value_clip`: clipping of the value prediction's change
        (in normalised units).
    - `epochs`, `minibatches`: passes over each batch and minibatches per pass
        (10 x 8 = Table I's 80 inner updates).
    - `lr`, `critic_lr`: Adam learning rates (the MAPPO code's 5e-4).
    - `optimiser`, `critic_optimiser`: optax transformations replacing the actors'
        and the critic's Adam (`optimiser_field`; Python only); the gradient-norm
        clip below still applies first.
    - `max_grad_norm`: gradient-norm clip, per agent (and for MAPPO's shared critic,
        of the whole critic).
    - `huber_delta`: the value loss's Huber threshold (normalised units).
    - `return_decay`: weight of the past in the return statistics, updated once per
        primal step (a dual step moves the returns; the statistics follow in a few
        steps).
    - `critic_hidden`: hidden widths of the critic (2 x 64).
    """

    gamma: float = 1.0
    gae_lambda: float = 0.95
    clip: float = 0.2
    value_clip: float = 0.2
    epochs: int = 10
    minibatches: int = 8
    lr: float = 5e-4
    critic_lr: float = 5e-4
    max_grad_norm: float = 10.0
    huber_delta: float = 10.0
    return_decay: float = 0.9
    critic_hidden: tuple[int, ...] = eqx.field(
        default=(64, 64), converter=lambda h: tuple(int(x) for x in h)
    )
    optimiser: optax.GradientTransformation | None = optimiser_field()
    critic_optimiser: optax.GradientTransformation | None = optimiser_field()

    def __check_init__(self):
        for name, low, high in (
            ("gamma", False, True),
            ("gae_lambda", True, True),
            ("return_decay", False, False),
        ):
            v = getattr(self, name)
            if not ((0 <= v if low else 0 < v) and (v <= 1 if high else v < 1)):
                span = f"{'[' if low else '('}0, 1{']' if high else ')'}"
                raise ValueError(f"PPOConfig.{name} = {v!r} must be in {span}.")
        for name in (
            "clip",
            "value_clip",
            "lr",
            "critic_lr",
            "max_grad_norm",
            "huber_delta",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"PPOConfig.{name} must be positive.")
        if self.epochs < 1 or self.minibatches < 1:
            raise ValueError("PPOConfig.epochs and .minibatches must be >= 1.")
        if not self.critic_hidden or min(self.critic_hidden) < 1:
            raise ValueError(
                f"PPOConfig.critic_hidden = {self.critic_hidden!r}: give one or more "
                "positive layer widths, e.g. (64, 64)."
            )


# --- one PPO step, shared by IPPO and MAPPO -------------------------------------------


def _weighted_mean(x: Array, w: Array) -> Array:
    """Mean over the leading sample axis, per agent, of the samples with weight 1."""
    w = w.reshape(w.shape + (1,) * (x.ndim - w.ndim))
    # where, not only a product: a masked (failed) sample never brings a NaN in
    total = jnp.sum(jnp.where(w > 0, w * x, 0.0), axis=0)
    return total / jnp.maximum(jnp.sum(w, axis=0), 1.0)


def _ppo_init(
    trainer: "AbstractPPO",
    env: Environment,
    key: PRNGKeyArray,
    critic_cls: type[AbstractCritic],
) -> TrainState:
    k_state, k_critic = jax.random.split(key)
    cfg: PPOConfig = trainer.ppo
    critic = critic_cls.init(k_critic, env.n_agents, len(OBS_NAMES), cfg.critic_hidden)
    dtype = default_float()
    zeros = jnp.zeros(env.n_agents, dtype)
    with jax.numpy_dtype_promotion("standard"):
        critic_opt_state = adam_unless(cfg.critic_optimiser, cfg.critic_lr).init(
            eqx.filter(critic, eqx.is_inexact_array)
        )
    extra = PPOState(
        critic=critic,
        critic_opt_state=critic_opt_state,
        return_mean=zeros,
        return_sq=zeros,
        debias=jnp.zeros((), dtype),
    )
    return init_state(
        trainer,
        env,
        k_state,
        adam_unless(cfg.optimiser, cfg.lr),
        trainer.policy,
        extra=extra,
    )


class _Samples(eqx.Module):
    """A batch flattened over episodes and steps, ready for minibatch updates: what
    the actors and the critic are fitted to."""

    obs: Float[Array, "sample agent obs"]
    actions: Float[Array, "sample agent"]
    log_prob: Float[Array, "sample agent"]
    advantages: Float[Array, "sample agent"]
    targets: Float[Array, "sample agent"]
    values_old: Float[Array, "sample agent"]
    weight: Float[Array, " sample"]


def _samples(
    cfg: PPOConfig, ppo: PPOState, tr: Transitions
) -> tuple[_Samples, PPOState, Float[Array, " agent"]]:
    """Advantages (GAE on the critic's values in reward units), the return
    statistics updated with this batch, the critic's targets in their new units,
    and the share of the returns' variance the values explained."""
    e, t, _ = tr.rewards.shape
    dtype = tr.rewards.dtype
    mean, std = ppo.normaliser()
    values_n = ppo.critic(tr.obs.reshape(e * t, *tr.obs.shape[2:])).reshape(e, t, -1)
    values = values_n * std[None, None] + mean[None, None]
    adv, returns = gae(tr.rewards, values, cfg.gamma, cfg.gae_lambda)
    w = jnp.broadcast_to(tr.ok[:, None], (e, t)).reshape(-1).astype(dtype)
    flat = lambda x: x.reshape((e * t,) + x.shape[2:])
    adv, returns, values = flat(adv), flat(returns), flat(values)

    def ema(old, batch):
        # a batch whose episodes all failed has no returns: the statistics stay
        new = cfg.return_decay * old + (1 - cfg.return_decay) * batch
        return jnp.where(jnp.any(tr.ok), new, old)

    stats = dataclasses.replace(
        ppo,
        return_mean=ema(ppo.return_mean, _weighted_mean(returns, w)),
        return_sq=ema(ppo.return_sq, _weighted_mean(returns**2, w)),
        debias=ema(ppo.debias, jnp.ones((), dtype)),
    )
    mean, std = stats.normaliser()

    def centred(x):
        return x - _weighted_mean(x, w)[None]

    a_std = jnp.sqrt(_weighted_mean(centred(adv) ** 2, w))
    explained = 1 - _weighted_mean(centred(returns - values) ** 2, w) / jnp.maximum(
        _weighted_mean(centred(returns) ** 2, w), jnp.finfo(dtype).tiny
    )
    samples = _Samples(
        obs=flat(tr.obs),
        actions=flat(tr.actions),
        log_prob=flat(tr.log_prob),
        advantages=centred(adv) / (a_std[None] + 1e-8),
        targets=(returns - mean[None]) / std[None],
        # The value clip's centre, the old prediction, in the new units: the
        # statistics move by a tenth per step and more after a dual step, and a band
        # around a prediction in stale units would hold the critic back.
        values_old=(values - mean[None]) / std[None],
        weight=w,
    )
    return samples, stats, explained


def _actor_loss(policy, mb: _Samples, cfg: PPOConfig, entropy_weight: float):
    """Minus the clipped surrogate and the entropy bonus, each agent's own mean over
    the minibatch, summed over agents (each agent's gradient is its own)."""
    w = mb.weight
    o, log_std = policy_outputs(policy, mb.obs)
    log_ratio = gaussian_log_prob(mb.actions, o[..., 0], log_std) - mb.log_prob
    ratio = jnp.exp(log_ratio)
    surrogate = clipped_surrogate(log_ratio, mb.advantages, cfg.clip)
    entropy = _weighted_mean(gaussian_entropy(log_std), w)
    per_agent = -_weighted_mean(surrogate, w) - entropy_weight * entropy
    aux = {
        "approx_kl": _weighted_mean((ratio - 1) - log_ratio, w),
        "clip_fraction": _weighted_mean(
            (jnp.abs(ratio - 1) > cfg.clip).astype(ratio.dtype), w
        ),
        "entropy": entropy,
        "policy_loss": _weighted_mean(-surrogate, w),
    }
    return jnp.sum(per_agent), aux


def _critic_loss(critic: AbstractCritic, mb: _Samples, cfg: PPOConfig):
    """The clipped Huber value loss per agent; summed over agents for per-agent
    critics, averaged for a shared one (its gradient clip is then per network)."""
    v = critic(mb.obs)
    v_old = mb.values_old
    v_clipped = v_old + jnp.clip(v - v_old, -cfg.value_clip, cfg.value_clip)
    loss = jnp.maximum(
        _huber(mb.targets - v, cfg.huber_delta),
        _huber(mb.targets - v_clipped, cfg.huber_delta),
    )
    per_agent = _weighted_mean(loss, mb.weight)
    return (jnp.sum if critic.per_agent else jnp.mean)(per_agent), per_agent


def _fit(
    trainer: "AbstractPPO", state: TrainState, samples: _Samples, key: PRNGKeyArray
):
    """`epochs` passes of `minibatches` updates of the actors and the critic.

    **Returns:** `(policy, actor optimiser state, critic, critic optimiser state,
    metrics)`, the metrics averaged over the updates."""
    cfg: PPOConfig = trainer.ppo
    ppo: PPOState = state.extra
    n_samples = samples.weight.shape[0]
    size = n_samples // cfg.minibatches
    if size < 1:
        raise ValueError(
            f"PPOConfig.minibatches = {cfg.minibatches} exceeds the {n_samples} "
            "samples per agent of a batch; use fewer minibatches or a larger batch."
        )
    actor_opt = adam_unless(cfg.optimiser, cfg.lr)
    critic_opt = adam_unless(cfg.critic_optimiser, cfg.critic_lr)
    clip_critic = _clip_per_agent if ppo.critic.per_agent else _clip_global

    def update(carry, idx):
        policy, critic, a_opt, c_opt = carry
        mb = jax.tree.map(lambda x: x[idx], samples)
        (_, aux), g_actor = eqx.filter_value_and_grad(_actor_loss, has_aux=True)(
            policy, mb, cfg, trainer.entropy
        )
        (_, v_loss), g_critic = eqx.filter_value_and_grad(_critic_loss, has_aux=True)(
            critic, mb, cfg
        )
        g_actor = _clip_per_agent(g_actor, cfg.max_grad_norm)
        g_critic = clip_critic(g_critic, cfg.max_grad_norm)
        policy, a_opt = apply_updates(actor_opt, policy, g_actor, a_opt)
        critic, c_opt = apply_updates(critic_opt, critic, g_critic, c_opt)
        aux = {k: jnp.mean(v) for k, v in aux.items()} | {
            "value_loss": jnp.mean(v_loss)
        }
        return (policy, critic, a_opt, c_opt), aux

    def epoch(carry, k):
        order = jax.random.permutation(k, n_samples)[: size * cfg.minibatches]
        return jax.lax.scan(update, carry, order.reshape(cfg.minibatches, size))

    init = (state.policy, ppo.critic, state.opt_state, ppo.critic_opt_state)
    (policy, critic, a_opt, c_opt), aux = jax.lax.scan(
        epoch, init, jax.random.split(key, cfg.epochs)
    )
    return policy, a_opt, critic, c_opt, {k: jnp.mean(v) for k, v in aux.items()}


def _ppo_step(trainer: "AbstractPPO", env: Environment, state: TrainState):
    key, k_days, k_roll, k_fit = jax.random.split(state.key, 4)
    days = sample_days(k_days, env, trainer.batch)
    tr = transitions(env, state.policy, state.lambdas, k_roll, days)
    samples, stats, explained = _samples(trainer.ppo, state.extra, tr)
    policy, a_opt, critic, c_opt, fit_metrics = _fit(trainer, state, samples, k_fit)
    extra = dataclasses.replace(stats, critic=critic, critic_opt_state=c_opt)
    new = next_state(
        trainer,
        state,
        policy=policy,
        opt_state=a_opt,
        key=key,
        channels=tr.channels,
        extra=extra,
    )
    metrics = rollout_metrics(
        tr.cost,
        tr.lagrangian,
        tr.channels,
        tr.n_failed,
        tr.n_non_finite_actions,
        new.lambdas,
    )
    metrics.update(fit_metrics)
    metrics["explained_variance"] = jnp.mean(explained)
    return new, metrics


class AbstractPPO(AbstractTrainer):
    """An on-policy trainer in the PPO family: independent actors, a critic of the
    design `critic_type` names, rewards from the per-step Lagrangian, and PPO's
    clipped updates (`PPOConfig`). `IPPO` and `MAPPO` differ only in the critic; a
    new design is a final subclass with the settings as fields and its own
    `critic_type`."""

    entropy: eqx.AbstractVar[float]
    ppo: eqx.AbstractVar[PPOConfig]
    policy: eqx.AbstractVar[PolicyConfig]

    @abc.abstractmethod
    def critic_type(self) -> type[AbstractCritic]:
        """The critic design this trainer builds (`init` makes one)."""

    def init(self, env: Environment, key: PRNGKeyArray) -> TrainState:
        return _ppo_init(self, env, key, self.critic_type())

    def step(
        self, env: Environment, state: TrainState
    ) -> tuple[TrainState, dict[str, Float[Array, ""]]]:
        return _ppo_step(self, env, state)


class IPPO(AbstractPPO):
    """Independent PPO: every agent learns alone, with its own actor and its own
    critic on its own observation (`LocalCritic`), from its own rewards.

    Table I: 40 dual steps of 30 primal steps, 500 episodes per primal step, initial
    standard deviation 1.0, entropy 0.005. `ppo`: the PPO settings (`PPOConfig`).
    """

    display_name: ClassVar[str] = "IPPO"

    n_dual: int = 40
    n_primal: int = 30
    batch: int = 500
    dual_lr: float = 150.0
    entropy: float = 0.005
    ppo: PPOConfig = PPOConfig()
    policy: PolicyConfig = PolicyConfig(init_log_std=0.0)

    def critic_type(self) -> type[AbstractCritic]:
        return LocalCritic


class MAPPO(AbstractPPO):
    """Multi-agent PPO: independent actors, one centralised critic (`CentralCritic`)
    fed every agent's observation and returning a value per agent (the paper's
    choice), used in training only: the actors still act on local observations.

    Settings as `IPPO`'s, and `critic`: `"shared"` (default: the one `CentralCritic`,
    whose parameters grow linearly with the agents, so it runs at 1,000) or
    `"per_agent"` (`PerAgentCentralCritic`, one centralised critic per agent as the
    MAPPO authors' `separated` runner builds; quadratic in the agents).
    """

    display_name: ClassVar[str] = "MAPPO"

    n_dual: int = 40
    n_primal: int = 30
    batch: int = 500
    dual_lr: float = 150.0
    entropy: float = 0.005
    ppo: PPOConfig = PPOConfig()
    policy: PolicyConfig = PolicyConfig(init_log_std=0.0)
    critic: str = "shared"

    def __check_init__(self):
        if self.critic not in MAPPO_CRITICS:
            raise ValueError(
                f"MAPPO.critic = {self.critic!r}: use one of "
                f"{', '.join(MAPPO_CRITICS)}."
            )

    def critic_type(self) -> type[AbstractCritic]:
        return MAPPO_CRITICS[self.critic]
