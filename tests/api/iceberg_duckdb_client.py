"""Run by the DuckDB 1.5.5 interpreter of its own venv (not by pytest): ATTACH Arco's
Iceberg REST endpoint with DuckDB's iceberg extension and run one query.

Usage: python iceberg_duckdb_client.py ENDPOINT TOKEN WAREHOUSE SQL [S3_JSON]
Prints one JSON object: {"rows": [...], "attach_s": ..., "query_s": ...}.
"""

import json
import os
import sys
import time

import duckdb


def _extension(name: str) -> str:
    module = __import__(f"duckdb_extension_{name}")
    folder = os.path.join(os.path.dirname(module.__file__), "extensions", "v1.5.5")
    return os.path.join(folder, f"{name}.duckdb_extension")


def main() -> None:
    endpoint, token, warehouse, sql = sys.argv[1:5]
    s3 = json.loads(sys.argv[5]) if len(sys.argv) > 5 else None
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    for name in ("httpfs", "avro", "iceberg"):
        con.execute(f"LOAD '{_extension(name)}'")
    start = time.perf_counter()
    con.execute(f"CREATE SECRET arco_rest (TYPE iceberg, TOKEN '{token}')")
    if s3:
        con.execute(
            "CREATE SECRET arco_s3 (TYPE s3, KEY_ID ?, SECRET ?, REGION ?, ENDPOINT ?, "
            "URL_STYLE 'path', USE_SSL false)",
            [s3["key_id"], s3["secret"], s3["region"], s3["endpoint"]],
        )
    con.execute(
        f"ATTACH '{warehouse}' AS lake (TYPE iceberg, ENDPOINT '{endpoint}', SECRET arco_rest)"
    )
    attached = time.perf_counter()
    rows = con.execute(sql).fetchall()
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "rows": [list(r) for r in rows],
                "attach_s": attached - start,
                "query_s": done - attached,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main()
