"""Config you cannot misuse and runs that describe themselves (SPEC sections 4, 10, 11):
overlay layouts, `config export`, YAML hardening, the published effective config, the
merchants as a dataset, bad output paths, and the public modules."""
import shutil
from importlib import resources

import duckdb
import pytest

import seg6a
from runfiles import files_of
from seg6a.cli import main
from seg6a.policies import MAX_CONFIG_BYTES, load_config

TAXONOMY = "fraud_role_taxonomy_6A.v1.yaml"


def seg6a_cli(*args):
    return main([str(a) for a in args])


def raise_mule(folder):
    """The README's recipe: MULE prevalence 0.012 -> 0.060, CLEAN 0.952 -> 0.904."""
    path = folder / "policy" / TAXONOMY
    text = path.read_text()
    for old, new in (("raw_role: MULE, family: MULE_NETWORK, is_risky: true, "
                      "target_prevalence: 0.012", "raw_role: MULE, family: MULE_NETWORK, "
                      "is_risky: true, target_prevalence: 0.060"),
                     ("raw_role: CLEAN, family: CLEAN, is_risky: false, target_prevalence: "
                      "0.952", "raw_role: CLEAN, family: CLEAN, is_risky: false, "
                      "target_prevalence: 0.904")):
        assert text.count(old) == 1
        text = text.replace(old, new)
    path.write_text(text)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export") / "myconf"
    assert seg6a_cli("config", "export", folder) == 0
    return folder


def test_export_writes_the_embedded_layout(exported):
    written = sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*")
                     if p.is_file())
    assert "scales.yaml" in written and "world/countries.csv" in written
    assert f"policy/{TAXONOMY}" in written and "priors/party_priors_6A.v1.yaml" in written
    embedded = resources.files("seg6a.config")
    for relative in written:
        assert (exported / relative).read_bytes() == embedded.joinpath(relative).read_bytes()
    assert seg6a_cli("config", "export", exported) == 2  # never over an existing folder


def test_an_exported_config_changes_nothing_and_an_edit_in_it_is_read(exported, tmp_path):
    root = tmp_path / "runs"
    assert seg6a_cli("run", "--seed", 42, "--scale", "tiny", "--out", root, "--run-id", "plain",
                     "--quiet") == 0
    assert seg6a_cli("run", "--seed", 42, "--scale", "tiny", "--out", root, "--run-id",
                     "exported", "--config", exported, "--quiet") == 0
    assert files_of(root / "exported", False) == files_of(root / "plain", False)
    edited = shutil.copytree(exported, tmp_path / "edited")
    raise_mule(edited)
    assert seg6a_cli("run", "--seed", 42, "--scale", "tiny", "--out", root, "--run-id", "mule",
                     "--config", edited, "--quiet") == 0
    (mule,), = duckdb.sql(
        "select avg((raw_role = 'MULE')::int) from read_parquet("
        f"'{root}/mule/layer3/6A/s5_party_fraud_roles_6A/**/*.parquet')").fetchall()
    assert 0.05 < mule < 0.07  # the nested file was read (0.012 when it was ignored)


@pytest.mark.parametrize("relative, message", [
    ("notes.json", "unknown config file"),
    ("contracts/x.schema.json", "unknown config folder"),
    ("priors/scales.yaml", "belongs in the top/"),
    ("policy/party_priors_6A.v1.yaml", "belongs in priors/"),
    ("world/extra.csv", "unknown world file"),
])
def test_an_unrecognised_overlay_entry_is_named(relative, message, tmp_path, capsys):
    path = tmp_path / "cfg" / relative
    path.parent.mkdir(parents=True)
    source = {"scales.yaml": "scales.yaml",
              "party_priors_6A.v1.yaml": "priors/party_priors_6A.v1.yaml"}.get(path.name)
    path.write_text(resources.files("seg6a.config").joinpath(source).read_text()
                    if source else "{}")
    assert seg6a_cli("config", "validate", "--config", tmp_path / "cfg") == 2
    err = capsys.readouterr().err
    named = relative.split("/")[0] if "folder" in message else path.name
    assert message in err and named in err


def test_a_copy_of_the_package_folder_is_refused_with_the_export_recipe(tmp_path, capsys):
    copied = tmp_path / "cpconf"
    shutil.copytree(str(resources.files("seg6a.config")), copied,
                    ignore=shutil.ignore_patterns("__pycache__"))
    assert seg6a_cli("config", "validate", "--config", copied) == 2
    err = capsys.readouterr().err
    assert "__init__.py" in err or "contracts" in err
    assert "seg6a config export" in err


def test_the_same_file_twice_is_refused(exported, tmp_path, capsys):
    folder = shutil.copytree(exported, tmp_path / "twice")
    shutil.copy(folder / "policy" / TAXONOMY, folder / TAXONOMY)
    assert seg6a_cli("config", "validate", "--config", folder) == 2
    assert "given twice" in capsys.readouterr().err


def test_a_duplicate_key_is_refused_naming_both_lines(tmp_path, capsys):
    text = resources.files("seg6a.config").joinpath("policy", "validation_policy_6A.v1.yaml") \
        .read_text()
    line = "      p99: {comparator: le, B: 120, Bplus: 80}\n"
    assert text.count(line) == 1
    first = text[:text.index(line)].count("\n") + 1
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "validation_policy_6A.v1.yaml").write_text(
        text.replace(line, line + "      p99: {comparator: le, B: 1200, Bplus: 800}\n"))
    assert seg6a_cli("config", "validate", "--config", folder) == 2
    err = capsys.readouterr().err
    assert f"duplicate key 'p99' (lines {first} and {first + 1})" in err


def test_anchors_and_oversized_files_are_refused(tmp_path, capsys):
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    text = resources.files("seg6a.config").joinpath("scales.yaml").read_text()
    (anchors / "scales.yaml").write_text(text + "\nextra: &shared 1\nagain: *shared\n")
    assert seg6a_cli("config", "validate", "--config", anchors) == 2
    assert "anchors and aliases are not allowed" in capsys.readouterr().err
    big = tmp_path / "big"
    big.mkdir()
    (big / "scales.yaml").write_text(text + "#" * MAX_CONFIG_BYTES)
    assert seg6a_cli("config", "validate", "--config", big) == 2
    assert "config files are at most" in capsys.readouterr().err


def test_a_run_publishes_its_config_and_reproduces_from_it(tmp_path):
    root = tmp_path / "runs"
    edited = tmp_path / "edited"
    assert seg6a_cli("config", "export", edited) == 0
    raise_mule(edited)
    assert seg6a_cli("run", "--seed", 7, "--scale", "tiny", "--out", root, "--run-id", "a",
                     "--config", edited, "--quiet") == 0
    published, = (root / "a").glob("layer3/6A/s0_gate_receipt_6A/seed=7/*/*/config")
    assert (published / "policy" / TAXONOMY).read_bytes() == \
        (edited / "policy" / TAXONOMY).read_bytes()
    assert load_config(published).texts == load_config(edited).texts
    assert seg6a_cli("run", "--seed", 7, "--scale", "tiny", "--out", root, "--run-id", "b",
                     "--config", published, "--quiet") == 0
    assert files_of(root / "b", False) == files_of(root / "a", False)
    # and the report reads it: no --config needed
    assert seg6a_cli("report", root / "a", "--out", tmp_path / "page") == 0


def test_merchant_roles_join_the_published_merchants_in_sql(tmp_path):
    result = seg6a.simulate(42, scale="tiny", out=tmp_path, run_id="m")
    layer = f"{result.run_dir}/layer3/6A"
    (rows, joined, mccs), = duckdb.sql(f"""
        select count(*), count(m.merchant_id), count(distinct m.mcc)
        from read_parquet('{layer}/s5_merchant_fraud_roles_6A/**/*.parquet') r
        left join read_parquet('{layer}/s0_merchant_base_6A/**/*.parquet') m
        using (merchant_id)""").fetchall()
    assert rows == joined == result.sealed.world.merchants.num_rows
    assert mccs > 10


@pytest.mark.parametrize("command", ["run", "certify", "report"])
def test_an_output_path_that_is_a_file_is_refused_before_any_work(command, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    args = {"run": ["run", "--seed", 42, "--scale", "tiny", "--out", afile],
            "certify": ["certify", "--seeds", 42, "--scale", "tiny", "--out", afile],
            "report": ["report", tmp_path / "nothing", "--out", afile]}[command]
    if command == "report":
        assert seg6a_cli("run", "--seed", 42, "--scale", "tiny", "--out", tmp_path, "--run-id",
                         "nothing", "--quiet") == 0
        capsys.readouterr()
    assert seg6a_cli(*args) == 2
    captured = capsys.readouterr()
    assert "is a file" in captured.err and "S1" not in captured.err
    assert afile.read_text() == "mine"


def test_the_public_modules_are_reachable_from_the_package():
    assert {"gates", "errors", "simulate", "certify"} <= set(dir(seg6a))
    assert seg6a.gates.odds_ratio(30, 70, 10, 90) == pytest.approx(30 * 90 / (70 * 10))
    assert issubclass(seg6a.errors.ConfigError, seg6a.errors.InputError)


def test_an_unknown_scale_names_the_scales_file_it_was_looked_up_in(exported, capsys):
    assert seg6a_cli("run", "--seed", 1, "--scale", "huge", "--config", exported,
                     "--quiet") == 2
    assert f"{exported / 'scales.yaml'}: unknown scale 'huge'" in capsys.readouterr().err
