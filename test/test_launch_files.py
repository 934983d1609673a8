"""ament_python packaging, launch files and parameter files, checked without ROS (by parsing them)."""
from __future__ import annotations

import ast
import configparser
import importlib.util
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from semcomp_ros.params import NODE_PARAMS

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch"
PACKAGE = "semcomp_ros"


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Calls of ``name`` (``name(...)`` or ``x.name(...)``)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Name) and f.id == name) or (isinstance(f, ast.Attribute) and f.attr == name):
                out.append(node)
    return out


def kwarg(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def const(node: ast.AST | None, tree: ast.Module) -> object:
    """Literal value of a node; module-level constants (``PACKAGE = ...``) are resolved."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and any(getattr(t, "id", None) == node.id for t in stmt.targets):
                return const(stmt.value, tree)
    return None


def dict_keys(node: ast.AST, tree: ast.Module) -> set[str]:
    """String keys of every dict literal inside ``node``, following names assigned a dict literal."""
    keys: set[str] = set()
    assigned = {t.id: a.value for a in ast.walk(tree) if isinstance(a, ast.Assign)
                for t in a.targets if isinstance(t, ast.Name) and isinstance(a.value, ast.Dict)}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Dict):
            keys |= {k.value for k in sub.keys if isinstance(k, ast.Constant)}
        elif isinstance(sub, ast.Name) and sub.id in assigned:
            keys |= dict_keys(assigned[sub.id], tree)
    return keys


def console_scripts() -> dict[str, str]:
    tree = parse(REPO / "setup.py")
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and k.value == "console_scripts":
                    return dict(tuple(p.strip() for p in e.value.split("=")) for e in v.elts)
    raise AssertionError("no console_scripts in setup.py")


def load_yaml(path: Path) -> dict:
    try:
        import yaml
        return yaml.safe_load(path.read_text())
    except ImportError:
        ruamel = pytest.importorskip("ruamel.yaml", reason="needs PyYAML or ruamel.yaml")
        return ruamel.YAML(typ="safe").load(path.read_text())


@pytest.fixture(scope="module")
def config() -> dict:
    return load_yaml(REPO / "config" / "semcomp.yaml")


# -- console scripts --------------------------------------------------------------------------
def test_console_scripts_point_at_main_functions():
    scripts = console_scripts()
    assert scripts["semcomp"] == "semcomp_core.cli.main:main"
    for node in ("encoder_node", "decoder_node", "benchmark_node"):
        module, func = scripts[node].split(":")
        assert module == f"{PACKAGE}.{node}" and func == "main"
        tree = parse(REPO / (module.replace(".", "/") + ".py"))
        mains = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "main"]
        assert mains and [a.arg for a in mains[0].args.args] == ["args"]


# -- launch files -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["pipeline.launch.py", "replay_benchmark.launch.py"])
def test_launch_file_structure(name):
    tree = parse(LAUNCH / name)
    assert any(isinstance(f, ast.FunctionDef) and f.name == "generate_launch_description" for f in tree.body)
    declared = calls(tree, "DeclareLaunchArgument")
    assert declared
    for call in declared:
        desc = const(kwarg(call, "description"), tree)
        assert isinstance(desc, str) and len(desc) > 10, ast.dump(call)[:120]
    # ROS modules are imported by the launch file itself, which only ROS runs
    top = {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
    assert {"launch"} <= top


def declared_arguments(tree) -> dict[str, ast.Call]:
    return {const(c.args[0], tree): c for c in calls(tree, "DeclareLaunchArgument")}


def test_pipeline_launch_arguments():
    tree = parse(LAUNCH / "pipeline.launch.py")
    args = declared_arguments(tree)
    assert {"camera_topic", "codec", "quality", "device", "params_file", "start_decoder",
            "start_benchmark"} <= set(args)
    assert const(kwarg(args["camera_topic"], "default_value"), tree) == ""  # empty: the file's topics
    assert const(kwarg(args["start_decoder"], "default_value"), tree) == "true"
    # params_file defaults to the installed config/semcomp.yaml
    source = (LAUNCH / "pipeline.launch.py").read_text()
    assert "get_package_share_directory(PACKAGE), 'config', 'semcomp.yaml'" in source
    assert calls(tree, "OpaqueFunction")


def test_pipeline_nodes_exist_and_pass_known_parameters(config):
    tree = parse(LAUNCH / "pipeline.launch.py")
    scripts = console_scripts()
    nodes = calls(tree, "Node")
    assert {const(kwarg(n, "executable"), tree) for n in nodes} == {"encoder_node", "decoder_node", "benchmark_node"}
    for node in nodes:
        executable = const(kwarg(node, "executable"), tree)
        assert const(kwarg(node, "package"), tree) == PACKAGE
        assert executable in scripts
        name = const(kwarg(node, "name"), tree)
        assert f"/{name}" in config, f"config/semcomp.yaml has no /{name}: section"
        passed = dict_keys(kwarg(node, "parameters"), tree)
        known = {s.name for s in NODE_PARAMS[name]}
        assert passed and passed <= known, passed - known
        assert passed <= set(config[f"/{name}"]["ros__parameters"])


def test_replay_launch_plays_bag_and_includes_pipeline_with_benchmark():
    tree = parse(LAUNCH / "replay_benchmark.launch.py")
    (play,) = calls(tree, "ExecuteProcess")
    cmd = kwarg(play, "cmd")
    assert isinstance(cmd, ast.Name)  # built in _player: ['ros2', 'bag', 'play', bag, '--rate', rate]
    source = (LAUNCH / "replay_benchmark.launch.py").read_text()
    assert "['ros2', 'bag', 'play', arg('bag'), '--rate', arg('rate')]" in source
    assert "'--remap'" in source
    args = declared_arguments(tree)
    assert {"bag", "rate", "codec", "quality", "device", "params_file"} <= set(args)
    assert kwarg(args["bag"], "default_value") is None  # required
    # every argument handed to pipeline.launch.py is declared there
    pipeline_args = set(declared_arguments(parse(LAUNCH / "pipeline.launch.py")))
    (include,) = calls(tree, "IncludeLaunchDescription")
    passed_names = next(a for a in ast.walk(tree)
                        if isinstance(a, ast.Assign) and getattr(a.targets[0], "id", None) == "passed")
    handed = {e.value for e in passed_names.value.elts}
    handed |= {k.arg for c in calls(include, "dict") for k in c.keywords}
    assert "start_benchmark" in handed and handed <= pipeline_args, handed - pipeline_args
    assert "get_package_share_directory(PACKAGE), 'launch', 'pipeline.launch.py')" in source
    assert "PythonLaunchDescriptionSource(pipeline)" in ast.unparse(include)


# -- parameter file -----------------------------------------------------------------------------
def test_config_matches_declared_parameters(config):
    assert set(config) == {f"/{n}" for n in NODE_PARAMS}
    for node, specs in NODE_PARAMS.items():
        values = config[f"/{node}"]["ros__parameters"]
        assert set(values) == {s.name for s in specs}, node
        for spec in specs:
            assert spec.validate(values[spec.name]) == values[spec.name], (node, spec.name)
            assert type(values[spec.name]) is type(spec.default), (node, spec.name)
            assert len(spec.full_description()) > 20


def test_parameter_specs_reject_bad_values():
    enc = {s.name: s for s in NODE_PARAMS["encoder_node"]}
    with pytest.raises(ValueError, match="outside -1..100"):
        enc["quality"].validate(101)
    with pytest.raises(ValueError, match="not one of"):
        enc["codec"].validate("mp3")
    with pytest.raises(ValueError, match="does not match"):
        enc["device"].validate("gpu")
    with pytest.raises(ValueError, match="must be of type int"):
        enc["quality"].validate("high")
    assert "jpeg" in enc["codec"].full_description()
    assert "quality 1..95" in enc["quality"].full_description()  # per-codec help filled in


# -- package.xml / setup.cfg / setup.py --------------------------------------------------------
def test_package_xml_follows_ament_python():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == PACKAGE
    assert root.find("export/build_type").text == "ament_python"
    execs = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "rcl_interfaces", "sensor_msgs", "std_msgs", "diagnostic_msgs", "launch", "launch_ros",
            "ament_index_python", "ros2bag"} <= execs
    tests = {e.text for e in root.findall("test_depend")}
    assert {"ament_copyright", "ament_flake8", "ament_pep257", "python3-pytest", "launch_testing",
            "launch_testing_ros"} <= tests


def test_setup_cfg_and_data_files():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    assert cfg["develop"]["script_dir"] == f"$base/lib/{PACKAGE}"
    assert cfg["install"]["install_scripts"] == f"$base/lib/{PACKAGE}"
    assert (REPO / "resource" / PACKAGE).is_file()
    setup = (REPO / "setup.py").read_text()
    for needle in ('"share/ament_index/resource_index/packages"', 'glob("launch/*.launch.py")',
                   'glob("config/*.yaml")'):
        assert needle in setup


def test_core_library_never_imports_ros():
    ros = {"rclpy", "launch", "launch_ros", "launch_testing", "sensor_msgs", "std_msgs", "diagnostic_msgs",
           "rcl_interfaces", "ament_index_python"}
    for path in (REPO / "semcomp_core").rglob("*.py"):
        for node in ast.walk(parse(path)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for name in names:
                assert name.split(".")[0] not in ros, f"{path} imports {name}"


# -- launch files executed against stand-ins for launch / launch_ros ----------------------------------
class _Recorded(SimpleNamespace):
    """A launch action stand-in that keeps its arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__(args=args, **kwargs)


class _LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context[self.name]


@pytest.fixture
def launch_module(monkeypatch, tmp_path):
    """Load a launch file with minimal stand-ins for launch, launch_ros and ament_index_python."""
    def module(name, **attrs):
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, mod)
        return mod

    names = ["LaunchDescription", "DeclareLaunchArgument", "OpaqueFunction", "EmitEvent", "ExecuteProcess",
             "IncludeLaunchDescription", "RegisterEventHandler", "TimerAction", "OnProcessExit", "Shutdown",
             "PythonLaunchDescriptionSource", "Node"]
    stand = {n: type(n, (_Recorded,), {}) for n in names}
    module("launch", LaunchDescription=stand["LaunchDescription"])
    module("launch.actions", **{n: stand[n] for n in names[1:8]})
    module("launch.event_handlers", OnProcessExit=stand["OnProcessExit"])
    module("launch.events", Shutdown=stand["Shutdown"])
    module("launch.launch_description_sources", PythonLaunchDescriptionSource=stand["PythonLaunchDescriptionSource"])
    module("launch.substitutions", LaunchConfiguration=_LaunchConfiguration)
    module("launch_ros")
    module("launch_ros.actions", Node=stand["Node"])
    module("ament_index_python")
    module("ament_index_python.packages", get_package_share_directory=lambda pkg: str(tmp_path / pkg))

    def load(name):
        spec = importlib.util.spec_from_file_location(name.replace(".", "_"), LAUNCH / name)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load


def _defaults(mod) -> dict:
    """The launch arguments with their default values, as generate_launch_description declares them."""
    desc = mod.generate_launch_description()
    (entities,) = desc.args
    return {a.args[0]: getattr(a, "default_value", None) for a in entities if type(a).__name__ == "DeclareLaunchArgument"}


def _node_params(nodes) -> dict:
    """{node name: (params file, overrides dict)}."""
    return {n.name: (n.parameters[0], n.parameters[1]) for n in nodes}


def test_pipeline_launch_empty_camera_topic_keeps_the_params_file_topics(launch_module):
    mod = launch_module("pipeline.launch.py")
    context = dict(_defaults(mod), params_file="/my/params.yaml", start_benchmark="true")
    nodes = _node_params(mod._nodes(context))
    assert set(nodes) == {"encoder_node", "decoder_node", "benchmark_node"}
    for name, (params_file, overrides) in nodes.items():
        assert params_file == "/my/params.yaml"
        # nothing given on the command line: no override at all, every value from the file
        assert overrides == {}, (name, overrides)


def test_pipeline_launch_camera_topic_and_arguments_override(launch_module):
    mod = launch_module("pipeline.launch.py")
    context = dict(_defaults(mod), camera_topic="/cam/front/", codec="bpg:q=45", quality="40",
                   start_benchmark="true", stamp_latency="false", decoder_options="decoder=/m/gan",
                   segmenter="eval", gop="15", kbps="12")
    nodes = _node_params(mod._nodes(context))
    assert nodes["encoder_node"][1] == {"input_topic": "/cam/front", "codec": "bpg:q=45", "quality": 40,
                                        "gop": 15, "kbps": 12.0}
    assert nodes["decoder_node"][1] == {"input_topic": "/cam/front/semcomp", "decoder_options": "decoder=/m/gan"}
    assert nodes["benchmark_node"][1] == {"original_topic": "/cam/front", "segmenter": "eval",
                                          "stamp_latency": False}
    # and what is passed is declared by the node with the right type
    for name, (_, overrides) in nodes.items():
        specs = {s.name: s for s in NODE_PARAMS[name]}
        for key, value in overrides.items():
            assert specs[key].validate(value) == value, (name, key)


def test_pipeline_launch_switches(launch_module):
    mod = launch_module("pipeline.launch.py")
    context = dict(_defaults(mod), start_decoder="false")
    assert [n.name for n in mod._nodes(context)] == ["encoder_node"]


def test_replay_launch_turns_stamp_latency_off_and_plays_without_clock(launch_module):
    mod = launch_module("replay_benchmark.launch.py")
    desc = mod.generate_launch_description()
    (entities,) = desc.args
    (include,) = [e for e in entities if type(e).__name__ == "IncludeLaunchDescription"]
    handed = dict(include.launch_arguments)
    assert handed["stamp_latency"] == "false" and handed["start_benchmark"] == "true"
    context = dict(_defaults(mod), bag="/bags/street", bag_topic="/cam/raw")
    end, timer = mod._player(context)
    (play,) = timer.actions
    assert play.cmd == ["ros2", "bag", "play", "/bags/street", "--rate", "1.0", "--remap",
                        "/cam/raw:=/camera/image_raw"]
    assert "--clock" not in play.cmd  # wall time throughout; latency from receipt times
    # what replay hands to pipeline.launch.py reaches the benchmark node as a bool
    pipeline = launch_module("pipeline.launch.py")
    pctx = dict(_defaults(pipeline), camera_topic="/camera/image_raw", start_benchmark="true",
                stamp_latency=handed["stamp_latency"])
    bench = _node_params(pipeline._nodes(pctx))["benchmark_node"][1]
    assert bench["stamp_latency"] is False and bench["original_topic"] == "/camera/image_raw"
