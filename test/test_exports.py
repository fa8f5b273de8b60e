# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
COLMAP and nerfstudio exports (ROS-free), and ``aetherscan reconstruct --export``.

A result built from the demo scene's true surface (one point per pixel per view, metres) is
exported; the COLMAP model is read back with pycolmap and must hold the result's cameras, poses
and points, with tracks whose 2D observations are the points' projections and whose other
views really see the point (checked against the true depth maps). ``transforms.json`` is
checked field by field against nerfstudio's data conventions, and its convention (OpenGL
camera axes, pixel centres at +0.5) by casting nerfstudio's ray through a pixel onto the
surface point seen there.
"""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from aetherscan_ros.backends.base import result_from_view_clouds, ViewCloud
from aetherscan_ros.core.depth import backproject
from aetherscan_ros.files.colmap import write_colmap
from aetherscan_ros.files.export_views import ExportError
from aetherscan_ros.files.exports import parse_exports, write_exports
from aetherscan_ros.files.nerfstudio import transforms_document
from aetherscan_ros.files.results import save_result

VIEWS = 3
NERFSTUDIO_CAMERA_MODELS = ('OPENCV', 'OPENCV_FISHEYE', 'PINHOLE', 'SIMPLE_PINHOLE')


def _pycolmap():
    from aetherscan_ros.backends.classical.sfm import import_pycolmap
    return import_pycolmap()


def _truth_result(scene, poses=None, Ks=None):
    """Return a metric result whose points are the true surface, one per pixel per view."""
    poses = scene.poses_c2w if poses is None else poses
    clouds = []
    for v in range(scene.num_views):
        depth = np.where(scene.depths[v] > 0, scene.depths[v], np.nan)
        cam, pixels = backproject(depth, scene.K)
        if not np.all(np.isfinite(poses[v])):
            continue
        clouds.append(ViewCloud(v, (cam @ poses[v][:3, :3].T + poses[v][:3, 3]).astype(
            np.float32), scene.images[v][pixels[:, 1], pixels[:, 0]],
            np.ones(len(cam), np.float32)))
    width, height = scene.size
    Ks = np.stack([scene.K] * scene.num_views) if Ks is None else Ks
    return result_from_view_clouds(clouds, poses, Ks, np.array([[width, height]] * len(poses)),
                                   'truth', info={'metric_scale': True})


@pytest.fixture(scope='module')
def scene():
    from aetherscan_ros.demo.scene import make_scene
    return make_scene(num_views=VIEWS, width=120, height=90, seed=5)


@pytest.fixture(scope='module')
def exported(scene, tmp_path_factory):
    out = tmp_path_factory.mktemp('exports')
    result = _truth_result(scene)
    save_result(result, out)
    report = write_exports(result, out, ['colmap,nerfstudio', 'depth'], list(scene.images))
    return result, out, report


def test_colmap_model_reads_back_with_the_results_cameras_poses_and_points(scene, exported):
    result, out, report = exported
    assert {p.name for p in report.paths} == {'images', 'colmap', 'transforms.json', 'depth'}
    recon = _pycolmap().Reconstruction(str(out / 'colmap'))
    assert recon.num_cameras() == 1 and recon.num_images() == VIEWS
    camera = recon.cameras[1]
    K = scene.K
    assert camera.model.name == 'PINHOLE' and (camera.width, camera.height) == scene.size
    np.testing.assert_allclose(camera.params, [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5])
    for v in range(VIEWS):
        image = recon.images[v + 1]
        assert image.name == f'view_{v:04d}.png' and image.camera_id == 1 and image.has_pose
        np.testing.assert_allclose(image.cam_from_world().matrix(),
                                   np.linalg.inv(scene.poses_c2w[v])[:3], atol=1e-9)
    assert recon.num_points3D() == result.num_points  # under the point budget: every point
    ids = sorted(recon.points3D)
    xyz = np.array([recon.points3D[i].xyz for i in ids])
    rgb = np.array([recon.points3D[i].color for i in ids])
    got, want = np.lexsort(xyz.T), np.lexsort(result.points.astype(np.float64).T)
    np.testing.assert_allclose(xyz[got], result.points[want], atol=1e-6)
    assert np.array_equal(rgb[got], result.colors[want])


def test_colmap_tracks_are_projections_seen_by_their_views(scene, exported):
    result, out, _ = exported
    recon = _pycolmap().Reconstruction(str(out / 'colmap'))
    K = scene.K
    views_per_point, checked = [], 0
    for point_id in list(recon.points3D)[::97]:  # a spread sample of ~600 points
        point = recon.points3D[point_id]
        views = []
        for element in point.track.elements:
            view = element.image_id - 1
            views.append(view)
            xy = np.array(recon.images[element.image_id].points2D[element.point2D_idx].xy)
            pose = scene.poses_c2w[view]
            cam = (point.xyz - pose[:3, 3]) @ pose[:3, :3]
            uv = K[:2, :2] @ (cam[:2] / cam[2]) + K[:2, 2]
            np.testing.assert_allclose(xy - 0.5, uv, atol=1e-3)  # COLMAP: corner at 0
            col, row = np.floor(uv + 0.5).astype(int)
            truth = scene.depths[view][row, col]  # the true surface there is the point's
            assert truth > 0 and abs(truth - cam[2]) <= 0.021 * cam[2], (view, truth, cam)
            checked += 1
        views_per_point.append(len(views))
        assert len(set(views)) == len(views)
    assert checked > 600 and np.mean(views_per_point) > 1.5  # the orbit views overlap
    assert recon.compute_mean_reprojection_error() < 1e-3


def test_colmap_point_budget_keeps_real_points(scene, tmp_path):
    result = _truth_result(scene)
    summary = write_colmap(result, tmp_path, max_points=500)
    recon = _pycolmap().Reconstruction(str(summary.path))
    assert summary.points == recon.num_points3D() == 500
    assert summary.points_in_result == result.num_points
    from scipy.spatial import cKDTree
    dist, _ = cKDTree(result.points).query(np.array([p.xyz for p in recon.points3D.values()]))
    assert dist.max() < 1e-6
    # written again: the directory is replaced whole, nothing stale, no temporary left
    write_colmap(result, tmp_path, max_points=200)
    assert _pycolmap().Reconstruction(str(summary.path)).num_points3D() == 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ['colmap']
    # a COLMAP project of the user's (a database, sparse/...) is never replaced
    (summary.path / 'database.db').write_bytes(b'users data')
    with pytest.raises(ExportError, match='holds more than a COLMAP model'):
        write_colmap(result, tmp_path, max_points=100)
    assert (summary.path / 'database.db').read_bytes() == b'users data'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['colmap']


def test_transforms_json_has_nerfstudios_documented_fields(scene, exported):
    _, out, _ = exported
    doc = json.loads((out / 'transforms.json').read_text())
    K = scene.K
    assert doc['camera_model'] in NERFSTUDIO_CAMERA_MODELS
    assert (doc['w'], doc['h']) == scene.size
    assert doc['fl_x'] == K[0, 0] and doc['fl_y'] == K[1, 1]
    assert doc['cx'] == K[0, 2] + 0.5 and doc['cy'] == K[1, 2] + 0.5
    assert all(doc[k] == 0.0 for k in ('k1', 'k2', 'p1', 'p2'))
    assert doc['ply_file_path'] == 'cloud.ply' and (out / 'cloud.ply').is_file()
    assert doc['aetherscan']['units'] == 'metres'
    assert len(doc['frames']) == VIEWS
    for v, frame in enumerate(doc['frames']):
        image = cv2.cvtColor(cv2.imread(str(out / frame['file_path'])), cv2.COLOR_BGR2RGB)
        assert np.array_equal(image, scene.images[v])  # the view's own pixels, lossless
        matrix = np.array(frame['transform_matrix'])
        assert matrix.shape == (4, 4) and np.allclose(matrix[3], [0, 0, 0, 1])
        assert frame['colmap_im_id'] == v + 1


def test_transforms_follow_nerfstudios_camera_convention(scene, exported):
    """Cast nerfstudio's ray of pixel (col, row) and meet the surface point seen there."""
    _, out, _ = exported
    doc = json.loads((out / 'transforms.json').read_text())
    rng = np.random.default_rng(1)
    for v, frame in enumerate(doc['frames']):
        c2w = np.array(frame['transform_matrix'])
        rows, cols = np.nonzero(scene.depths[v] > 0)
        for i in rng.choice(len(rows), 20, replace=False):
            row, col = rows[i], cols[i]
            # nerfstudio: coordinates of pixel centres are index + 0.5; camera looks down -Z
            direction = np.array([(col + 0.5 - doc['cx']) / doc['fl_x'],
                                  -(row + 0.5 - doc['cy']) / doc['fl_y'], -1.0])
            depth = scene.depths[v][row, col]  # z-depth along the optical axis
            hit = c2w[:3, :3] @ (direction * depth) + c2w[:3, 3]
            cam = np.linalg.inv(scene.poses_c2w[v]) @ np.append(hit, 1.0)
            np.testing.assert_allclose(cam[:3], depth * np.linalg.inv(scene.K) @ [col, row, 1],
                                       atol=1e-9)


def test_depth_export_writes_float_tiff_per_view(scene, exported):
    _, out, _ = exported
    for v in range(VIEWS):
        depth = cv2.imread(str(out / 'depth' / f'view_{v:04d}.tiff'), cv2.IMREAD_UNCHANGED)
        assert depth.dtype == np.float32 and depth.shape == scene.depths[v].shape
        seen = scene.depths[v] > 0
        np.testing.assert_allclose(depth[seen], scene.depths[v][seen], rtol=1e-5)
        assert np.all(np.isnan(depth[~seen]))


def test_unregistered_views_and_per_view_cameras(scene, tmp_path):
    poses = scene.poses_c2w.copy()
    poses[1] = np.nan  # not registered: no image, no frame, no points
    Ks = np.stack([scene.K] * VIEWS)
    Ks[2, 0, 0] *= 1.1  # another camera
    result = _truth_result(scene, poses, Ks)
    write_exports(result, tmp_path, ['colmap', 'nerfstudio'], list(scene.images))
    doc = json.loads((tmp_path / 'transforms.json').read_text())
    assert 'fl_x' not in doc and 'ply_file_path' not in doc  # no cloud.ply written here
    assert [f['file_path'] for f in doc['frames']] == ['images/view_0000.png',
                                                       'images/view_0002.png']
    assert doc['frames'][1]['fl_x'] == pytest.approx(scene.K[0, 0] * 1.1)
    assert sorted(p.name for p in (tmp_path / 'images').iterdir()) == [
        'view_0000.png', 'view_0002.png']
    recon = _pycolmap().Reconstruction(str(tmp_path / 'colmap'))
    assert sorted(recon.images) == [1, 3] and recon.num_cameras() == 2


def test_bad_requests_are_refused_with_the_reason(scene, tmp_path):
    result = _truth_result(scene)
    with pytest.raises(ExportError, match="unknown export 'ply'"):
        parse_exports(['colmap,ply'])
    assert parse_exports(['colmap, nerfstudio', 'colmap', '']) == ('colmap', 'nerfstudio')
    with pytest.raises(ExportError, match='nerfstudio export needs the images'):
        write_exports(result, tmp_path, ['nerfstudio'])
    small = [img[:10] for img in scene.images]
    with pytest.raises(ExportError, match='view 0 is uint8'):
        write_exports(result, tmp_path, ['colmap'], small)
    none = _truth_result(scene, np.full((VIEWS, 4, 4), np.nan))
    with pytest.raises(ExportError, match='no view has a pose'):
        transforms_document(none)
    skewed = np.stack([scene.K] * VIEWS)
    skewed[0, 0, 1] = 2.0
    with pytest.raises(ExportError, match='view 0 has a skewed K'):
        write_colmap(_truth_result(scene, Ks=skewed), tmp_path)
    assert not (tmp_path / 'colmap').exists() and not (tmp_path / 'transforms.json').exists()


def test_cli_export_writes_colmap_and_transforms_beside_the_cloud(scene, tmp_path):
    from aetherscan_ros.cli.app import main
    from aetherscan_ros.demo.scene import write_scene
    from aetherscan_ros.files.results import load_result
    frames_dir = write_scene(scene, tmp_path / 'scene').parent
    assert main(['reconstruct', str(frames_dir), '-o', str(tmp_path / 'bad'),
                 '--export', 'colmap,nerf']) == 2
    K = scene.K
    out = tmp_path / 'out'
    code = main(['reconstruct', str(frames_dir), '-o', str(out), '--backend', 'classical',
                 '--no-preview', '--intrinsics', f'{K[0, 0]},{K[1, 1]},{K[0, 2]},{K[1, 2]}',
                 '--export', 'colmap', '--export', 'nerfstudio'])
    if code == 1:
        pytest.skip('the classical backend could not reconstruct the tiny scene')
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        'cloud.ply', 'colmap', 'images', 'poses.json', 'transforms.json']
    result, _ = load_result(out)
    recon = _pycolmap().Reconstruction(str(out / 'colmap'))
    registered = [v for v in range(result.num_views) if np.isfinite(result.poses_c2w[v]).all()]
    assert sorted(recon.images) == [v + 1 for v in registered]
    for v in registered:
        np.testing.assert_allclose(recon.images[v + 1].cam_from_world().matrix(),
                                   np.linalg.inv(result.poses_c2w[v])[:3], atol=1e-6)
    doc = json.loads((out / 'transforms.json').read_text())
    assert len(doc['frames']) == len(registered) and doc['ply_file_path'] == 'cloud.ply'
    assert all((out / f['file_path']).is_file() for f in doc['frames'])
    assert Path(out / 'images' / 'view_0000.png').is_file()
