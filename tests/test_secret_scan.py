"""The secret scanner finds what it must (so a clean scan means something) and never prints the value."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from secret_scan import SecretScan

VALUE = "s3cr3t-value-for-the-scanner"


def test_the_scanner_finds_a_planted_secret_everywhere_it_looks(tmp_path: Path) -> None:
    scan = SecretScan()
    scan.register("PLANTED", VALUE)
    assert scan.findings() == []

    scan.record("stdout", f"header: Bearer {VALUE}\n")
    (tmp_path / "out" / "a").mkdir(parents=True)
    (tmp_path / "out" / "a" / "x.yaml").write_text(f"value: '{VALUE}'\n")
    (tmp_path / "out" / "clean.yaml").write_text("value: <redacted>\n")
    scan.watch(tmp_path / "out")
    db = tmp_path / "j.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE events (data TEXT)")
    conn.execute("INSERT INTO events VALUES (?)", ('{"h": "Bearer ' + VALUE + '"}',))
    conn.execute("INSERT INTO events VALUES (?)", ('{"k": "wpk_live_abcdefghijklmnopqrstuvwx"}',))
    conn.commit()
    conn.close()
    scan.watch_journal(db)

    found = scan.findings()
    assert f"secret PLANTED appears in {tmp_path / 'out' / 'a' / 'x.yaml'}" in found
    assert "secret PLANTED appears in stdout" in found
    assert f"secret PLANTED appears in journal {db}" in found
    assert f"something shaped like an API key appears in journal {db}" in found
    assert not any("clean.yaml" in f for f in found)
    assert not any(VALUE in f for f in found)
    try:
        scan.check()
    except AssertionError as exc:
        assert VALUE not in str(exc)
    else:
        raise AssertionError("check() passed with a planted secret")
