"""semcomp: semantic image compression for robots and vehicles.

Installs two Python packages:

* ``semcomp_core`` -- the ROS-free library (bitstream, layers, codecs, metrics,
  datasets, benchmark, CLI ``semcomp``);
* ``semcomp_ros`` -- thin rclpy nodes (ament_python package ``semcomp_ros``).

``pip install .`` works outside ROS; ``colcon build`` installs the ament index
marker, ``package.xml``, launch and config files as an ament_python package.
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "semcomp_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Semantic image compression for robots and vehicles (ROS 2 package + library)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["semcomp_core", "semcomp_core.*", "semcomp_ros", "semcomp_ros.*"]),
    package_data={"semcomp_core": ["data/*", "data/*/*", "data/*/*/*"]},
    include_package_data=True,
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=[
        "numpy>=1.24",
        "pillow>=10",
        "pillow-heif>=0.16",
        "constriction>=0.4",
        "safetensors>=0.4",
        "torch>=2.1",
        "pytorch-msssim>=1.0",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "rosbags>=0.10",
        "opencv-python-headless>=4.8",
        "cityscapesscripts>=2.2",
        "av>=12",
        # the diffusion renderer and the CLIP layer (issue 14)
        "diffusers>=0.30",
        "accelerate>=0.30",
        "open_clip_torch>=2.24",
    ],
    extras_require={
        "dev": ["pytest>=7", "hypothesis>=6", "pyoxipng>=9"],
        "export": ["onnx>=1.15", "onnxruntime>=1.17"],
        # a real rclpy for the node tests without a ROS installation: ROS 2 Kilted wheels from PyPI
        # (Fast DDS; manylinux x86_64). In a sourced ROS workspace the distribution's rclpy is used.
        "ros": [f"{pkg}; sys_platform == 'linux' and platform_machine == 'x86_64'" for pkg in (
            "ros-rclpy~=9.1.2", "ros-sensor-msgs~=5.5.1", "ros-diagnostic-msgs~=5.5.1",
            "ros-rmw-fastrtps-cpp~=9.3.3")],
    },
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "semcomp = semcomp_core.cli.main:main",
            "encoder_node = semcomp_ros.encoder_node:main",
            "decoder_node = semcomp_ros.decoder_node:main",
            "benchmark_node = semcomp_ros.benchmark_node:main",
        ],
    },
)
