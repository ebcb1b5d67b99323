"""The experiment YAML: pydantic models, variable substitution, ``foreach`` expansion and graph checks.

An experiment file::

    name: tiny
    vars: {size: 32, energy: 2}          # ${size} anywhere below; override with --set size=64
    steps:
      gt:   {kind: structure, params: {generator: lwm, shape: [${size}, ${size}, ${size}], voxel_nm: 5}}
      sml:  {kind: fast, inputs: {structure: gt}, params: {energy_kev: ${energy}}}
      mc_{E}kv:                          # one step per value: mc_1kv, mc_2kv
        kind: montecarlo
        foreach: {E: [1, 2]}
        inputs: {structure: gt}
        params: {energy_kev: ${E}, electrons_per_pixel: 10}

A string that is exactly ``${name}`` becomes the variable's value with its type; inside a longer string it is
interpolated. ``{name}`` in a step name is replaced by the ``foreach`` value. Every problem (unknown key, unknown
input, a cycle, a value out of range) is a one-line :class:`FibsynthError` naming the file, the step and the field.
"""

from __future__ import annotations

import graphlib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError

from fibsynth.config import StrictModel
from fibsynth.errors import FibsynthError

KINDS = ("structure", "montecarlo", "fast", "degrade", "adapt", "translate", "segment_train", "segment_predict",
         "baseline", "evaluate", "table", "demo_report")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class StepSpec(StrictModel):
    kind: Literal[KINDS]  # type: ignore[valid-type]
    inputs: dict[str, str | list[str]] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)


class ExperimentSpec(StrictModel):
    name: str = "experiment"
    description: str = ""
    workdir: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    steps: dict[str, StepSpec]


def _err(source, step: str | None, field: str, msg: str) -> FibsynthError:
    where = f"step '{step}': " if step else ""
    return FibsynthError(f"{where}{field}: {msg}", source)


def _validation_line(exc: ValidationError, prefix: str = "") -> tuple[str, str]:
    e = exc.errors()[0]
    loc = ".".join(str(p) for p in e.get("loc", ()))
    got = e.get("input")
    got_s = "" if isinstance(got, (dict, list)) or e.get("type") == "missing" else f" (got {got!r})"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return (prefix + loc).rstrip("."), f"{e.get('msg', 'invalid')}{got_s}{more}"


def substitute(obj: Any, variables: dict[str, Any], source=None, step: str | None = None) -> Any:
    """Replace ``${name}`` in every string of ``obj`` (recursively)."""
    if isinstance(obj, dict):
        return {substitute(k, variables, source, step): substitute(v, variables, source, step) for k, v in obj.items()}
    if isinstance(obj, list):
        return [substitute(v, variables, source, step) for v in obj]
    if isinstance(obj, str):
        def value(name: str) -> Any:
            if name not in variables:
                raise _err(source, step, f"${{{name}}}", f"unknown variable (known: {', '.join(sorted(variables)) or 'none'})")
            return variables[name]
        m = _VAR.fullmatch(obj)
        if m:
            return value(m.group(1))
        return _VAR.sub(lambda mm: str(value(mm.group(1))), obj)
    return obj


def parse_override(text: str, source=None) -> tuple[str, Any]:
    """``name=value`` (value parsed as YAML), a variable override; errors name the parameter ``set`` (the CLI's
    ``--set``)."""
    if "=" not in text:
        raise FibsynthError(f"{text!r}: expected NAME=VALUE", source, param="set")
    k, v = text.split("=", 1)
    try:
        return k.strip(), yaml.safe_load(v)
    except yaml.YAMLError:
        raise FibsynthError(f"{text!r}: value is not valid YAML", source, param="set") from None


def expand(raw: dict, source=None, overrides: dict[str, Any] | None = None) -> dict:
    """Substitute variables (with overrides) and expand ``foreach`` steps; returns the raw mapping to validate."""
    if not isinstance(raw, dict):
        raise FibsynthError("expected a mapping with 'steps'", source)
    variables = dict(raw.get("vars") or {})
    if not isinstance(variables, dict):
        raise _err(source, None, "vars", "expected a mapping")
    for k, v in (overrides or {}).items():
        if k not in variables:
            raise _err(source, None, f"--set {k}", f"not a variable of this experiment (vars: {', '.join(sorted(variables)) or 'none'})")
        variables[k] = v
    steps = raw.get("steps")
    if not isinstance(steps, dict) or not steps:
        raise _err(source, None, "steps", "expected a non-empty mapping of step names to steps")
    out_steps: dict[str, Any] = {}
    for name, body in steps.items():
        name = str(name)
        if not isinstance(body, dict):
            raise _err(source, name, "step", "expected a mapping with 'kind'")
        body = dict(body)
        foreach = substitute(body.pop("foreach", None), variables, source, name)
        if foreach is None:
            combos = [{}]
        else:
            if not isinstance(foreach, dict) or len(foreach) != 1 or not isinstance(next(iter(foreach.values())), list):
                raise _err(source, name, "foreach", "expected one variable with a list of values, e.g. {E: [1, 2, 4]}")
            (var, values), = foreach.items()
            if "{" + str(var) + "}" not in name:
                raise _err(source, name, "foreach", f"the step name must contain {{{var}}}")
            combos = [{var: v} for v in values]
        for combo in combos:
            local = {**variables, **combo}
            sname = name
            for k, v in combo.items():
                sname = sname.replace("{" + str(k) + "}", str(v))
            if not _NAME.match(sname):
                raise _err(source, sname, "name", "use letters, digits, '_', '-', '.' only")
            if sname in out_steps:
                raise _err(source, sname, "name", "defined twice")
            sub = substitute(body, local, source, sname)
            # step names inside inputs may also use the foreach variable as {E}
            if combo and "inputs" in sub:
                sub["inputs"] = _fmt_names(sub["inputs"], combo)
            out_steps[sname] = sub
    top = {k: v for k, v in raw.items() if k not in ("steps", "vars")}
    top = substitute(top, variables, source)
    return {**top, "vars": variables, "steps": out_steps}


def _fmt_names(obj: Any, combo: dict) -> Any:
    if isinstance(obj, dict):
        return {k: _fmt_names(v, combo) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fmt_names(v, combo) for v in obj]
    if isinstance(obj, str):
        for k, v in combo.items():
            obj = obj.replace("{" + str(k) + "}", str(v))
    return obj


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentSpec:
    """Read, expand and validate an experiment file (structure, step parameters, inputs, acyclic graph)."""
    from fibsynth.experiment.steps import STEP_KINDS

    path = Path(path)
    if not path.is_file():
        raise FibsynthError("file not found", path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise FibsynthError(f"is not a text (YAML) file: byte {exc.start} is not UTF-8", path) from None
    except yaml.YAMLError as exc:
        raise FibsynthError(f"not valid YAML ({str(exc).splitlines()[0]})", path) from None
    data = expand(raw, path, overrides)
    # validate each step on its own so that the error names it
    steps = {}
    for name, body in data["steps"].items():
        try:
            steps[name] = StepSpec(**body)
        except ValidationError as exc:
            field, msg = _validation_line(exc)
            raise _err(path, name, field, msg) from None
    try:
        spec = ExperimentSpec(**{**data, "steps": steps})
    except ValidationError as exc:
        field, msg = _validation_line(exc)
        raise _err(path, None, field, msg) from None
    for name, st in spec.steps.items():
        kind = STEP_KINDS[st.kind]
        try:
            kind.Params(**st.params)
        except ValidationError as exc:
            field, msg = _validation_line(exc, "params.")
            raise _err(path, name, field, msg) from None
        need = set(kind.required_inputs)
        allowed = need | set(kind.optional_inputs)
        for role in st.inputs:
            if role not in allowed:
                raise _err(path, name, f"inputs.{role}", f"unknown input for kind '{st.kind}' (allowed: {', '.join(sorted(allowed)) or 'none'})")
        for role in sorted(need - set(st.inputs)):
            raise _err(path, name, f"inputs.{role}", f"missing (kind '{st.kind}' needs: {', '.join(sorted(need))})")
        for role, ref in dependencies(st).items():
            for r in ref:
                if r not in spec.steps:
                    raise _err(path, name, role, f"unknown step '{r}'")
                if r == name:
                    raise _err(path, name, role, "a step cannot use its own output")
    order(spec, path)
    return spec


def dependencies(st: StepSpec) -> dict[str, list[str]]:
    """role -> step names this step reads (its inputs, and for tables the steps named in its cells)."""
    deps = {f"inputs.{k}": ([v] if isinstance(v, str) else list(v)) for k, v in st.inputs.items()}
    if st.kind == "table":
        cells = st.params.get("cells") or {}
        names = [s for row in cells.values() if isinstance(row, dict) for s in row.values() if isinstance(s, str)]
        deps["params.cells"] = names
    return deps


def order(spec: ExperimentSpec, source=None) -> list[str]:
    """Step names in an order where each comes after its inputs (ties in file order)."""
    ts = graphlib.TopologicalSorter()
    for name, st in spec.steps.items():
        ts.add(name, *[r for refs in dependencies(st).values() for r in refs])
    try:
        ts.prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        raise _err(source, cycle[0], "inputs", "cycle: " + " -> ".join(cycle)) from None
    pos = {n: i for i, n in enumerate(spec.steps)}
    out: list[str] = []
    while ts.is_active():
        ready = sorted(ts.get_ready(), key=pos.__getitem__)
        out.extend(ready)
        ts.done(*ready)
    return out
