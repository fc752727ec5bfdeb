#!/usr/bin/env python3
"""Derives hoctap's official geography (data/geography/vn-2025.tsv.gz) from the public dataset.

The source is the PyPI package `vietnamadminunits` (MIT licence): its SQLite dataset holds the 63
provinces, 696 districts and 10 035 communes before 1 July 2025 (`admin_units_legacy`) and the 34
provinces and 3 321 communes after (`admin_units`); its `converter_2025.json` maps every old commune
to the new unit(s) it passed into, marking one as the default when it was divided.

    python3 scripts/geography/derive.py            # downloads the pinned version with pip, writes the files
    python3 scripts/geography/derive.py --wheel X  # uses a wheel already downloaded

Only the Python standard library and pip are needed. The build never runs this: the committed file,
reviewed, is what hoctap embeds. Re-running with the same version gives the same bytes (the gzip
header carries no time or name), so `git diff` shows whether anything changed.

The file format (UTF-8, tab-separated, one record a line, `#` lines are comments) is described in
data/geography/README.md and read by crates/hoctap-geography.
"""

import argparse
import collections
import datetime
import gzip
import hashlib
import io
import json
import pathlib
import sqlite3
import subprocess
import sys
import tempfile
import zipfile

PACKAGE = "vietnamadminunits"
VERSION = "1.0.4"
ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "data" / "geography"
DATA_FILE = "vn-2025.tsv.gz"

# The dataset's counts, checked here and again by the Rust tests.
OLD_PROVINCES, OLD_DISTRICTS, OLD_COMMUNES, OLD_ROWS = 63, 696, 10035, 10040
NEW_PROVINCES, NEW_COMMUNES = 34, 3321


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheel(tmp: pathlib.Path) -> pathlib.Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
         f"{PACKAGE}=={VERSION}", "-d", str(tmp)],
        check=True,
    )
    wheels = list(tmp.glob(f"{PACKAGE}-{VERSION}-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"error: expected one wheel of {PACKAGE} {VERSION} in {tmp}, found {wheels}")
    return wheels[0]


def coord(x) -> str:
    if x is None:
        return ""
    # 5 decimals is about a metre: more than a commune's centre means.
    return f"{x:.5f}".rstrip("0").rstrip(".")


# The official name starts with the unit's type. The dataset's own type column disagrees with the
# name for 7 old communes (e.g. 15061 "Thị trấn Ngọc Lặc" typed Xã): the name is the official one.
PROVINCE_TYPES = ("Thành phố", "Tỉnh")
DISTRICT_TYPES = ("Quận", "Huyện", "Thị xã", "Thành phố")
COMMUNE_TYPES = ("Phường", "Xã", "Thị trấn", "Đặc khu")


# Ten names capitalise their type ("Thành Phố Bắc Kạn", "Thị Trấn Prao"): written as the others are.
CAPITALISED = {"Thành Phố ": "Thành phố ", "Thị Xã ": "Thị xã ", "Thị Trấn ": "Thị trấn "}
normalised = []


def typed(name: str, types) -> str:
    for wrong, right in CAPITALISED.items():
        if name.startswith(wrong):
            normalised.append(name)
            name = right + name[len(wrong):]
    if not any(name.startswith(t + " ") for t in types):
        sys.exit(f"error: {name!r} does not start with a type of {types}")
    return name


def check(what: str, got, want) -> None:
    if got != want:
        sys.exit(f"error: {what}: the dataset has {got}, expected {want}")


def derive(wheel: pathlib.Path, tmp: pathlib.Path):
    with zipfile.ZipFile(wheel) as z:
        db_bytes = z.read(f"{PACKAGE}/data/dataset.db")
        conv_bytes = z.read(f"{PACKAGE}/data/converter_2025.json")
        licence = z.read(f"{PACKAGE}-{VERSION}.dist-info/licenses/LICENSE").decode()
    db_path = tmp / "dataset.db"
    db_path.write_bytes(db_bytes)
    conv = json.loads(conv_bytes)
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    old = [dict(r) for r in db.execute("SELECT * FROM admin_units_legacy")]
    new = [dict(r) for r in db.execute("SELECT * FROM admin_units")]
    db.close()

    check("old rows (communes and districts without communes)", len(old), OLD_ROWS)
    check("new communes", len(new), NEW_COMMUNES)

    old_provinces, old_districts, old_communes = {}, {}, {}
    old_by_key = {}
    for r in old:
        old_provinces.setdefault(r["provinceCode"], (r["province"], r["provinceLat"], r["provinceLon"]))
        r["province"] = typed(r["province"], PROVINCE_TYPES)
        r["district"] = typed(r["district"], DISTRICT_TYPES)
        old_districts.setdefault(
            r["districtCode"], (r["provinceCode"], r["district"], r["districtLat"], r["districtLon"])
        )
        if r["wardCode"]:
            if r["wardCode"] in old_communes:
                sys.exit(f"error: old commune code {r['wardCode']} twice")
            r["ward"] = typed(r["ward"], COMMUNE_TYPES)
            old_communes[r["wardCode"]] = (r["districtCode"], r["ward"], r["wardLat"], r["wardLon"])
        key = f"{r['provinceKey']}_{r['districtKey']}_{r['wardKey'] or ''}"
        if key in old_by_key:
            sys.exit(f"error: old key {key} twice")
        old_by_key[key] = r
    check("old provinces", len(old_provinces), OLD_PROVINCES)
    check("old districts", len(old_districts), OLD_DISTRICTS)
    check("old communes", len(old_communes), OLD_COMMUNES)

    new_provinces, new_communes = {}, {}
    new_by_key = {}
    for r in new:
        r["province"] = typed(r["province"], PROVINCE_TYPES)
        new_provinces.setdefault(r["provinceCode"], (r["province"], r["provinceLat"], r["provinceLon"]))
        if r["wardCode"] in new_communes:
            sys.exit(f"error: new commune code {r['wardCode']} twice")
        r["ward"] = typed(r["ward"], COMMUNE_TYPES)
        new_communes[r["wardCode"]] = (r["provinceCode"], r["ward"], r["wardLat"], r["wardLon"], r["wardAreaKm2"])
        key = (r["provinceKey"], r["wardKey"])
        if key in new_by_key:
            sys.exit(f"error: new key {key} twice")
        new_by_key[key] = r["wardCode"]
    check("new provinces", len(new_provinces), NEW_PROVINCES)

    # Provinces: each new one lists the old ones it took in (by key); its code is one of theirs.
    province_code_by_key = {r["provinceKey"]: r["provinceCode"] for r in old}
    new_province_by_key = {r["provinceKey"]: r["provinceCode"] for r in new}
    merged_into = {}
    for new_key, old_keys in conv["DICT_PROVINCE"].items():
        new_code = new_province_by_key[new_key]
        olds = [province_code_by_key[k] for k in old_keys]
        if new_code not in olds:
            sys.exit(f"error: new province {new_code} keeps none of the codes {olds}")
        for o in olds:
            if o in merged_into:
                sys.exit(f"error: old province {o} merged twice")
            merged_into[o] = new_code
    check("old provinces in the crosswalk", len(merged_into), OLD_PROVINCES)

    # Old commune (or district without communes) → [(new code, default)].
    successors = {}
    for new_pkey, wards in conv["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for new_wkey, old_keys in wards.items():
            for ok in old_keys:
                successors.setdefault(ok, []).append((new_by_key[(new_pkey, new_wkey)], True))
    for new_pkey, olds in conv["DICT_PROVINCE_WARD_DIVIDED"].items():
        for ok, targets in olds.items():
            if ok in successors:
                sys.exit(f"error: old unit {ok} is both divided and not")
            successors[ok] = [(new_by_key[(new_pkey, t["newWardKey"])], bool(t["isDefaultNewWard"])) for t in targets]
    check("old units in the crosswalk", len(successors), OLD_ROWS)
    if set(successors) != set(old_by_key):
        sys.exit("error: the crosswalk and the dataset name different old units")
    for ok, lst in successors.items():
        if sum(d for _, d in lst) != 1:
            sys.exit(f"error: {ok} has {sum(d for _, d in lst)} default successors")
        if len({c for c, _ in lst}) != len(lst):
            sys.exit(f"error: {ok} names a successor twice")
        r = old_by_key[ok]
        for c, _ in lst:
            if new_communes[c][0] != merged_into[r["provinceCode"]]:
                sys.exit(f"error: {ok} passes into {c}, outside its new province")

    lines = [
        f"# hoctap official geography, derived by scripts/geography/derive.py from {PACKAGE} {VERSION}.",
        "# Do not edit: re-run the script. Format: data/geography/README.md.",
    ]
    for code, (name, lat, lon) in sorted(old_provinces.items()):
        lines.append("\t".join(["P", code, name, coord(lat), coord(lon), merged_into[code]]))
    succ_of = {}
    for ok, lst in successors.items():
        r = old_by_key[ok]
        succ_of[r["wardCode"] or r["districtCode"]] = ",".join(c + ("*" if d else "") for c, d in sorted(lst))
    for code, (province, name, lat, lon) in sorted(old_districts.items()):
        lines.append("\t".join(["D", code, province, name, coord(lat), coord(lon), succ_of.get(code, "")]))
    for code, (district, name, lat, lon) in sorted(old_communes.items()):
        lines.append("\t".join(["C", code, district, name, coord(lat), coord(lon), succ_of[code]]))
    for code, (name, lat, lon) in sorted(new_provinces.items()):
        lines.append("\t".join(["Q", code, name, coord(lat), coord(lon)]))
    for code, (province, name, lat, lon, area) in sorted(new_communes.items()):
        lines.append("\t".join(["W", code, province, name, coord(lat), coord(lon), coord(area)]))
    text = ("\n".join(lines) + "\n").encode()

    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(text)
    packed = buf.getvalue()

    hanoi = [c for c, v in old_communes.items() if old_districts[v[0]][0] == "01"]
    counts = {
        "old_provinces": len(old_provinces),
        "old_districts": len(old_districts),
        "old_communes": len(old_communes),
        "old_districts_without_communes": OLD_ROWS - OLD_COMMUNES,
        "new_provinces": len(new_provinces),
        "new_communes": len(new_communes),
        "divided_old_units": sum(1 for v in successors.values() if len(v) > 1),
        "hanoi_old_communes": len(hanoi),
        "hanoi_divided_old_communes": sum(1 for c in hanoi if "," in succ_of[c]),
        "hanoi_new_communes": sum(1 for v in new_communes.values() if v[0] == "01"),
    }
    provenance = {
        "file": DATA_FILE,
        "sha256": sha256(packed),
        "uncompressed_sha256": sha256(text),
        "derived_by": "scripts/geography/derive.py",
        "derived_on": datetime.date.today().isoformat(),
        "source": {
            "package": PACKAGE,
            "version": VERSION,
            "registry": f"https://pypi.org/project/{PACKAGE}/{VERSION}/",
            "homepage": "https://github.com/tranngocminhhieu/vietnamadminunits",
            "licence": "MIT",
            "licence_text": licence,
            "wheel": wheel.name,
            "wheel_sha256": sha256(wheel.read_bytes()),
            "files": {
                f"{PACKAGE}/data/dataset.db": sha256(db_bytes),
                f"{PACKAGE}/data/converter_2025.json": sha256(conv_bytes),
            },
        },
        "counts": counts,
        "names_with_type_recapitalised": sorted(set(normalised)),
    }
    return packed, provenance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=pathlib.Path, help=f"a downloaded {PACKAGE}-{VERSION} wheel")
    ap.add_argument("--out", type=pathlib.Path, default=OUT, help="where to write (default: data/geography)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        wheel = args.wheel or fetch_wheel(tmp)
        packed, provenance = derive(wheel, tmp)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / DATA_FILE).write_bytes(packed)
    (args.out / "provenance.json").write_text(json.dumps(provenance, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {args.out / DATA_FILE} ({len(packed)} bytes) and provenance.json: {provenance['counts']}")


if __name__ == "__main__":
    main()
