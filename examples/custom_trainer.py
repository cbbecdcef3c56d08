"""A trainer written outside the library: GradMA with plain SGD and gradient clipping.

It uses only gridflex's public API (`AbstractTrainer` and the shared machinery in
`gridflex.training`), and `gridflex.training.fit` drives it with checkpoints, metrics
and resume like the built-in trainers: with `--out`, the run folder gets
`metrics.jsonl` and `checkpoints/`, and the same command resumes a killed run.

    python examples/custom_trainer.py --steps 6 --out runs/clipped_sgd
"""

import argparse
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import gridflex as gf
from gridflex.env import make_environment
from gridflex.policies import PolicyConfig
from gridflex.training import (
    AbstractTrainer,
    batch_gradient,
    fit,
    init_state,
    next_state,
    objective_gradient,
    policy_outputs,
)


class ClippedSGD(AbstractTrainer):
    """One SGD step per rollout on the clipped environment gradient."""

    display_name: ClassVar[str] = "clipped SGD"
    n_dual: int = 2
    n_primal: int = 3
    batch: int = 8
    lr: float = 0.05
    max_norm: float = 1.0
    dual_lr: float = 150.0
    policy: PolicyConfig = PolicyConfig()

    def optimiser(self) -> optax.GradientTransformation:
        return optax.chain(optax.clip_by_global_norm(self.max_norm), optax.sgd(self.lr))

    def init(self, env, key):
        return init_state(self, env, key, self.optimiser(), self.policy)

    def step(self, env, state):
        key, _, grad = batch_gradient(self, env, state)

        g = objective_gradient(env, grad)

        def loss(policy):
            o, _ = policy_outputs(policy, grad.obs)
            return jnp.mean(jnp.sum(g * o, axis=-1))

        grads = eqx.filter_grad(loss)(state.policy)
        params = eqx.filter(state.policy, eqx.is_inexact_array)
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = self.optimiser().update(grads, state.opt_state, params)
        policy = eqx.apply_updates(state.policy, updates)
        new = next_state(
            self,
            state,
            policy=policy,
            opt_state=opt_state,
            key=key,
            channels=grad.channels,
        )
        return new, {
            "cost": grad.cost,
            "voltage_violation": grad.channels["voltage"],
            "failed_episodes": grad.n_failed.astype(grad.cost.dtype),
        }


def main(argv=None):
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--agents", type=int, default=4)
    p.add_argument("--out", default=None, help="run folder (resumed if it holds one)")
    args = p.parse_args(argv)
    env = make_environment(gf.feeders.ieee13(), args.agents, seed=0)
    trainer = ClippedSGD(n_dual=1, n_primal=args.steps)
    result = fit(
        env,
        trainer,
        key=jax.random.key(0),
        out_dir=args.out,
        resume=args.out is not None,
        progress=False,
    )
    first, last = result.metrics[0], result.metrics[-1]
    steps = len(result.metrics)
    print(f"cost {first['cost']:.1f} -> {last['cost']:.1f} after {steps} steps")
    return env, trainer, result


if __name__ == "__main__":
    main()
