"""`wizsync render` and `wizsync validate` as real processes, against the emulator over real HTTP
when they need live data; secrets and keys never reach the output."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from wizchat_management import WizChatClient

MANIFEST = """\
version: 1
environments:
  staging: {{baseUrl: "{base}"}}
  production: {{baseUrl: "{base}", vars: {{region: eu}}}}
tenants:
  acme:
    keys:
      staging: {{env: WIZCHAT_ACME_STAGING_KEY}}
      production: {{env: WIZCHAT_ACME_PRODUCTION_KEY}}
    vars: {{brand: Acme}}
overlays:
  production:
    spec:
      telemetry: {{sampleRate: 0.1}}
      mcpServers:
        - name: search
          url: https://mcp.${{region}}.acme.example/search
          headers: {{Authorization: "Bearer ${{secret:ACME_MCP_TOKEN}}"}}
chatbots:
  - name: from-file
    tenant: acme
    ids: {{staging: cb_file_s, production: cb_file_p}}
    source: {{file: configs/from-file.yaml}}
    labels: {{tier: gold}}
  - name: support-billing
    tenant: acme
    source: {{environment: staging}}
"""
SOURCE = """\
apiVersion: wizchat.com/v1
kind: ChatbotConfig
spec:
  core: {name: "${brand} ${chatbot}", temperature: 0.4}
  telemetry: {enabled: true, sampleRate: 1.0}
"""
SECRET = "super-secret-token-value-0042"


def write(tmp: Path, base: str = "http://127.0.0.1:9") -> Path:
    (tmp / "configs").mkdir(exist_ok=True)
    (tmp / "configs" / "from-file.yaml").write_text(SOURCE)
    (tmp / "wizsync.yaml").write_text(MANIFEST.format(base=base))
    return tmp / "wizsync.yaml"


def run(*args: str, cwd: Path, scan: Any, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return scan.run(list(args), cwd=cwd, env=env)  # type: ignore[no-any-return]


def test_render_offline_prints_masked_yaml_and_needs_online_for_live_data(tmp_path: Path, secret_scan: Any) -> None:
    secret_scan.register("ACME_MCP_TOKEN", SECRET)
    write(tmp_path)
    proc = run("render", "wizsync.yaml", "--env", "production", "--select", "tier=gold", cwd=tmp_path, scan=secret_scan,
               env={"ACME_MCP_TOKEN": SECRET})
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    doc = yaml.safe_load(proc.stdout)
    assert doc["spec"]["core"] == {"name": "Acme from-file", "temperature": 0.4}
    assert doc["spec"]["telemetry"] == {"enabled": True, "sampleRate": 0.1}
    assert doc["spec"]["mcpServers"][0]["headers"] == {"Authorization": "Bearer <secret:ACME_MCP_TOKEN>"}
    assert "# chatbot: acme/from-file" in proc.stdout  # the address; ${chatbot} above is the bare name

    as_json = run("render", "wizsync.yaml", "--env", "production", "--chatbot", "from-*", "--json", cwd=tmp_path, scan=secret_scan)
    assert as_json.returncode == 0, as_json.stderr
    [item] = json.loads(as_json.stdout)
    assert item["document"] == doc and item["secrets"] == ["ACME_MCP_TOKEN"] and item["hash"].startswith("sha256:")
    assert "ACME_MCP_TOKEN" in as_json.stderr  # the note that apply will need it

    live = run("render", "wizsync.yaml", "--env", "production", cwd=tmp_path, scan=secret_scan)
    assert live.returncode == 1 and "needs live data" in live.stderr and "--online" in live.stderr
    assert "Traceback" not in live.stderr

    usage = run("render", "wizsync.yaml", "--env", "production", "--select", "tier", cwd=tmp_path, scan=secret_scan)
    assert usage.returncode == 2 and "bad selector term 'tier'" in usage.stderr


def test_render_online_promotes_the_staging_config(tmp_path: Path, emulator, secret_scan: Any) -> None:  # type: ignore[no-untyped-def]
    secret_scan.register_all(emulator.keys)
    write(tmp_path, emulator.base_url)
    env = dict(emulator.key_env)
    proc = run("render", "wizsync.yaml", "--env", "production", "--online", "--json", cwd=tmp_path, scan=secret_scan, env=env)
    assert proc.returncode == 0, proc.stderr
    docs = {d["name"]: d for d in json.loads(proc.stdout)}
    promoted = docs["acme/support-billing"]
    with WizChatClient(env["WIZCHAT_ACME_PRODUCTION_KEY"], base_url=emulator.base_url) as prod, WizChatClient(
        env["WIZCHAT_ACME_STAGING_KEY"], base_url=emulator.base_url
    ) as staging:
        prod_id = next(c.id for c in prod.list_chatbots() if c.name == "support-billing")
        staging_id = next(c.id for c in staging.list_chatbots() if c.name == "support-billing")
        staging_doc = staging.get_config(staging_id).model_dump(mode="json", exclude_unset=True)
    assert promoted["chatbotId"] == prod_id  # bound by name in production
    spec = promoted["document"]["spec"]
    assert spec["core"] == staging_doc["spec"]["core"]  # the staging config is the source
    assert spec["telemetry"]["sampleRate"] == 0.1  # with the production overlay merged in
    assert spec["mcpServers"][-1] == {
        "name": "search",
        "url": "https://mcp.eu.acme.example/search",
        "headers": {"Authorization": "Bearer <secret:ACME_MCP_TOKEN>"},
    }
    assert [m["name"] for m in spec["mcpServers"][:-1]] == [m["name"] for m in staging_doc["spec"]["mcpServers"]]
    for key in env.values():
        assert key not in proc.stdout + proc.stderr


def test_validate_offline_makes_no_request_and_check_keys_reports_a_bad_key(tmp_path: Path, emulator, secret_scan: Any) -> None:  # type: ignore[no-untyped-def]
    secret_scan.register_all(emulator.keys)
    secret_scan.register("ACME_MCP_TOKEN", SECRET)
    write(tmp_path, emulator.base_url)
    env = {**emulator.key_env, "ACME_MCP_TOKEN": SECRET}
    before = json.dumps(emulator.stats(), sort_keys=True)
    ok = run("validate", "wizsync.yaml", cwd=tmp_path, scan=secret_scan, env=env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: wizsync.yaml")
    assert json.dumps(emulator.stats(), sort_keys=True) == before  # no network without --check-keys

    online = run("validate", "wizsync.yaml", "--check-keys", "--json", cwd=tmp_path, scan=secret_scan, env=env)
    assert online.returncode == 0, online.stderr
    assert json.loads(online.stdout)["keysChecked"] == 2

    bad_key = "wpk_test_" + "x" * 30
    bad = run("validate", "wizsync.yaml", "--check-keys", cwd=tmp_path, scan=secret_scan, env={**env, "WIZCHAT_ACME_PRODUCTION_KEY": bad_key})
    assert bad.returncode == 1
    assert "tenants.acme.keys.production: tenant 'acme' in 'production': list_chatbots failed: 401" in bad.stderr
    assert bad_key not in bad.stdout + bad.stderr and SECRET not in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr


MANY = """\
version: 1
environments:
  staging: {baseUrl: "http://127.0.0.1:9"}
tenants:
  acme: {keys: {staging: {env: WIZCHAT_ACME_STAGING_KEY}}, vars: {brand: Zürich}}
  globex: {keys: {staging: {env: WIZCHAT_GLOBEX_STAGING_KEY}}, vars: {brand: Globex}}
defaults:
  source: {file: configs/from-file.yaml}
chatbots:
  - {name: one, tenant: acme, ids: {staging: cb_1}}
  - {name: two, tenant: globex, ids: {staging: cb_2}}
  - {name: three, tenant: acme, ids: {staging: cb_3}, overrides: {staging: {spec: {core: {temperature: 0.9}}}}}
"""


def test_render_prints_every_document_as_the_one_whole_text_it_used_to_be(tmp_path: Path, secret_scan: Any) -> None:
    # Documents are printed one at a time (a fleet's output is never held whole): the text must be
    # exactly the one document (YAML: joined by ---; --json: the array json.dumps makes).
    write(tmp_path)
    (tmp_path / "wizsync.yaml").write_text(MANY)
    as_json = run("render", "wizsync.yaml", "--env", "staging", "--json", cwd=tmp_path, scan=secret_scan)
    assert as_json.returncode == 0, as_json.stderr
    items = json.loads(as_json.stdout)
    assert [i["name"] for i in items] == ["acme/one", "globex/two", "acme/three"]
    assert as_json.stdout == json.dumps(items, indent=2, ensure_ascii=False) + "\n" and "Zürich" in as_json.stdout
    as_yaml = run("render", "wizsync.yaml", "--env", "staging", cwd=tmp_path, scan=secret_scan)
    assert as_yaml.returncode == 0, as_yaml.stderr
    whole = "---\n".join(
        f"# chatbot: {i['name']}  tenant: {i['tenant']}  env: staging  id: {i['chatbotId']}\n"
        f"# source: file  wave: {i['wave']}  {i['hash']}\n"
        + yaml.dump(i["document"], Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
                    allow_unicode=True, width=100)
        for i in items)
    assert as_yaml.stdout == whole
