# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Fast3R post-processing (focal, PnP poses, local->global alignment) vs upstream's numbers."""

import numpy as np
import pytest

from aetherscan_ros.core.geometry import rotation_angle_deg
from aetherscan_ros.models.fast3r.postprocess import (
    align_local_to_global, default_focal, estimate_focal, estimate_poses, intrinsics,
    pose_from_pnp, top_confidence_mask)
from aetherscan_ros.models.fast3r.preprocess import preprocess_image


@pytest.fixture(scope='module')
def fx(parity_dir):
    return dict(np.load(parity_dir / 'fixture.npz'))


def test_weiszfeld_focal_matches_upstream(fx):
    focal = estimate_focal(fx['syn_pts3d_in_other_view'][0], fx['syn_conf'][0])
    assert focal == pytest.approx(float(fx['syn_focal_view0_global']), rel=1e-6)
    assert abs(focal - float(fx['syn_gt_focal'])) < 0.1
    # trap 8: the random model's degenerate map clips to 0, exactly as upstream reported
    assert estimate_focal(fx['pts3d_in_other_view'][0], fx['conf'][0]) == 0.0
    assert float(fx['focal_view0_global_from_model']) == 0.0


def test_pnp_poses_match_upstream_and_ground_truth(fx):
    focal = float(fx['syn_focal_view0_global'])
    ks = [intrinsics(focal, 48, 64)] * 3
    poses, failed, inliers = estimate_poses(fx['syn_pts3d_in_other_view'], fx['syn_conf'], ks)
    assert failed == [] and min(inliers) > 2500
    for i in range(3):
        ref, gt = fx['syn_poses_c2w'][i], fx['syn_gt_c2w'][i]
        assert rotation_angle_deg(poses[i, :3, :3], ref[:3, :3]) <= 0.1
        np.testing.assert_allclose(poses[i, :3, :3], ref[:3, :3], atol=1e-4)
        np.testing.assert_allclose(poses[i, :3, 3], ref[:3, 3], atol=1e-3)
        assert rotation_angle_deg(poses[i, :3, :3], gt[:3, :3]) <= 0.5
        assert np.abs(poses[i, :3, 3] - gt[:3, 3]).max() <= 0.02
    np.testing.assert_allclose(poses[0], np.eye(4), atol=0.02)  # world = camera 0


def test_pnp_failure_is_reported_not_hidden(fx):
    pose, count = pose_from_pnp(fx['syn_pts3d_in_other_view'][1], intrinsics(0.0, 48, 64),
                                fx['syn_conf'][1])
    assert pose is None and count == 0
    poses, failed, _ = estimate_poses(fx['syn_pts3d_in_other_view'][:2], fx['syn_conf'][:2],
                                      [intrinsics(0.0, 48, 64)] * 2)
    assert failed == [0, 1]
    np.testing.assert_array_equal(poses, np.stack([np.eye(4)] * 2))
    assert default_focal(48, 64) == pytest.approx(64 / (2 * np.tan(np.radians(30))))


@pytest.mark.parametrize('prefix', ['syn_', ''])
def test_local_to_global_alignment_matches_upstream(fx, prefix):
    for i in range(3):
        aligned, (scale, rot, _) = align_local_to_global(
            fx[prefix + 'pts3d_local'][i], fx[prefix + 'pts3d_in_other_view'][i],
            fx[prefix + 'conf'][i], percentile=85)
        ref = fx[prefix + 'pts3d_local_aligned_to_global'][i]
        np.testing.assert_allclose(aligned, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
        assert scale > 0 and np.linalg.det(rot) == pytest.approx(1.0)


def test_top_confidence_mask_keeps_the_most_confident():
    conf = np.array([[5.0, 1.0, 3.0], [2.0, 4.0, 6.0]])
    mask = top_confidence_mask(conf, 50.0)
    np.testing.assert_array_equal(mask, [[True, False, False], [False, True, True]])
    assert top_confidence_mask(conf, 0.0).all() and not top_confidence_mask(conf, 100.0).any()
    with pytest.raises(ValueError, match='percentile'):
        top_confidence_mask(conf, 101.0)


def test_intrinsics_map_between_input_and_network_pixels():
    image = np.zeros((480, 640, 3), np.uint8)
    view = preprocess_image(image, size=512)
    assert view.size == (512, 384) and view.crop_offset == (0, 0)
    K = np.array([[500.0, 0, 320.0], [0, 500.0, 240.0], [0, 0, 1]])  # noqa: N806
    net = view.K_to_network(K)
    # scale 0.8, half-pixel convention: c' = 0.8 (c + 0.5) - 0.5
    np.testing.assert_allclose(net, [[400, 0, 255.9], [0, 400, 191.9], [0, 0, 1]])
    np.testing.assert_allclose(view.K_to_input(net), K, atol=1e-12)
    square = preprocess_image(np.zeros((1024, 1024, 3), np.uint8), size=512)
    assert square.size == (512, 384) and square.crop_offset == (0, 64)  # square -> 4:3
    k2 = square.K_to_network(np.array([[800.0, 0, 511.5], [0, 800.0, 511.5], [0, 0, 1]]))
    np.testing.assert_allclose(k2[:2, 2], [255.5, 191.5])  # the centre stays the centre
    portrait = preprocess_image(np.zeros((640, 480, 3), np.uint8), size=512)
    assert portrait.size == (384, 512)
    with pytest.raises(ValueError, match='cam0@12: too small|cam0@12: .* too small'):
        preprocess_image(np.zeros((2, 400, 3), np.uint8), size=64, name='cam0@12')
    with pytest.raises(ValueError, match='cam0@12: expected an RGB image'):
        preprocess_image(np.zeros((20, 40), np.uint8), name='cam0@12')
