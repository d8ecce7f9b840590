"""The actors: processes that step CPU simulators for the learner, and the policy they act with.

``policy.py`` (``ActorPolicy``: the actor network as a worker runs it), ``workers.py``
(``EnvGroup`` and local worker processes: unrolls, crash and hang detection), ``ray_actors.py``
(the same ``EnvGroup`` as Ray actors; imported only with ``--actors ray``). The training loop
reaches them through its collector; they know nothing of replay or learner.

May import: agent, config, envs, errors, presets, types.
"""
