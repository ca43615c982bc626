"""The paper demo's inputs (demos/paper_li3b7o12*): one SED in three cases, an immobile
fraction fitted per experiment, exposures from beam logs, and an assumptions table whose
every entry the demo can perturb. The demo itself runs in `make paper` (18 min)."""

import importlib.util
import math

import pytest
from support.compare import approx
from support.paths import ROOT

from cait_fem.fit import load_fit_case

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

DEMOS = ROOT / "demos"
ASSUMPTIONS = tomllib.loads((DEMOS / "paper_li3b7o12_data" / "assumptions.toml").read_text())["assumption"]


def test_one_sed_three_cutoffs_and_exposures_known_from_the_beam_logs():
    case = load_fit_case(DEMOS / "paper_li3b7o12.toml")
    laws = [e.experiment.native.diffusion for e in case.experiments]
    assert len({(law.fwhm_eV, law.vacancy_fraction, law.D_bulk_m2_s) for law in laws}) == 1
    assert [law.mobile_fraction for law in laws] == [0.85, 0.93, 0.97]
    for e in case.experiments:
        beam = e.experiment.front
        assert beam.has_history and beam.current_times_s[-1] == e.experiment.run.t_end_s
        # 10 nA on 1 mm^2
        assert beam.current_density_history_A_m2 == approx((1e-2, 1e-2), rel=1e-12)
    specs = {p.path: p for p in case.parameters}
    mobile = specs["species.Li.diffusion.mobile_fraction"]
    assert not mobile.shared and mobile.experiments is None  # one value per experiment
    assert "run.t_end_s" not in specs  # the exposure is known, not fitted


@pytest.mark.dolfinx
@pytest.mark.parametrize("entry", ASSUMPTIONS, ids=[a["perturb"] for a in ASSUMPTIONS])
def test_every_assumption_is_one_the_demo_raises_by_the_factor(entry):
    spec = importlib.util.spec_from_file_location("paper_demo", DEMOS / "paper_li3b7o12.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    assert {"quantity", "value", "why", "perturb"} <= set(entry)
    exp = load_fit_case(DEMOS / "paper_li3b7o12.toml").experiments[0].experiment
    raised = demo.perturbed(exp, entry["perturb"], 1.05)
    before, after = _quantity(exp, entry["perturb"]), _quantity(raised, entry["perturb"])
    assert after == approx(1.05 * before, rel=1e-12)
    assert raised.front.current_times_s[-1] == approx(raised.run.t_end_s, rel=1e-12)


def _quantity(exp, what):
    return {"current": lambda: exp.front.current_density_history_A_m2[0],
            "exposure": lambda: exp.run.t_end_s,
            "E_kin": lambda: exp.front.E_kin_eV, "sigma_E": lambda: exp.front.sigma_E_eV,
            "thickness": lambda: exp.glass.thickness_m, "temperature": lambda: exp.glass.temperature_K,
            "D_bulk": lambda: exp.native.diffusion.D_bulk_m2_s}[what]()


def test_the_immobile_levels_are_the_papers():
    """The run cases start at the paper's mobile fractions: 85, 93, 97 % (its Fig. 4 text)."""
    case = load_fit_case(DEMOS / "paper_li3b7o12.toml")
    targets = {e.name: e.targets["plateau"] for e in case.experiments}
    for e in case.experiments:
        assert 1.0 - e.experiment.native.diffusion.mobile_fraction == approx(targets[e.name], abs=1e-12)
    assert not math.isnan(targets["K"])
