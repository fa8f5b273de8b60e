# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Metric anchoring against a known similarity: recovery, noise, outliers and refusals."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from aetherscan_ros.core.anchoring import apply_anchor, estimate_anchor, scaled_world
from aetherscan_ros.core.geometry import rotation_angle_deg


def _pose(rot, centre):
    pose = np.eye(4)
    pose[:3, :3] = rot
    pose[:3, 3] = centre
    return pose


def _scene(rng, n, extent_m=2.0, scale=None, centres=None):
    """Return (truth, recon_c2w [n,4,4], tf_c2w [n,4,4]); truth maps world -> fixed."""
    scale = float(np.exp(rng.uniform(np.log(0.1), np.log(10.0)))) if scale is None else scale
    rot = Rotation.random(random_state=rng).as_matrix()
    trans = rng.uniform(-5.0, 5.0, 3)
    if centres is None:
        centres = rng.uniform(-extent_m / 2, extent_m / 2, (n, 3))
    tf = np.stack([_pose(Rotation.random(random_state=rng).as_matrix(), p) for p in centres])
    # world = R^T (fixed - t) / s, camera rotation in world = R^T S
    recon = np.stack([_pose(rot.T @ p[:3, :3], rot.T @ (p[:3, 3] - trans) / scale)
                      for p in tf])
    return (scale, rot, trans), recon, tf


def _noisy(rng, tf, sigma_m, sigma_deg):
    out = tf.copy()
    for pose in out:
        axis = rng.normal(size=3)
        turn = Rotation.from_rotvec(np.radians(sigma_deg) * axis / np.linalg.norm(axis))
        pose[:3, :3] = pose[:3, :3] @ turn.as_matrix()
        pose[:3, 3] += rng.normal(0.0, sigma_m, 3)
    return out


def _errors(anchor, truth):
    scale, rot, trans = truth
    # ||R_a - R_b||_F = 2 sqrt(2) sin(angle / 2): precise for tiny angles, unlike arccos
    chord = np.linalg.norm(anchor.world_to_fixed[:3, :3] - rot) / (2 * np.sqrt(2))
    return (abs(anchor.scale / scale - 1.0), float(np.degrees(2 * np.arcsin(min(chord, 1.0)))),
            float(np.linalg.norm(anchor.world_to_fixed[:3, 3] - trans)))


@pytest.mark.parametrize('seed', range(12))
def test_exact_recovery_of_a_random_similarity(seed):
    rng = np.random.default_rng(seed)
    truth, recon, tf = _scene(rng, int(rng.integers(3, 13)))
    anchor = estimate_anchor(recon, tf)
    assert anchor.ok, anchor.reason
    scale_err, rot_err, trans_err = _errors(anchor, truth)
    assert scale_err < 1e-6 and rot_err < 1e-6 and trans_err < 1e-6
    assert anchor.residual_max_m < 1e-6 and anchor.rotation_max_deg < 1e-4
    assert anchor.views_used == tuple(range(len(tf))) and anchor.views_rejected == ()
    # world points land where the truth puts them; camera poses become the TF poses
    pts = rng.uniform(-3, 3, (50, 3))
    fixed_pts, fixed_poses = apply_anchor(anchor, pts, recon)
    scale, rot, trans = truth
    assert np.allclose(fixed_pts, scale * pts @ rot.T + trans, atol=1e-6)
    assert np.allclose(fixed_poses, tf, atol=1e-6)


def test_scaled_world_composed_with_world_to_fixed_is_apply_anchor():
    rng = np.random.default_rng(100)
    truth, recon, tf = _scene(rng, 6, scale=3.7)
    recon[2] = np.nan
    anchor = estimate_anchor(recon, tf)
    pts = rng.uniform(-1, 1, (20, 3))
    spts, sposes = scaled_world(anchor, pts, recon)
    assert np.allclose(spts, 3.7 * pts, rtol=1e-9)
    assert np.allclose(sposes[:, :3, :3][[0, 1, 3]], recon[[0, 1, 3], :3, :3])
    assert np.allclose(sposes[[0, 1, 3], :3, 3], 3.7 * recon[[0, 1, 3], :3, 3])
    assert np.isnan(sposes[2]).all()        # not registered stays not registered
    fpts, fposes = apply_anchor(anchor, pts, recon)
    tf_chain = anchor.world_to_fixed        # fixed_frame -> world_frame (rigid)
    assert np.allclose(np.linalg.det(tf_chain[:3, :3]), 1.0)
    assert np.allclose(fpts, spts @ tf_chain[:3, :3].T + tf_chain[:3, 3])
    assert np.allclose(fposes[[0, 1, 3]], tf[[0, 1, 3]], atol=1e-9)


@pytest.mark.parametrize('seed', range(5))
def test_tf_noise_gives_a_bounded_scale_error_and_residuals_of_the_noise(seed):
    rng = np.random.default_rng(200 + seed)
    sigma = 0.01
    truth, recon, tf = _scene(rng, 12, extent_m=3.0)
    anchor = estimate_anchor(recon, _noisy(rng, tf, sigma, 0.5))
    assert anchor.ok, anchor.reason
    scale_err, rot_err, _ = _errors(anchor, truth)
    assert scale_err < 0.01 and rot_err < 1.0
    assert anchor.views_rejected == ()
    # a 3D residual of per-axis noise sigma has RMS ~ sqrt(3) sigma (less the fitted dof)
    assert 0.4 * np.sqrt(3) * sigma < anchor.residual_rms_m < 1.5 * np.sqrt(3) * sigma
    assert anchor.residual_max_m >= anchor.residual_rms_m
    assert 0.2 < anchor.rotation_rms_deg < 1.0


@pytest.mark.parametrize('outliers', [(3,), (1, 7)])
def test_gross_outlier_views_are_rejected_and_named(outliers):
    rng = np.random.default_rng(300 + len(outliers))
    truth, recon, tf = _scene(rng, 10, extent_m=2.0)
    noisy = _noisy(rng, tf, 0.005, 0.2)
    noisy[outliers[0], :3, 3] += [0.6, -0.4, 0.3]                  # a jumped TF centre
    if len(outliers) > 1:                                           # and a wrong rotation
        noisy[outliers[1], :3, :3] = noisy[outliers[1], :3, :3] @ Rotation.from_euler(
            'z', 40, degrees=True).as_matrix()
    anchor = estimate_anchor(recon, noisy)
    assert anchor.ok, anchor.reason
    named = dict(anchor.views_rejected)
    assert set(named) == set(outliers)
    assert 'centre off by' in named[outliers[0]]
    if len(outliers) > 1:
        assert 'orientation disagrees' in named[outliers[1]]
    assert set(anchor.views_used) == set(range(10)) - set(outliers)
    assert _errors(anchor, truth)[0] < 0.01 and anchor.residual_max_m < 0.05
    # without rejection the same data would be badly off: the test exercises the robust path
    plain = estimate_anchor(recon, noisy, outlier_m=10.0, max_angle_deg=90.0,
                            max_residual_m=10.0)
    assert plain.ok and plain.residual_max_m > 0.2


def test_many_views_use_sampled_hypotheses_and_still_reject_outliers():
    rng = np.random.default_rng(400)
    truth, recon, tf = _scene(rng, 40, extent_m=4.0)                # 780 pairs > 300
    noisy = _noisy(rng, tf, 0.005, 0.2)
    bad = [5, 17, 30]
    for k in bad:
        noisy[k, :3, 3] += rng.uniform(0.5, 1.0, 3)
    anchor = estimate_anchor(recon, noisy)
    assert anchor.ok, anchor.reason
    assert sorted(dict(anchor.views_rejected)) == bad
    assert _errors(anchor, truth)[0] < 0.005


@pytest.mark.parametrize('seed', range(4))
def test_two_views_recover_the_rotation_about_the_baseline_from_orientations(seed):
    rng = np.random.default_rng(500 + seed)
    truth, recon, tf = _scene(rng, 2, centres=np.array([[0.0, 0.0, 0.0], [0.8, 0.1, -0.2]]))
    anchor = estimate_anchor(recon, tf)
    assert anchor.ok, anchor.reason
    scale_err, rot_err, trans_err = _errors(anchor, truth)
    assert scale_err < 1e-9 and rot_err < 1e-6 and trans_err < 1e-9
    # centres alone cannot tell: a turn about the baseline fits them exactly as well
    scale, rot, trans = truth
    base = tf[1, :3, 3] - tf[0, :3, 3]
    turn = Rotation.from_rotvec(1.0 * base / np.linalg.norm(base)).as_matrix()
    alt_rot, alt_trans = turn @ rot, turn @ trans + tf[0, :3, 3] - turn @ tf[0, :3, 3]
    alt = scale * recon[:, :3, 3] @ alt_rot.T + alt_trans
    assert np.allclose(alt, tf[:, :3, 3], atol=1e-9)
    assert rotation_angle_deg(alt_rot, anchor.world_to_fixed[:3, :3]) > 50.0
    # with noise the two-view anchor still works
    noisy = estimate_anchor(recon, _noisy(rng, tf, 0.005, 0.3))
    assert noisy.ok and _errors(noisy, truth)[0] < 0.03 and _errors(noisy, truth)[1] < 2.0


def test_pure_rotation_is_refused():
    rng = np.random.default_rng(600)
    truth, recon, tf = _scene(rng, 6, centres=np.tile([1.0, 2.0, 0.5], (6, 1)))
    recon[:, :3, 3] += rng.normal(0, 1e-3, (6, 3))        # the reconstruction's drift
    anchor = estimate_anchor(recon, tf)
    assert not anchor.ok and 'baseline' in anchor.reason and 'pure rotation' in anchor.reason
    assert np.isnan(anchor.scale) and np.isnan(anchor.world_to_fixed).all()
    with pytest.raises(ValueError, match='refused anchor'):
        apply_anchor(anchor, np.zeros((1, 3)), recon)
    # a tiny move below min_baseline_m is refused the same way
    small = _scene(rng, 4, extent_m=0.02)
    assert 'baseline' in estimate_anchor(small[1], small[2]).reason


def test_degenerate_reconstruction_centres_are_refused():
    rng = np.random.default_rng(700)
    _, recon, tf = _scene(rng, 5)
    recon[:, :3, 3] = 0.0                                # e.g. failed poses at the origin
    anchor = estimate_anchor(recon, tf)
    assert not anchor.ok and 'degenerate' in anchor.reason
    recon[:, :3, 3] = rng.normal(0.0, 1e-12, (5, 3))      # numerical noise only
    assert 'degenerate' in estimate_anchor(recon, tf).reason


def test_too_few_views_and_nan_views():
    rng = np.random.default_rng(800)
    truth, recon, tf = _scene(rng, 6)
    recon[1] = np.nan                                    # not registered
    tf[4] = np.nan                                       # TF lookup failed
    tf[5, 0, 0] = np.inf
    anchor = estimate_anchor(recon, tf)
    assert anchor.ok, anchor.reason
    assert anchor.views_used == (0, 2, 3)
    reasons = dict(anchor.views_rejected)
    assert sorted(reasons) == [1, 4, 5]
    assert 'not registered' in reasons[1] and 'no TF pose' in reasons[4]
    assert max(_errors(anchor, truth)) < 1e-6
    # two usable views but three required
    tf[3] = np.nan
    refused = estimate_anchor(recon, tf, min_views=3)
    assert not refused.ok and 'too few views' in refused.reason and '2 with both' in refused.reason
    # one usable view
    tf[2] = np.nan
    one = estimate_anchor(recon, tf)
    assert not one.ok and 'too few views' in one.reason
    assert not estimate_anchor(np.zeros((0, 4, 4)), np.zeros((0, 4, 4))).ok


def test_mirrored_reconstruction_is_refused():
    rng = np.random.default_rng(900)
    _, recon, tf = _scene(rng, 8)
    mirror = np.diag([1.0, -1.0, 1.0, 1.0])
    # a mirrored world with proper camera rotations (conjugated): inconsistent orientation
    conj = mirror @ recon @ mirror
    anchor = estimate_anchor(conj, tf)
    assert not anchor.ok and 'inconsistent orientation' in anchor.reason, anchor.reason
    assert 'camera rotations' in anchor.reason and 'mirrored' in anchor.reason
    # a mirrored world whose camera frames are left-handed: every view is named
    left = mirror @ recon
    anchor = estimate_anchor(left, tf)
    assert not anchor.ok and 'too few views' in anchor.reason
    assert all('improper' in why for _, why in anchor.views_rejected)


def test_centres_that_disagree_with_orientations_are_refused():
    rng = np.random.default_rng(1000)
    _, recon, tf = _scene(rng, 8)
    turned = recon.copy()                                # centres turned 90 deg, rotations kept
    turned[:, :3, 3] = recon[:, :3, 3] @ Rotation.from_euler('x', 90, degrees=True).as_matrix().T
    anchor = estimate_anchor(turned, tf)
    assert not anchor.ok and 'inconsistent orientation' in anchor.reason, anchor.reason
    # two views whose baseline runs backwards with respect to their orientations
    _, recon2, tf2 = _scene(rng, 2, centres=np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    recon2[:, :3, 3] = recon2[::-1, :3, 3]
    anchor = estimate_anchor(recon2, tf2)
    assert not anchor.ok and 'inconsistent orientation' in anchor.reason, anchor.reason
    assert '180' in anchor.reason


def test_an_outlier_that_cannot_be_told_apart_is_refused_as_ambiguous():
    # three views on a straight drive with one orientation: any two fit exactly, at 3 scales
    rng = np.random.default_rng(1200)
    centres = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    truth, recon, tf = _scene(rng, 3, scale=1.0, centres=centres)
    tf[:, :3, :3] = tf[0, :3, :3]
    recon[:, :3, :3] = truth[1].T @ tf[0, :3, :3]
    tf[0, :3, 3] -= [1.0, 0.0, 0.0]                         # view 0's TF jumped back 1 m
    anchor = estimate_anchor(recon, tf)
    assert not anchor.ok and 'ambiguous' in anchor.reason, anchor.reason
    # a fourth good view settles it: view 0 is rejected and the scale is right
    truth, recon, tf = _scene(rng, 4, scale=1.0, centres=np.vstack([centres, [[3.0, 0, 0]]]))
    tf[0, :3, 3] -= [1.0, 0.0, 0.0]
    anchor = estimate_anchor(recon, tf)
    assert anchor.ok and dict(anchor.views_rejected).keys() == {0}
    assert abs(anchor.scale - 1.0) < 1e-9


def test_residual_above_threshold_is_refused_and_reported():
    rng = np.random.default_rng(1100)
    _, recon, tf = _scene(rng, 10, extent_m=3.0)
    noisy = _noisy(rng, tf, 0.08, 0.5)
    anchor = estimate_anchor(recon, noisy, outlier_m=1.0)
    assert not anchor.ok and 'residual RMS' in anchor.reason
    assert anchor.residual_rms_m > 0.05 and np.isnan(anchor.scale)
    summary = anchor.to_dict()
    assert summary['ok'] is False and summary['scale'] is None
    assert summary['residual_rms_m'] == pytest.approx(anchor.residual_rms_m)
    relaxed = estimate_anchor(recon, noisy, outlier_m=1.0, max_residual_m=0.5)
    assert relaxed.ok and relaxed.to_dict()['world_to_fixed'] is not None


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        estimate_anchor(np.eye(4), np.eye(4))
    with pytest.raises(ValueError):
        estimate_anchor(np.tile(np.eye(4), (3, 1, 1)), np.tile(np.eye(4), (2, 1, 1)))
