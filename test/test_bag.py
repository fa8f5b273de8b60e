# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
rosbag2 in, without ROS: ``files/bag.py`` and ``aetherscan reconstruct --bag``.

Bags are written here with ``rosbags`` from a small demo scene (4 views of 320x240): both
storage formats (.db3, .mcap), raw Image (rgb8, bgr8, mono8) and CompressedImage (png, jpeg),
camera_info (pinhole and plumb_bob) and TF (``odom -> base_link`` on /tf, the camera mount on
/tf_static). A bag reconstructs to the result of the same images given as files, and
``--fixed-frame odom`` puts it in metres where the ground truth is.
"""

import json
import os
from pathlib import Path
import sys

import cv2
import numpy as np
import pytest

from aetherscan_ros.cli.app import main as aetherscan
from aetherscan_ros.core.undistortion import undistort_frame
from aetherscan_ros.demo.scene import make_scene, write_scene
from aetherscan_ros.files.bag import BagError, camera_info_topic, read_bag, resolve_bag
from aetherscan_ros.files.ply import read_ply

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bag_helpers import FRAME_ID, PERIOD_NS, STAMP0_NS, write_scene_bag  # noqa: E402,I100

VIEWS, WIDTH, HEIGHT = 4, 320, 240


@pytest.fixture(scope='module')
def scene():
    return make_scene(VIEWS, WIDTH, HEIGHT, seed=3)


@pytest.fixture(scope='module')
def bags(scene, tmp_path_factory):
    root = tmp_path_factory.mktemp('bags')
    return {
        'db3_raw': write_scene_bag(root / 'db3_raw', scene, 'sqlite3'),
        'mcap_png': write_scene_bag(root / 'mcap_png', scene, 'mcap', compressed='png'),
    }


def _run(capsys, *args):
    """Run ``aetherscan ARGS`` in this process; return ``(exit status, stdout, stderr)``."""
    code = aetherscan([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize('storage,compressed,encoding', [
    ('sqlite3', None, 'rgb8'), ('mcap', None, 'bgr8'), ('sqlite3', 'png', 'rgb8'),
    ('mcap', 'jpeg', 'rgb8'), ('mcap', None, 'mono8')])
def test_read_bag_images_camera_info_and_tf(scene, tmp_path, storage, compressed, encoding):
    bag = write_scene_bag(tmp_path / 'bag', scene, storage, compressed, encoding)
    contents = read_bag(bag)
    topic = '/cam/image_raw' + ('/compressed' if compressed else '')
    assert contents.topics == (topic,)
    assert [im.stamp_ns for im in contents.images] == \
        [STAMP0_NS + i * PERIOD_NS for i in range(VIEWS)]
    for i, im in enumerate(contents.images):
        assert im.topic == topic and im.frame_id == FRAME_ID
        assert im.image.shape == (HEIGHT, WIDTH, 3) and im.image.dtype == np.uint8
        expected = scene.images[i]
        if encoding == 'mono8':
            gray = cv2.cvtColor(expected, cv2.COLOR_RGB2GRAY)
            expected = np.repeat(gray[..., None], 3, 2)
        if compressed == 'jpeg':  # what the same JPEG decodes to
            ok, buf = cv2.imencode('.jpg', expected[..., ::-1].copy())
            expected = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
        assert np.array_equal(im.image, expected)
        np.testing.assert_allclose(im.camera_model.K_eff, scene.K)
        # the camera pose at the image stamp, through /tf and /tf_static, is the scene's pose
        pose = contents.tf.lookup('odom', FRAME_ID, im.stamp_ns)
        np.testing.assert_allclose(pose, scene.poses_c2w[i], atol=1e-9)
    assert im.name == f'{topic}@{im.stamp_ns / 1e9:.3f}'


def test_camera_info_topic_beside_the_image_topic():
    assert camera_info_topic('/cam/image_raw') == '/cam/camera_info'
    assert camera_info_topic('/robot/left/image_raw/compressed') == '/robot/left/camera_info'
    assert camera_info_topic('/image') == '/camera_info'


def test_selection_by_topic_time_and_stride(scene, tmp_path, bags):
    assert len(read_bag(bags['db3_raw'], stride=2).images) == 2
    # seconds from the bag start (receive time); the images arrive 0.2 s apart
    picked = read_bag(bags['db3_raw'], start_s=0.3, end_s=0.7).images
    assert [im.stamp_ns for im in picked] == [STAMP0_NS + 2 * PERIOD_NS, STAMP0_NS + 3 * PERIOD_NS]
    # two cameras in one bag: every image topic by default, or the ones named
    two = tmp_path / 'two'
    write_scene_bag(two, scene, 'mcap', topic='/left', tf=False)
    assert {im.topic for im in read_bag(two).images} == {'/left/image_raw'}
    assert resolve_bag(two / 'two.mcap') == two  # the storage file names its bag
    contents = read_bag(bags['db3_raw'], topics=['/cam/image_raw'])
    assert len(contents.images) == VIEWS


def test_errors_name_the_bag_topic_and_reason(scene, tmp_path, bags):
    bag = bags['db3_raw']
    with pytest.raises(BagError, match=r'no topic /nope in the bag \(image topics: '
                                       r'/cam/image_raw\)'):
        read_bag(bag, topics=['/nope'])
    with pytest.raises(BagError, match='topic /tf is tf2_msgs/msg/TFMessage, not an image'):
        read_bag(bag, topics=['/tf'])
    with pytest.raises(BagError, match=r'no images on /cam/image_raw between 5 s and the end'):
        read_bag(bag, start_s=5.0)
    with pytest.raises(BagError, match='no such bag'):
        read_bag(tmp_path / 'missing')
    (tmp_path / 'plain').mkdir()
    with pytest.raises(BagError, match='no metadata.yaml'):
        read_bag(tmp_path / 'plain')
    no_images = tmp_path / 'tf_only'
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import get_typestore, Stores
    store = get_typestore(Stores.ROS2_JAZZY)
    with Writer(no_images, version=9) as writer:
        conn = writer.add_connection('/tf', 'tf2_msgs/msg/TFMessage', typestore=store)
        msg = store.types['tf2_msgs/msg/TFMessage'](transforms=[])
        writer.write(conn, STAMP0_NS, store.serialize_cdr(msg, 'tf2_msgs/msg/TFMessage'))
    with pytest.raises(BagError, match='no image topics .* its topics: /tf'):
        read_bag(no_images)


def test_camera_info_of_another_size_is_refused(scene, tmp_path):
    from dataclasses import replace
    small = replace(scene, meta={**scene.meta, 'width': 160, 'height': 120})
    bag = tmp_path / 'bad_info'
    write_scene_bag(bag, small, 'sqlite3', compressed='png', tf=False)
    with pytest.raises(BagError, match=r'topic /cam/image_raw/compressed at stamp .*: '
                                       r'/cam/camera_info: camera_info is for 160x120 but '
                                       r'the image is 320x240'):
        read_bag(bag)


def test_distorted_images_are_undistorted_as_with_camera_info_files(scene, tmp_path):
    """A raw plumb_bob bag gives the frames `--camera-info` gives for the same files."""
    from aetherscan_ros.backends.base import Frame
    from aetherscan_ros.core.calibration_file import read_calibration_yaml
    from aetherscan_ros.demo.distortion import distorted_demo_scene
    raw, model = distorted_demo_scene(scene, 'plumb_bob')
    bag = write_scene_bag(tmp_path / 'raw', raw, 'mcap', compressed='png', model=model)
    files = write_scene(raw, tmp_path / 'files').parent
    from aetherscan_ros.core.calibration_file import write_calibration_yaml
    yaml_path = write_calibration_yaml(model, tmp_path / 'cam.yaml')
    from_file = read_calibration_yaml(yaml_path)
    contents = read_bag(bag)
    assert contents.images[0].camera_model.distortion_model == 'plumb_bob'
    for i, im in enumerate(contents.images):
        a = undistort_frame(Frame(im.image, camera_model=im.camera_model))
        rgb = cv2.imread(str(files / raw.names[i]))[..., ::-1]
        b = undistort_frame(Frame(rgb, camera_model=from_file))
        assert np.array_equal(a.image, b.image)
        np.testing.assert_allclose(a.K, b.K, rtol=1e-6)


def _centres(poses_json: Path) -> np.ndarray:
    views = json.loads(poses_json.read_text())['views']
    return np.array([np.array(v['camera_to_world'])[:3, 3] for v in views])


def test_cli_bag_reconstructs_like_the_image_files(scene, tmp_path, bags, capsys):
    from aetherscan_ros.core.calibration_file import write_calibration_yaml
    from aetherscan_ros.core.camera_model import CameraModel
    files = write_scene(scene, tmp_path / 'files').parent
    calib = write_calibration_yaml(CameraModel.pinhole(scene.K, WIDTH, HEIGHT),
                                   tmp_path / 'cam.yaml')
    code, out_f, err = _run(capsys, 'reconstruct', files, '-o', tmp_path / 'from_files',
                            '--backend', 'classical', '--camera-info', calib, '--no-preview')
    assert code == 0, err
    code, out_b, err = _run(capsys, 'reconstruct', '--bag', bags['mcap_png'], '-o',
                            tmp_path / 'from_bag', '--backend', 'classical', '--no-preview')
    assert code == 0, err
    assert '4 images from /cam/image_raw/compressed (camera_info, TF)' in err
    assert 'known (camera_info (bag)), fixed' in out_b
    # same views, same cameras: the same poses and (COLMAP's threads aside) the same cloud
    doc = json.loads((tmp_path / 'from_bag' / 'poses.json').read_text())
    assert [v['file'] for v in doc['views']] == \
        [f'/cam/image_raw/compressed@{(STAMP0_NS + i * PERIOD_NS) / 1e9:.3f}'
         for i in range(VIEWS)]
    np.testing.assert_allclose(np.array(doc['views'][1]['K']), scene.K)
    c_bag = _centres(tmp_path / 'from_bag' / 'poses.json')
    c_files = _centres(tmp_path / 'from_files' / 'poses.json')
    np.testing.assert_allclose(c_bag, c_files, atol=0.01 * np.abs(c_files).max())
    n_bag = read_ply(tmp_path / 'from_bag' / 'cloud.ply').num_points
    n_files = read_ply(tmp_path / 'from_files' / 'cloud.ply').num_points
    assert abs(n_bag - n_files) <= 0.01 * n_files


def test_cli_fixed_frame_anchors_in_metres(scene, tmp_path, bags, capsys):
    code, out, err = _run(capsys, 'reconstruct', '--bag', bags['db3_raw'], '-o', tmp_path / 'a',
                          '--backend', 'classical', '--no-preview', '--fixed-frame', 'odom')
    assert code == 0, err
    doc = json.loads((tmp_path / 'a' / 'poses.json').read_text())
    assert doc['frame'] == 'odom' and doc['info']['anchor']['ok'] is True
    # camera centres land on the ground truth (the TF the bag carries), in metres
    centres = _centres(tmp_path / 'a' / 'poses.json')
    np.testing.assert_allclose(centres, scene.poses_c2w[:, :3, 3], atol=0.02)
    # a frame the TF does not know, or no TF at all: exit 2 before any work
    code, _, err = _run(capsys, 'reconstruct', '--bag', bags['db3_raw'], '-o', tmp_path / 'b',
                        '--fixed-frame', 'map')
    assert code == 2
    assert "--fixed-frame map is not a frame of the bag's TF (frames: base_link, cam_optical, " \
        'odom)' in _error_line(err)


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_cli_truncated_bag_exits_2_with_one_line(scene, tmp_path, bags, capsys, storage):
    bag = write_scene_bag(tmp_path / 'cut', scene, storage, compressed='png')
    data = next(p for p in bag.iterdir() if p.suffix in ('.db3', '.mcap'))
    os.truncate(data, data.stat().st_size // 2)
    code, out, err = _run(capsys, 'reconstruct', '--bag', bag, '-o', tmp_path / 'o')
    assert code == 2 and not out
    line = _error_line(err)
    assert line.startswith(f'aetherscan reconstruct: error: --bag {bag}: cannot ')
    assert '(corrupt or truncated?)' in line


def test_cli_bag_argument_errors(tmp_path, bags, capsys):
    cases = [
        (['--bag', bags['db3_raw'], '--topics', '/cam/image'],
         'no topic /cam/image in the bag (image topics: /cam/image_raw)'),
        (['--bag', bags['db3_raw'], '--end', '0.1', '--start', '0.5'],
         'end 0.1 s is not after start 0.5 s'),
        (['--bag', bags['db3_raw'], '--stride', '0'], '--stride 0: must be >= 1'),
        (['--bag', bags['db3_raw'], str(bags['mcap_png'])], 'give image files or --bag'),
        (['--fixed-frame', 'odom', str(bags['mcap_png'])], '--fixed-frame needs --bag'),
        (['--bag', bags['db3_raw'], '--start', '0.75'],
         'no images on /cam/image_raw between 0.75 s and the end'),
    ]
    for args, message in cases:
        code, out, err = _run(capsys, 'reconstruct', *args, '-o', tmp_path / 'o')
        assert code == 2, (args, err)
        assert message in _error_line(err), (args, err)
    assert not (tmp_path / 'o').exists()


def test_ros_verbs_parse_without_loading_ros():
    """`aetherscan play/call/events --help` and `reconstruct --bag` never import rclpy."""
    import subprocess
    code = ('import sys\nfrom aetherscan_ros.cli.app import main\n'
            'for verb in ("play", "call", "events", "reconstruct"):\n'
            '    try:\n        main([verb, "--help"])\n    except SystemExit:\n        pass\n'
            'print("ROS", sorted(m for m in sys.modules if m.split(".")[0] in '
            '("rclpy", "sensor_msgs", "std_srvs", "rosgraph_msgs")))\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=60)
    assert 'ROS []' in proc.stdout, proc.stdout + proc.stderr
    for flag in ('--clock', '--timeout', '--follow'):  # play, call, events
        assert flag in proc.stdout
