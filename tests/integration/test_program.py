"""The program as an operator meets it: generating a registration, refusing bad configuration."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from ruamel.yaml import YAML

from bridge.core import BridgeCore, StartupProblem
from bridge.localsynapse import LocalSynapse, free_port

from ..bridge_process import BridgeProcess
from ..conftest import Deployment

REPO = Path(__file__).resolve().parents[2]


def run_bridge(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_generated_registration_is_accepted_by_synapse(tmp_path: Path) -> None:
    synapse = LocalSynapse(tmp_path / "synapse", server_name="example.test")
    bridge_port = free_port()
    config_path = tmp_path / "config.yaml"
    # A fresh install: no config yet; -g starts from the template.
    done = run_bridge("-c", str(config_path), "-g", "-r", "registration.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    yaml = YAML()
    config = yaml.load(config_path)
    registration = yaml.load(tmp_path / "registration.yaml")
    assert registration["as_token"] == config["appservice"]["as_token"] != "generate"
    assert registration["hs_token"] == config["appservice"]["hs_token"] != "generate"
    assert registration["rate_limited"] is False
    assert registration["receive_ephemeral"] is True
    assert registration["de.sorunome.msc2409.push_ephemeral"] is True
    assert config["webhooks"]["secrets"][0].startswith("whsec_")
    # Both hold the appservice's tokens: readable by their owner alone. The audit log's key
    # waits for a config that names the homeserver.
    assert not (tmp_path / "audit.key").exists()
    for secret_file in (config_path, tmp_path / "registration.yaml"):
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600, secret_file

    # Point the config at a homeserver and generate again: the tokens stay, the URL follows.
    config["homeserver"] = {"address": synapse.url, "domain": "example.test"}
    config["appservice"]["address"] = f"http://127.0.0.1:{bridge_port}"
    config["appservice"]["port"] = bridge_port
    config["database"] = f"sqlite:{tmp_path / 'bridge.db'}"
    yaml.dump(config, config_path)
    done = run_bridge("-c", str(config_path), "-g", "-r", "registration.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    again = yaml.load(tmp_path / "registration.yaml")
    assert stat.S_IMODE((tmp_path / "registration.yaml").stat().st_mode) == 0o600
    key = tmp_path / "audit.key"
    assert key.read_text().startswith("PRIVATE+KEY+example.test/procurement-bridge+")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert again["as_token"] == registration["as_token"]
    assert again["url"] == f"http://127.0.0.1:{bridge_port}"

    synapse.app_service_files = [tmp_path / "registration.yaml"]
    await synapse.start()
    bridge = BridgeProcess(config_path, f"http://127.0.0.1:{bridge_port}")
    try:
        await bridge.start()  # healthy: the homeserver accepted the as_token
        async with aiohttp.ClientSession() as session:
            url = f"{synapse.url}/_matrix/client/v3/profile/@procbot:example.test"
            async with session.get(url) as resp:
                assert resp.status == 200
                assert (await resp.json())["displayname"] == "Системный помощник"
        assert bridge.terminate() == 0  # SIGTERM: a clean stop
    finally:
        bridge.kill()
        synapse.stop()


def test_placeholder_tokens_are_refused_with_one_clear_line(tmp_path: Path) -> None:
    config_path = tmp_path / "config.yaml"
    config_path.write_text((REPO / "config.example.yaml").read_text())
    done = run_bridge("-c", str(config_path), "-n", cwd=tmp_path)
    assert done.returncode == 11
    output = done.stdout + done.stderr
    assert "appservice.as_token: is a placeholder" in output
    assert "-g -r registration.yaml" in output
    assert "Traceback" not in output


def test_bad_configuration_names_the_key(tmp_path: Path) -> None:
    yaml = YAML()
    config_path = tmp_path / "config.yaml"
    assert run_bridge("-c", str(config_path), "-g", cwd=tmp_path).returncode == 0
    config = yaml.load(config_path)
    cases = {
        "database": ("mysql://db/x", "database: unknown scheme 'mysql'"),
        "homeserver": ({"address": "http://127.0.0.1:9", "domain": "x"}, "homeserver.address"),
    }
    for key, (value, expected) in cases.items():
        broken = {**config, key: value}
        yaml.dump(broken, config_path)
        done = run_bridge("-c", str(config_path), "-n", cwd=tmp_path)
        output = done.stdout + done.stderr
        assert done.returncode == 11, output
        assert expected in output
        assert "Traceback" not in output


async def test_a_second_process_on_one_sqlite_file_is_refused(
    synapse: LocalSynapse, deployment: Deployment, tmp_path: Path
) -> None:
    database = f"sqlite:{tmp_path / 'bridge.db'}"
    first = BridgeCore(deployment.write_config(tmp_path / "first.yaml", database))
    await first.start()
    try:
        second = BridgeCore(deployment.write_config(tmp_path / "second.yaml", database))
        with pytest.raises(StartupProblem, match="another bridge process uses this SQLite"):
            await second.start()
        await second.stop()
    finally:
        await first.stop()
    # Once the first is gone, the file is free again.
    third = BridgeCore(deployment.write_config(tmp_path / "third.yaml", database))
    await third.start()
    await third.stop()
