"""semcomp_core must never import ROS: checked statically and by importing every module."""
import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import semcomp_core

ROS_MODULES = {"rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "builtin_interfaces", "launch",
               "launch_ros", "launch_testing", "rosidl_runtime_py", "ament_index_python", "rcl_interfaces",
               "message_filters", "cv_bridge", "image_transport"}
CORE = Path(semcomp_core.__file__).parent


def test_no_ros_import_statements():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path}:{node.lineno} {n}" for n in names if n.split(".")[0] in ROS_MODULES]
    assert not offenders


def test_importing_every_module_loads_no_ros():
    mods = [m.name for m in pkgutil.walk_packages([str(CORE)], "semcomp_core.")
            if not m.name.endswith("__main__")]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in mods) +
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(ROS_MODULES)!r})\n"
            "print(len(sys.modules)); assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(mods) > 20
