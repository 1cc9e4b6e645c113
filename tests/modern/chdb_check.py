"""Runs the modern DDL and an encoded batch through chDB (ClickHouse 26.x in-process).

Driven by the `modern` integration test (tests/modern/main.rs), which writes the input:

    chdb_check.py <workdir>

<workdir>/check.json holds
    statements   the DDL, one statement per entry, run in order
    insert       `INSERT INTO db.table (cols) FORMAT RowBinary`, as the sink sends it
    table        `db.table`
    rows         RowBinary file: one encoded row per callback
    retries      RowBinary file: the same callbacks received again (same callback_id)
    token        an insert_deduplication_token
    probes       {label: SQL expression} selected next to the columns
    queries      {label: SQL} run at the end, each answered as TabSeparated text in `queries`
    insert_settings  [[name, value]]: the settings the sink pins on every INSERT to a modern
                 server; every insert here carries them

The session lives in <workdir>/db. Prints one JSON object on stdout:
    version      SELECT version()
    columns      [{name, type, default_kind}] from system.columns
    rows         the rows of the first insert: every column (ALIAS ones included) with
                 toString(), arrays and maps as JSON, plus the probes
    counts       {step: count()} along the deduplication steps
    insert_settings  {"pinned": {name: value in effect during an INSERT that carries the
                 pinned settings}, "default": {name: … during an INSERT without them},
                 "meaning": {name: the value a query with `SETTINGS name = value` sees}}
On any ClickHouse error, prints the failing statement and the error on stderr and exits 1.
"""

import json
import os
import sys

from chdb import session


def fail(what, sql, err):
    sys.stderr.write(f"chdb_check.py: {what} failed\n--- SQL ---\n{sql}\n--- error ---\n{err}\n")
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: chdb_check.py <workdir>\n")
        sys.exit(2)
    workdir = os.path.abspath(sys.argv[1])
    with open(os.path.join(workdir, "check.json"), encoding="utf-8") as f:
        check = json.load(f)

    s = session.Session(os.path.join(workdir, "db"))

    def run(what, sql, fmt="CSV"):
        try:
            return s.query(sql, fmt)
        except Exception as e:  # chdb.ChdbError carries the ClickHouse message
            fail(what, sql, e)

    def json_rows(what, sql):
        res = run(what, sql, "JSONEachRow")
        text = res.bytes().decode("utf-8", "replace")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def quote(s):
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def ident(name):
        return "`" + name.replace("`", "``") + "`"

    table = check["table"]
    suffix = " FORMAT RowBinary"
    insert = check["insert"]
    if not insert.endswith(suffix):
        fail("splitting the INSERT", insert, f"does not end with{suffix!r}")
    head = insert[: -len(suffix)]

    def setting(name, value):
        literal = value if value.isdigit() else quote(value)
        return f"{name} = {literal}"

    insert_settings = check.get("insert_settings", [])
    pinned = [setting(name, value) for name, value in insert_settings]

    def insert_file(what, name, settings=""):
        # ClickHouse's order: INSERT INTO t (cols) FROM INFILE 'f' [SETTINGS …] FORMAT fmt
        path = os.path.join(workdir, name)
        sql = f"{head} FROM INFILE {quote(path)}"
        applied = pinned + ([settings] if settings else [])
        if applied:
            sql += f" SETTINGS {', '.join(applied)}"
        run(what, sql + suffix)

    def count(final=False):
        sql = f"SELECT count() FROM {table}" + (" FINAL" if final else "")
        return int(json_rows("count", sql)[0]["count()"])

    out = {"version": json_rows("version", "SELECT version() AS v")[0]["v"]}

    for i, sql in enumerate(check["statements"]):
        run(f"DDL statement {i + 1}", sql)

    db, tbl = table.split(".", 1)
    out["columns"] = json_rows(
        "reading system.columns",
        "SELECT name, type, default_kind FROM system.columns "
        f"WHERE database = {quote(db)} AND table = {quote(tbl)} ORDER BY position",
    )

    counts = {}
    insert_file("first insert", check["rows"])
    counts["first"] = count()

    # Output names equal to column names would shadow the columns inside the query, so the
    # columns are qualified and the probes (plain expressions) are selected on their own.
    exprs = []
    for c in out["columns"]:
        name, ty = c["name"], c["type"]
        if ty.startswith("Array(") or ty.startswith("Map("):
            exprs.append(f"t.{ident(name)} AS {ident(name)}")
        else:
            exprs.append(f"toString(t.{ident(name)}) AS {ident(name)}")
    rows = json_rows(
        "reading the rows back",
        f"SELECT {', '.join(exprs)} FROM {table} AS t ORDER BY t.callback_id",
    )
    probes = check.get("probes", {})
    if probes:
        exprs = [f"{expr} AS {ident(label)}" for label, expr in probes.items()]
        extra = json_rows(
            "reading the probes",
            f"SELECT {', '.join(exprs)} FROM {table} ORDER BY callback_id",
        )
        if len(extra) != len(rows):
            fail("reading the probes", "", f"{len(extra)} rows, not {len(rows)}")
        for row, more in zip(rows, extra):
            row.update(more)
    out["rows"] = rows

    # The same file again, no token: the block hash is remembered (non_replicated_deduplication_window).
    insert_file("same file again", check["rows"])
    counts["same_file_again"] = count()
    counts["same_file_again_final"] = count(final=True)

    # The same callbacks received again (other received_at): new rows, one per callback_id with FINAL.
    insert_file("retried callbacks", check["retries"])
    counts["retries"] = count()
    counts["retries_final"] = count(final=True)

    # The same file under an explicit token: stored once, the second insert is skipped.
    token = f"insert_deduplication_token={quote(check['token'])}"
    insert_file("first insert with the token", check["rows"], token)
    counts["token_first"] = count()
    insert_file("second insert with the token", check["rows"], token)
    counts["token_second"] = count()
    counts["token_final"] = count(final=True)
    out["counts"] = counts

    out["queries"] = {
        label: run(label, sql, "TabSeparated").bytes().decode("utf-8", "replace")
        for label, sql in check.get("queries", {}).items()
    }

    # Each rollup against the exact answer (FINAL over the callbacks), after all the copies above.
    out["rollups"] = {
        name: [
            run(f"rollup {name}", rollup, "TabSeparated").bytes().decode("utf-8", "replace"),
            run(f"exact answer for {name}", exact, "TabSeparated").bytes().decode("utf-8", "replace"),
        ]
        for name, (rollup, exact) in check.get("rollups", {}).items()
    }

    # The pinned settings as the engine applies them to an INSERT: DEFAULT expressions are
    # evaluated while the row is inserted, in the INSERT's settings.
    if insert_settings:
        names = [name for name, _ in insert_settings]
        cols = ", ".join(
            f"{ident(n)} String DEFAULT toString(getSetting({quote(n)}))" for n in names
        )
        run(
            "creating the settings probe",
            f"CREATE TABLE default.insert_settings_probe (n UInt8, {cols}) "
            "ENGINE = MergeTree ORDER BY n",
        )
        run(
            "INSERT with the pinned settings",
            "INSERT INTO default.insert_settings_probe (n) "
            f"SETTINGS {', '.join(pinned)} VALUES (1)",
        )
        run(
            "INSERT without settings",
            "INSERT INTO default.insert_settings_probe (n) VALUES (0)",
        )
        probe = json_rows(
            "reading the settings probe",
            "SELECT * FROM default.insert_settings_probe ORDER BY n",
        )
        meaning = {}
        for name, value in insert_settings:
            row = json_rows(
                f"reading {name}",
                f"SELECT toString(getSetting({quote(name)})) AS v SETTINGS {setting(name, value)}",
            )
            meaning[name] = row[0]["v"]
        strip = lambda row: {n: row[n] for n in names}  # noqa: E731
        out["insert_settings"] = {
            "pinned": strip(probe[1]),
            "default": strip(probe[0]),
            "meaning": meaning,
        }

    s.close()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
