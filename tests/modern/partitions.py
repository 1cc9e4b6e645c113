"""A batch spanning more months than one INSERT may touch, on chDB (ClickHouse 26.x in-process).

Driven by the `modern` integration test (tests/modern/partitions.rs):

    partitions.py <workdir>

<workdir>/partitions.json holds
    statements       the DDL, run in order
    insert           `INSERT INTO db.table (cols) FORMAT RowBinary`, as the sink sends it
    table            `db.table`
    whole            RowBinary file: the whole batch
    parts            [{"file", "token"}]: the parts the sink cuts it into, with their tokens
    insert_settings  [[name, value]]: the settings the sink pins on every INSERT

Prints one JSON object on stdout:
    whole_error      the error of inserting the whole batch (null if it was accepted)
    limit            max_partitions_per_insert_block in effect
    after_parts      count() after inserting every part with its token
    after_again      count() after inserting every part again, same tokens (a re-send after a
                     crash)
    partitions       distinct partitions of the stored rows
"""

import json
import os
import sys

from chdb import session


def main():
    workdir = os.path.abspath(sys.argv[1])
    with open(os.path.join(workdir, "partitions.json"), encoding="utf-8") as f:
        check = json.load(f)
    s = session.Session(os.path.join(workdir, "db"))

    def quote(v):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def rows(sql):
        text = s.query(sql, "JSONEachRow").bytes().decode("utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    for sql in check["statements"]:
        s.query(sql)
    suffix = " FORMAT RowBinary"
    head = check["insert"][: -len(suffix)]
    pinned = [
        f"{n} = {v if v.isdigit() else quote(v)}" for n, v in check["insert_settings"]
    ]

    def insert(name, extra=None):
        applied = pinned + ([extra] if extra else [])
        sql = f"{head} FROM INFILE {quote(os.path.join(workdir, name))}"
        sql += f" SETTINGS {', '.join(applied)}" + suffix
        s.query(sql)

    def count():
        return int(rows(f"SELECT count() AS n FROM {check['table']}")[0]["n"])

    out = {}
    try:
        insert(check["whole"])
        out["whole_error"] = None
    except Exception as e:  # chdb.ChdbError carries the ClickHouse message
        out["whole_error"] = str(e)
    out["limit"] = int(rows("SELECT getSetting('max_partitions_per_insert_block') AS v")[0]["v"])
    for part in check["parts"]:
        insert(part["file"], f"insert_deduplication_token = {quote(part['token'])}")
    out["after_parts"] = count()
    for part in check["parts"]:
        insert(part["file"], f"insert_deduplication_token = {quote(part['token'])}")
    out["after_again"] = count()
    out["partitions"] = int(
        rows(f"SELECT uniqExact(_partition_id) AS n FROM {check['table']}")[0]["n"]
    )
    print(json.dumps(out))


main()
