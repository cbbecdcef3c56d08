"""Independent per-agent Gaussian MLP policies (paper §III-C, Table I).

Each agent owns a small MLP (by default one hidden layer of 16 tanh units) whose two
outputs are the mean and the log standard deviation of a Gaussian over its normalised
action. The population is one `GaussianMLP` whose array leaves carry a leading agent
axis, applied with `eqx.filter_vmap`: one compiled kernel for 1,000 agents, and still
no parameter shared between any two of them.
"""

import math
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._misc import default_float
from ._base import AbstractPolicy


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "elu": jax.nn.elu,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "softplus": jax.nn.softplus,
    "sigmoid": jax.nn.sigmoid,
}
"""Hidden-layer activations by name (names, not functions, so that a policy's
configuration is plain data: it goes into `config.toml` and compares by value)."""


def _check_int(name: str, value: object, minimum: int) -> int:
    # bool is an int to Python (and to beartype's numeric tower); never meant here.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} = {value!r} must be an int.")
    if value < minimum:
        raise ValueError(f"{name} = {value} must be >= {minimum}.")
    return value


def _check_config(
    obs_dim: int,
    hidden: Sequence[int],
    activation: str,
    init_log_std: float,
    output_scale: float,
) -> tuple[int, ...]:
    _check_int("obs_dim", obs_dim, 1)
    if isinstance(hidden, str | int):
        raise TypeError(
            f"hidden = {hidden!r} must be a sequence of layer widths, e.g. (16,) for "
            "one hidden layer of 16 units or () for a linear policy."
        )
    widths = tuple(_check_int(f"hidden[{i}]", h, 1) for i, h in enumerate(hidden))
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation = {activation!r} is not known; choose one of "
            f"{', '.join(ACTIVATIONS)}."
        )
    if not math.isfinite(init_log_std):
        raise ValueError(f"init_log_std = {init_log_std} must be finite.")
    if not (math.isfinite(output_scale) and output_scale >= 0):
        raise ValueError(f"output_scale = {output_scale} must be finite and >= 0.")
    return widths


class Dense(eqx.Module):
    """An affine layer `x -> weight @ x + bias`.

    **Arguments:**

    - `weight`: the weight matrix, `(out, in)`.
    - `bias`: the bias vector, `(out,)`.
    """

    weight: Float[Array, "out in"]
    bias: Float[Array, " out"]

    @property
    def in_features(self) -> int:
        return self.weight.shape[-1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[-2]

    def __call__(self, x: Float[Array, " in"]) -> Float[Array, " out"]:
        """The layer's output for one input vector (map it over more with `jax.vmap`:
        its derivative is written for a vector)."""
        if x.ndim != 1:
            raise ValueError(
                f"Dense takes one input vector, not an array of shape {x.shape}; map "
                "it over the leading axes with jax.vmap."
            )
        return _affine(self.weight, self.bias, x)


@jax.custom_jvp
def _affine(weight, bias, x):
    return weight @ x + bias


@_affine.defjvp
def _affine_jvp(primals, tangents):
    # JAX's own derivative, written so that XLA's CPU backend fuses its products.
    # Under the vmaps over agents and episodes, the transpose JAX derives from
    # `weight @ dx` multiplies a cotangent laid out `[agent, out, episode]`, which
    # runs as a plain batched dot (18 % of IEEE 123 / 1,000's rollout gradient);
    # from `dx @ weight.T` it multiplies `[agent, episode, out]` rows, which XNNPACK
    # fuses: the rollout with its gradient runs 10-15 % faster (and forward mode,
    # in isolation, about 25 %), the values equal up to float rounding.
    # `benchmarks/rollout.py --profile` shows the split.
    weight, bias, x = primals
    d_weight, d_bias, dx = tangents
    return weight @ x + bias, dx @ weight.T + d_weight @ x + d_bias


class GaussianMLP(eqx.Module):
    """One agent's policy network: observation vector -> `(mu, log_std)`.

    A plain MLP whose output layer has two units, the mean and the log standard
    deviation of a Gaussian over the agent's normalised action. This is what one home
    runs; `GaussianMLPPolicy` holds one per agent, stacked.

    `log_std` is *not* clamped. A hard clamp zeroes the gradient outside its range,
    so a log-std pushed past it (the entropy bonus always pushes up) could never come
    back; a soft clamp would bend the parameterisation the trainers' trust regions
    are defined in (paper eq. 19–21). Gradient methods start at `log_std = -2`, PPO
    at 0, and the entropy bonus and trust regions keep it moving slowly; the Gaussian
    helpers are exact for any finite value.

    **Arguments:**

    - `layers`: the linear layers, input to output; the last has two outputs.
    - `activation`: name of the hidden activation, a key of `ACTIVATIONS`.
    """

    layers: tuple[Dense, ...]
    activation: str = eqx.field(static=True)

    def __check_init__(self):
        if not self.layers:
            raise ValueError("GaussianMLP needs at least one (output) layer.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation = {self.activation!r} is not known; choose one of "
                f"{', '.join(ACTIVATIONS)}."
            )
        for k, (a, b) in enumerate(zip(self.layers[:-1], self.layers[1:])):
            if a.out_features != b.in_features:
                raise ValueError(
                    f"GaussianMLP layer {k} has {a.out_features} outputs but layer "
                    f"{k + 1} takes {b.in_features} inputs."
                )
        if self.layers[-1].out_features != 2:
            raise ValueError(
                "GaussianMLP's last layer must have 2 outputs (mu, log_std), not "
                f"{self.layers[-1].out_features}."
            )

    @classmethod
    def init(
        cls,
        key: PRNGKeyArray,
        obs_dim: int = 8,
        hidden: Sequence[int] = (16,),
        activation: str = "tanh",
        init_log_std: float = -2.0,
        output_scale: float = 0.01,
    ) -> "GaussianMLP":
        """A freshly initialised network for one agent.

        Weights and biases start uniform in `±1/sqrt(fan_in)` (as Equinox's `Linear`
        does). The
        output row for `log_std` has zero weights and bias `init_log_std`, so the
        initial standard deviation is exactly what the trainer asks for, whatever
        the observation (paper: `log_std = -2` for gradient methods, 0 for PPO). The
        output row for `mu` is scaled by `output_scale` and has zero bias, so initial
        actions are small and no device starts at a limit.

        **Arguments:**

        - `key`: a PRNG key.
        - `obs_dim`: length of the observation vector (8 in gridflex's environment).
        - `hidden`: widths of the hidden layers; `()` gives a linear policy.
        - `activation`: name of the hidden activation, a key of `ACTIVATIONS`.
        - `init_log_std`: the initial log standard deviation.
        - `output_scale`: factor on the initial weights into `mu`.

        **Returns:** a `GaussianMLP`.
        """
        widths = _check_config(obs_dim, hidden, activation, init_log_std, output_scale)
        return _init_one(key, obs_dim, widths, activation, init_log_std, output_scale)

    def __call__(
        self, obs: Float[Array, " obs"]
    ) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """`(mu, log_std)` of this agent's Gaussian.

        **Arguments:**

        - `obs`: the agent's observation vector.

        **Returns:** the mean and the log standard deviation, scalars.
        """
        act = ACTIVATIONS[self.activation]
        h = obs
        for layer in self.layers[:-1]:
            h = act(layer(h))
        out = self.layers[-1](h)
        return out[0], out[1]


def _init_one(
    key,
    obs_dim: int,
    widths: tuple[int, ...],
    activation: str,
    init_log_std,
    output_scale,
) -> GaussianMLP:
    # Unvalidated (`init_log_std`, `output_scale` may be traced): see GaussianMLP.init.
    dtype = default_float()
    sizes = (obs_dim, *widths, 2)
    shapes = [(n_out, n_in + 1) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    # One draw for all parameters (one random kernel to compile, not one per
    # weight), split into LeCun-uniform layers as Equinox's `Linear` would draw.
    u = jax.random.uniform(
        key, (sum(o * i for o, i in shapes),), dtype, minval=-1.0, maxval=1.0
    )
    layers = []
    start = 0
    for n_out, n_in1 in shapes:
        block = u[start : start + n_out * n_in1].reshape(n_out, n_in1)
        block = block / math.sqrt(n_in1 - 1)
        start += n_out * n_in1
        layers.append(Dense(block[:, :-1], block[:, -1]))
    last = layers[-1]
    scale = jnp.asarray(output_scale, dtype)
    weight = last.weight.at[0].multiply(scale).at[1].set(0.0)
    bias = jnp.zeros(2, dtype).at[1].set(jnp.asarray(init_log_std, dtype))
    layers[-1] = Dense(weight, bias)
    return GaussianMLP(layers=tuple(layers), activation=activation)


@eqx.filter_jit
def _init_stacked(
    key, n_agents, init_log_std, output_scale, obs_dim, widths, activation
) -> GaussianMLP:
    # One compiled program per shape: eager initialisation dispatches (and, on first
    # use, compiles) every operation separately, which costs seconds on a CPU.
    init = lambda k: _init_one(
        k, obs_dim, widths, activation, init_log_std, output_scale
    )
    return eqx.filter_vmap(init)(jax.random.split(key, n_agents))


class PolicyConfig(eqx.Module):
    """The agents' networks as a trainer builds them (`GaussianMLPPolicy.init`'s
    settings, kept in a trainer's `policy` field and its `config.toml` table): hidden
    widths, activation (a key of `ACTIVATIONS`) and initial log standard deviation
    (paper Table I: one hidden layer of 16 tanh units; -2 for the gradient methods,
    0 for IPPO and MAPPO)."""

    hidden: tuple[int, ...] = (16,)
    activation: str = "tanh"
    init_log_std: float = -2.0


@eqx.filter_jit
def _forward(mlp: GaussianMLP, obs):
    # Jitted so that an eager call (deployment, notebooks) compiles one program, not
    # one per operation; inside a trainer's jit this is inlined.
    return eqx.filter_vmap(lambda m, o: m(o))(mlp, obs)


class GaussianMLPPolicy(AbstractPolicy):
    """Independent Gaussian MLP policies, one per agent, with stacked parameters.

    Every array leaf of `mlp` has a leading agent axis; the forward pass vmaps
    `GaussianMLP` over it, so agent `i`'s output depends only on `obs[i]` and on
    `mlp`'s slice `i` (no sharing, paper §III). Build one with
    `GaussianMLPPolicy.init`; take one agent's network out with `agent(i)`.

    **Arguments:**

    - `mlp`: a `GaussianMLP` whose array leaves have a leading axis of `n_agents`.
    - `n_agents`: the number of agents (static).
    """

    mlp: GaussianMLP
    n_agents: int = eqx.field(static=True)

    def __check_init__(self):
        _check_int("n_agents", self.n_agents, 1)
        for leaf in jax.tree.leaves(eqx.filter(self.mlp, eqx.is_array)):
            if leaf.ndim == 0 or leaf.shape[0] != self.n_agents:
                raise ValueError(
                    f"GaussianMLPPolicy: every parameter needs a leading agent axis of "
                    f"{self.n_agents}; found one of shape {leaf.shape}. Build the "
                    "policy with GaussianMLPPolicy.init."
                )

    @classmethod
    def init(
        cls,
        key: PRNGKeyArray,
        n_agents: int,
        obs_dim: int = 8,
        hidden: Sequence[int] = (16,),
        activation: str = "tanh",
        init_log_std: float = -2.0,
        output_scale: float = 0.01,
    ) -> "GaussianMLPPolicy":
        """Independent freshly initialised policies for `n_agents` agents.

        Each agent's network is `GaussianMLP.init` with its own key (split from
        `key`), so agents start different and stay independent.

        **Arguments:**

        - `key`: a PRNG key.
        - `n_agents`: the number of agents (>= 1).
        - `obs_dim`, `hidden`, `activation`, `init_log_std`, `output_scale`: as in
            `GaussianMLP.init`. Paper Table I: one hidden layer of 16 tanh units,
            `init_log_std = -2` for GradMA/GradMAP/GradMA-RPO and 0 for IPPO/MAPPO.

        **Returns:** a `GaussianMLPPolicy`.
        """
        _check_int("n_agents", n_agents, 1)
        widths = _check_config(obs_dim, hidden, activation, init_log_std, output_scale)
        dtype = default_float()
        mlp = _init_stacked(
            key,
            n_agents,
            jnp.asarray(init_log_std, dtype),
            jnp.asarray(output_scale, dtype),
            obs_dim,
            widths,
            activation,
        )
        return cls(mlp=mlp, n_agents=n_agents)

    @property
    def obs_dim(self) -> int:
        """Length of each agent's observation vector."""
        return self.mlp.layers[0].in_features

    @property
    def hidden(self) -> tuple[int, ...]:
        """Widths of the hidden layers."""
        return tuple(layer.out_features for layer in self.mlp.layers[:-1])

    def __call__(
        self, obs: Float[Array, "agent obs"]
    ) -> tuple[Float[Array, " agent"], Float[Array, " agent"]]:
        """`(mu, log_std)` for every agent from its own observation row.

        **Arguments:**

        - `obs`: one observation row per agent, shape `(n_agents, obs_dim)`, in the
            parameters' dtype (JAX's default float when the policy was built).

        **Returns:** `mu` and `log_std`, each of shape `(n_agents,)`.
        """
        if obs.shape != (self.n_agents, self.obs_dim):
            raise ValueError(
                f"GaussianMLPPolicy got observations of shape {obs.shape}; expected "
                f"(n_agents, obs_dim) = ({self.n_agents}, {self.obs_dim}). Batch "
                "over episodes or steps with jax.vmap."
            )
        return _forward(self.mlp, obs)

    def batched(
        self, obs: Float[Array, "*batch agent obs"]
    ) -> tuple[Float[Array, "*batch agent"], Float[Array, "*batch agent"]]:
        """`(mu, log_std)` at many observations at once, laid out agent-major: one
        batched product per layer over every sample of an agent (on the trainers'
        cached data about 1.5x faster than vmapping `__call__` over the samples).

        **Arguments:**

        - `obs`: observation rows, `(..., n_agents, obs_dim)`.

        **Returns:** `mu` and `log_std`, each of shape `obs.shape[:-1]`.
        """
        n, d = obs.shape[-2:]
        x = jnp.moveaxis(obs.reshape(-1, n, d), 1, 0)
        mu, log_std = eqx.filter_vmap(lambda m, xb: jax.vmap(m)(xb))(self.mlp, x)
        mu = jnp.moveaxis(mu, 0, 1).reshape(obs.shape[:-1])
        log_std = jnp.moveaxis(log_std, 0, 1).reshape(obs.shape[:-1])
        return mu, log_std

    def agent(self, i: int) -> GaussianMLP:
        """Agent `i`'s own network, holding only its parameters.

        **Arguments:**

        - `i`: the agent's index, `0 <= i < n_agents`.

        **Returns:** a `GaussianMLP` mapping one observation vector to `(mu, log_std)`.
        """
        if isinstance(i, bool) or not 0 <= i < self.n_agents:
            raise IndexError(
                f"agent index {i!r} is out of range 0..{self.n_agents - 1}."
            )
        return jax.tree.map(lambda x: x[i] if eqx.is_array(x) else x, self.mlp)
