"""GradMA, GradMAP and GradMA-RPO: three ways to use one environment gradient.

All three compute the same expensive object per primal step: a rollout of `batch`
episodes and the gradient `g` of its Lagrangian with respect to every agent's policy
outputs `o = (mu, sigma)` at every step (through the implicit adjoint of every power
flow). They differ in what they do with it:

- `GradMA`: one parameter update per rollout (a fresh environment gradient for every
    update).
- `GradMAP`: K cheap updates (each on a minibatch of the cached episodes, steps in
    output space of size proportional to `1 / beta`) of the proximal surrogate
    `mean(g * (o_theta - o_old)) - c_ent H + beta/2 mean |o_theta - o_old|^2`, a trust
    region in policy-output space; a line search on the step's length makes the mean
    squared output change D equal `delta`, and beta follows it (see `GradMAP`).
- `GradMARPO`: the same cached gradients with a PPO-style probability-ratio gate and
    a KL penalty in distribution space.

Defaults follow the paper's Table I where its text survived (batch 500, Adam, N_d 20,
N_p 10 for GradMAP/GradMA-RPO and 60 for GradMA, K 80, dual learning rate 150, initial
std 0.14 (log -2), entropy 0.01, KL 0.2); the learning rates and the trust-region
target were lost with the table's numbers and are ours, as are the minibatches of
the inner updates (GradMAP 8, GradMA-RPO 64 of the 500 cached episodes each: the
surrogate is a mean over samples, and a full-batch inner loop would cost several
rollouts).
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._misc import default_float
from ..env import Environment
from ..policies import gaussian_kl, gaussian_log_prob, PolicyConfig
from ._base import (
    AbstractTrainer,
    adam_unless,
    apply_updates,
    batch_gradient,
    init_state,
    mean_entropy,
    next_state,
    objective_gradient,
    optimiser_field,
    policy_outputs,
    step_metrics,
    TrainState,
)
from ._output_space import gauss_newton, output_space_sgd


def _rms(g: Float[Array, "..."]) -> Float[Array, ""]:
    """The cached gradient's size, which every trainer's step is made relative to
    (never zero: a degenerate batch gives a zero gradient)."""
    return jnp.sqrt(jnp.mean(g**2)) + jnp.finfo(g.dtype).tiny


def _inner_loop(
    surrogate,
    optimiser,
    policy,
    key,
    steps: int,
    n: int,
    minibatch: int,
    stop_at: float = float("inf"),
):
    """`steps` optimiser updates of `surrogate(policy, episodes)` on cached data, each
    on `minibatch` episodes drawn without replacement from the `n` cached ones (all
    of them when `minibatch >= n`). No rollout: this is the cheap part.

    `surrogate` returns `(value, distance)`, the distance being how far the policy
    has moved from the one that collected the data, on those episodes. With
    `stop_at`, the remaining updates are skipped once a minibatch's distance exceeds
    it (PPO's early stop at a target KL), so a step ends at most one update past the
    limit. (Undoing that last update instead stalls training: once the policy
    sharpens, Adam's first, sign-sized update alone can cross the limit.) A penalty
    alone lets a rare step run far past the trust region when its coefficient has
    adapted down during a run of small steps, and a first-order surrogate means
    nothing that far out.

    The optimiser starts afresh at every primal step: the surrogate is a new function
    each time (new cached gradient, new trust-region coefficient, new dual
    variables), and moment estimates carried over from the last one would scale the
    first updates by a stale gradient size.

    **Returns:** the policy, the optimiser state and the number of updates made."""
    params, static = eqx.partition(policy, eqx.is_array)
    opt_state = optimiser.init(eqx.filter(policy, eqx.is_inexact_array))
    size = min(minibatch, n)

    def body(carry, k):
        p, opt, stopped, made = carry
        current = eqx.combine(p, static)
        if size < n:
            episodes = jax.random.choice(k, n, (size,), replace=False)
        else:
            episodes = jnp.arange(n)
        grads, distance = eqx.filter_grad(surrogate, has_aux=True)(current, episodes)
        stopped = stopped | (distance > stop_at)
        updated, new_opt = apply_updates(optimiser, current, grads, opt)
        keep = lambda old, new: jnp.where(stopped, old, new)
        p = jax.tree.map(keep, p, eqx.filter(updated, eqx.is_array))
        opt = jax.tree.map(keep, opt, new_opt)
        return (p, opt, stopped, made + jnp.where(stopped, 0, 1)), None

    keys = jax.random.split(key, steps)
    init = (params, opt_state, jnp.array(False), jnp.zeros((), jnp.int32))
    (params, opt_state, _, made), _ = jax.lax.scan(body, init, keys)
    return eqx.combine(params, static), opt_state, made


class AbstractOptaxTrainer(AbstractTrainer):
    """A trainer whose actors move by an optax transformation of their parameter
    gradient, as GradMA and GradMA-RPO do: Adam at `lr`, or the `optimiser` a user
    composes (`optimiser_field`). `init` starts its state; `step` applies
    `actor_optimiser()`."""

    lr: eqx.AbstractVar[float]
    policy: eqx.AbstractVar[PolicyConfig]
    optimiser: eqx.AbstractVar[optax.GradientTransformation | None]

    def actor_optimiser(self) -> optax.GradientTransformation:
        """The actors' optax transformation: `optimiser`, or Adam at `lr`."""
        return adam_unless(self.optimiser, self.lr)

    def init(self, env: Environment, key: PRNGKeyArray) -> TrainState:
        return init_state(self, env, key, self.actor_optimiser(), self.policy)


class GradMA(AbstractOptaxTrainer):
    """Gradient-based multi-agent learning: a fresh environment gradient per update.

    The parameter gradient is `d/dtheta [L / N - c_ent H]`, with `L` the batch's mean
    Lagrangian and `N` agents: one Adam update per rollout.

    `scale_free` (the default) divides that objective by the RMS of its cached output
    gradient before the update, as GradMAP's surrogate is divided: the same
    minimiser, but every batch weighs the same in Adam's moments. Adam is invariant
    to a constant scale of the gradient, not to one that changes from batch to
    batch, as the Lagrangian's does under large duals (a day with a violation
    event): late in training (bias correction spent) a batch whose gradient is far
    larger than the usual moves each parameter by up to `0.1 / sqrt(0.001)` ≈ 3 `lr`
    in its direction, and about ten times that over the next updates as the first
    moment decays, and then damps the updates for about a thousand steps while the
    second moment remembers it. Plain GradMA diverged late in training on European
    LV / 100 and IEEE 123 / 1,000 and never recovered (docs/benchmarks.md).
    `scale_free=False` is the paper's plain GradMA.
    """

    display_name: ClassVar[str] = "GradMA"

    n_dual: int = 20
    n_primal: int = 60
    batch: int = 500
    lr: float = 1e-2
    dual_lr: float = 150.0
    entropy: float = 0.01
    scale_free: bool = True
    policy: PolicyConfig = PolicyConfig()
    optimiser: optax.GradientTransformation | None = optimiser_field()

    def step(
        self, env: Environment, state: TrainState
    ) -> tuple[TrainState, dict[str, Float[Array, ""]]]:
        key, _, grad = batch_gradient(self, env, state)
        g = objective_gradient(env, grad)
        scale = _rms(g) if self.scale_free else jnp.ones((), g.dtype)

        def loss(policy):
            o, log_std = policy_outputs(policy, grad.obs)
            return (
                jnp.mean(jnp.sum(g * o, axis=-1)) - self.entropy * mean_entropy(log_std)
            ) / scale

        grads = eqx.filter_grad(loss)(state.policy)
        policy, opt_state = apply_updates(
            self.actor_optimiser(), state.policy, grads, state.opt_state
        )
        new = next_state(
            self,
            state,
            policy=policy,
            opt_state=opt_state,
            key=key,
            channels=grad.channels,
        )
        return new, step_metrics(state, grad, new.lambdas)


def _scale_to_trust_region(old_policy, new_policy, obs, o_old, delta):
    """GradMAP's line search: the step from `old_policy` to `new_policy`, scaled so
    that its mean squared output distance on `obs` is the trust region `delta`.

    The inner updates' step is proportional to 1 / beta, so the multiplier that
    makes D = delta on this step's data is found by scaling the step: a line search
    along it. D grows as a power of the step's length (the square, to first order);
    each correction estimates that power from the last two points, so a step that
    ran into the policy's curvature (a saturating unit) is brought back too. beta /
    scale is then the multiplier that would have made this step, and the guess for
    the next.

    **Returns:** `(policy, scale, D of the step as made, D of the scaled step)`.
    """
    old, static = eqx.partition(old_policy, eqx.is_inexact_array)
    moved = eqx.filter(new_policy, eqx.is_inexact_array)
    direction = jax.tree.map(jnp.subtract, moved, old)

    def along(scale):
        p = jax.tree.map(lambda a, b: a + scale * b, old, direction)
        return eqx.combine(p, static)

    def distance(scale):
        o, _ = policy_outputs(along(scale), obs)
        return jnp.mean(jnp.sum((o - o_old) ** 2, axis=-1))

    tiny = jnp.finfo(o_old.dtype).tiny
    d_made = distance(1.0)
    scale, d_mean = jnp.ones_like(d_made), d_made
    prev_scale, prev_d, power = scale, d_mean, jnp.full_like(d_made, 2.0)
    for i in range(3):
        if i:
            power = jnp.log((d_mean + tiny) / (prev_d + tiny)) / jnp.log(
                scale / prev_scale
            )
            power = jnp.clip(jnp.nan_to_num(power, nan=2.0), 0.5, 4.0)
        prev_scale, prev_d = scale, d_mean
        ratio = (delta / jnp.maximum(d_mean, tiny)) ** (1 / power)
        scale = scale * jnp.clip(ratio, 1 / 16, 4.0)
        d_mean = distance(scale)
    return along(scale), scale, d_made, d_mean


class GradMAPState(eqx.Module):
    """GradMAP's own state between primal steps (its `TrainState.extra`).

    - `beta`: the trust-region multiplier of the last step made (0 before the
        first, which starts from `GradMAP.beta_start`); the next step's inner
        updates start from it.
    """

    beta: Float[Array, ""]


class GradMAP(AbstractTrainer):
    """GradMAP: gradient-based multi-agent proximal learning (the paper's method).

    One rollout per primal step; its gradient with respect to the policy outputs is
    cached and reused for `inner_steps` updates of the proximal surrogate

        S(theta) = mean(g * d) - c_ent H + beta/2 * rms(g) * mean |d|^2,
        d = o_theta - o_old,

    whose trust region lives in policy-output space, where the cached gradient is
    defined. `trust_region` is the target `delta` of the mean squared output change
    `D = mean |d|^2` after the inner updates.

    `beta` governs `D`, in three parts (docs/training.md has the measurements):

    - The inner updates are gradient steps on `S / rms(g)` (the same minimiser),
      each agent's gradient preconditioned by the inverse of its Gauss–Newton matrix
      of the outputs (`gauss_newton`, from `curvature_samples` cached samples, fixed
      for the primal step): steps of a prescribed length in output space.
    - Their step size is `lr * N / beta` (`N` agents): each update closes the share
      `lr` of the way to the surrogate's minimum, and the forcing's step scales with
      `1 / beta`, so the outputs move in proportion to `1 / beta` (`D` as
      `1 / beta^2`) whether the updates stop short of the minimum or reach it. One
      update moves no agent's outputs by more than `max_move * sqrt(delta)` (the
      cached gradient is heavy-tailed).
    - The updates aim at `delta / inner_margin^2` (with `inner_margin` times the last
      step's multiplier), and a line search then scales the parameter change so
      that `D = delta` on 32 cached episodes; `beta / scale`, the multiplier that
      made the step, starts the next one. This is PPO's adaptive KL-penalty rule made
      exact for a penalty whose step is linear in `1 / beta` (PPO's fixed doubling,
      which quarters `D`, would jump across the band `[delta / 1.5, 1.5 delta]`).

    Why not Adam, as the paper's other updates: Adam moves every parameter by about
    its learning rate on its first update whatever the gradient's scale, so a fresh
    Adam per primal step cannot be steered by `beta` (measured on IEEE 13 / 10: `D`
    inside the band on 17 % of primal steps, the rest bimodal at 0.5 and 2.8
    `delta`), and with its learning rate tied to `1 / beta` it jumped between one
    update at 5 `delta` and 80 updates at 0.01 `delta`.

    `early_stop` (a multiple of `delta`; `inf` turns it off) ends a primal step's
    inner updates once a minibatch has moved further than that: a safety net for a
    step whose sensitivity changed abruptly, not the regulator of the step.
    """

    display_name: ClassVar[str] = "GradMAP"

    n_dual: int = 20
    n_primal: int = 10
    batch: int = 500
    inner_steps: int = 80
    minibatch: int = 8
    lr: float = 0.02
    dual_lr: float = 150.0
    entropy: float = 0.01
    trust_region: float = 1e-3
    early_stop: float = 4.0
    curvature_samples: int = 128
    inner_margin: float = 2.0
    max_move: float = 0.1
    policy: PolicyConfig = PolicyConfig()

    def init(self, env: Environment, key: PRNGKeyArray) -> TrainState:
        extra = GradMAPState(beta=jnp.zeros((), default_float()))
        sgd = output_space_sgd(self.lr, None, env.n_agents)
        return init_state(self, env, key, sgd, self.policy, extra=extra)

    @property
    def beta_start(self) -> float:
        """`beta`'s first value: where the surrogate's unconstrained optimum in
        output space moves each output by about `sqrt(delta)` (RMS)."""
        return 1 / self.trust_region**0.5

    def step(
        self, env: Environment, state: TrainState
    ) -> tuple[TrainState, dict[str, Float[Array, ""]]]:
        # Long: GradMAP's step in the order of the paper's algorithm: surrogate,
        # curvature, inner updates, line search onto the trust region, multiplier; all
        # work on one cached batch
        key, k_inner, grad = batch_gradient(self, env, state)
        k_inner, k_mb, k_ls = jax.random.split(k_inner, 3)
        # mean(g * d) over episodes, steps and agents is the first-order change of the
        # objective (the Lagrangian per agent and day).
        g = objective_gradient(env, grad)
        o_old = grad.outputs
        delta = self.trust_region
        # The surrogate is divided by the gradient's size (RMS), which leaves its
        # minimiser unchanged: a dual step can scale the Lagrangian, and with it g,
        # by orders of magnitude between two primal steps, and neither beta nor the
        # step size should have to follow.
        rms = _rms(g)
        g_hat = g / rms
        beta_last = jnp.where(state.extra.beta > 0, state.extra.beta, self.beta_start)
        # The inner updates aim at a quarter of delta (twice the last step's
        # multiplier), and the line search below lengthens the step they find: a
        # step whose sensitivity grew since the last one then stays far inside the
        # early stop, and all the updates are made.
        beta = self.inner_margin * beta_last

        def surrogate(policy, episodes):
            o, log_std = policy_outputs(policy, grad.obs[episodes])
            d = o - o_old[episodes]
            distance = jnp.mean(jnp.sum(d**2, axis=-1))
            value = (
                jnp.mean(jnp.sum(g_hat[episodes] * d, axis=-1))
                - self.entropy / rms * mean_entropy(log_std)
                + 0.5 * beta * distance
            )
            return value, distance

        # Each agent's Gauss–Newton matrix from cached samples (random steps of
        # random episodes: a few days' observations alone leave directions that
        # move the outputs on other days unseen).
        flat_obs = grad.obs.reshape((-1,) + grad.obs.shape[-2:])
        sample = jax.random.choice(k_mb, flat_obs.shape[0], (self.curvature_samples,))
        gn = gauss_newton(
            state.policy, flat_obs[sample], lambda p, o: policy_outputs(p, o)[0]
        )
        # The proximal term's gradient, preconditioned, is (beta / N) dtheta: with
        # step lr * N / beta each update closes the fraction lr of the way to the
        # surrogate's minimum, and the forcing's step scales with 1 / beta.
        n = env.n_agents
        policy, opt_state, made = _inner_loop(
            surrogate,
            output_space_sgd(
                self.lr * n / beta, gn, n, max_move=self.max_move * delta**0.5
            ),
            state.policy,
            k_inner,
            self.inner_steps,
            self.batch,
            self.minibatch,
            self.early_stop * delta,
        )
        # measured on 32 of the cached episodes (3,072 steps of every agent): on all
        # 500 each measurement costs as much as 30 inner updates
        probe = jax.random.choice(k_ls, self.batch, (min(32, self.batch),), False)
        policy, scale, d_made, d_mean = _scale_to_trust_region(
            state.policy, policy, grad.obs[probe], o_old[probe], delta
        )
        # beta stays within six orders of magnitude of its start, so a run of
        # degenerate steps (a zero gradient) cannot drive it to zero or infinity.
        start = self.beta_start
        beta_next = jnp.clip(beta / scale, 1e-3 * start, 1e3 * start)
        new = next_state(
            self,
            state,
            policy=policy,
            opt_state=opt_state,
            key=key,
            channels=grad.channels,
            extra=GradMAPState(beta=beta_next.astype(state.extra.beta.dtype)),
        )
        metrics = step_metrics(state, grad, new.lambdas)
        metrics["trust_region_d"] = d_mean
        metrics["trust_region_d_inner"] = d_made
        metrics["step_scale"] = scale
        metrics["beta"] = beta / scale
        metrics["inner_steps_made"] = made.astype(d_mean.dtype)
        return new, metrics


class GradMARPO(AbstractOptaxTrainer):
    """GradMA-RPO: the cached environment gradient reused under a PPO-style trust
    region in distribution space: the first-order term counts only samples whose
    probability ratio `pi_theta(a) / pi_old(a)` stays within `1 +- clip`, and a KL
    penalty `kl * rms(g) * KL(pi_old || pi_theta)` holds the policy near the old one.

    The KL weight is relative to the cached gradient's size (RMS), as GradMAP's
    `beta` is: the first-order term grows with the dual variables, and a fixed
    weight would let the KL term fade as they do. Like PPO implementations, the
    inner updates stop once a minibatch's KL exceeds `1.5 * target_kl`."""

    display_name: ClassVar[str] = "GradMA-RPO"

    n_dual: int = 20
    n_primal: int = 10
    batch: int = 500
    inner_steps: int = 80
    lr: float = 3e-3
    dual_lr: float = 150.0
    entropy: float = 0.01
    clip: float = 0.2
    kl: float = 0.2
    target_kl: float = 0.02
    minibatch: int = 64
    policy: PolicyConfig = PolicyConfig()
    optimiser: optax.GradientTransformation | None = optimiser_field()

    def step(
        self, env: Environment, state: TrainState
    ) -> tuple[TrainState, dict[str, Float[Array, ""]]]:
        key, k_inner, grad = batch_gradient(self, env, state)
        g = objective_gradient(env, grad)
        rms = _rms(g)
        o_old = grad.outputs
        mu_old, sigma_old = o_old[..., 0], o_old[..., 1]
        log_std_old = jnp.log(sigma_old)
        logp_old = gaussian_log_prob(grad.actions, mu_old, log_std_old)

        def surrogate(policy, episodes):
            o, log_std = policy_outputs(policy, grad.obs[episodes])
            mu_e, ls_e = mu_old[episodes], log_std_old[episodes]
            logp = gaussian_log_prob(grad.actions[episodes], o[..., 0], log_std)
            ratio = jax.lax.stop_gradient(jnp.exp(logp - logp_old[episodes]))
            gate = (ratio > 1 - self.clip) & (ratio < 1 + self.clip)
            d = o - o_old[episodes]
            linear = jnp.mean(jnp.where(gate, jnp.sum(g[episodes] * d, axis=-1), 0.0))
            kl = jnp.mean(gaussian_kl(mu_e, ls_e, o[..., 0], log_std))
            value = linear - self.entropy * mean_entropy(log_std) + self.kl * rms * kl
            return value, kl

        policy, opt_state, made = _inner_loop(
            surrogate,
            self.actor_optimiser(),
            state.policy,
            k_inner,
            self.inner_steps,
            self.batch,
            self.minibatch,
            1.5 * self.target_kl,
        )
        o_new, log_std_new = policy_outputs(policy, grad.obs)
        kl_mean = jnp.mean(gaussian_kl(mu_old, log_std_old, o_new[..., 0], log_std_new))
        new = next_state(
            self,
            state,
            policy=policy,
            opt_state=opt_state,
            key=key,
            channels=grad.channels,
        )
        metrics = step_metrics(state, grad, new.lambdas)
        metrics["kl"] = kl_mean
        metrics["inner_steps_made"] = made.astype(kl_mean.dtype)
        return new, metrics
