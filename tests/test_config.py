"""Config: the original's defaults, presets, and refusals that name the problem."""

import pytest

from contrastive_rl.config import Config, ConfigError, make_config
from contrastive_rl.presets import ALGORITHM_PRESETS, PRESETS


def test_defaults_are_the_originals():
    c = make_config()
    assert (c.batch_size, c.learning_rate, c.actor_learning_rate, c.adam_eps) == (
        256,
        3e-4,
        3e-4,
        1e-7,
    )
    assert (c.discount, c.tau, c.repr_dim, c.hidden_layer_sizes) == (0.99, 0.005, 64, (256, 256))
    assert (c.random_goals, c.bc_coef, c.entropy_coefficient, c.target_entropy) == (
        0.5,
        0.0,
        0.0,
        0.0,
    )
    assert (c.min_replay_size, c.max_replay_size, c.steps) == (10_000, 1_000_000, 1_000_000)
    assert c.alg == "contrastive_nce" and not c.twin_q and c.use_random_actor


def test_algorithm_presets_and_named_presets_apply_in_order():
    assert make_config(alg="c_learning").twin_q
    assert make_config(alg="nce+c_learning").twin_q
    quick = make_config(preset="quick")
    for k, v in PRESETS["quick"].items():
        assert getattr(quick, k) == v
    # an explicit value beats the preset
    assert make_config(preset="quick", learning_rate=5e-4).learning_rate == 5e-4


def test_the_quick_preset_gives_contrastive_nce_its_critic_and_suits_every_algorithm():
    """The quick check's L2 energy, symmetric InfoNCE and logsumexp penalty are contrastive_nce's
    alone: c_learning, nce+c_learning and td_infonce refuse critic choices, so the preset must
    resolve to a valid config for each of them too."""
    nce = make_config(preset="quick")
    assert (nce.energy, nce.contrastive_loss, nce.logsumexp_penalty) == (
        "l2",
        "symmetric_infonce",
        0.1,
    )
    for alg in ALGORITHM_PRESETS:
        config = make_config(alg=alg, preset="quick")  # validated on construction
        assert config.batch_size == 64 and config.input_norm
        if alg != "contrastive_nce":
            assert (config.energy, config.contrastive_loss, config.logsumexp_penalty) == (
                "dot",
                "",
                None,
            )
    # flags beat the preset's per-algorithm settings as they beat the preset's own
    original = make_config(
        preset="quick", energy="dot", contrastive_loss="binary_nce", logsumexp_penalty=0.0
    )
    assert (original.energy, original.contrastive_loss, original.logsumexp_penalty) == (
        "dot",
        "binary_nce",
        0.0,
    )
    # only the named preset carries them: the paper preset keeps the original's critic
    assert make_config(preset="paper").energy == "dot"


def test_offline_quick_preset_resolves_for_offline_names():
    config = make_config("offline_point_FourRooms", dataset="d.hdf5", preset="offline_quick")
    for k, v in PRESETS["offline_quick"].items():
        assert getattr(config, k) == v, k
    assert (config.batch_size, config.hidden_layer_sizes, config.steps) == (256, (256, 256), 20_000)
    # the offline settings it leaves alone still apply by themselves
    assert (config.repr_dim, config.twin_q, config.bc_coef, config.random_goals) == (
        16,
        True,
        0.05,
        0.0,
    )
    assert (
        make_config("offline_ant_umaze", dataset="d.hdf5", preset="offline_quick").steps == 20_000
    )
    flagged = make_config("offline_ant_umaze", dataset="d", preset="offline_quick", batch_size=64)
    assert flagged.batch_size == 64
    # without it offline names keep the paper's offline networks
    paper = make_config("offline_point_FourRooms", dataset="d.hdf5")
    assert (paper.batch_size, paper.hidden_layer_sizes) == (1024, (1024, 1024))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"env": "point_FourRoom"}, "did you mean 'point_FourRooms'"),
        ({"env": "offline_ant_umaze"}, "offline_ant_umaze trains from a dataset: give --dataset"),
        ({"dataset": "d.hdf5"}, "dataset only applies to offline_.*--env offline_point_FourRooms"),
        ({"env": "sawyer_push", "backend": "mjx"}, "no 'mjx' backend; valid choices: auto, mujoco"),
        ({"backend": "mjc"}, "unknown backend 'mjc'.*valid choices: auto, jax, mujoco, mjx"),
        ({"num_actors": -1}, "num_actors must be >= 0"),
        ({"devices": -2}, "devices must be >= 0"),
        ({"lr_schedule": "cosin"}, "did you mean 'cosine'.*constant, linear, cosine"),
        ({"worker_timeout_s": 0.0}, "worker_timeout_s must be positive"),
        ({"alg": "contrastive_nec"}, "did you mean 'contrastive_nce'"),
        ({"preset": "quik"}, "did you mean 'quick'"),
        (
            {"preset": "offline_quick"},
            "offline_quick is for offline_.*--env offline_point_FourRooms",
        ),
        ({"steps": 0}, "steps must be positive"),
        ({"steps": -5}, "steps must be positive"),
        ({"batch_size": 2_000_000}, "larger than the replay capacity"),
        ({"random_goals": 0.3}, "random_goals must be one of 0, 0.5, 1"),
        ({"bc_coef": 1.5}, r"bc_coef must be in \[0, 1\]"),
        ({"discount": 1.0}, r"discount must be in \[0, 1\)"),
        ({"utd": 0.0}, "utd"),
        ({"learning_rate": -1.0}, "learning_rate must be positive"),
        ({"alg": "c_learning", "twin_q": False}, "needs twin critics"),
        ({"target_entropy": -2.0}, "target_entropy only applies"),
        ({"hidden_layer_sizes": ()}, "hidden_layer_sizes"),
        ({"min_replay_size": 2_000_000}, "exceeds max_replay_size"),
        ({"batch_sise": 3}, "did you mean 'batch_size'"),
    ],
)
def test_invalid_values_are_refused_with_the_reason(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_config(**kwargs)


def test_config_is_frozen_and_validated_on_construction():
    with pytest.raises(ConfigError):
        Config(num_envs=0)
    c = Config()
    with pytest.raises(AttributeError):
        c.batch_size = 3  # type: ignore[misc]


def test_adaptive_entropy_is_spelled_none():
    c = make_config(entropy_coefficient=None, target_entropy=-1.0)
    assert c.adaptive_entropy and c.target_entropy == -1.0


def test_learning_rate_schedules_decay_to_zero_over_the_run():
    from contrastive_rl.agent.learner import learning_rate

    assert learning_rate(1e-3, "constant", 100) == 1e-3
    linear, cosine = learning_rate(1e-3, "linear", 100), learning_rate(1e-3, "cosine", 100)
    assert [float(linear(t)) for t in (0, 50, 100)] == pytest.approx([1e-3, 5e-4, 0.0])
    assert [float(cosine(t)) for t in (0, 50, 100)] == pytest.approx([1e-3, 5e-4, 0.0], abs=1e-9)


FLOAT_FIELDS = [
    "learning_rate",
    "actor_learning_rate",
    "adam_eps",
    "discount",
    "tau",
    "entropy_coefficient",
    "random_goals",
    "bc_coef",
    "utd",
    "checkpoint_every_s",
    "worker_timeout_s",
    "logsumexp_penalty",
]


def test_a_negative_logsumexp_penalty_is_refused():
    with pytest.raises(ConfigError, match="logsumexp_penalty must be >= 0 or 'auto', got -0.1"):
        make_config(alg="contrastive_cpc", logsumexp_penalty=-0.1)


@pytest.mark.parametrize("name", FLOAT_FIELDS)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_refused(name, value):
    with pytest.raises(ConfigError, match=f"{name} must be a finite number"):
        make_config(**{name: value})


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_target_entropy_is_refused(value):
    with pytest.raises(ConfigError, match="target_entropy must be a finite number"):
        make_config(entropy_coefficient=None, target_entropy=value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"discount": 0.99999999}, r"discount 0.99999999 becomes 1.0 in float32.*\[0, 1\)"),
        ({"learning_rate": 1e-50}, "learning_rate 1e-50 becomes 0.0 in float32"),
        ({"actor_learning_rate": 1e39}, "actor_learning_rate 1e\\+39 becomes inf in float32"),
        ({"tau": 1e-46}, "tau 1e-46 becomes 0.0 in float32"),
    ],
)
def test_values_that_do_not_survive_float32_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_config(**kwargs)


@pytest.mark.parametrize("seed", [-1, 2**32, 18446744073709551616])
def test_seeds_outside_32_bits_are_refused(seed):
    with pytest.raises(ConfigError, match=r"seed must be an integer in \[0, 4294967295\]"):
        make_config(seed=seed)


def test_the_largest_seed_and_float32_exact_values_pass():
    assert make_config(seed=2**32 - 1).seed == 2**32 - 1
    assert make_config(discount=0.999).discount == 0.999
