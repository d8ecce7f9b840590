"""A small environment spec shared by the network and loss tests (no simulator behind it)."""

from contrastive_rl.envs.base import EnvSpec

TOY_SPEC = EnvSpec(
    "toy",
    state_dim=3,
    action_dim=2,
    episode_length=10,
    goal_start=1,
    goal_end=3,
    success_threshold=1.0,
)
