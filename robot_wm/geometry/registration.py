"""Rigid registration: a depth camera's points to a model surface (point-to-plane ICP with robust weights),
and an object's points to its earlier points on the table (a turn about the vertical and a shift).

Used to tell whether a camera still sits where its calibration says (:class:`robot_wm.control.faults.
CalibrationMonitor`): the camera's depth, put into the world with the calibrated pose, is registered to what
the workcell model (table + robot) looks like from there; the rigid motion that aligns them is the camera's
pose error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from robot_wm.geometry.camera import Intrinsics, deproject_depth
from robot_wm.geometry.pose import Pose

EDGE_FACTOR = 8.0   # a pixel whose neighbours differ by more than this x the pixel footprint (+1 cm) is an edge
GATES = (0.03, 0.03, 0.03, 0.015, 0.015, 0.015, 0.008)  # m: match radius per iteration (the last repeats)
GROUP_WEIGHT_CAP = 1.0  # a flagged point (the robot) weighs at most this x an unflagged one (1: the flagged
# group never outweighs the rest; more than 1 lets a few robot points pin what a plane leaves free, at the cost of
# the noise bias of their silhouettes: measured in docs/calibration.md)
DAMPING = 1e-4  # of the total weight, on every direction (a step in a direction the view leaves free stays finite)
MIN_INFORMATION = 2.5 * DAMPING  # a direction whose normalised information is under this is not constrained by
# the surface: its data add less than 1.5x the damping. Measured: a plane's free directions read 1.0-2.0 x DAMPING
# (noisy normals), the weakest direction the robot pins for the shipped side camera 2.96 x (it recovers a 1 deg turn)


def depth_surface(depth: np.ndarray, k: Intrinsics, pose: Pose, flags: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points (N, 3), unit normals (N, 3), flags (N,) bool) of the valid, non-edge pixels of `depth` (h, w) m
    (0 or non-finite: invalid) seen by a camera with intrinsics `k` at `pose` (camera2world); world frame.
    Normals from the image-space neighbours (central differences); `flags` (h, w): a per-pixel label carried
    along (e.g. "robot"), False where None."""
    z = np.asarray(depth, float)
    cam = deproject_depth(z, k).astype(float)
    dx = np.zeros_like(cam)
    dy = np.zeros_like(cam)
    dx[:, 1:-1] = cam[:, 2:] - cam[:, :-2]
    dy[1:-1] = cam[2:] - cam[:-2]
    n = np.cross(dx, dy)
    norm = np.linalg.norm(n, axis=-1)
    valid = np.isfinite(z) & (z > 0)
    ok = valid & (norm > 0)
    ok[0] = ok[-1] = ok[:, 0] = ok[:, -1] = False
    footprint = np.where(valid, z, 0.0) / float(k.fx)
    jump = np.maximum(np.linalg.norm(dx, axis=-1), np.linalg.norm(dy, axis=-1))
    ok &= jump <= EDGE_FACTOR * 2 * footprint + 0.01
    for shift in ((0, 1), (0, -1), (1, 0), (-1, 0)):  # both neighbours of a central difference must be valid
        ok &= np.roll(valid, shift, axis=(0, 1))
    rot = pose.rotation.as_matrix()
    pts = cam[ok] @ rot.T + pose.position
    nrm = (n[ok] / norm[ok][:, None]) @ rot.T
    lab = np.asarray(flags, bool)[ok] if flags is not None else np.zeros(len(pts), bool)
    return pts, nrm, lab


@dataclass(frozen=True)
class RigidFit:
    """The rigid motion x -> rotation @ x + translation (world frame, m) that moves the source points onto the
    model surface; `information` (6,) the eigenvalues (ascending) of the normalised Gauss-Newton matrix
    (rotation about the source centroid [m^2 units, rad], translation): a small one is a direction the surface
    does not constrain (a plane alone leaves three); `inliers`: matched source points at the end; `center` (3,)
    the source centroid; `covariance` (6, 6) of (rotation vector rad, translation at `center` m): the robust
    sandwich estimate H^-1 (A^T W R^2 W A) H^-1 from the last iteration's weighted residuals (it grows with
    depth noise and with how little of the surface constrains a direction); `residual_sigma` (m): the robust
    (MAD) sigma of the last point-to-plane residuals, a measure of the depth noise."""

    rotation: np.ndarray
    translation: np.ndarray
    information: np.ndarray
    inliers: int
    center: np.ndarray
    covariance: np.ndarray
    residual_sigma: float
    directions: np.ndarray  # (6, 6): column k is the direction of information[k]

    def constrained(self, min_information: float = MIN_INFORMATION) -> RigidFit:
        """This fit with the motion along the directions its surface does not constrain removed: the parts
        of (rotation vector, translation at `center`) along eigenvectors whose information is under
        `min_information` are set to 0 (and their covariance with them). A table alone leaves its in-plane
        shift and turn free; the damped fit holds them near 0, but depth rounding and stray normals still move
        them by millimetres, which is no evidence of anything."""
        v = self.directions[:, self.information >= min_information]
        proj = v @ v.T
        w = Rotation.from_matrix(self.rotation).as_rotvec()
        t_c = self.rotation @ self.center + self.translation - self.center
        x = proj @ np.r_[w, t_c]
        rot = Rotation.from_rotvec(x[:3]).as_matrix()
        return RigidFit(rot, x[3:] + self.center - rot @ self.center, self.information, self.inliers, self.center,
                        proj @ self.covariance @ proj, self.residual_sigma, self.directions)

    def displacement(self, point: np.ndarray) -> float:
        """How far (m) the fit moves `point` (3,)."""
        p = np.asarray(point, float)
        return float(np.linalg.norm(self.rotation @ p + self.translation - p))

    @property
    def angle_deg(self) -> float:
        return float(math.degrees(np.linalg.norm(Rotation.from_matrix(self.rotation).as_rotvec())))

    def displacement_sigma(self, point: np.ndarray) -> float:
        """1-sigma (m) of :meth:`displacement` at `point` (3,), along the displacement (linearised)."""
        p = np.asarray(point, float)
        d = self.rotation @ p + self.translation - p
        u = d / max(float(np.linalg.norm(d)), 1e-12)
        v = p - self.center
        jac = np.hstack([-np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]]), np.eye(3)])
        return float(math.sqrt(max(float(u @ jac @ self.covariance @ jac.T @ u), 0.0)))

    @property
    def angle_sigma_deg(self) -> float:
        """1-sigma (deg) of :attr:`angle_deg`, along the rotation axis (linearised)."""
        w = Rotation.from_matrix(self.rotation).as_rotvec()
        u = w / max(float(np.linalg.norm(w)), 1e-12)
        return float(math.degrees(math.sqrt(max(float(u @ self.covariance[:3, :3] @ u), 0.0))))


def point_to_plane_icp(source: np.ndarray, target: np.ndarray, target_normals: np.ndarray,
                       target_flags: np.ndarray | None = None, iters: int = 15, gates: tuple[float, ...] = GATES,
                       damping: float = DAMPING, min_matches: int = 200) -> RigidFit | None:
    """Align `source` (N, 3) to the surface sampled by `target` (M, 3) with `target_normals` (M, 3) (world,
    m): point-to-plane ICP (Gauss-Newton on the linearised rotation about the source centroid), matches within
    the iteration's gate (`gates`, m), Huber-like weights at twice the residuals' robust sigma, a damping of
    `damping` x the total weight on every direction (so directions the surface leaves free stay near 0 instead
    of drifting). Target points flagged by `target_flags` (M,) (the robot, which pins what a table plane
    leaves free) are reweighted towards the others' total, at most :data:`GROUP_WEIGHT_CAP` x per point. None
    when fewer than `min_matches` points match."""
    src = np.asarray(source, float)
    tgt = np.asarray(target, float)
    nrm = np.asarray(target_normals, float)
    flags = np.zeros(len(tgt), bool) if target_flags is None else np.asarray(target_flags, bool)
    if len(src) < min_matches or len(tgt) < min_matches:
        return None
    tree = cKDTree(tgt)
    rot, trans = np.eye(3), np.zeros(3)
    c0 = src.mean(0)
    h = cov = np.eye(6)
    sigma = 0.0
    total = 1.0
    n_ok = 0
    for it in range(iters):
        p = src @ rot.T + trans
        gate = gates[min(it, len(gates) - 1)]
        d, idx = tree.query(p, distance_upper_bound=gate)
        ok = np.isfinite(d)
        n_ok = int(ok.sum())
        if n_ok < min_matches:
            return None
        j = idx[ok]
        q, n, pc = tgt[j], nrm[j], p[ok] - c0
        r = np.sum((p[ok] - q) * n, 1)
        sigma = 1.4826 * float(np.median(np.abs(r))) + 1e-4
        wts = 1.0 / np.maximum(1.0, np.abs(r) / (2 * sigma))
        fl = flags[j]
        if fl.any() and (~fl).any():
            wts = wts * np.where(fl, min(GROUP_WEIGHT_CAP, (~fl).sum() / fl.sum()), 1.0)
        a = np.hstack([np.cross(pc, n), n])
        total = float(wts.sum())
        h = (a * wts[:, None]).T @ a + damping * total * np.eye(6)
        x = -np.linalg.solve(h, (a * wts[:, None]).T @ r)
        h_inv = np.linalg.inv(h)
        wa = a * (wts * r)[:, None]
        cov = h_inv @ (wa.T @ wa) @ h_inv
        d_rot = Rotation.from_rotvec(x[:3]).as_matrix()
        rot, trans = d_rot @ rot, d_rot @ (trans - c0) + c0 + x[3:]
        if np.linalg.norm(x) < 2e-6 and it >= len(gates) - 1:
            break
    info, dirs = np.linalg.eigh(h / max(total, 1e-12))
    return RigidFit(rot, trans, info, n_ok, c0, cov, sigma, dirs)


PLANAR_MAX_POINTS = 600  # points of each cloud the planar registration uses (an even stride)
PLANAR_COARSE_STEP = math.radians(3.0)  # angle grid of its coarse search
PLANAR_TRIM = 0.8  # fraction of the matches (the closest) each step fits and scores


@dataclass(frozen=True)
class PlanarFit:
    """A planar rigid motion: points turned by `turn` rad about the vertical through `center` (2,) m, then
    shifted by `shift` (2,) m (world x-y); `rms` (m): the trimmed root-mean-square distance of the moved
    source points to the target's nearest points."""

    turn: float
    shift: np.ndarray
    center: np.ndarray
    rms: float


def _stride(points: np.ndarray, n: int) -> np.ndarray:
    return points if len(points) <= n else points[:: int(math.ceil(len(points) / n))]


def turn_about(points: np.ndarray, angle: float, center: np.ndarray) -> np.ndarray:
    """x-y points (..., 2) turned by `angle` rad about `center` (2,) (counter-clockwise seen from above)."""
    c, s = math.cos(angle), math.sin(angle)
    d = np.asarray(points, float) - center
    return np.stack([c * d[..., 0] - s * d[..., 1], s * d[..., 0] + c * d[..., 1]], -1) + center


def _turn_xy(points: np.ndarray, angle: float, center: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """3-D points (N, 3) turned about the vertical through `center` (2,), then shifted by `shift` (2,)."""
    out = points.copy()
    out[:, :2] = turn_about(points[:, :2], angle, center) + shift
    return out


def _trimmed(d: np.ndarray, trim: float) -> np.ndarray:
    k = max(1, int(trim * len(d)))
    return np.argpartition(d, k - 1)[:k]


def _normals(points: np.ndarray, tree: cKDTree, k: int = 12) -> np.ndarray:
    """Unit normals (N, 3) of a cloud from its k nearest neighbours (the covariance's least direction)."""
    _, idx = tree.query(points, k=min(k, len(points)))
    nb = points[idx] - points[idx].mean(1, keepdims=True)
    cov = np.einsum("nki,nkj->nij", nb, nb)
    return np.linalg.eigh(cov)[1][:, :, 0]


def _refine(src: np.ndarray, tgt: np.ndarray, tree: cKDTree, normals: np.ndarray, turn: float,
            center: np.ndarray, shift: np.ndarray, iters: int, trim: float) -> tuple[float, np.ndarray, float]:
    """Point-to-plane ICP about the vertical from (turn, shift): (turn, shift, trimmed rms m)."""
    for _ in range(iters):
        moved = _turn_xy(src, turn, center, shift)
        d, idx = tree.query(moved)
        n = normals[idx]
        r = np.sum((moved - tgt[idx]) * n, 1)  # point-to-plane: parts seen in one view only slide along
        keep = _trimmed(np.abs(r) + 0.5 * np.maximum(d - np.abs(r), 0.0), trim)
        rel = moved[keep, :2] - (center + shift)
        nk = n[keep]
        a = np.c_[rel[:, 0] * nk[:, 1] - rel[:, 1] * nk[:, 0], nk[:, 0], nk[:, 1]]  # d r / d (turn, x, y)
        hess = a.T @ a + 1e-6 * len(keep) * np.eye(3)
        step, dx, dy = -np.linalg.solve(hess, a.T @ r[keep])
        shift = shift + np.array([dx, dy])  # the step turns about the moved centre, then shifts
        turn += float(step)
        if abs(step) < 1e-5 and math.hypot(dx, dy) < 1e-6:
            break
    d, _ = tree.query(_turn_xy(src, turn, center, shift))
    return turn, shift, float(np.sqrt(np.mean(d[_trimmed(d, trim)] ** 2)))


def planar_turn(source: np.ndarray, target: np.ndarray, iters: int = 15, trim: float = PLANAR_TRIM,
                candidates: int = 3, min_points: int = 30) -> PlanarFit | None:
    """How an object resting on the table moved between two views of it: `source` (N, 3) its points before,
    `target` (M, 3) after (world frame, m; partial views are fine). A coarse search over the full turn
    (every :data:`PLANAR_COARSE_STEP`; at each angle the centroids aligned and then shifted by the mean
    offset to the target's nearest points, scored by the trimmed mean distance to them in 3D) gives
    `candidates` starting turns (the best local minima); each is refined by point-to-plane ICP restricted to
    a turn about z and an x-y shift (`iters` Gauss-Newton steps on the closest `trim` of the matches; the
    target's normals from its nearest neighbours: a face seen in one view only slides along its plane
    instead of pulling the fit), and the refinement with the least trimmed rms wins. z is never changed:
    the object stays on the table. None when either cloud has fewer than `min_points` points."""
    src = _stride(np.asarray(source, float), PLANAR_MAX_POINTS)
    tgt = _stride(np.asarray(target, float), PLANAR_MAX_POINTS)
    if len(src) < min_points or len(tgt) < min_points:
        return None
    tree = cKDTree(tgt)
    center = src[:, :2].mean(0)
    shift0 = tgt[:, :2].mean(0) - center
    angles = np.arange(-math.pi, math.pi, PLANAR_COARSE_STEP)
    scores, shifts = np.empty(len(angles)), []
    for i, a in enumerate(angles):
        moved = _turn_xy(src, float(a), center, shift0)
        _, idx = tree.query(moved)
        shift = shift0 + (tgt[idx, :2] - moved[:, :2]).mean(0)
        d, _ = tree.query(_turn_xy(src, float(a), center, shift))
        scores[i] = d[_trimmed(d, trim)].mean()
        shifts.append(shift)
    minima = np.flatnonzero((scores <= np.roll(scores, 1)) & (scores <= np.roll(scores, -1)))
    starts = minima[np.argsort(scores[minima])][:candidates]
    normals = _normals(tgt, tree)
    best: tuple[float, np.ndarray, float] | None = None
    for i in starts:
        fit = _refine(src, tgt, tree, normals, float(angles[i]), center, shifts[i], iters, trim)
        if best is None or fit[2] < best[2]:
            best = fit
    assert best is not None
    turn, shift, rms = best
    return PlanarFit(math.remainder(turn, 2 * math.pi), shift, center, rms)


__all__ = ["PlanarFit", "RigidFit", "depth_surface", "planar_turn", "point_to_plane_icp", "turn_about"]
