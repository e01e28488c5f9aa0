"""Bad input (SPEC section 11): a clear error naming what and where, exit code 2, nothing
published. Each case is run through ``seg6a.cli.main`` and, for a selection, ``seg6a.simulate``.
"""
import csv
import io
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml

import seg6a
from seg6a.cli import main
from seg6a.errors import ConfigError, InputError, ParameterError, WorldError

SCALES = "scales.yaml"
PARTY = "party_priors_6A.v1.yaml"
ACCOUNT = "account_per_party_priors_6A.v1.yaml"
DEVICE = "device_ip_priors_6A.v1.yaml"
TAXONOMY = "fraud_role_taxonomy_6A.v1.yaml"
EMBEDDED_PATHS = {
    SCALES: "scales.yaml",
    PARTY: "priors/party_priors_6A.v1.yaml",
    ACCOUNT: "priors/account_per_party_priors_6A.v1.yaml",
    DEVICE: "priors/device_ip_priors_6A.v1.yaml",
    TAXONOMY: "policy/fraud_role_taxonomy_6A.v1.yaml",
    "countries.csv": "world/countries.csv",
    "country_indicators.yaml": "world/country_indicators.yaml",
}
MERCHANTS_HEADER = "merchant_id,country_iso,mcc,size_class\n"
GOOD_MERCHANTS = MERCHANTS_HEADER + "0,US,5411,MICRO\n1,FR,5812,SMALL\n2,NG,5999,MICRO\n"


# --- building bad config folders ----------------------------------------------------------


def embedded_text(name):
    node = resources.files("seg6a.config")
    for part in EMBEDDED_PATHS[name].split("/"):
        node = node.joinpath(part)
    return node.read_text(encoding="utf-8")


def embedded_doc(name):
    return yaml.safe_load(embedded_text(name))


def write(folder, name, text):
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text, prefix):
    """1-based number of the first line starting with ``prefix``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(prefix):
            return number
    raise AssertionError(f"no line starts with {prefix!r}")


def replace_line(text, number, new):
    lines = text.splitlines()
    lines[number - 1] = new
    return "\n".join(lines) + "\n"


def countries_without(column):
    rows = list(csv.reader(io.StringIO(embedded_text("countries.csv"))))
    drop = rows[0].index(column)
    return "".join(",".join(r[:drop] + r[drop + 1:]) + "\n" for r in rows)


# Each builder gets an empty config folder and returns (run arguments, expected substrings);
# run arguments may set "seed", "scale", "run_id" or "config" (a different --config path).


def broken_yaml(cfg):
    text = embedded_text(PARTY)
    number = line_of(text, "party_types:")
    write(cfg, PARTY, replace_line(text, number, "party_types: RETAIL: BUSINESS"))
    return {}, [f"{PARTY}:{number}", "not valid YAML"]


def broken_yaml_indent(cfg):
    text = embedded_text(SCALES)
    number = line_of(text, "block_size:")
    write(cfg, SCALES, replace_line(text, number, "block_size: 4096\n\t  oops: [1"))
    # The tab opens the line after block_size.
    return {}, [f"{SCALES}:{number + 1}", "not valid YAML"]


def python_tag(cfg):
    # yaml.safe_load only: a Python tag is not valid YAML for seg6a, and runs nothing.
    write(cfg, SCALES, "!!python/object/apply:os.system ['echo pwned']\n")
    return {}, [f"{SCALES}:1", "not valid YAML"]


def empty_yaml(cfg):
    write(cfg, SCALES, "# nothing here\n")
    return {}, [SCALES, "mapping"]


def misspelt_top_key(cfg):
    write(cfg, PARTY, embedded_text(PARTY).replace("party_type_mix:", "party_type_mixx:"))
    return {}, [PARTY, "party_type_mixx"]


def misspelt_nested_key(cfg):
    doc = embedded_doc(SCALES)
    doc["scales"]["tiny"]["n_partys"] = doc["scales"]["tiny"].pop("n_parties")
    write(cfg, SCALES, yaml.safe_dump(doc))
    return {}, [SCALES, "scales.tiny", "n_part"]


def string_for_number(cfg):
    doc = embedded_doc(SCALES)
    doc["block_size"] = "big"
    write(cfg, SCALES, yaml.safe_dump(doc))
    return {}, [SCALES, "block_size", "'big'"]


def string_for_k_max(cfg):
    doc = embedded_doc(ACCOUNT)
    doc["rules"][1]["k_max"] = "three"
    write(cfg, ACCOUNT, yaml.safe_dump(doc))
    return {}, [ACCOUNT, "rules[1].k_max", "three"]


def type_mix_sums_to_0_9(cfg):
    doc = embedded_doc(PARTY)
    mix = doc["party_type_mix"]["default"]
    mix["RETAIL"] = round(mix["RETAIL"] - 0.1, 10)
    write(cfg, PARTY, yaml.safe_dump(doc))
    return {}, [PARTY, "party_type_mix", "0.9"]


def region_type_mix_sums_to_1_1(cfg):
    doc = embedded_doc(PARTY)
    doc["party_type_mix"]["by_region"]["AFRICA"]["OTHER"] = 0.12
    write(cfg, PARTY, yaml.safe_dump(doc))
    return {}, [PARTY, "party_type_mix.by_region.AFRICA", "1.1"]


def region_missing_from_ip_type_mix(cfg):
    doc = embedded_doc(DEVICE)
    del doc["ip_type_mix"]["AFRICA"]
    write(cfg, DEVICE, yaml.safe_dump(doc))
    return {}, [DEVICE, "ip_type_mix", "AFRICA"]


def raw_role_without_family(cfg):
    doc = embedded_doc(TAXONOMY)
    del doc["entity_kinds"]["party"][1]["family"]
    write(cfg, TAXONOMY, yaml.safe_dump(doc))
    return {}, [TAXONOMY, "entity_kinds.party[1]", "family", "raw role MULE"]


def raw_role_with_unknown_family(cfg):
    doc = embedded_doc(TAXONOMY)
    doc["entity_kinds"]["device"][2]["family"] = "NO_SUCH_FAMILY"
    write(cfg, TAXONOMY, yaml.safe_dump(doc))
    return {}, [TAXONOMY, "entity_kinds.device[2].family", "NO_SUCH_FAMILY"]


def k_max_zero(cfg):
    doc = embedded_doc(ACCOUNT)
    doc["rules"][2]["k_max"] = 0
    write(cfg, ACCOUNT, yaml.safe_dump(doc))
    return {}, [ACCOUNT, "rules[2].k_max"]


def unknown_scale(cfg):
    return {"scale": "huge"}, ["huge", SCALES, "tiny"]


def seed_negative(cfg):
    return {"seed": -1}, ["seed", "-1"]


def seed_too_large(cfg):
    return {"seed": 2**63}, ["seed", str(2**63)]


def missing_config_folder(cfg):
    return {"config": cfg / "does-not-exist"}, ["does-not-exist"]


def config_is_a_file(cfg):
    return {"config": write(cfg, "notes.txt", "hello\n")}, ["notes.txt"]


def unknown_yaml_name(cfg):
    write(cfg, "party_prior_6A.v1.yaml", embedded_text(PARTY))
    return {}, ["party_prior_6A.v1.yaml", "unknown", PARTY]


def world_countries_without_region(cfg):
    write(cfg, "world/countries.csv", countries_without("region_id"))
    write(cfg, "world/merchants.csv", GOOD_MERCHANTS)
    return {}, ["countries.csv", "region_id"]


def world_countries_parquet_without_weight(cfg):
    table = pacsv.read_csv(pa.BufferReader(countries_without("population_weight").encode()))
    (cfg / "world").mkdir()
    pq.write_table(table, cfg / "world" / "countries.parquet")
    write(cfg, "world/merchants.csv", GOOD_MERCHANTS)
    return {}, ["countries.parquet", "population_weight"]


def world_merchant_unknown_country(cfg):
    write(cfg, "world/countries.csv", embedded_text("countries.csv"))
    write(cfg, "world/merchants.csv", GOOD_MERCHANTS + "3,ZZ,5411,MICRO\n")
    return {}, ["merchants.csv", "country_iso", "ZZ"]


def world_unknown_region(cfg):
    # A region no policy knows: ip_type_mix must name every region, so this cannot run.
    write(cfg, "world/countries.csv",
          embedded_text("countries.csv") + "AQ,Antarctica,ANTARCTICA,0.01\n")
    write(cfg, "world/merchants.csv", GOOD_MERCHANTS)
    return {}, [DEVICE, "ip_type_mix", "ANTARCTICA"]


def world_without_merchants(cfg):
    write(cfg, "world/countries.csv", embedded_text("countries.csv"))
    return {}, ["world", "merchants"]


def world_duplicate_country(cfg):
    text = embedded_text("countries.csv")
    write(cfg, "world/countries.csv", text + text.splitlines()[1] + "\n")
    write(cfg, "world/merchants.csv", GOOD_MERCHANTS)
    return {}, ["countries.csv", "country_iso", "duplicate"]


def run_id_with_slash(cfg):
    return {"run_id": "a/b"}, ["'a/b'"]


def run_id_dotdot(cfg):
    return {"run_id": "../escape"}, ["'../escape'"]


def run_id_only_dots(cfg):
    return {"run_id": ".."}, ["'..'"]


CASES = [
    broken_yaml, broken_yaml_indent, python_tag, empty_yaml, misspelt_top_key,
    misspelt_nested_key, string_for_number, string_for_k_max, type_mix_sums_to_0_9,
    region_type_mix_sums_to_1_1, region_missing_from_ip_type_mix, raw_role_without_family,
    raw_role_with_unknown_family, k_max_zero, unknown_scale, seed_negative, seed_too_large,
    missing_config_folder, config_is_a_file, unknown_yaml_name, world_countries_without_region,
    world_countries_parquet_without_weight, world_merchant_unknown_country, world_unknown_region,
    world_without_merchants, world_duplicate_country, run_id_with_slash, run_id_dotdot,
    run_id_only_dots,
]


def cli_argv(args, cfg, root):
    argv = ["run", "--seed", str(args.get("seed", 11)), "--scale", args.get("scale", "tiny"),
            "--out", str(root), "--config", str(args.get("config", cfg))]
    if "run_id" in args:
        argv += ["--run-id", args["run_id"]]
    return argv


def files_under(root):
    return sorted(p for p in Path(root).rglob("*") if p.is_file()) if Path(root).exists() else []


@pytest.fixture
def cfg(tmp_path):
    folder = tmp_path / "cfg"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_cli_rejects_bad_input(case, cfg, tmp_path, capsys):
    args, expected = case(cfg)
    root = tmp_path / "runs"
    code = main(cli_argv(args, cfg, root))
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.out == ""  # no run id: nothing was run
    assert captured.err.startswith("seg6a: error: ")
    for text in expected:
        assert text in captured.err, (text, captured.err)
    assert "Traceback" not in captured.err
    assert [p for p in files_under(root) if p.suffix == ".parquet"] == []
    assert files_under(root) == []


def test_embedded_config_folder_copy_is_accepted(cfg, tmp_path, capsys):
    """Control: the same harness with good files runs, so the cases above fail for their cause."""
    write(cfg, PARTY, embedded_text(PARTY))
    write(cfg, "world/countries.csv", embedded_text("countries.csv"))
    write(cfg, "world/merchants.csv", GOOD_MERCHANTS)
    write(cfg, "world/country_indicators.yaml", embedded_text("country_indicators.yaml"))
    root = tmp_path / "runs"
    code = main(cli_argv({"run_id": "ok"}, cfg, root))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out == "ok\n"
    assert list(root.rglob("*.parquet"))


# --- the API -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, error",
    [
        (broken_yaml, ConfigError),
        (misspelt_top_key, ConfigError),
        (string_for_number, ConfigError),
        (type_mix_sums_to_0_9, ConfigError),
        (region_missing_from_ip_type_mix, ConfigError),
        (raw_role_without_family, ConfigError),
        (k_max_zero, ConfigError),
        (missing_config_folder, ConfigError),
        (unknown_yaml_name, ConfigError),
        (world_countries_without_region, WorldError),
        (world_merchant_unknown_country, WorldError),
        (world_without_merchants, WorldError),
        (unknown_scale, ParameterError),
        (seed_negative, ParameterError),
        (seed_too_large, ParameterError),
        (run_id_with_slash, ParameterError),
        (run_id_dotdot, ParameterError),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_simulate_raises_a_specific_input_error(case, error, cfg, tmp_path):
    args, expected = case(cfg)
    root = tmp_path / "runs"
    with pytest.raises(error) as info:
        seg6a.simulate(args.get("seed", 11), scale=args.get("scale", "tiny"),
                       config=args.get("config", cfg), out=root,
                       run_id=args.get("run_id", "api"))
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)
    for text in expected:
        assert text in str(info.value), (text, str(info.value))
    assert files_under(root) == []


def test_config_error_carries_file_line_and_key(cfg):
    _, _ = broken_yaml(cfg)
    with pytest.raises(ConfigError) as info:
        seg6a.simulate(1, scale="tiny", config=cfg)
    assert Path(info.value.file).name == PARTY
    assert info.value.line == line_of(embedded_text(PARTY), "party_types:")

    _, _ = type_mix_sums_to_0_9(cfg)
    with pytest.raises(ConfigError) as info:
        seg6a.simulate(1, scale="tiny", config=cfg)
    assert Path(info.value.file).name == PARTY
    assert info.value.key == "party_type_mix.default"
    assert info.value.line is None


def test_world_error_carries_file_and_column(cfg):
    world_countries_without_region(cfg)
    with pytest.raises(WorldError) as info:
        seg6a.simulate(1, scale="tiny", config=cfg)
    assert Path(info.value.file).name == "countries.csv"
    assert info.value.key == "region_id"


@pytest.mark.parametrize("seed", [True, 1.5, "42", None])
def test_simulate_rejects_non_integer_seeds(seed):
    with pytest.raises(ParameterError, match="seed"):
        seg6a.simulate(seed, scale="tiny")


def test_simulate_rejects_unknown_engine():
    with pytest.raises(ParameterError, match="engine"):
        seg6a.simulate(1, scale="tiny", engine="spark")


# --- seg6a config validate ----------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [broken_yaml, type_mix_sums_to_0_9, region_missing_from_ip_type_mix, k_max_zero,
     world_countries_without_region, unknown_yaml_name],
    ids=lambda case: case.__name__,
)
def test_config_validate_rejects_bad_files(case, cfg, capsys):
    _, expected = case(cfg)
    assert main(["config", "validate", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    for text in expected:
        assert text in err, (text, err)


def test_config_validate_accepts_a_valid_overlay(cfg, capsys):
    doc = embedded_doc(SCALES)
    doc["block_size"] = 4096
    write(cfg, SCALES, yaml.safe_dump(doc))
    write(cfg, PARTY, embedded_text(PARTY))
    assert main(["config", "validate", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "config valid" in out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:] if line.strip()
            and not line.startswith("config valid")}
    assert rows[SCALES] == "user"
    assert rows[PARTY] == "user"
    assert rows[DEVICE] == "embedded"
    assert rows["world"] == "embedded"


def test_config_validate_without_overlay(capsys):
    assert main(["config", "validate"]) == 0
    assert "config valid" in capsys.readouterr().out


# --- a run folder that already holds different data -----------------------------------------


def test_rerun_into_a_folder_with_different_data_publishes_nothing(cfg, tmp_path, capsys):
    root = tmp_path / "runs"
    argv = ["run", "--seed", "42", "--scale", "tiny", "--out", str(root), "--run-id", "X"]
    assert main(argv) == 0
    before = {p: p.read_bytes() for p in files_under(root)}
    doc = embedded_doc(SCALES)
    doc["block_size"] = 4096
    write(cfg, SCALES, yaml.safe_dump(doc))
    capsys.readouterr()
    code = main(argv + ["--config", str(cfg)])
    err = capsys.readouterr().err
    assert code == 2
    assert "already holds different data" in err
    assert {p: p.read_bytes() for p in files_under(root)} == before
