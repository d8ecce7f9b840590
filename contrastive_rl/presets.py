"""Named settings applied over the defaults: per algorithm, per environment, named presets.

``make_config`` applies them in this order: the algorithm's preset, the environment's settings
for the algorithm (``env_settings``), the named preset and its settings for the algorithm
(``preset_settings``), then explicit flags. Plain Python.
"""

from __future__ import annotations

from typing import Any

# Env steps per env per iteration on CPU simulators unless set (divides every one of their
# episode lengths: 50, 150, 700, 1000). Neither throughput nor the one-seed ant_umaze learning
# comparison chose it (the two settings were within that seed's noise); it keeps the original's
# warm-up and a frequent policy refresh (docs/actors.md, Measurements).
HOST_UNROLL_LENGTH = 10


# The original launcher's per-algorithm settings (lp_contrastive.py).
ALGORITHM_PRESETS: dict[str, dict[str, Any]] = {
    "contrastive_nce": {},
    "contrastive_cpc": {},
    "c_learning": {"twin_q": True},
    "nce+c_learning": {"twin_q": True},
    "gcbc": {},
    # TD InfoNCE, the authors' online settings (td_infonce/config.py, lp_td_infonce.py): twin
    # critics, normalised 16-d representations, four 512 layers, actor lr 5e-5, the actor on
    # random goals only.
    "td_infonce": {
        "twin_q": True,
        "repr_norm": True,
        "repr_dim": 16,
        "hidden_layer_sizes": (512, 512, 512, 512),
        "actor_learning_rate": 5e-5,
        "random_goals": 1.0,
    },
}
# Per-algorithm settings for offline_* names, applied after OFFLINE_SETTINGS: TD InfoNCE's
# launcher clones with bc_coef 0.2 and widens to four 1024 layers.
ALGORITHM_OFFLINE_SETTINGS: dict[str, dict[str, Any]] = {
    "td_infonce": {"bc_coef": 0.2, "hidden_layer_sizes": (1024, 1024, 1024, 1024)},
}
# The algorithms whose critic loss is a contrastive loss on the B x B logits, with their own
# (loss, logsumexp penalty): the defaults of contrastive_loss and logsumexp_penalty.
CONTRASTIVE_LOSS_DEFAULTS: dict[str, tuple[str, float]] = {
    "contrastive_nce": ("binary_nce", 0.0),
    "contrastive_cpc": ("forward_infonce", 0.01),  # losses.CPC_LOGSUMEXP_COEF
}

# The original launcher's settings for every name containing 'image' (lp_contrastive.py), applied
# after the algorithm preset and before the named preset and flags: a learned alpha with its
# target entropy of 0 (not -|A|). Its 10 distributed actors are not copied into num_actors (here
# worker processes on this machine's cores: the default of one per core). Its 16 SGD steps and
# 16 prefetched batches per learner call are how often the learner was dispatched; the
# update-to-data ratio stays the original's ~1 gradient step per env step (utd).
IMAGE_SETTINGS: dict[str, Any] = {
    "entropy_coefficient": None,
    "target_entropy": 0.0,
}
# Tasks that store 64x64x3 images in the replay (Sawyer, Fetch): 250k transitions are 2.9 GiB,
# where the default 1M (11.5 GiB) leaves no room on a 24 GiB machine for a checkpoint's copy.
STORED_IMAGE_SETTINGS: dict[str, Any] = {"max_replay_size": 250_000}


# The original launcher's settings for every name starting with 'offline_ant' (lp_contrastive.py),
# here for every offline_* name: the actor sees only relabelled goals and clones the data's
# actions a little; twin critics (the minimum for the actor); wider networks, a larger batch.
# Its samples_per_insert/tolerance only let its learner run without actors: nothing to copy.
OFFLINE_SETTINGS: dict[str, Any] = {
    "random_goals": 0.0,
    "bc_coef": 0.05,
    "twin_q": True,
    "batch_size": 1024,
    "repr_dim": 16,
    "hidden_layer_sizes": (1024, 1024),
}


def env_settings(env: str, alg: str) -> dict[str, Any]:
    """Per-environment settings for ``alg``: for offline tasks ``OFFLINE_SETTINGS`` then
    ``ALGORITHM_OFFLINE_SETTINGS``; the launcher's ``IMAGE_SETTINGS`` for image tasks; the
    unroll of CPU simulators (``HOST_UNROLL_LENGTH``)."""
    from contrastive_rl.envs.registry import HOST_ENVS

    if env.startswith("offline_"):
        return {**OFFLINE_SETTINGS, **ALGORITHM_OFFLINE_SETTINGS.get(alg, {})}
    settings: dict[str, Any] = {}
    if env in HOST_ENVS:
        settings["unroll_length"] = HOST_UNROLL_LENGTH
    if "image" in env:
        stored = env.endswith("_image")  # sawyer_*_image, fetch_*_image; point_image_* renders
        settings.update(IMAGE_SETTINGS, **(STORED_IMAGE_SETTINGS if stored else {}))
    return settings


# Named presets, applied after the algorithm preset and before explicit flags.
PRESETS: dict[str, dict[str, Any]] = {
    # The original's defaults: nothing to change.
    "paper": {},
    # The CPU quick check: `./run.sh`, contrastive_nce on point_FourRooms in under five minutes
    # on a 2-core machine; for contrastive_nce also the critic of PRESET_ALGORITHM_SETTINGS.
    # Chosen by measurement (docs/results.md, "Quick check"): batch 64 runs about twice the
    # updates per second of batch 128 on a CPU and learned as well per update; lr 1e-3 learns
    # faster per update; a learned alpha with the usual SAC target entropy (-|A| = -2) keeps the
    # tanh policy from saturating, so its actions keep following the critic near walls;
    # standardised maze coordinates let the critic's first layer place its ReLU boundaries across
    # the whole maze.
    "quick": {
        "steps": 70_400,
        "batch_size": 64,
        "learning_rate": 1e-3,
        "actor_learning_rate": 1e-3,
        "entropy_coefficient": None,
        "target_entropy": -2.0,
        "input_norm": True,
        "eval_every": 10_000,
    },
    # The original's image settings, also applied by themselves to every *_image environment.
    "image": IMAGE_SETTINGS,
    # The original's offline settings, also applied by themselves to every offline_* name.
    "offline": OFFLINE_SETTINGS,
    # Offline tasks on a 2-core CPU (docs/offline.md), for offline_* names only: the offline
    # settings (twin critics, repr 16, bc_coef 0.05, random_goals 0) with (256, 256) networks
    # and batch 256. Chosen by measurement (benchmarks/throughput.py, offline_point_FourRooms,
    # gradient steps/s under a shared load of 5-7): batch/hidden 1024/(1024, 1024) 0.8,
    # 256/(512, 512) 11.6, 256/(256, 256) 24.2, 128/(128, 128) 40.1. On offline_point_FourRooms
    # from `crl collect`'s 200k rows (seed 0, 100 evaluation episodes), 256/(256, 256) reached
    # 0.84 success at 7.5k gradient steps and 0.96 at 20k (0.96-0.97 to 30k); 128/(128, 128)
    # 0.63 at 7.5k, 0.83 at 15k, 0.88 at 20k, no sooner in wall time under that load; the
    # untrained policy 0.10-0.16. lr 1e-3 and standardised maze coordinates are the quick
    # preset's.
    "offline_quick": {
        "steps": 20_000,
        "batch_size": 256,
        "hidden_layer_sizes": (256, 256),
        "learning_rate": 1e-3,
        "actor_learning_rate": 1e-3,
        "input_norm": True,
        "eval_every": 2_500,
        "eval_episodes": 100,
    },
    # Learning from pixels on a 2-core CPU (docs/images.md). The conv torsos dominate the update;
    # 16x16 after pooling by 4 and batch 64 keep it at about 4-7 updates/s here. Pixels
    # standardised by the mean image over the maze (--input_norm): without it the critic settled
    # on constant logits; with it point_image_FourRooms reached 0.56 success after 1.6k updates
    # and 0.84 after 7.7k (30 minutes on a shared CPU). lr 1e-3 and the learned alpha with target
    # -|A| are the quick preset's; 16 envs x 10 steps keep iterations short.
    "image_quick": {
        "steps": 20_000,
        "num_envs": 16,
        "unroll_length": 10,
        "batch_size": 64,
        "image_pool": 4,
        "learning_rate": 1e-3,
        "actor_learning_rate": 1e-3,
        "entropy_coefficient": None,
        "target_entropy": -2.0,
        "input_norm": True,
        "eval_every": 5_000,
        "eval_episodes": 100,
    },
    # The original's --debug: a smoke test of the installation. Image tasks: their 64x64 images
    # pooled by 4 first (no effect on the others), so a smoke test on a CPU takes minutes.
    "debug": {
        "steps": 10_000,
        "min_replay_size": 2_000,
        "batch_size": 32,
        "hidden_layer_sizes": (32, 32),
        "image_pool": 4,
        "eval_every": 5_000,
        "eval_episodes": 100,
    },
}

# A named preset's settings for one algorithm, applied right after the preset (before flags):
# choices that only some algorithms accept (c_learning, nce+c_learning and td_infonce refuse a
# critic energy or a contrastive loss), so that every preset stays valid for every algorithm.
PRESET_ALGORITHM_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    # The quick check's critic: JaxGCRL's L2 energy, symmetric InfoNCE and logsumexp penalty
    # 0.1. With the original's dot energy and binary NCE the quick check plateaued near 0.88 on
    # seeds it was not tuned on (median 0.880 over seeds 3-6 at 70.4k env steps); with these,
    # seeds 60-64, never used to choose anything, ended at 0.915-0.995 (median 0.935), and seed
    # 0 alone trained in 145 s (docs/results.md, "Quick check").
    "quick": {
        "contrastive_nce": {
            "energy": "l2",
            "contrastive_loss": "symmetric_infonce",
            "logsumexp_penalty": 0.1,
        },
    },
}


def preset_settings(preset: str, alg: str) -> dict[str, Any]:
    """The named preset's settings for ``alg``: ``PRESETS`` then ``PRESET_ALGORITHM_SETTINGS``."""
    return {**PRESETS[preset], **PRESET_ALGORITHM_SETTINGS.get(preset, {}).get(alg, {})}
