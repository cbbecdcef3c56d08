"""Policies: shapes, independence of agents, initialisation, Gaussian helpers,
transformations and configuration errors (the abstract/final pattern of every
policy is `test_style.py`'s).

Test data comes from NumPy's generator: every JAX random shape is a fresh compile, and
compiles dominate this file's run time.
"""

import math

import equinox as eqx
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import jax.scipy.stats as jss
import numpy as np
import pytest
from hypothesis import given

import gridflex.policies as gp

from .helpers import python_output


N = 4  # agents in most tests: one shape, so compiled programs are shared


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def policy():
    return gp.GaussianMLPPolicy.init(jax.random.key(42), N)


def obs_for(rng, n_agents=N, obs_dim=8, *lead):
    return jnp.asarray(rng.uniform(size=(*lead, n_agents, obs_dim)))


def per_agent_count(obs_dim, hidden):
    sizes = (obs_dim, *hidden, 2)
    return sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))


def jiggle(policy, rng, scale=0.1):
    """The policy with every parameter moved randomly (a non-trivial log-std head)."""
    return jax.tree.map(lambda x: x + scale * rng.normal(size=x.shape), policy)


# --- shapes and construction ------------------------------------------------------


@pytest.mark.parametrize("n_agents", [1, N])
def test_shapes(rng, policy, n_agents):
    if n_agents != N:
        policy = gp.GaussianMLPPolicy.init(jax.random.key(1), n_agents)
    mu, log_std = policy(obs_for(rng, n_agents))
    assert mu.shape == log_std.shape == (n_agents,)
    assert mu.dtype == log_std.dtype == jnp.float64
    assert policy.n_agents == n_agents
    assert policy.obs_dim == 8 and policy.hidden == (16,)
    assert policy.n_parameters == n_agents * per_agent_count(8, (16,))


def test_batched_equals_the_mapped_policy(rng, policy):
    # the trainers' layout (agents leading) gives what __call__ gives sample by
    # sample, over any leading axes
    policy = jiggle(policy, rng)
    obs = obs_for(rng, N, 8, 3, 5)
    mu, log_std = policy.batched(obs)
    want_mu, want_ls = jax.vmap(jax.vmap(policy))(obs)
    assert mu.shape == log_std.shape == (3, 5, N)
    np.testing.assert_allclose(mu, want_mu, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(log_std, want_ls, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("hidden, activation", [((), "tanh"), ((8, 4, 3), "relu")])
def test_configurable_depth_width_activation(rng, hidden, activation):
    policy = gp.GaussianMLPPolicy.init(
        jax.random.key(2), N, obs_dim=5, hidden=hidden, activation=activation
    )
    assert policy.hidden == hidden and policy.obs_dim == 5
    assert policy.mlp.activation == activation
    assert policy.n_parameters == N * per_agent_count(5, hidden)
    mu, log_std = policy(obs_for(rng, N, 5))
    assert mu.shape == (N,)
    assert np.all(np.asarray(log_std) == -2.0)


def test_agent_extracts_one_network(rng, policy):
    policy = jiggle(policy, rng)
    obs = obs_for(rng)
    mu, log_std = policy(obs)
    call = jax.jit(lambda net, o: net(o))
    for i in range(N):
        net = policy.agent(i)
        assert isinstance(net, gp.GaussianMLP)
        assert net.layers[0].weight.shape == (16, 8)
        m, s = call(net, obs[i])
        assert m.shape == s.shape == ()
        np.testing.assert_allclose(m, mu[i], rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(s, log_std[i], rtol=1e-14, atol=1e-15)
    assert policy.n_parameters == N * sum(x.size for x in jax.tree.leaves(net))


# --- independence -----------------------------------------------------------------


def test_agents_are_independent(rng, policy):
    # Move agent j's parameters and observation: nobody else notices.
    j = 2
    obs = rng.uniform(size=(N, 8))
    moved = jax.tree.map(lambda x: x.at[j].add(rng.normal(size=x.shape[1:])), policy)
    mu0, s0 = policy(jnp.asarray(obs))
    obs[j] += 0.5
    mu1, s1 = moved(jnp.asarray(obs))
    others = np.arange(N) != j
    np.testing.assert_array_equal(np.asarray(mu0)[others], np.asarray(mu1)[others])
    np.testing.assert_array_equal(np.asarray(s0)[others], np.asarray(s1)[others])
    assert mu0[j] != mu1[j] and s0[j] != s1[j]


def test_gradients_do_not_cross_agents(rng, policy):
    policy = jiggle(policy, rng)  # so that log_std depends on every parameter too
    obs = obs_for(rng)
    # jac[leaf][output, i, j, ...]: d output_i / d (agent j's slice of leaf).
    jac = jax.jit(jax.jacrev(lambda p: jnp.stack(p(obs))))(policy)
    eye = np.eye(N, dtype=bool)
    for leaf in jax.tree.leaves(jac):
        size = np.abs(np.asarray(leaf)).reshape(2, N, N, -1).sum(axis=-1)
        assert np.all(size[:, ~eye] == 0.0)
        assert np.all(size[:, eye] > 0.0)


# --- initialisation ---------------------------------------------------------------


@pytest.mark.parametrize("init_log_std", [-2.0, 0.0, -0.5])
def test_initial_log_std_everywhere(rng, init_log_std):
    policy = gp.GaussianMLPPolicy.init(jax.random.key(3), N, init_log_std=init_log_std)
    for scale in (1.0, 10.0):
        _, log_std = policy(jnp.asarray(scale * rng.normal(size=(N, 8))))
        np.testing.assert_array_equal(np.asarray(log_std), init_log_std)


def test_initial_mu_is_small_but_not_constant(rng, policy):
    mu, _ = jax.jit(jax.vmap(policy))(obs_for(rng, N, 8, 25))
    mu = np.asarray(mu)
    assert np.max(np.abs(mu)) < 0.05
    assert np.min(np.std(mu, axis=0)) > 0  # mu depends on the observation
    assert np.std(mu[0]) > 0  # agents start different: independent keys


# --- transformations --------------------------------------------------------------


def test_jit_vmap_grad(rng, policy):
    obs = obs_for(rng, N, 8, 3)  # (episode, agent, obs)
    eps = jnp.asarray(rng.normal(size=(3, N)))

    @eqx.filter_jit
    def forward_and_grad(p):
        def loss(p):
            mu, ls = jax.vmap(p)(obs)
            a = gp.sample_actions(mu, ls, eps)
            return jnp.sum(a**2) - 0.01 * jnp.sum(gp.gaussian_entropy(ls)), (mu, ls)

        return eqx.filter_grad(loss, has_aux=True)(p)

    g, (mu, ls) = forward_and_grad(policy)
    for e in range(3):
        m, s = policy(obs[e])
        np.testing.assert_allclose(mu[e], m, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(ls[e], s, rtol=1e-13, atol=1e-15)
    leaves = [np.asarray(x) for x in jax.tree.leaves(g)]
    assert all(np.all(np.isfinite(x)) for x in leaves)
    assert sum(np.sum(np.abs(x)) for x in leaves) > 0


def test_layer_derivatives_are_those_of_the_plain_product(rng, policy):
    """`Dense` writes its own JVP (so that XLA fuses the backward products): forward
    and reverse mode, with respect to parameters and observations, under the
    rollout's vmap over episodes, must equal the derivatives of `weight @ x + bias`."""
    policy = jiggle(policy, rng)
    obs = obs_for(rng, N, 8, 3)
    t_policy = jiggle(jax.tree.map(jnp.zeros_like, policy), rng, 1.0)
    t_obs = jnp.asarray(rng.normal(size=obs.shape))
    ct = jnp.asarray(rng.normal(size=(2, 3, N)))

    def plain(p, o):
        def one(mlp, x):
            h = x
            for layer in mlp.layers[:-1]:
                h = jnp.tanh(layer.weight @ h + layer.bias)
            out = mlp.layers[-1].weight @ h + mlp.layers[-1].bias
            return out[0], out[1]

        return jax.vmap(lambda x: eqx.filter_vmap(one)(p.mlp, x))(o)

    def ours(p, o):
        return jax.vmap(p)(o)

    np.testing.assert_allclose(ours(policy, obs), plain(policy, obs), rtol=1e-13)
    _, jvp_ours = jax.jvp(ours, (policy, obs), (t_policy, t_obs))
    _, jvp_plain = jax.jvp(plain, (policy, obs), (t_policy, t_obs))
    vjp_ours = jax.vjp(ours, policy, obs)[1](tuple(ct))
    vjp_plain = jax.vjp(plain, policy, obs)[1](tuple(ct))
    got = jax.tree.leaves((jvp_ours, vjp_ours))
    for x, y in zip(got, jax.tree.leaves((jvp_plain, vjp_plain)), strict=True):
        assert np.any(y != 0)
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)


# --- Gaussian helpers -------------------------------------------------------------

floats = st.floats(-3.0, 3.0)
log_stds = st.floats(-4.0, 1.5)
vectors = lambda elems: st.lists(elems, min_size=4, max_size=4).map(jnp.asarray)


@given(vectors(floats), vectors(floats), vectors(log_stds))
def test_log_prob_matches_scipy(a, mu, log_std):
    ours = gp.gaussian_log_prob(a, mu, log_std)
    ref = jss.norm.logpdf(a, mu, jnp.exp(log_std))
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


@given(vectors(floats), vectors(log_stds), vectors(floats), vectors(log_stds))
def test_kl_closed_form_and_invariants(mu_p, ls_p, mu_q, ls_q):
    kl = np.asarray(gp.gaussian_kl(mu_p, ls_p, mu_q, ls_q))
    sp, sq = np.exp(np.asarray(ls_p)), np.exp(np.asarray(ls_q))
    dmu = np.asarray(mu_p) - np.asarray(mu_q)
    ref = np.log(sq / sp) + (sp**2 + dmu**2) / (2 * sq**2) - 0.5
    np.testing.assert_allclose(kl, ref, rtol=1e-10, atol=1e-12)
    assert np.all(kl >= -1e-15)
    np.testing.assert_allclose(gp.gaussian_kl(mu_p, ls_p, mu_p, ls_p), 0.0, atol=1e-15)


def test_entropy_closed_form():
    log_std = jnp.array([-2.0, -0.5, 0.0, 0.7])
    closed = 0.5 * np.log(2 * np.pi * np.e * np.exp(2 * np.asarray(log_std)))
    np.testing.assert_allclose(gp.gaussian_entropy(log_std), closed, rtol=1e-14)


def test_monte_carlo(rng):
    """Sample moments, entropy = E[-log p(a)] and KL = E[log p(a) - log q(a)]."""
    mu_p, ls_p = jnp.array([0.1, -0.4, 2.0]), jnp.array([-1.0, 0.2, -2.0])
    mu_q, ls_q = jnp.array([0.3, 0.0, 2.1]), jnp.array([-0.8, -0.1, -1.9])

    @jax.jit
    def estimates(eps):
        big = lambda x: jnp.broadcast_to(x, eps.shape)
        a = gp.sample_actions(big(mu_p), big(ls_p), eps)
        log_p = gp.gaussian_log_prob(a, big(mu_p), big(ls_p))
        log_q = gp.gaussian_log_prob(a, big(mu_q), big(ls_q))
        mean = lambda x: jnp.mean(x, axis=0)
        return mean(a), jnp.std(a, axis=0), mean(-log_p), mean(log_p - log_q)

    mean, std, entropy, kl = estimates(jnp.asarray(rng.normal(size=(100_000, 3))))
    np.testing.assert_allclose(mean, mu_p, atol=0.01)
    np.testing.assert_allclose(std, jnp.exp(ls_p), rtol=0.01)
    np.testing.assert_allclose(entropy, gp.gaussian_entropy(ls_p), atol=0.01)
    np.testing.assert_allclose(kl, gp.gaussian_kl(mu_p, ls_p, mu_q, ls_q), atol=0.01)


def test_reparameterisation_gradients():
    mu, log_std = jnp.array([0.2, -0.1]), jnp.array([-2.0, 0.5])
    eps = jnp.array([0.7, -1.3])
    d_mu, d_ls = jax.grad(
        lambda m, s: jnp.sum(gp.sample_actions(m, s, eps)), argnums=(0, 1)
    )(mu, log_std)
    np.testing.assert_allclose(d_mu, 1.0)
    np.testing.assert_allclose(d_ls, jnp.exp(log_std) * eps, rtol=1e-14)
    # The entropy's gradient in log-std is one: the bonus pushes every std up alike.
    np.testing.assert_allclose(
        jax.grad(lambda s: jnp.sum(gp.gaussian_entropy(s)))(log_std), 1.0
    )
    assert math.isclose(
        float(gp.gaussian_log_prob(jnp.array(0.0), jnp.array(0.0), jnp.array(0.0))),
        -0.5 * math.log(2 * math.pi),
    )


# --- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_agents=0), ValueError, "n_agents"),
        (dict(n_agents=3, obs_dim=0), ValueError, "obs_dim"),
        (dict(n_agents=3, hidden=(16, 0)), ValueError, r"hidden\[1\]"),
        (dict(n_agents=3, activation="swish!"), ValueError, "tanh"),
        (dict(n_agents=3, init_log_std=float("nan")), ValueError, "init_log_std"),
        (dict(n_agents=3, output_scale=-1.0), ValueError, "output_scale"),
        (dict(n_agents=True), TypeError, "n_agents"),
        (dict(n_agents=3, hidden=16), TypeError, "hidden"),
    ],
)
def test_bad_configuration_raises(kwargs, error, match):
    with pytest.raises(error, match=match):
        gp.GaussianMLPPolicy.init(jax.random.key(0), **kwargs)


def test_a_layer_takes_one_vector():
    """What a user sees without the suite's type checker (which refuses the call
    first): `Dense` is written for one input vector, its derivative a vector's, so a
    matrix is refused rather than differentiated wrongly."""
    code = (
        "import jax.numpy as jnp, gridflex as gf\n"
        "layer = gf.policies.Dense(jnp.zeros((16, 8)), jnp.zeros(16))\n"
        "try:\n"
        "    layer(jnp.zeros((8, 16)))\n"
        "except ValueError as e:\n"
        "    print(e)\n"
    )
    assert python_output(code) == [
        "Dense takes one input vector, not an array of shape (8, 16); map it over "
        "the leading axes with jax.vmap."
    ]


def test_widths_may_be_a_list():  # as TOML gives them
    policy = gp.GaussianMLPPolicy.init(jax.random.key(0), N, hidden=[16])
    assert policy.hidden == (16,)


def test_bad_observations_and_index_raise(rng, policy):
    with pytest.raises(ValueError, match=r"\(4, 8\)"):
        policy(obs_for(rng, 3))
    with pytest.raises(ValueError, match=r"\(4, 8\)"):
        policy(obs_for(rng, 4, 7))
    with pytest.raises(IndexError, match="out of range"):
        policy.agent(4)
    with pytest.raises(ValueError, match="leading agent axis"):
        gp.GaussianMLPPolicy(mlp=policy.mlp, n_agents=2)
    with pytest.raises(ValueError, match="2 outputs"):
        gp.GaussianMLP(
            layers=(gp.Dense(jnp.zeros((3, 8)), jnp.zeros(3)),), activation="tanh"
        )
    with pytest.raises(ValueError, match="takes 5 inputs"):
        gp.GaussianMLP(
            layers=(
                gp.Dense(jnp.zeros((4, 8)), jnp.zeros(4)),
                gp.Dense(jnp.zeros((2, 5)), jnp.zeros(2)),
            ),
            activation="tanh",
        )
