# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Install aetherscan_ros the ament_python way (colcon) or with pip (make setup)."""

from glob import glob
import os

from setuptools import Extension, find_packages, setup

package_name = 'aetherscan_ros'

# The fused PointCloud2 packer (aetherscan_ros/cloud/_cloudpack.c, buffer protocol only).
# Optional: without a C compiler or Python headers the build goes on and aetherscan_ros.cloud
# packs with numpy (same bytes, slower); `aetherscan doctor` says which packer is in use.
cloudpack = Extension(
    package_name + '.cloud._cloudpack', sources=[package_name + '/cloud/_cloudpack.c'],
    optional=True, extra_compile_args=[] if os.name == 'nt' else ['-O3', '-std=c99'])

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'bench', 'bench.*']),
    package_data={package_name: ['py.typed']},
    ext_modules=[cloudpack],
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        (os.path.join('share', package_name, 'launch'), glob('launch/*.launch.py')),
        (os.path.join('share', package_name, 'config'),
         [f for f in glob('config/*') if os.path.isfile(f)]),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='AetherScan ROS maintainers',
    maintainer_email='aetherscan@example.com',
    description='Multi-view 3D reconstruction (Fast3R or classical) as a ROS 2 node.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'aetherscan_node = aetherscan_ros.node:main',
            'aetherscan_lifecycle_node = aetherscan_ros.node:lifecycle_main',
            'aetherscan = aetherscan_ros.cli:main',
        ],
    },
)
