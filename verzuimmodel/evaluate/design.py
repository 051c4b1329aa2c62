"""A design: data model, estimands and estimators, composed (in the spirit of DeclareDesign).

::

    design = vm.Design(scenario=vm.Scenario.default(), estimators=["vo_nb_glmm", "vo_did"])
    design.target_of("vo_did")       # "po_approach_vo_rate_ratio_exposed": each estimator its own target
    trial = vm.evaluate.SteppedWedgeTrial(n_clusters=12, n_periods=5, cluster_period_size=20, icc=0.05, effect=0.3)
    design = vm.Design(trial, ["lmm", "cluster_means"])          # both target "effect"
    design = vm.Design(vm.Scenario.default(), ["vo_did"],        # forced: one key for every estimator
                       estimand="po_approach_vo_rate_ratio")     #   (here the ATT estimator against the ATE)
    design = vm.Design.from_toml("design.toml"); design.to_toml("copy.toml")

Each registered estimator declares the estimand it targets (a
:class:`~verzuimmodel.effects.Target`: truth key, ATE or ATT, marginal or conditional, intention
to treat or per protocol). By default a design scores every estimator against its own target, so
estimators of different estimands (``vo_nb_glmm`` of the ATE and ``vo_did`` of the ATT, say) can
be diagnosed together on the same replicates. ``estimand="key"`` forces one truth key for every
estimator: for comparing an estimator with a quantity it does not target, on purpose (a
conditional estimator with a marginal truth, the ATT estimator with the ATE).

A design file (TOML)::

    name = "stepped wedge, 12 schools"
    estimators = ["cluster_means", "gee"]
    estimand = "effect"            # optional: force one truth key; by default each estimator's own
    alpha = 0.05                   # optional: test level; intervals are 1 - alpha

    [trial]                        # a trial generator ...
    type = "stepped_wedge"         # or "parallel"
    n_clusters = 12
    n_periods = 5
    cluster_period_size = 20
    icc = 0.05
    effect = 0.3

or ``scenario = "default"`` (a shipped scenario, or a path to a scenario file relative to the
design file) or an inline ``[scenario]`` table (keys as in a scenario file) instead of ``[trial]``.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from ..effects.registry import Estimator, get
from ..simulate import Scenario, simulate
from .trials import TRIAL_ESTIMATOR_OUTCOMES, TRIAL_TYPES

__all__ = ["Design", "true_value"]

_DESIGN_KEYS = ("name", "estimators", "estimand", "alpha", "scenario", "trial")


@dataclass(frozen=True)
class Design:
    """A design to diagnose: a data model and estimators, each scored against its estimand.

    Parameters
    ----------
    scenario : Scenario, ParallelTrial, SteppedWedgeTrial or any data model
        The data model: a :class:`~verzuimmodel.Scenario` (replicates are
        ``vm.simulate(scenario, seed)`` cohorts) or a trial generator (replicates are
        ``scenario.simulate(seed)``). Any object with ``simulate(seed)`` returning something with
        a ``truth`` dict works (its estimators must accept what it returns).
    estimators : sequence of str
        Names of registered estimators (:func:`verzuimmodel.effects.available`) for this kind of
        data (``"cohort"`` for a Scenario, ``"trial"`` otherwise).
    estimand : str, optional
        ``None`` (default): every estimator is scored against its own declared target
        (``vm.effects.get(name).target.key``); the estimators may target different estimands.
        A key of each replicate's ``truth`` (dotted for nested entries, e.g.
        ``"intervention_hr.kernpartnerteam"``) forces that one truth for every estimator: for
        comparing an estimator with a quantity it does not target, on purpose (e.g. a conditional
        estimator with a marginal truth). ``design.estimand`` is what was given (``None`` unless
        forced); :meth:`target_of` and :attr:`targets` give the key each estimator is scored against.
    alpha : float
        Level of the tests (power, type S); intervals have level ``1 - alpha``.
    name : str
        A label for tables and plots.

    Raises
    ------
    ValueError
        Unknown estimators, estimators for another kind of data or outcome, or (for a trial, whose
        truth is known in advance) an estimand the trial does not have: the forced one, or an
        estimator's own target.
    """

    scenario: Any
    estimators: tuple[str, ...]
    estimand: str | None = None
    alpha: float = 0.05
    name: str = "design"

    def __post_init__(self):
        est = self.estimators
        if isinstance(est, str):
            est = (est,)
        if not isinstance(est, (list, tuple)) or not all(isinstance(e, str) for e in est):
            raise ValueError(f"design estimators: expected a list of estimator names, got {self.estimators!r}")
        est = tuple(est)
        if not est:
            raise ValueError("design estimators: expected at least one estimator name")
        if len(set(est)) != len(est):
            raise ValueError(f"design estimators: names must be unique, got {list(est)}")
        object.__setattr__(self, "estimators", est)
        if not (isinstance(self.scenario, Scenario) or callable(getattr(self.scenario, "simulate", None))):
            raise ValueError(f"design scenario: expected a Scenario or a trial generator with simulate(seed), "
                             f"got {type(self.scenario).__name__}")
        if not (isinstance(self.alpha, (int, float)) and 0 < self.alpha < 1):
            raise ValueError(f"design alpha: got {self.alpha!r}; expected a level in (0, 1)")
        kind = self.data_kind
        objs = [get(name) for name in est]  # ValueError naming the unknown estimator
        for e in objs:
            if e.data != kind:
                raise ValueError(f"design estimators: '{e.name}' analyses {e.data} data, but the design's data model "
                                 f"({type(self.scenario).__name__}) gives {kind} data")
        outcome = getattr(self.scenario, "outcome", None)
        if kind == "trial" and outcome is not None:
            for e in objs:
                allowed = TRIAL_ESTIMATOR_OUTCOMES.get(e.name)
                if allowed is not None and outcome not in allowed:
                    raise ValueError(f"design estimators: '{e.name}' analyses {', '.join(allowed)} outcomes, "
                                     f"not {outcome}")
        if self.estimand is not None and (not isinstance(self.estimand, str) or not self.estimand):
            raise ValueError(f"design estimand: expected a key of the truth, got {self.estimand!r}")
        known = getattr(self.scenario, "true_values", None)
        if kind == "trial" and callable(known):
            truth = known()
            keys = ", ".join(k for k, v in truth.items() if isinstance(v, (int, float)) and k != "icc")
            where = f"the truth of a {outcome} {type(self.scenario).__name__}"
            if self.estimand is not None:
                try:
                    true_value(truth, self.estimand)
                except KeyError:
                    raise ValueError(f"design estimand: '{self.estimand}' is not in {where}; "
                                     f"expected one of {keys}") from None
            else:
                for e in objs:
                    try:
                        true_value(truth, e.estimand)
                    except KeyError:
                        raise ValueError(f"design estimators: '{e.name}' targets '{e.estimand}', which is not in "
                                         f"{where} (its keys: {keys}); give estimand= to compare it with "
                                         f"another") from None

    # -- parts ------------------------------------------------------------------------------------
    @property
    def data_kind(self) -> str:
        """``"cohort"`` for a Scenario, ``"trial"`` for other data models."""
        return "cohort" if isinstance(self.scenario, Scenario) else "trial"

    def estimator_objects(self) -> tuple[Estimator, ...]:
        """The registered :class:`~verzuimmodel.effects.Estimator` of each name."""
        return tuple(get(name) for name in self.estimators)

    def target_of(self, name: str) -> str:
        """The truth key estimator ``name`` is scored against: the forced ``estimand`` if given,
        else the key of the estimator's declared target (``ValueError`` if not in the design)."""
        if name not in self.estimators:
            raise ValueError(f"estimator '{name}' is not in the design ({', '.join(self.estimators)})")
        return self.estimand if self.estimand is not None else get(name).estimand

    @property
    def targets(self) -> dict[str, str]:
        """``{estimator: truth key it is scored against}``, in the design's order (see :meth:`target_of`)."""
        return {name: self.target_of(name) for name in self.estimators}

    def draw(self, seed):
        """One replicate of the data model (a Cohort or a TrialData) from ``seed``."""
        if isinstance(self.scenario, Scenario):
            return simulate(self.scenario, seed=seed)
        return self.scenario.simulate(seed)

    def with_parameters(self, values: dict[str, Any]) -> "Design":
        """A copy with data-model parameters replaced, by dotted name.

        ``{"population.n_po_schools": 60}`` for a Scenario, ``{"n_clusters": 16}`` for a trial.
        The new data model is validated as when read from a file (``ValueError`` naming the key).
        """
        model = self.scenario
        if isinstance(model, Scenario):
            d = model.to_dict()
            for key, value in values.items():
                _set_dotted(d, key, value, "scenario")
            model = Scenario.from_dict(d)
        elif type(model) in TRIAL_TYPES.values():
            d = {k: v for k, v in model.to_dict().items() if k != "type"}
            for key, value in values.items():
                if key not in d:
                    raise ValueError(f"trial parameter '{key}': unknown; expected one of {', '.join(sorted(d))}")
                d[key] = _integral(value)
            model = type(model).from_dict(d)
        elif dataclasses.is_dataclass(model):
            model = dataclasses.replace(model, **values)
        else:
            raise ValueError(f"cannot vary parameters of a {type(model).__name__} data model")
        return dataclasses.replace(self, scenario=model)

    def parameter(self, name: str) -> Any:
        """The current value of a data-model parameter, by dotted name."""
        model = self.scenario
        d = model.to_dict() if hasattr(model, "to_dict") else dataclasses.asdict(model)
        node: Any = d
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ValueError(f"parameter '{name}': unknown")
            node = node[part]
        return node

    # -- files ------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict, base_dir: str | Path | None = None) -> "Design":
        """Build from a dict as read from a design file (see the module docstring)."""
        if not isinstance(data, dict):
            raise ValueError("design: expected a table")
        unknown = sorted(set(data) - set(_DESIGN_KEYS))
        if unknown:
            raise ValueError(f"design key '{unknown[0]}': unknown key; expected one of {', '.join(_DESIGN_KEYS)}")
        if "estimators" not in data:
            raise ValueError("design key 'estimators': missing; expected a list of estimator names")
        est = data["estimators"]
        if not isinstance(est, list) or not est or not all(isinstance(e, str) for e in est):
            raise ValueError(f"design key 'estimators': expected a non-empty list of estimator names, got {est!r}")
        for key, typ, what in (("name", str, "a string"), ("estimand", str, "a key of the truth (a string)")):
            if key in data and not isinstance(data[key], typ):
                raise ValueError(f"design key '{key}': expected {what}, got {data[key]!r}")
        alpha = data.get("alpha", 0.05)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise ValueError(f"design key 'alpha': expected a level in (0, 1), got {alpha!r}")
        has_s, has_t = "scenario" in data, "trial" in data
        if has_s == has_t:
            raise ValueError("design key 'scenario' or 'trial': expected exactly one of them (a scenario name, "
                             "path or [scenario] table, or a [trial] table)")
        if has_t:
            spec = data["trial"]
            if not isinstance(spec, dict):
                raise ValueError(f"design key 'trial': expected a table, got {spec!r}")
            spec = dict(spec)
            kind = spec.pop("type", None)
            if kind not in TRIAL_TYPES:
                raise ValueError(f"design key 'trial.type': got {kind!r}; expected one of {', '.join(TRIAL_TYPES)}")
            model = TRIAL_TYPES[kind].from_dict(spec, where="trial")
        else:
            model = _scenario(data["scenario"], Path(base_dir) if base_dir is not None else Path.cwd())
        try:
            return cls(scenario=model, estimators=tuple(est), estimand=data.get("estimand"), alpha=float(alpha),
                       name=data.get("name", "design"))
        except ValueError as e:
            msg = str(e)
            raise ValueError(msg.replace("design estimators:", "design key 'estimators':")
                             .replace("design estimand:", "design key 'estimand':")) from None

    @classmethod
    def from_toml(cls, path: str | Path) -> "Design":
        """Read a design file. Bad files raise ``ValueError`` naming the key and what was expected
        (``FileNotFoundError`` if the file does not exist)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"design file not found: {path}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"design file {path.name}: invalid TOML: {e}") from None
        try:
            return cls.from_dict(data, base_dir=path.parent)
        except ValueError as e:
            raise ValueError(f"design file {path.name}: {e}") from None

    def to_dict(self) -> dict:
        """The design as a dict (TOML-ready). A shipped scenario is referenced by name; ``estimand``
        appears only when forced (each estimator's own target otherwise)."""
        out: dict[str, Any] = {"name": self.name, "estimators": list(self.estimators)}
        if self.estimand is not None:
            out["estimand"] = self.estimand
        out["alpha"] = self.alpha
        model = self.scenario
        if isinstance(model, Scenario):
            try:
                shipped = Scenario.named(model.name)
            except ValueError:
                shipped = None
            out["scenario"] = model.name if shipped == model else model.to_dict()
        elif type(model) in TRIAL_TYPES.values():
            out["trial"] = model.to_dict()
        else:
            raise ValueError(f"a design with a {type(model).__name__} data model cannot be written to TOML")
        return out

    def to_toml(self, path: str | Path | None = None) -> str:
        """Write the design file to ``path`` (if given); return its text."""
        text = tomli_w.dumps(self.to_dict())
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


def true_value(truth: dict, estimand: str) -> Any:
    """``truth[estimand]``, where a dotted estimand walks nested dicts; ``KeyError`` if absent."""
    if estimand in truth:
        return truth[estimand]
    node: Any = truth
    for part in estimand.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(estimand)
        node = node[part]
    return node


def _scenario(spec, base_dir: Path) -> Scenario:
    if isinstance(spec, dict):
        return Scenario.from_dict(spec)
    if not isinstance(spec, str):
        raise ValueError(f"design key 'scenario': expected a scenario name, a path to a .toml file or a table, "
                         f"got {spec!r}")
    path = base_dir / spec
    if spec.lower().endswith(".toml") or path.is_file():
        return Scenario.from_toml(path)
    try:
        return Scenario.named(spec)
    except ValueError as e:
        raise ValueError(f"design key 'scenario': {e}") from None


def _set_dotted(d: dict, key: str, value, where: str) -> None:
    """Set ``d[a][b][c] = value`` for ``key = "a.b.c"``; unknown names are caught when the
    data model is rebuilt from the dict."""
    parts = key.split(".")
    node = d
    for i, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"{where} parameter '{key}': '{'.'.join(parts[:i + 1])}' is not a table of parameters")
    node[parts[-1]] = _integral(value)


def _integral(value):
    """A float that is a whole number becomes an int (values from a grid of floats)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value
