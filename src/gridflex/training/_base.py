"""The trainer interface, the training state, and what every trainer shares.

Primal–dual learning (DESIGN §7): an outer dual loop of `n_dual` steps, each after a
block of `n_primal` primal steps under fixed dual variables; projected dual ascent
`lambda_k <- max(0, lambda_k + dual_lr * v_k)` with `v_k` the channel's mean over the
block. A trainer is a Module with pure `init` and `step`: `step` is one primal step
(and the dual step when a block ends), compiled once and called `n_dual * n_primal`
times by `gridflex.training.fit`.

Every trainer gets its environment gradient the same way: the gradient of the
episodes' Lagrangians with respect to the policy outputs `o = (mu, sigma)` of every
agent at every step of every episode, `g = d(sum_e L_e)/do` (the `shift` of
`Environment.rollout`). From it, the gradient with respect to the parameters is one
vector–Jacobian product of the policy at the recorded observations (the closed loop is
in `g`: a shift at step t moves every later state and observation). Episodes with a
failed power flow are masked out of `g` and counted.
"""

import abc
import dataclasses
from typing import Any, TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from .._misc import default_float
from ..env import Environment, PolicyController, VOLTAGE
from ..policies import (
    AbstractPolicy,
    gaussian_entropy,
    GaussianMLPPolicy,
    PolicyConfig,
)


if TYPE_CHECKING:
    from typing import ClassVar as AbstractClassVar
else:
    from equinox import AbstractClassVar


def optimiser_field() -> Any:
    """A trainer's `optimiser` setting: an optax transformation that replaces the
    default Adam at the trainer's learning rate, to compose with optax
    (`optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3))`). Set in
    Python only: a run's `config.toml` holds numbers and names, so the CLI trains
    with the default, and resuming a checkpoint needs the same optimiser."""
    return eqx.field(default=None, static=True, metadata={"config": False})


def adam_unless(
    optimiser: optax.GradientTransformation | None, lr: float
) -> optax.GradientTransformation:
    """`optimiser`, or Adam at `lr` when none is set."""
    return optax.adam(lr) if optimiser is None else optimiser


class TrainState(eqx.Module):
    """Everything a run needs to continue exactly where it stopped.

    - `policy`: the agents' policies.
    - `opt_state`: the optimiser's state.
    - `lambdas`: dual variables by channel.
    - `key`: the PRNG state.
    - `step`: primal steps done.
    - `block`: channel values summed over the current dual block.
    - `extra`: whatever else one trainer carries from step to step and no other
        trainer needs to know about (GradMAP's trust-region multiplier; IPPO's and
        MAPPO's critics, their optimiser state and return normalisation); `None` for
        GradMA and GradMA-RPO. It is saved and restored with the rest (checkpoints
        follow the state's structure).

    Trainers build the next state with `next_state`, so a field added here later does
    not break them.
    """

    policy: AbstractPolicy
    opt_state: PyTree
    lambdas: dict[str, Float[Array, ""]]
    key: PRNGKeyArray
    step: Int[Array, ""]
    block: dict[str, Float[Array, ""]]
    extra: PyTree = None


_MAY_BE_ZERO = frozenset({"dual_lr", "entropy", "kl"})


class AbstractTrainer(eqx.Module):
    """Base class of trainers. Write a new one by subclassing it (a final class: no
    further subclassing) and implementing `init` and `step`; `fit` drives any
    trainer, with checkpoints, metrics and resume. The helpers in this module
    (`init_state`, `batch_gradient`, `policy_outputs`, `dual_update`,
    `apply_updates`) are the shared machinery."""

    display_name: AbstractClassVar[str]
    """The method's name as readers know it (legends, reports): `"GradMA-RPO"` for
    the class `GradMARPO` that `--method gradma_rpo` picks."""

    n_dual: eqx.AbstractVar[int]
    n_primal: eqx.AbstractVar[int]
    batch: eqx.AbstractVar[int]
    dual_lr: eqx.AbstractVar[float]

    @abc.abstractmethod
    def init(self, env: Environment, key: PRNGKeyArray) -> TrainState:
        """The state before the first primal step."""

    @abc.abstractmethod
    def step(
        self, env: Environment, state: TrainState
    ) -> tuple[TrainState, dict[str, Float[Array, ""]]]:
        """One primal step (and the dual step at the end of a block).

        **Returns:** the new state and this step's metrics (scalars; `fit` shows
        `cost`, `voltage_violation` and `failed_episodes` when present and writes
        them all to `metrics.jsonl`).
        """

    @property
    def total_steps(self) -> int:
        return self.n_dual * self.n_primal

    def __check_init__(self):
        # A config typo (a negative learning rate, a zero batch) fails here, naming
        # the setting, not as a NaN a hundred steps into a run. Weights of optional
        # terms may be zero; every other number a trainer takes is a size, a count
        # or a rate and must be positive.
        name = type(self).__name__
        for f in dataclasses.fields(self):  # pyright: ignore[reportArgumentType]
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            low_ok = f.name in _MAY_BE_ZERO
            if not (v >= 0 if low_ok else v > 0):
                need = "non-negative" if low_ok else "positive"
                raise ValueError(f"{name}.{f.name} must be {need}; got {v!r}.")


def init_state(
    trainer: AbstractTrainer,
    env: Environment,
    key: PRNGKeyArray,
    optimiser: optax.GradientTransformation,
    policy_config: PolicyConfig,
    extra: PyTree = None,
) -> TrainState:
    """The state before the first primal step: fresh policies, `optimiser`'s state for
    them, zero dual variables, and the trainer's own `extra` state."""
    k_policy, k_run = jax.random.split(key)
    policy = GaussianMLPPolicy.init(
        k_policy,
        env.n_agents,
        hidden=policy_config.hidden,
        activation=policy_config.activation,
        init_log_std=policy_config.init_log_std,
    )
    dtype = default_float()
    with jax.numpy_dtype_promotion("standard"):
        opt_state = optimiser.init(eqx.filter(policy, eqx.is_inexact_array))
    zeros = {c: jnp.zeros((), dtype) for c in env.channels}
    return TrainState(
        policy=policy,
        opt_state=opt_state,
        lambdas=dict(zeros),
        key=k_run,
        step=jnp.zeros((), jnp.int32),
        block=dict(zeros),
        extra=extra,
    )


def sample_days(key: PRNGKeyArray, env: Environment, batch: int) -> Int[Array, " e"]:
    """Training days for a batch of episodes, uniformly with replacement."""
    return jax.random.randint(key, (batch,), 0, env.train.n_days)


class EnvGradient(eqx.Module):
    """One rollout and its gradient with respect to the policy outputs.

    - `g`: `d(sum_e L_e)/d(mu, sigma)`, `[episode, step, agent, 2]`, zero for
        episodes with a failed power flow.
    - `obs`, `outputs`, `actions`: what the policy saw and produced, same layout.
    - `lagrangian`, `cost`, `channels`, `n_failed`, `n_non_finite_actions`: the
        rollout's figures.
    - `nan_entries`: non-finite gradient entries set to zero (counted, never hidden).
    """

    g: Float[Array, "episode step agent 2"]
    obs: Float[Array, "episode step agent obs"]
    outputs: Float[Array, "episode step agent 2"]
    actions: Float[Array, "episode step agent"]
    lagrangian: Float[Array, ""]
    cost: Float[Array, ""]
    channels: dict[str, Float[Array, ""]]
    n_failed: Int[Array, ""]
    n_non_finite_actions: Int[Array, ""]
    nan_entries: Int[Array, ""]


def environment_gradient(
    env: Environment,
    policy: AbstractPolicy,
    lambdas: dict[str, Float[Array, ""]],
    key: PRNGKeyArray,
    days: Int[Array, " episode"],
) -> EnvGradient:
    """Roll `days` out under `policy` and differentiate the summed Lagrangian with
    respect to every agent's policy outputs `(mu, sigma)` at every step, through the
    implicit adjoint of every power flow: the expensive gradient `g` that GradMAP
    caches and reuses. Failed episodes are masked (their entries of `g` are zero)
    and non-finite entries counted in `nan_entries`, never passed on.

    **Returns:** an `EnvGradient` (with the observations and outputs it was taken at).
    """
    dtype = default_float()
    e = days.shape[0]
    shift = jnp.zeros((e, env.config.n_steps, env.n_agents, 2), dtype)
    controller = PolicyController(policy)

    def total(s):
        r = env.rollout(controller, lambdas, key, days, shift=s, record=True)
        return jnp.sum(r.episodes.lagrangian), r

    (_, r), g = jax.value_and_grad(total, has_aux=True)(shift)
    ok = r.episodes.ok[:, None, None, None]
    finite = jnp.isfinite(g)
    nan_entries = jnp.sum(ok & ~finite)
    g = jnp.where(ok & finite, g, 0.0)
    trace = r.episodes.trace
    assert trace is not None and trace.obs is not None and trace.outputs is not None
    return EnvGradient(
        g=g,
        obs=trace.obs,
        outputs=trace.outputs,
        actions=trace.action,
        lagrangian=r.lagrangian,
        cost=r.cost,
        channels=r.channels,
        n_failed=r.n_failed,
        n_non_finite_actions=r.n_non_finite_actions,
        nan_entries=nan_entries,
    )


def batch_gradient(
    trainer: AbstractTrainer, env: Environment, state: TrainState
) -> tuple[PRNGKeyArray, PRNGKeyArray, EnvGradient]:
    """How every primal step starts: split the PRNG state, draw `trainer.batch`
    training days, roll them out under the current policy and dual variables, and
    differentiate.

    **Returns:** `(next_key, spare_key, gradient)`: the key to store in the new
    state, a key for the step's own randomness, and the `EnvGradient`.
    """
    key, k_days, k_roll, k_spare = jax.random.split(state.key, 4)
    days = sample_days(k_days, env, trainer.batch)
    grad = environment_gradient(env, state.policy, state.lambdas, k_roll, days)
    return key, k_spare, grad


def policy_outputs(
    policy: AbstractPolicy, obs: Float[Array, "*batch agent obs"]
) -> tuple[Float[Array, "*batch agent 2"], Float[Array, "*batch agent"]]:
    """`o = (mu, sigma)` and `log_std` at recorded observations (any leading axes),
    by the policy's own `batched`."""
    mu, log_std = policy.batched(obs)
    return jnp.stack([mu, jnp.exp(log_std)], axis=-1), log_std


def mean_entropy(log_std: Float[Array, "..."]) -> Float[Array, ""]:
    return jnp.mean(gaussian_entropy(log_std))


def objective_gradient(env: Environment, grad: EnvGradient) -> Float[Array, "e t a 2"]:
    """The cached gradient in the units of the training objective.

    The objective is the Lagrangian per agent and day, `J = mean_e(L_e) / N` (minus
    the entropy bonus), so that learning rates and the entropy coefficient mean the
    same on 10 or 1,000 agents. Scaled by the number of steps `T`, the gradient
    `d(sum_e L_e)/do` is such that `mean(g * delta_o)` over episodes, steps and agents
    is the first-order change of `J`.
    """
    return grad.g * env.config.n_steps


def dual_update(
    trainer: AbstractTrainer, state: TrainState, channels: dict[str, Float[Array, ""]]
) -> tuple[dict[str, Float[Array, ""]], dict[str, Float[Array, ""]]]:
    """Accumulate this step's channels; at the end of a block of `n_primal` steps,
    projected ascent on the block's mean. **Returns:** `(lambdas, block)`."""
    block = {c: state.block[c] + channels[c] for c in state.block}
    end = (state.step + 1) % trainer.n_primal == 0
    lambdas = {
        c: jnp.where(
            end,
            jnp.maximum(
                0.0, state.lambdas[c] + trainer.dual_lr * block[c] / trainer.n_primal
            ),
            state.lambdas[c],
        )
        for c in state.lambdas
    }
    block = {c: jnp.where(end, jnp.zeros_like(v), v) for c, v in block.items()}
    return lambdas, block


def next_state(
    trainer: AbstractTrainer,
    state: TrainState,
    *,
    policy: AbstractPolicy,
    opt_state: PyTree,
    key: PRNGKeyArray,
    channels: dict[str, Float[Array, ""]],
    **changes: Any,
) -> TrainState:
    """The state after one primal step: the new policy, optimiser state and PRNG key,
    the dual update on this step's `channels` (`dual_update`), `step + 1`, and any
    other field in `changes` (a trainer's own state: `extra=...`); the rest carried
    over."""
    lambdas, block = dual_update(trainer, state, channels)
    return dataclasses.replace(
        state,
        policy=policy,
        opt_state=opt_state,
        lambdas=lambdas,
        key=key,
        step=state.step + 1,
        block=block,
        **changes,
    )


def apply_updates(
    optimiser: optax.GradientTransformation,
    model: eqx.Module,
    grads: PyTree,
    opt_state: PyTree,
) -> tuple[Any, PyTree]:
    """One `optimiser` step of `model` (a policy, a critic) along `grads`.

    **Returns:** the updated model (same type) and optimiser state."""
    params = eqx.filter(model, eqx.is_inexact_array)
    # Optax mixes Python scalars with arrays; keep JAX's standard promotion there.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = optimiser.update(grads, opt_state, params)
    return eqx.apply_updates(model, updates), opt_state


def rollout_metrics(
    cost: Float[Array, ""],
    lagrangian: Float[Array, ""],
    channels: dict[str, Float[Array, ""]],
    n_failed: Int[Array, ""],
    n_non_finite_actions: Int[Array, ""],
    lambdas: dict[str, Float[Array, ""]],
) -> dict[str, Float[Array, ""]]:
    """The metrics every trainer reports of its training rollout: cost, Lagrangian,
    channels, failed episodes, NaN or infinite actions, and the dual variables after
    this step."""
    dtype = default_float()
    out = {
        "cost": cost,
        "lagrangian": lagrangian,
        "voltage_violation": channels[VOLTAGE],
        "failed_episodes": n_failed.astype(dtype),
        "non_finite_actions": n_non_finite_actions.astype(dtype),
    }
    out.update(dict(channels))
    out.update({f"lambda_{c}": v for c, v in lambdas.items()})
    return out


def step_metrics(
    state: TrainState, grad: EnvGradient, lambdas: dict[str, Float[Array, ""]]
) -> dict[str, Float[Array, ""]]:
    """`rollout_metrics` of a gradient trainer's rollout, and the non-finite
    gradient entries it zeroed."""
    out = rollout_metrics(
        grad.cost,
        grad.lagrangian,
        grad.channels,
        grad.n_failed,
        grad.n_non_finite_actions,
        lambdas,
    )
    out["nan_gradient_entries"] = grad.nan_entries.astype(default_float())
    return out
