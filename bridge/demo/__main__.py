"""`python -m bridge.demo`: local Synapse and the bridge on SQLite playing the seed procurement."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import signal
import socket
import sys
from pathlib import Path

from ..config import Config, write_secret_file
from ..core import BridgeCore
from ..localsynapse import LocalSynapse, free_port
from .scenario import PASSWORD, ROOT, SIGNERS, Scenario

log = logging.getLogger("bridge.demo")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bridge.demo", description=__doc__)
    parser.add_argument("--dir", default="demo-data", help="working directory (wiped first)")
    parser.add_argument("--port", type=int, default=8008, help="Synapse port (8008)")
    parser.add_argument(
        "--exit", action="store_true", help="stop after the scenario instead of serving"
    )
    parser.add_argument(
        "--vote-seconds",
        type=int,
        default=25,
        help="how long the commission vote stays open (25); the story goes on when it closes",
    )
    return parser.parse_args()


def port_or_free(port: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port


def write_bridge_config(directory: Path, synapse: LocalSynapse, bridge_port: int) -> Config:
    template = Path(__file__).resolve().parents[1] / "example-config.yaml"
    path = directory / "config.yaml"
    shutil.copyfile(template, path)
    config = Config(str(path), str(template))
    config.load()
    config.update(save=False)
    config["homeserver.address"] = synapse.url
    config["homeserver.domain"] = synapse.server_name
    config["appservice.address"] = f"http://127.0.0.1:{bridge_port}"
    config["appservice.port"] = bridge_port
    config["database"] = f"sqlite:{directory / 'bridge.db'}"
    # Electronic signatures: a throwaway CA and the approvers' certificates.
    pki = directory / "pki"
    pki.mkdir()
    (pki / "root.pem").write_bytes(ROOT.pem)
    config["signatures.trust_anchors"] = [str(pki / "root.pem")]
    config["signatures.identities"] = {
        f"@{localpart}:{synapse.server_name}": [f"sha256:{party.fingerprint}"]
        for localpart, party in SIGNERS.items()
    }
    config.fill_generated()
    config.save()
    write_secret_file(directory / "registration.yaml", config.registration())
    return config


def fresh_directory(path: str) -> Path:
    directory = Path(path).resolve()
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


async def run(args: argparse.Namespace) -> None:
    directory = fresh_directory(args.dir)
    synapse = LocalSynapse(directory / "synapse", port=port_or_free(args.port))
    config = write_bridge_config(directory, synapse, free_port())
    synapse.app_service_files = [directory / "registration.yaml"]

    # Ctrl-C or SIGTERM at any moment stops the bridge and Synapse, which runs in a session of
    # its own and would otherwise outlive the demo.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"Starting Synapse at {synapse.url} (data in {directory}) …", flush=True)
    core = BridgeCore(config)
    try:
        await synapse.start()
        await core.start()
        scenario = Scenario(synapse, config, core, args.vote_seconds)
        story = asyncio.create_task(scenario.play())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({story, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            story.cancel()
            return
        stopped.cancel()
        await story  # raises what went wrong
        print(await scenario.summary(), flush=True)
        if not args.exit:
            print("Serving; press Ctrl-C to stop.", flush=True)
            await stop.wait()
    finally:
        await core.stop()
        synapse.stop()


def main() -> None:
    logging.basicConfig(
        level=logging.WARNING, format="[%(asctime)s] [%(levelname)s@%(name)s] %(message)s"
    )
    args = parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args))
    sys.exit(0)


__all__ = ["PASSWORD", "main"]

if __name__ == "__main__":
    main()
