"""Modern-engine insert cost per row of both table layouts (chDB, ClickHouse 26.x in-process).

    chdb_layouts.py <dir> <first_release_modern.sql> [batch_rows]

<dir> is what `cargo run --release --example layouts -- N <dir>` wrote. The rows are inserted in
batches of `batch_rows` (default 50,000) into
  - tiered: the current DDL (hot columns + cold arrays + ALIAS columns), from rows.bin;
  - wide:   the first release's DDL (every placeholder a column), the same rows as that table
            stores them (read back from the tiered table through the ALIAS columns).
Both inserts read RowBinary from a file, so parsing is counted on both sides. CPU time is this
process's (chDB runs in it), per inserted row. Prints one JSON line.
"""

import json
import os
import re
import shutil
import sys
import tempfile
import time

from chdb import session


def quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def main():
    if len(sys.argv) < 3:
        sys.stderr.write("usage: chdb_layouts.py <dir> <first_release_modern.sql> [batch_rows]\n")
        sys.exit(2)
    d = os.path.abspath(sys.argv[1])
    old_ddl_file = sys.argv[2]
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 50_000
    read = lambda name: open(os.path.join(d, name), encoding="utf-8").read()
    structure, columns, ddl = read("structure.txt"), read("insert_columns.txt"), read("ddl.sql")
    structure_sql = quote(structure)
    old_text = open(old_ddl_file, encoding="utf-8").read()
    old_ddl = re.search(r"CREATE TABLE IF NOT EXISTS adjust\.callbacks\n\(.*?\n\)\n[^;]*", old_text, re.S)
    old_ddl = old_ddl.group(0).replace("adjust.callbacks", "adjust.wide")

    work = tempfile.mkdtemp(prefix="chdb-layouts-")
    s = session.Session(os.path.join(work, "db"))
    s.query("CREATE DATABASE IF NOT EXISTS adjust")
    s.query(ddl.replace("adjust.callbacks", "adjust.tiered"))
    s.query(old_ddl)
    rows_file = os.path.join(d, "rows.bin")
    total = int(str(s.query(f"SELECT count() FROM file('{rows_file}', 'RowBinary', {structure_sql})", "TabSeparated")).strip())

    def timed(sql):
        c0, w0 = time.process_time(), time.perf_counter()
        s.query(sql)
        return time.process_time() - c0, time.perf_counter() - w0

    tiered_cpu = tiered_wall = 0.0
    src = f"file('{rows_file}', 'RowBinary', {structure_sql})"
    for off in range(0, total, batch):
        # A staging copy of one batch, so the timed insert is one batch of RowBinary as sent.
        part = os.path.join(work, f"tiered-{off}.bin")
        with open(part, "wb") as f:
            f.write(s.query(f"SELECT * FROM {src} LIMIT {batch} OFFSET {off}", "RowBinary").bytes())
        c, w = timed(f"INSERT INTO adjust.tiered ({columns}) SELECT * FROM file('{part}', 'RowBinary', {structure_sql})")
        tiered_cpu, tiered_wall = tiered_cpu + c, tiered_wall + w

    # The same rows as the first layout stores them: every placeholder a column.
    wide_cols = [json.loads(r) for r in str(s.query(
        "SELECT name, type FROM system.columns WHERE database = 'adjust' AND table = 'wide' "
        "AND default_kind = '' ORDER BY position", "JSONCompactEachRow")).strip().splitlines()]
    names = ", ".join(f"`{n}`" for n, _ in wide_cols)
    wide_structure = quote(", ".join(f"`{n}` {t}" for n, t in wide_cols))
    wide_cpu = wide_wall = 0.0
    for off in range(0, total, batch):
        part = os.path.join(work, f"wide-{off}.bin")
        with open(part, "wb") as f:
            f.write(s.query(
                f"SELECT {names} FROM adjust.tiered ORDER BY callback_id LIMIT {batch} OFFSET {off}",
                "RowBinary").bytes())
        c, w = timed(f"INSERT INTO adjust.wide ({names}) SELECT * FROM file('{part}', 'RowBinary', {wide_structure})")
        wide_cpu, wide_wall = wide_cpu + c, wide_wall + w

    counts = {t: int(str(s.query(f"SELECT count() FROM adjust.{t}", "TabSeparated")).strip()) for t in ("tiered", "wide")}
    version = str(s.query("SELECT version()", "TabSeparated")).strip()
    s.close()
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({
        "version": version,
        "rows": total,
        "batch_rows": batch,
        "tiered_columns": len(columns.split(", ")) if columns else 0,
        "wide_columns": len(wide_cols),
        "tiered_cpu_us_per_row": round(tiered_cpu * 1e6 / total, 2),
        "wide_cpu_us_per_row": round(wide_cpu * 1e6 / total, 2),
        "tiered_wall_us_per_row": round(tiered_wall * 1e6 / total, 2),
        "wide_wall_us_per_row": round(wide_wall * 1e6 / total, 2),
        "counts": counts,
    }))


if __name__ == "__main__":
    main()
