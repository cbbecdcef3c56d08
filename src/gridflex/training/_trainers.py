"""GradMA, GradMAP and GradMA-RPO: three ways to use one environment gradient.

All three compute the same expensive object per primal step: a rollout of `batch`
episodes and the gradient `g` of its Lagrangian with respect to every agent's policy
outputs `o = (mu, sigma)` at every step (through the implicit adjoint of every power
flow). They differ in what they do with it:

- `GradMA`: one parameter update per rollout (a fresh environment gradient for every
    update).
- `GradMAP`: K cheap updates (each on a minibatch of the cached episodes, with a
    fresh Adam per primal step) of the proximal surrogate
    `mean(g * (o_theta - o_old)) - c_ent H + beta/2 mean |o_theta - o_old|^2`, a trust
    region in policy-output space whose coefficient beta adapts so that the mean
    squared output change D stays near `delta` (PPO's KL-penalty rule: D > 1.5 delta
    doubles beta, D < delta / 1.5 halves it).
- `GradMARPO`: the same cached gradients with a PPO-style probability-ratio gate and
    a KL penalty in distribution space.

Defaults follow the paper's Table I where its text survived (batch 500, Adam, N_d 20,
N_p 10 for GradMAP/GradMA-RPO and 60 for GradMA, K 80, dual learning rate 150, initial
std 0.14 (log -2), entropy 0.01, KL 0.2); the learning rates and the trust-region
target were lost with the table's numbers and are ours, as are the minibatches of
the inner updates (64 of the 500 cached episodes each: the surrogate is a mean over
samples, and on small feeders the full-batch inner loop would cost several rollouts).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ..env import Environment
from ..policies import gaussian_kl, gaussian_log_prob
from ._base import (
    AbstractTrainer,
    apply_updates,
    batch_gradient,
    init_state,
    mean_entropy,
    next_state,
    objective_gradient,
    policy_outputs,
    PolicyConfig,
    step_metrics,
    TrainState,
)


def _adam(lr: float | Float[Array, ""]) -> optax.GradientTransformation:
    return optax.adam(lr)


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


class GradMA(AbstractTrainer):
    """Gradient-based multi-agent learning: a fresh environment gradient per update.

    The parameter gradient is `d/dtheta [L / N - c_ent H]`, with `L` the batch's mean
    Lagrangian and `N` agents: one update per rollout.
    """

    n_dual: int = 20
    n_primal: int = 60
    batch: int = 500
    lr: float = 1e-2
    dual_lr: float = 150.0
    entropy: float = 0.01
    policy: PolicyConfig = PolicyConfig()

    def init(self, env: Environment, key: PRNGKeyArray) -> TrainState:
        return init_state(self, env, key, _adam(self.lr), self.policy)

    def step(self, env, state):
        key, _, grad = batch_gradient(self, env, state)
        g = objective_gradient(env, grad)

        def loss(policy):
            o, log_std = policy_outputs(policy, grad.obs)
            return jnp.mean(jnp.sum(g * o, axis=-1)) - self.entropy * mean_entropy(
                log_std
            )

        grads = eqx.filter_grad(loss)(state.policy)
        policy, opt_state = apply_updates(
            _adam(self.lr), state.policy, grads, state.opt_state
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


class GradMAP(AbstractTrainer):
    """GradMAP: gradient-based multi-agent proximal learning (the paper's method).

    One rollout per primal step; its gradient with respect to the policy outputs is
    cached and reused for `inner_steps` updates of the proximal surrogate, whose
    trust region lives in policy-output space (where the cached gradient is defined).
    `trust_region` is the target `delta` of the mean squared output change;
    `early_stop` (a multiple of it; `inf` turns it off) ends a primal step's inner
    updates once a minibatch has moved further than that, so no single step can
    leave the trust region far behind while the adaptive coefficient catches up.
    Because Adam's first update has a size set by the learning rate alone, the
    learning rate carries a scale (`TrainState.lr_scale`) that shrinks when the early
    stop fires within the first quarter of the inner updates and grows back when all
    of them are made; without it the inner loop can collapse to one update per step.
    """

    n_dual: int = 20
    n_primal: int = 10
    batch: int = 500
    inner_steps: int = 80
    minibatch: int = 64
    lr: float = 3e-3
    dual_lr: float = 150.0
    entropy: float = 0.01
    trust_region: float = 1e-3
    early_stop: float = 2.0
    policy: PolicyConfig = PolicyConfig()

    def init(self, env: Environment, key: PRNGKeyArray) -> TrainState:
        return init_state(self, env, key, _adam(self.lr), self.policy)

    def step(self, env, state):
        key, k_inner, grad = batch_gradient(self, env, state)
        # mean(g * d) over episodes, steps and agents is the first-order change of the
        # objective (the Lagrangian per agent and day).
        g = objective_gradient(env, grad)
        o_old = grad.outputs
        delta = self.trust_region
        # beta is kept relative to the gradient's size (RMS): a dual step can scale
        # the Lagrangian, and with it g, by orders of magnitude between two primal
        # steps; the trust region must not let the outputs jump when it does. It
        # starts where the surrogate's unconstrained optimum moves the outputs by
        # about sqrt(delta) (RMS), and adapts from there.
        rms = jnp.sqrt(jnp.mean(g**2)) + jnp.finfo(g.dtype).tiny
        beta = jnp.where(state.beta > 0, state.beta, 1 / jnp.sqrt(delta))

        def surrogate(policy, episodes):
            o, log_std = policy_outputs(policy, grad.obs[episodes])
            d = o - o_old[episodes]
            distance = jnp.mean(jnp.sum(d**2, axis=-1))
            value = (
                jnp.mean(jnp.sum(g[episodes] * d, axis=-1))
                - self.entropy * mean_entropy(log_std)
                + 0.5 * beta * rms * distance
            )
            return value, distance

        policy, opt_state, made = _inner_loop(
            surrogate,
            _adam(self.lr * state.lr_scale),
            state.policy,
            k_inner,
            self.inner_steps,
            self.batch,
            self.minibatch,
            self.early_stop * delta,
        )
        o_new, _ = policy_outputs(policy, grad.obs)
        d_mean = jnp.mean(jnp.sum((o_new - o_old) ** 2, axis=-1))
        # PPO's KL-penalty rule, in output space; beta stays within six orders of
        # magnitude around its start so a run of small (or large) moves cannot
        # drive it to zero (or infinity).
        beta_next = jnp.where(
            d_mean > 1.5 * delta,
            2 * beta,
            jnp.where(d_mean < delta / 1.5, beta / 2, beta),
        )
        start = 1 / jnp.sqrt(delta)
        beta_next = jnp.clip(beta_next, 1e-3 * start, 1e3 * start)
        # Adam's first update moves every parameter by about `lr` whatever the
        # surrogate's scale, so no beta can keep it inside the trust region once the
        # policies are sensitive enough: the early stop then fires after one or two
        # updates and the cached gradient is wasted. Halve the step size when that
        # happens (within the first quarter of the inner updates); let it grow back
        # when a primal step makes all its updates.
        scale = jnp.where(
            made <= self.inner_steps // 4,
            state.lr_scale / 2,
            jnp.where(made >= self.inner_steps, state.lr_scale * 1.5, state.lr_scale),
        )
        scale = jnp.clip(scale, 1e-3, 1.0).astype(state.lr_scale.dtype)
        new = next_state(
            self,
            state,
            policy=policy,
            opt_state=opt_state,
            key=key,
            channels=grad.channels,
            beta=beta_next,
            lr_scale=scale,
        )
        metrics = step_metrics(state, grad, new.lambdas)
        metrics["trust_region_d"] = d_mean
        metrics["beta"] = beta
        metrics["inner_steps_made"] = made.astype(d_mean.dtype)
        metrics["lr_scale"] = state.lr_scale
        return new, metrics


class GradMARPO(AbstractTrainer):
    """GradMA-RPO: the cached environment gradient reused under a PPO-style trust
    region in distribution space: the first-order term counts only samples whose
    probability ratio `pi_theta(a) / pi_old(a)` stays within `1 +- clip`, and a KL
    penalty `kl * KL(pi_old || pi_theta)` holds the policy near the old one."""

    n_dual: int = 20
    n_primal: int = 10
    batch: int = 500
    inner_steps: int = 80
    lr: float = 3e-3
    dual_lr: float = 150.0
    entropy: float = 0.01
    clip: float = 0.2
    kl: float = 0.2
    minibatch: int = 64
    policy: PolicyConfig = PolicyConfig()

    def init(self, env: Environment, key: PRNGKeyArray) -> TrainState:
        return init_state(self, env, key, _adam(self.lr), self.policy)

    def step(self, env, state):
        key, k_inner, grad = batch_gradient(self, env, state)
        g = objective_gradient(env, grad)
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
            return linear - self.entropy * mean_entropy(log_std) + self.kl * kl, kl

        policy, opt_state, _ = _inner_loop(
            surrogate,
            _adam(self.lr),
            state.policy,
            k_inner,
            self.inner_steps,
            self.batch,
            self.minibatch,
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
