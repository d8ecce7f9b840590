"""Critic energies and the contrastive loss family (issue 26, item 3): formulas by hand,
properties, JaxGCRL's two defects, config validation and the default path."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from toy import TOY_SPEC  # tests/toy.py

from contrastive_rl.agent import losses
from contrastive_rl.agent.energies import (
    CONTRASTIVE_LOSS_FNS,
    backward_infonce,
    binary_nce,
    contrastive_loss,
    diagonal_energy,
    forward_infonce,
    pairwise_energy,
    symmetric_infonce,
)
from contrastive_rl.agent.learner import Learner
from contrastive_rl.agent.networks import init_params, make_networks
from contrastive_rl.config import (
    CONTRASTIVE_LOSS_DEFAULTS,
    CONTRASTIVE_LOSSES,
    ENERGIES,
    NETWORKS,
    ConfigError,
    make_config,
)
from contrastive_rl.types import Batch

PENALTIES = (0.0, 0.01, 0.5)


def _logits(key=0, b=4, n=2) -> jax.Array:
    return jax.random.normal(jax.random.key(key), (b, b, n)) * 2.0


def _reps(key=0, b=5, n=2, d=3) -> tuple[jax.Array, jax.Array]:
    k1, k2 = jax.random.split(jax.random.key(key))
    return jax.random.normal(k1, (b, n, d)), jax.random.normal(k2, (b, n, d))


# -- energies -------------------------------------------------------------------------------------


def test_energies_by_hand():
    phi = np.array([[[1.0, 2.0]], [[0.0, -1.0]]], np.float32)  # [B=2, n=1, d=2]
    psi = np.array([[[3.0, 0.0]], [[1.0, 1.0]]], np.float32)
    expected = {
        "dot": [[3.0, 3.0], [0.0, -1.0]],
        "l2": [[-8.0, -1.0], [-10.0, -5.0]],
        "norm": [[-math.sqrt(8.0), -1.0], [-math.sqrt(10.0), -math.sqrt(5.0)]],
        "cosine": [
            [3.0 / (math.sqrt(5.0) * 3.0), 3.0 / (math.sqrt(5.0) * math.sqrt(2.0))],
            [0.0, -1.0 / math.sqrt(2.0)],
        ],
    }
    log_t = jnp.float32(math.log(0.5))  # temperature 0.5 doubles the cosine
    for energy in ENERGIES:
        got = np.asarray(pairwise_energy(phi, psi, energy, log_t))[:, :, 0]
        want = np.asarray(expected[energy]) * (2.0 if energy == "cosine" else 1.0)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=energy)


@pytest.mark.parametrize("energy", ENERGIES)
def test_diagonal_energy_is_the_diagonal_of_the_pairwise_energy(energy):
    phi, psi = _reps()
    log_t = jnp.float32(-0.7)
    full = pairwise_energy(phi, psi, energy, log_t)
    diag = diagonal_energy(phi, psi, energy, log_t)
    np.testing.assert_allclose(
        np.asarray(diag), np.asarray(jnp.diagonal(full, axis1=0, axis2=1).T), rtol=1e-5, atol=1e-6
    )


def test_cosine_logits_do_not_depend_on_the_scale_of_any_sample():
    """Per-sample normalisation: scaling each phi_i and psi_j by its own factor changes nothing.
    JaxGCRL's cosine divides by the norm of the whole batch tensor, which these factors change."""
    phi, psi = _reps(b=6)
    log_t = jnp.float32(0.3)
    base = pairwise_energy(phi, psi, "cosine", log_t)
    a = jnp.array([0.01, 1.0, 7.0, 300.0, 0.5, 2.0])[:, None, None]
    c = jnp.array([50.0, 0.02, 1.0, 3.0, 1e3, 0.1])[:, None, None]
    np.testing.assert_allclose(
        np.asarray(pairwise_energy(a * phi, c * psi, "cosine", log_t)),
        np.asarray(base),
        rtol=1e-5,
        atol=1e-6,
    )
    # Row 0's logits are untouched when only row 3's phi grows (a batch-wide norm would move them).
    grown = phi.at[3].multiply(1e3)
    np.testing.assert_allclose(
        np.asarray(pairwise_energy(grown, psi, "cosine", log_t)[0]), np.asarray(base[0]), rtol=1e-6
    )

    # The batch-wide normalisation of the defect would not pass this test: a sanity check.
    def batch_norm_cosine(p, q):
        return jnp.einsum("ikd,jkd->ijk", p / jnp.linalg.norm(p), q / jnp.linalg.norm(q))

    assert not np.allclose(batch_norm_cosine(grown, psi)[0], batch_norm_cosine(phi, psi)[0])
    assert float(jnp.max(jnp.abs(base))) <= math.exp(-0.3) + 1e-6  # |cos| / T <= 1 / T


def test_norm_energy_has_a_finite_gradient_where_phi_equals_psi():
    phi, _ = _reps()
    for fn in (pairwise_energy, diagonal_energy):
        grad = jax.grad(lambda p, fn=fn: jnp.sum(fn(p, phi, "norm")))(phi)
        assert np.all(np.isfinite(np.asarray(grad)))


def test_unknown_energy_names_the_choices():
    phi, psi = _reps()
    with pytest.raises(ValueError, match="dot, l2, norm, cosine"):
        pairwise_energy(phi, psi, "dott")


# -- losses ---------------------------------------------------------------------------------------


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_binary_nce_is_the_sigmoid_cross_entropy_against_the_identity_by_hand():
    logits = np.array([[[2.0], [-1.0], [0.5]], [[0.3], [1.5], [-2.0]], [[1.0], [0.0], [-0.5]]])
    b = 3
    total = 0.0
    for i in range(b):
        for j in range(b):
            p = _sigmoid(logits[i, j, 0])
            total += -math.log(p) if i == j else -math.log(1.0 - p)
    expected = total / (b * b)
    got = binary_nce(jnp.asarray(logits, jnp.float32))
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # With a penalty: + c * mean over rows of (log sum_j exp L_ij)^2.
    lse = [math.log(sum(math.exp(x) for x in logits[i, :, 0])) for i in range(b)]
    penalised = binary_nce(jnp.asarray(logits, jnp.float32), 0.1)
    assert float(penalised) == pytest.approx(expected + 0.1 * sum(x * x for x in lse) / b, rel=1e-6)


def test_binary_nce_pushes_negatives_down_and_positives_up():
    """JaxGCRL's -mean(sigmoid(L)) has a negative gradient everywhere: it raises every logit.
    Gradient descent on binary NCE lowers every off-diagonal logit and raises the diagonal."""
    logits = _logits(b=5)
    grad = np.asarray(jax.grad(binary_nce)(logits))
    eye = np.eye(5, dtype=bool)
    assert np.all(grad[eye] < 0)
    assert np.all(grad[~eye] > 0)
    defect = np.asarray(jax.grad(lambda x: -jnp.mean(jax.nn.sigmoid(x)))(logits))
    assert np.all(defect[~eye] < 0)  # the defect would raise the negatives: the test can tell


def test_forward_infonce_by_hand():
    logits = np.array([[[2.0], [-1.0]], [[0.3], [1.5]]])
    c = 0.2
    total = 0.0
    for i in range(2):
        lse = math.log(sum(math.exp(x) for x in logits[i, :, 0]))
        total += lse - logits[i, i, 0] + c * lse * lse
    got = forward_infonce(jnp.asarray(logits, jnp.float32), c)
    assert float(got) == pytest.approx(total / 2, rel=1e-6)


@pytest.mark.parametrize("penalty", PENALTIES)
def test_backward_is_forward_of_the_transpose_and_symmetric_their_sum(penalty):
    logits = _logits(b=6, n=2)
    transposed = jnp.swapaxes(logits, 0, 1)
    assert float(backward_infonce(logits, penalty)) == pytest.approx(
        float(forward_infonce(transposed, penalty)), rel=1e-6
    )
    assert float(symmetric_infonce(logits, penalty)) == pytest.approx(
        float(forward_infonce(logits, penalty)) + float(backward_infonce(logits, penalty)),
        rel=1e-6,
    )
    # An asymmetric matrix: backward is not forward (the test could fail).
    assert float(backward_infonce(logits, penalty)) != pytest.approx(
        float(forward_infonce(logits, penalty)), rel=1e-3
    )


@pytest.mark.parametrize("name", CONTRASTIVE_LOSSES)
@pytest.mark.parametrize("penalty", PENALTIES)
def test_every_loss_decreases_when_a_diagonal_logit_rises(name, penalty):
    """Without a penalty at any logits. The penalty c lse^2 itself rises with a diagonal logit
    where lse > 0 (a large c can then outweigh the rest: measured with binary NCE, c = 0.01),
    so with c > 0 the logits are shifted down until every logsumexp is negative."""
    logits = _logits(key=3, b=5, n=2)
    if penalty:
        logits = logits - 8.0
        assert float(jnp.max(jax.nn.logsumexp(logits, axis=0))) < 0
        assert float(jnp.max(jax.nn.logsumexp(logits, axis=1))) < 0
    loss = contrastive_loss(name, penalty)
    base = float(loss(logits))
    for i in range(5):
        for k in range(2):
            raised = logits.at[i, i, k].add(0.05)
            assert float(loss(raised)) < base, (name, penalty, i, k)


def test_the_algorithms_own_losses_are_family_members():
    logits = _logits(key=5, b=8, n=2)
    np.testing.assert_array_equal(binary_nce(logits), losses.nce_loss(logits))
    np.testing.assert_array_equal(
        forward_infonce(logits, losses.CPC_LOGSUMEXP_COEF), losses.cpc_loss(logits)
    )
    assert CONTRASTIVE_LOSS_DEFAULTS["contrastive_cpc"] == (
        "forward_infonce",
        losses.CPC_LOGSUMEXP_COEF,
    )


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match="binary_nce, forward_infonce"):
        contrastive_loss("infonce")
    assert tuple(CONTRASTIVE_LOSS_FNS) == CONTRASTIVE_LOSSES


# -- config and the learner -----------------------------------------------------------------------


def test_default_configs_use_the_original_loss_functions():
    """The default choice computes exactly nce_loss / cpc_loss (bit-identical runs); an explicit
    choice equal to the algorithm's own does too; any other choice gets the family's."""
    nce = make_config(alg="contrastive_nce")
    cpc = make_config(alg="contrastive_cpc")
    logits = _logits()
    same = lambda fn, ref: float(fn(logits)) == float(ref(logits))  # noqa: E731
    assert same(losses.contrastive_loss_on_logits("contrastive_nce", nce), losses.nce_loss)
    assert same(losses.contrastive_loss_on_logits("contrastive_cpc", cpc), losses.cpc_loss)
    explicit = make_config(alg="contrastive_cpc", contrastive_loss="forward_infonce")
    assert same(losses.contrastive_loss_on_logits("contrastive_cpc", explicit), losses.cpc_loss)
    assert not same(losses.contrastive_loss_on_logits("contrastive_cpc", cpc), losses.nce_loss)
    other = make_config(alg="contrastive_nce", contrastive_loss="symmetric_infonce")
    fn = losses.contrastive_loss_on_logits("contrastive_nce", other)
    assert float(fn(logits)) == pytest.approx(float(symmetric_infonce(logits, 0.0)), rel=1e-6)
    penalised = make_config(alg="contrastive_nce", logsumexp_penalty=0.1)
    fn = losses.contrastive_loss_on_logits("contrastive_nce", penalised)
    assert float(fn(logits)) == pytest.approx(float(binary_nce(logits, 0.1)), rel=1e-6)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"energy": "dott"}, "valid choices: dot, l2, norm, cosine"),
        ({"contrastive_loss": "infonce"}, "valid choices: binary_nce, forward_infonce"),
        ({"logsumexp_penalty": -0.1}, "logsumexp_penalty must be >= 0"),
        ({"energy": "cosine", "repr_norm": True}, "repr_norm"),
        ({"alg": "c_learning", "energy": "l2"}, "only applies to the contrastive algorithms"),
        ({"alg": "nce+c_learning", "contrastive_loss": "binary_nce"}, "sigmoid"),
        ({"alg": "gcbc", "logsumexp_penalty": 0.1}, "trains no critic"),
    ],
)
def test_config_refuses_bad_choices_with_the_valid_ones(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config(**overrides)


def _batch(b=8, seed=1) -> Batch:
    ks = jax.random.split(jax.random.key(seed), 4)
    return Batch(
        state=jax.random.normal(ks[0], (b, 3)),
        action=jax.random.uniform(ks[1], (b, 2), minval=-1.0, maxval=1.0),
        next_state=jax.random.normal(ks[2], (b, 3)),
        goal=jax.random.normal(ks[3], (b, 2)),
    )


def test_cosine_temperature_is_a_critic_parameter_that_learns():
    config = make_config(energy="cosine", hidden_layer_sizes=(8,), repr_dim=4, batch_size=8)
    nets = make_networks(TOY_SPEC, config)
    learner = Learner(nets, config)
    state = learner.init(jax.random.key(0))
    assert float(state.critic_params["params"]["log_temperature"]) == 0.0
    new, metrics = jax.jit(learner.update)(state, _batch(), jax.random.key(1))
    assert float(new.critic_params["params"]["log_temperature"]) != 0.0
    assert np.isfinite(float(metrics["critic_loss"]))
    # The actor's Q is the same energy: the diagonal of the B x B logits.
    _, critic_params = init_params(nets, jax.random.key(2))
    batch = _batch()
    full = nets.critic_logits(critic_params, batch.state, batch.action, batch.goal)
    diag = nets.critic_diagonal(critic_params, batch.state, batch.action, batch.goal)
    np.testing.assert_allclose(
        np.asarray(diag), np.asarray(jnp.diagonal(full, axis1=0, axis2=1).T), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(("energy", "name"), list(zip(ENERGIES, CONTRASTIVE_LOSSES, strict=True)))
def test_every_energy_and_loss_trains_through_the_learner(energy, name):
    """Each energy and each loss once (four compilations, not sixteen)."""
    config = make_config(
        energy=energy,
        contrastive_loss=name,
        logsumexp_penalty=0.01,
        hidden_layer_sizes=(8,),
        repr_dim=4,
        batch_size=8,
        twin_q=True,
    )
    learner = Learner(make_networks(TOY_SPEC, config), config)
    state = learner.init(jax.random.key(0))
    update = jax.jit(learner.update)
    batch = _batch()
    first = None
    for i in range(30):
        state, metrics = update(state, batch, jax.random.key(i))
        first = first if first is not None else float(metrics["critic_loss"])
    last = float(metrics["critic_loss"])
    assert np.isfinite(last)
    assert last < first  # 30 steps on one fixed batch: the critic fits it


def test_list_shows_the_energies_losses_and_networks(capsys):
    from contrastive_rl.cli import main

    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # The critic choices' section names the algorithms they apply to (those validation lets
    # choose), then one line per flag with exactly its valid values.
    start = next(i for i, line in enumerate(lines) if line.startswith("critic choices of "))
    named = lines[start].removeprefix("critic choices of ").split(" (")[0]
    assert named.split(", ") == ["contrastive_nce", "contrastive_cpc"]
    flags = {line.split()[0]: line.split(None, 1)[1] for line in lines[start + 1 : start + 4]}
    assert flags["--energy"] == f"{', '.join(ENERGIES)} (default dot)"
    assert flags["--contrastive_loss"].startswith(f"{', '.join(CONTRASTIVE_LOSSES)} (default")
    assert "--logsumexp_penalty" in flags
    section = lines[lines.index("networks (--network):") + 1 : lines.index("presets:")]
    assert [line.split()[0] for line in section if line[2] != " "] == list(NETWORKS)


def test_command_line_flags_reach_the_config(capsys):
    import json

    from contrastive_rl.cli import main

    argv = ["train", "--alg", "contrastive_cpc", "--energy", "cosine"]
    argv += ["--contrastive-loss", "symmetric_infonce", "--logsumexp_penalty", "0.1"]
    argv += ["--network", "residual", "--residual_depth", "8", "--residual_width", "32"]
    assert main([*argv, "--print-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert (config["energy"], config["contrastive_loss"], config["logsumexp_penalty"]) == (
        "cosine",
        "symmetric_infonce",
        0.1,
    )
    assert (config["network"], config["residual_depth"], config["residual_width"]) == (
        "residual",
        8,
        32,
    )
    assert main(["train", "--logsumexp_penalty", "auto", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["logsumexp_penalty"] is None
