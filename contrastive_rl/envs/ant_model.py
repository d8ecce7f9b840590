"""The AntMaze model: D4RL's ant in a D4RL maze, as one MJCF string for MuJoCo and MJX.

Facts (numbers, not code) come from D4RL's ``locomotion/assets/ant.xml`` and
``locomotion/maze_env.py`` (which the original's ``ant_env.AntMaze`` subclasses):

* ant: gym's classic ant body (torso sphere r=0.25 at z=0.75, four legs of three capsules
  r=0.08), joint defaults armature 1, damping 1, limited; hips range [-30, 30] deg, ankles
  [30, 70] or [-70, -30] deg; geom defaults condim 3, margin 0.01, friction (1, 0.5, 0.5),
  solref (0.02, 1), solimp (0.8, 0.8, 0.01), density 5; eight motors with gear 1 and
  ctrlrange [-30, 30] (D4RL's change from gym's gear 150 / ctrlrange [-1, 1]); RK4 with
  timestep 0.02 (gym's ant uses 0.01), frame_skip 5 in the environment.
* maze: one box per wall cell, centred at ``(col * s - x0, row * s - y0, h/2 * s)`` with half
  sizes ``(s/2, s/2, h/2 * s)``, s = 4 (``maze_size_scaling``), h = 0.5 (``maze_height``), and
  (x0, y0) = s * (start col, start row), so the start cell's centre is the world origin.

The only additions are for MJX: walls and floor are marked collide-with-ant-only through
contype/conaffinity (MuJoCo already never collides world geoms with each other, so MuJoCo's
physics is unchanged), and a ``max_geom_pairs`` numeric lets MJX run its box collisions only
on the nearest ant-geom/wall pairs (MuJoCo ignores it).
"""

from __future__ import annotations

import numpy as np

MAZE_SIZE_SCALING = 4.0
MAZE_HEIGHT = 0.5
TIMESTEP = 0.02
FRAME_SKIP = 5
CTRL_LIMIT = 30.0

# The original's maps ('#' wall, 'r' start cell, 'g' goal-eligible cell): D4RL's U_MAZE,
# BIG_MAZE and HARDEST_MAZE layouts with every free cell except the start marked 'g'.
MAZES: dict[str, tuple[str, ...]] = {
    "umaze": (
        "#####",
        "#rgg#",
        "###g#",
        "#ggg#",
        "#####",
    ),
    "medium": (
        "########",
        "#rg##gg#",
        "#gg#ggg#",
        "##ggg###",
        "#gg#ggg#",
        "#g#gg#g#",
        "#ggg#gg#",
        "########",
    ),
    "large": (
        "############",
        "#rggg#ggggg#",
        "#g##g#g#g#g#",
        "#gggggg#ggg#",
        "#g####g###g#",
        "#gg#g#ggggg#",
        "##g#g#g#g###",
        "#gg#ggg#ggg#",
        "############",
    ),
}

# The offline tasks (D4RL's antmaze-*-v2): maze, and the single target cell (row, col) of D4RL's
# *_TEST maps (U_MAZE_TEST, BIG_MAZE_TEST, HARDEST_MAZE_TEST), where every evaluation goal is drawn.
OFFLINE_ANT_TASKS: dict[str, tuple[str, tuple[int, int]]] = {
    "umaze": ("umaze", (3, 1)),
    "umaze_diverse": ("umaze", (3, 1)),
    "medium_play": ("medium", (6, 6)),
    "medium_diverse": ("medium", (6, 6)),
    "large_play": ("large", (7, 9)),
    "large_diverse": ("large", (7, 9)),
}

# Legs in the model's body order: (body name, xy direction, ankle axis, ankle range in degrees).
_LEGS = (
    ("front_left_leg", (1, 1), "-1 1 0", (30, 70)),
    ("front_right_leg", (-1, 1), "1 1 0", (-70, -30)),
    ("back_leg", (-1, -1), "-1 1 0", (-70, -30)),
    ("right_back_leg", (1, -1), "1 1 0", (30, 70)),
)
# D4RL's actuator order (leg 4 first), which fixes the meaning of the 8 action coordinates.
ACTUATED_JOINTS = (
    "hip_4",
    "ankle_4",
    "hip_1",
    "ankle_1",
    "hip_2",
    "ankle_2",
    "hip_3",
    "ankle_3",
)


def maze_cells(maze: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(wall cells [n, 2], goal cells [m, 2], start cell) of a maze, as (row, col)."""
    if maze not in MAZES:
        raise ValueError(f"unknown ant maze {maze!r}; valid: {', '.join(MAZES)}")
    rows = MAZES[maze]
    grid = np.array([list(r) for r in rows])
    walls = np.argwhere(grid == "#")
    goals = np.argwhere(grid == "g")
    (start,) = np.argwhere(grid == "r")
    return walls, goals, (int(start[0]), int(start[1]))


def cell_xy(cells: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """World xy of cell centres [n, 2] (row -> y, col -> x), the start cell at the origin."""
    cells = np.asarray(cells, dtype=np.float64).reshape(-1, 2)
    x = (cells[:, 1] - start[1]) * MAZE_SIZE_SCALING
    y = (cells[:, 0] - start[0]) * MAZE_SIZE_SCALING
    return np.stack([x, y], axis=-1)


def _leg_xml(index: int, name: str, direction: tuple[int, int], axis: str, rng: tuple) -> str:
    dx, dy = direction
    a = f"{0.2 * dx:g} {0.2 * dy:g}"
    b = f"{0.4 * dx:g} {0.4 * dy:g}"
    return f"""
      <body name="{name}" pos="0 0 0">
        <geom name="aux_{index}_geom" type="capsule" size="0.08" fromto="0 0 0 {a} 0"/>
        <body name="aux_{index}" pos="{a} 0">
          <joint name="hip_{index}" type="hinge" pos="0 0 0" axis="0 0 1" range="-30 30"/>
          <geom name="leg_{index}_geom" type="capsule" size="0.08" fromto="0 0 0 {a} 0"/>
          <body name="foot_{index}" pos="{a} 0">
            <joint name="ankle_{index}" type="hinge" pos="0 0 0" axis="{axis}"
                   range="{rng[0]} {rng[1]}"/>
            <geom name="ankle_{index}_geom" type="capsule" size="0.08" fromto="0 0 0 {b} 0"/>
          </body>
        </body>
      </body>"""


def build_mjcf(
    maze: str,
    *,
    timestep: float = TIMESTEP,
    integrator: str = "RK4",
    cone: str = "pyramidal",
    max_geom_pairs: int | None = 48,
) -> str:
    """The MJCF of D4RL's ant in ``maze``; one string for MuJoCo and MJX.

    ``cone='pyramidal'`` is MuJoCo's default and so D4RL's. MJX orients the friction pyramid
    of a plane contact differently from MuJoCo (fixed tangents instead of tangents along the
    capsule), so the two backends apply different friction at every foot contact; with
    ``cone='elliptic'`` friction is isotropic and their floor contacts agree exactly.

    ``max_geom_pairs`` (MJX only) bounds the sphere/capsule-vs-wall pairs MJX collides per
    step to the nearest ones by bounding sphere. 48 cannot drop a touching pair: a wall box
    (bounding radius 3) can reach an ant geom only from one of the 4 cell centres around it,
    and the ant has 12 capsules (the torso sphere has its own group).
    """
    walls, _, start = maze_cells(maze)
    half = MAZE_SIZE_SCALING / 2
    z_half = MAZE_HEIGHT / 2 * MAZE_SIZE_SCALING
    wall_geoms = "\n".join(
        f'    <geom name="block_{r}_{c}" type="box" pos="{x:g} {y:g} {z_half:g}" '
        f'size="{half:g} {half:g} {z_half:g}" contype="0" conaffinity="1" '
        'rgba="0.7 0.5 0.3 1"/>'
        for (r, c), (x, y) in zip(walls, cell_xy(walls, start), strict=True)
    )
    legs = "".join(_leg_xml(i + 1, *leg) for i, leg in enumerate(_LEGS))
    motors = "\n".join(
        f'    <motor joint="{j}" gear="1" ctrllimited="true" '
        f'ctrlrange="{-CTRL_LIMIT:g} {CTRL_LIMIT:g}"/>'
        for j in ACTUATED_JOINTS
    )
    custom = (
        f'  <custom><numeric name="max_geom_pairs" data="{max_geom_pairs}"/></custom>\n'
        if max_geom_pairs is not None
        else ""
    )
    return f"""<mujoco model="ant_maze_{maze}">
  <compiler inertiafromgeom="true" angle="degree"/>
  <option timestep="{timestep:g}" integrator="{integrator}" cone="{cone}"/>
{custom}  <default>
    <joint limited="true" armature="1" damping="1"/>
    <geom condim="3" contype="1" conaffinity="0" margin="0.01" friction="1 0.5 0.5"
          solref="0.02 1" solimp="0.8 0.8 0.01" density="5.0" rgba="0.8 0.6 0.4 1"/>
  </default>
  <worldbody>
    <light directional="true" diffuse="1 1 1" specular="0.1 0.1 0.1" pos="0 0 1.3"
           dir="0 0 -1.3"/>
    <geom name="floor" type="plane" pos="0 0 0" size="40 40 40" contype="0" conaffinity="1"
          rgba="0.8 0.9 0.8 1"/>
{wall_geoms}
    <body name="torso" pos="0 0 0.75">
      <joint name="root" type="free" limited="false" margin="0.01" armature="0" damping="0"/>
      <geom name="torso_geom" type="sphere" size="0.25" pos="0 0 0" rgba="0.3 0.9 0.5 1"/>
{legs}
    </body>
  </worldbody>
  <actuator>
{motors}
  </actuator>
</mujoco>
"""
