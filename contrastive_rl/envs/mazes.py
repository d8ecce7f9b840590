"""The cell grids of the mazes, for checking a dataset's positions and for waypoint navigation.

A maze is a grid of cells (walls and free cells). Positions are in the environment's own frame:
the point mazes' ``(row, col)`` with cell (r, c) covering ``[r, r+1) x [c, c+1)``; AntMaze's
``(x, y)`` in D4RL's frame, the start cell's centre at the origin, cells of size 4, row -> y and
col -> x. ``MazeGrid`` maps both to fractional grid coordinates (row, col), where cell (r, c)
covers ``[r, r+1) x [c, c+1)``, and back.

Navigation is D4RL's: a breadth-first search over the free cells (4-connected) gives, for a
position and a target, the next cell on a shortest path; ``next_cells`` tabulates it once for
every pair of free cells.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MazeGrid:
    """Walls ``[H, W]`` and the affine map between positions and grid coordinates.

    ``grid = position[..., axes] / cell_size + offset`` (``axes`` picks which position coordinate
    is the row), so a cell's centre is at grid coordinates ``(r + 0.5, c + 0.5)``.
    """

    name: str
    walls: np.ndarray  # [H, W] bool
    cell_size: float
    offset: tuple[float, float]
    axes: tuple[int, int]  # position coordinates that give (row, col)

    def to_grid(self, position: np.ndarray) -> np.ndarray:
        p = np.asarray(position, np.float64)[..., list(self.axes)]
        return p / self.cell_size + np.asarray(self.offset)

    def from_grid(self, grid: np.ndarray) -> np.ndarray:
        g = (np.asarray(grid, np.float64) - np.asarray(self.offset)) * self.cell_size
        out = np.empty_like(g)
        out[..., list(self.axes)] = g
        return out

    def cell_of(self, position: np.ndarray) -> np.ndarray:
        """(row, col) of the cell holding each position, clipped to the grid."""
        g = np.floor(self.to_grid(position)).astype(np.int64)
        high = np.array(self.walls.shape) - 1
        return np.clip(g, 0, high)

    def centre(self, cells: np.ndarray) -> np.ndarray:
        """Positions of the centres of ``cells`` [..., 2] (row, col)."""
        return self.from_grid(np.asarray(cells, np.float64) + 0.5)

    def extent(self) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` positions of the box around the free cells."""
        free = np.argwhere(~self.walls)
        corners = self.from_grid(np.stack([free.min(axis=0), free.max(axis=0) + 1]))
        return corners.min(axis=0), corners.max(axis=0)

    def in_wall(self, position: np.ndarray) -> np.ndarray:
        """Whether each position lies in a wall cell (or off the grid)."""
        g = np.floor(self.to_grid(position)).astype(np.int64)
        h, w = self.walls.shape
        inside = (g[..., 0] >= 0) & (g[..., 0] < h) & (g[..., 1] >= 0) & (g[..., 1] < w)
        r = np.clip(g[..., 0], 0, h - 1)
        c = np.clip(g[..., 1], 0, w - 1)
        return ~inside | self.walls[r, c]

    @property
    def free_cells(self) -> np.ndarray:
        """[n, 2] (row, col) of every free cell, in row-major order."""
        return np.argwhere(~self.walls)

    def next_cells(self) -> np.ndarray:
        """``[H, W, H, W, 2]``: the next cell from cell a towards cell b on a shortest path.

        b itself when a == b or a and b are neighbours; a itself when b cannot be reached (or
        either is a wall), so a navigator heads for the target directly.
        """
        h, w = self.walls.shape
        table = np.zeros((h, w, h, w, 2), np.int64)
        table[...] = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), -1)[
            :, :, None, None
        ]
        for target in map(tuple, self.free_cells):
            distance = self._distances(target)
            for cell in map(tuple, self.free_cells):
                if cell == target or distance[cell] < 0:
                    table[cell + target] = target if cell == target else cell
                    continue
                best = None
                for nb in self._neighbours(cell):
                    if distance[nb] >= 0 and (best is None or distance[nb] < distance[best]):
                        best = nb
                table[cell + target] = best
        return table

    def distances_from(self, cell: tuple[int, int]) -> np.ndarray:
        """``[H, W]``: BFS steps (4-connected free cells) from ``cell``; -1 where unreachable."""
        return self._distances(tuple(cell))

    def _neighbours(self, cell: tuple[int, int]) -> list[tuple[int, int]]:
        r, c = cell
        h, w = self.walls.shape
        out = []
        for nr, nc in ((r, c - 1), (r, c + 1), (r + 1, c), (r - 1, c)):
            if 0 <= nr < h and 0 <= nc < w and not self.walls[nr, nc]:
                out.append((nr, nc))
        return out

    def _distances(self, target: tuple[int, int]) -> np.ndarray:
        """BFS steps from every cell to ``target`` (-1: unreachable or a wall)."""
        distance = np.full(self.walls.shape, -1, np.int64)
        distance[target] = 0
        queue = deque([target])
        while queue:
            cell = queue.popleft()
            for nb in self._neighbours(cell):
                if distance[nb] < 0:
                    distance[nb] = distance[cell] + 1
                    queue.append(nb)
        return distance


def point_grid(maze: str) -> MazeGrid:
    """A point maze: positions are (row, col) already."""
    from contrastive_rl.envs.point import WALLS

    return MazeGrid(
        name=maze, walls=np.asarray(WALLS[maze]) == 1, cell_size=1.0, offset=(0.0, 0.0), axes=(0, 1)
    )


def ant_grid(maze: str) -> MazeGrid:
    """An AntMaze in D4RL's frame: x = 4 (col - start col), y = 4 (row - start row)."""
    from contrastive_rl.envs.ant_model import MAZE_SIZE_SCALING, MAZES, maze_cells

    _, _, (start_row, start_col) = maze_cells(maze)
    walls = np.array([[ch == "#" for ch in row] for row in MAZES[maze]])
    return MazeGrid(
        name=maze,
        walls=walls,
        cell_size=MAZE_SIZE_SCALING,
        offset=(start_row + 0.5, start_col + 0.5),
        axes=(1, 0),
    )


def maze_grid(env: str) -> MazeGrid | None:
    """The grid of the maze an (offline) task ``env`` lives in; None for mazeless tasks."""
    name = env.removeprefix("offline_")
    if name.startswith("point_") and "image" not in name:
        return point_grid(name.removeprefix("point_").removesuffix("_stitch"))
    if name.startswith("ant_"):
        from contrastive_rl.envs.ant_model import OFFLINE_ANT_TASKS

        task = name.removeprefix("ant_")
        maze = OFFLINE_ANT_TASKS[task][0] if task in OFFLINE_ANT_TASKS else task
        return ant_grid(maze)
    return None
