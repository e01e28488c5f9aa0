"""``seg6a report``: the HTML page and PNGs of a run, rendered in headless Chromium."""
import base64
import html
import json
import os
import re
import shutil
import subprocess

import pytest

import seg6a
from seg6a.cli import EXIT_BAD_INPUT, EXIT_OK, main
from seg6a.errors import InputError
from seg6a.report import REPORT_NAME, report_dir, write_report
from configs import embedded, overlay

GATES = ("T1_KMAX_HARD_INVARIANT", "T2_KMAX_TAIL_SANITY", "T3_IP_PRIOR_ALIGNMENT",
         "T4_DEVICE_IP_COVERAGE", "T5_IP_REUSE_TAIL_BOUNDS", "T6_ROLE_MAPPING_COVERAGE",
         "T7_RISK_PROPAGATION_EFFECT", "T8_DISTRIBUTION_ALIGNMENT_JSD",
         "T9_CROSS_SEED_STABILITY", "T10_DOWNSTREAM_COMPAT_6B")
PLOTS = ("gates", "devices_per_ip", "accounts_per_holder", "role_prevalence")
# Flags a root-run Chromium needs on this closed network (no sandbox, no background fetches).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return seg6a.simulate(42, scale="tiny", out=tmp_path_factory.mktemp("runs")).run_dir


@pytest.fixture(scope="module")
def report(run_dir):
    return write_report(run_dir)


def _chromium():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("SEG6A_REQUIRE_BROWSER"):
            pytest.fail("SEG6A_REQUIRE_BROWSER is set but no chromium is on PATH")
        pytest.skip("no chromium on PATH (CI installs it and sets SEG6A_REQUIRE_BROWSER)")
    return found


def _render(page, tmp_path, *extra):
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    done = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra,
                           page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _images_rendered(dom):
    body = re.search(r"<body([^>]*)>", dom).group(1)
    return (int(re.search(r'data-images-rendered="(\d+)"', body).group(1)),
            int(re.search(r'data-images-total="(\d+)"', body).group(1)))


def test_report_holds_every_gate_and_every_plot(run_dir, report):
    assert report == report_dir(run_dir) / REPORT_NAME
    page = report.read_text(encoding="utf-8")
    for gate in GATES:
        assert f'id="{gate}-42"' in page
    assert "not_evaluable_single_run" in page  # T9 of one seed says why it has no value
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == len(PLOTS)
    for plot, data in zip(PLOTS, embedded):
        png = (report.parent / f"seed=42_{plot}.png").read_bytes()
        assert base64.b64decode(data) == png  # self-contained: the page carries the PNGs
        assert png.startswith(b"\x89PNG")
    assert "Performance against budgets" in page and "total" in page
    from seg6a.gates.board import DESCRIPTIONS

    for gate, meaning in DESCRIPTIONS.items():  # one line on what each gate checks
        assert html.escape(meaning) in page, gate
    board = json.loads(next(run_dir.rglob("realism_gate_6A.json")).read_text())
    n_components = sum(len(r.get("components") or {}) for r in board)
    assert f"Every component ({n_components})" in page
    for name in board[7]["components"]:  # T8's, every one
        assert f"<td>{html.escape(name)}</td>" in page
    # The country-modulation diagnostic, as S5's validation report has it.
    report_json = json.loads(next(run_dir.rglob("s5_validation_report_6A.json")).read_text())
    d1 = report_json["diagnostics"][0]["components"]
    assert "Country modulation (a diagnostic" in page
    for name, part in d1.items():
        assert f"<td>{html.escape(name)}</td>" in page
        assert f"<td>{html.escape(part['indicator'])}" in page


def test_report_is_deterministic(run_dir, report, tmp_path):
    again = write_report(run_dir, out_dir=tmp_path)
    assert again.read_bytes() == report.read_bytes()
    for plot in PLOTS:
        name = f"seed=42_{plot}.png"
        assert (tmp_path / name).read_bytes() == (report.parent / name).read_bytes()


def test_report_refuses_a_config_the_run_was_not_made_with(run_dir, tmp_path):
    doc = embedded("risk_propagation_coeffs_6A.v1.yaml")
    doc["party_graph"]["beta_shared_device"] = 0.25
    config = overlay(tmp_path / "config", "risk_propagation_coeffs_6A.v1.yaml", doc)
    with pytest.raises(InputError, match="risk_propagation_coeffs_6A.v1.yaml"):
        write_report(run_dir, config=config, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_report_prints_the_page_and_rejects_a_non_run(run_dir, tmp_path, capsys):
    assert main(["report", str(run_dir), "--out", str(tmp_path / "r")]) == EXIT_OK
    assert capsys.readouterr().out.strip() == str(tmp_path / "r" / REPORT_NAME)
    assert main(["report", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "no gateboard" in capsys.readouterr().err


def test_report_renders_in_headless_chromium(report, tmp_path):
    dom = _render(report, tmp_path, "--virtual-time-budget=5000", "--dump-dom")
    # The page's load handler counted the images the browser decoded.
    assert _images_rendered(dom) == (len(PLOTS), len(PLOTS))
    text = re.sub(r"<[^>]+>", " ", dom)
    for gate in GATES:
        assert gate in text
    shot = tmp_path / "shot.png"
    _render(report, tmp_path, "--window-size=1280,2400", f"--screenshot={shot}")
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (2400, 1280)
    assert pixels[..., :3].std() > 0.05  # tables and plots, not a blank page


def test_chromium_check_sees_a_broken_plot(report, tmp_path):
    page = report.read_text(encoding="utf-8")
    broken = tmp_path / "broken.html"
    # Corrupt one embedded PNG: the check must count one image fewer.
    broken.write_text(page.replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAA",
                                   1), encoding="utf-8")
    dom = _render(broken, tmp_path, "--virtual-time-budget=5000", "--dump-dom")
    assert _images_rendered(dom) == (len(PLOTS) - 1, len(PLOTS))


def test_report_shows_a_certifications_evidence_and_waivers(tmp_path):
    doc = embedded("validation_policy_6A.v1.yaml")
    doc["certification"].update(required_seeds=[42, 7], min_scale="tiny")
    config = overlay(tmp_path / "config", "validation_policy_6A.v1.yaml", doc)
    outcome = seg6a.certify(seeds=[42, 7], scale="tiny", config=config, out=tmp_path / "runs",
                            waive="a quick look")
    assert outcome.shown == f"{outcome.decision} (2 waivers)"
    page = write_report(outcome.run_dir, config=config).read_text(encoding="utf-8")
    assert f"<b>{outcome.shown}</b>" in page and "at scale tiny" in page
    for key in ("certification.required_seeds", "certification.min_scale"):
        assert f"<td>{key}</td>" in page
    # two waivers in the run's table, and on each of the two seeds' boards (T9 carries them)
    assert page.count("a quick look") == 6
    # the header names the version and hashes of each seed; T9's table lists its metrics
    assert f"<td>{seg6a.__version__}</td>" in page
    validation_hash = outcome.summary["validation_hash"][:16]
    assert page.count(f"<td>{validation_hash}</td>") == 2
    worst = outcome.summary["T9"]["worst_metric"]
    assert f"<td>{worst}</td>" in page and "coefficient of variation across seeds" in page
