"""The algorithms, the original's five and TD InfoNCE: what each trains, read by the learner
and ``crl list``.

Plain Python, so the command line can list them without importing JAX; ``losses.py`` builds
their losses (TD InfoNCE's from ``td_infonce.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Algorithm:
    """What an algorithm trains; the learner reads this instead of comparing names."""

    name: str
    summary: str
    trains_critic: bool = True
    uses_target: bool = False  # a Polyak target critic enters the critic loss (TD losses)
    needs_twin: bool = False  # the original requires twin critics
    critic_sees_goal: bool = False  # phi(s, a, g) . psi(s_f): a GoalCritic (TD InfoNCE)


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in [
        Algorithm("contrastive_nce", "contrastive RL, binary NCE critic over the B x B batch"),
        Algorithm("contrastive_cpc", "contrastive RL, InfoNCE (softmax) critic + logsumexp^2 reg."),
        Algorithm(
            "c_learning",
            "C-learning: TD classifier on next-state goals, target critic",
            uses_target=True,
            needs_twin=True,
        ),
        Algorithm(
            "nce+c_learning",
            "C-learning TD loss, next-state goals in only ~B(1-g)/(2-g) rows, future goals else",
            uses_target=True,
            needs_twin=True,
        ),
        Algorithm("gcbc", "goal-conditioned behaviour cloning (no critic)", trains_critic=False),
        Algorithm(
            "td_infonce",
            "TD InfoNCE: softmax critic phi(s,a,g).psi(s_f), TD target over future candidates",
            uses_target=True,
            critic_sees_goal=True,
        ),
    ]
}
