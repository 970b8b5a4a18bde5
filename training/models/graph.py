"""The Infant-20 graph as adjacency matrices for graph convolutions.

ST-GCN's spatial partitioning: every joint's neighbourhood is split into the
joint itself, its neighbours nearer the root (neck, joint 17) and those
farther away. Each partition is a normalised ``[V, V]`` matrix, so a graph
convolution is three fixed matrix products (export-friendly: plain matmul).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skeleton.schemas import INFANT_20, JointSchema


def _hop_distance(num_joints: int, edges: tuple[tuple[int, int], ...], root: int) -> np.ndarray:
    """Number of edges from ``root`` to every joint (breadth-first over the undirected graph)."""
    neighbours: list[list[int]] = [[] for _ in range(num_joints)]
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    dist = np.full(num_joints, -1, dtype=np.int64)
    dist[root] = 0
    frontier = [root]
    while frontier:
        nxt = []
        for j in frontier:
            for n in neighbours[j]:
                if dist[n] < 0:
                    dist[n] = dist[j] + 1
                    nxt.append(n)
        frontier = nxt
    if (dist < 0).any():
        raise ValueError("the skeleton graph is not connected")
    return dist


def _normalise_columns(a: np.ndarray) -> np.ndarray:
    """A @ D^-1 with D the in-degree: each joint averages what it receives."""
    deg = a.sum(axis=0)
    return a / np.where(deg > 0, deg, 1.0)[None, :]


@dataclass(frozen=True)
class SkeletonGraph:
    schema: JointSchema
    partitions: np.ndarray  # float32 [3, V, V]: self, towards root (centripetal), away from root (centrifugal)
    parents: np.ndarray  # int64 [V]: parent of each joint (root is its own parent)

    @property
    def num_joints(self) -> int:
        return self.schema.num_joints

    @property
    def adjacency(self) -> np.ndarray:
        """Undirected adjacency with self-loops, normalised (for models that want one matrix)."""
        return _normalise_columns((self.partitions > 0).any(axis=0).astype(np.float32))


def spatial_graph(schema: JointSchema = INFANT_20) -> SkeletonGraph:
    """ST-GCN spatial partitions of ``schema`` (default: CoGMA's Infant-20 rooted at the neck)."""
    v = schema.num_joints
    dist = _hop_distance(v, schema.edges, schema.root)
    link = np.zeros((v, v), dtype=np.float32)
    for a, b in schema.edges:
        link[a, b] = link[b, a] = 1.0
    full = _normalise_columns(link + np.eye(v, dtype=np.float32))
    # a[i, j] != 0 means joint i sends to joint j; partition by where i lies relative to j.
    self_part = np.where(np.eye(v, dtype=bool), full, 0.0)
    closer = np.where((link > 0) & (dist[:, None] < dist[None, :]), full, 0.0)
    farther = np.where((link > 0) & (dist[:, None] > dist[None, :]), full, 0.0)
    parents = np.arange(v, dtype=np.int64)
    for a, b in schema.edges:
        child, parent = (a, b) if dist[a] > dist[b] else (b, a)
        parents[child] = parent
    partitions = np.stack([self_part, closer, farther]).astype(np.float32)
    return SkeletonGraph(schema=schema, partitions=partitions, parents=parents)
