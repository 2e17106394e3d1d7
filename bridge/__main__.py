"""`python -m bridge`: run the bridge, or generate its registration (mautrix Program)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from importlib import resources

from mautrix.util.program import Program

from .audit.cli import is_audit_command
from .audit.cli import main as audit_main
from .audit.keys import KeyProblem, create_key, load_key
from .config import Config, ConfigError, write_secret_file
from .core import BridgeCore, StartupProblem
from .matrix.client import HomeserverProblem

EXIT_CONFIG = 11


class ProcurementBridge(Program):
    module = "bridge"
    name = "procurement-bridge"
    version = "0.1.0"
    command = "python -m bridge"
    description = "Contextual procurement chats on Matrix"
    config_class = Config
    config: Config
    core: BridgeCore

    def prepare_arg_parser(self) -> None:
        super().prepare_arg_parser()
        self.parser.add_argument(
            "-g",
            "--generate-registration",
            action="store_true",
            help="generate tokens and the homeserver registration, then quit",
        )
        self.parser.add_argument(
            "-r",
            "--registration",
            default="registration.yaml",
            metavar="<path>",
            help="where -g writes the registration (default: registration.yaml)",
        )

    @property
    def base_config_path(self) -> str:
        return "pkg://bridge/example-config.yaml"

    def prepare_config(self) -> None:
        path = self.args.config
        self.fresh_install = not os.path.exists(path)
        if self.fresh_install:
            if not self.args.generate_registration:
                _fail(f"config: {path} does not exist; copy config.example.yaml and edit it")
            # -g on a fresh install starts from the template.
            template = resources.files("bridge").joinpath("example-config.yaml")
            with resources.as_file(template) as src:
                shutil.copyfile(src, path)
        super().prepare_config()
        if self.args.generate_registration:
            self.generate_registration()
            sys.exit(0)

    def generate_registration(self) -> None:
        self.config.fill_generated()
        self.config.save()  # mautrix writes through a 0600 temporary file
        # The registration holds as_token and hs_token: the owner's alone.
        write_secret_file(self.args.registration, self.config.registration())
        print(f"Registration written to {self.args.registration}, secrets to {self.args.config}")
        if self.fresh_install:
            # The key names the log after the homeserver: made once the config names it.
            print("Edit the config, then run -g again: it makes the audit log's key.")
        else:
            self.generate_audit_key()
        print("Add it to the homeserver's app_service_config_files and restart the homeserver.")

    def generate_audit_key(self) -> None:
        path, origin = self.config.audit_key_path, self.config.audit_origin
        try:
            if load_key(path, origin) is None:
                create_key(path, self.config.new_audit_origin)
                print(f"Audit log key written to {path}")
        except KeyProblem as e:
            _fail(str(e))

    def check_config(self) -> None:
        try:
            self.config.check()
        except ConfigError as e:
            self.log.critical("Configuration error: %s", e)
            sys.exit(EXIT_CONFIG)

    def prepare(self) -> None:
        super().prepare()
        self.core = BridgeCore(self.config)

    async def start(self) -> None:
        try:
            await self.core.start()
        except (StartupProblem, HomeserverProblem) as e:
            self.log.critical("Cannot start: %s", e)
            await self.core.stop()
            sys.exit(EXIT_CONFIG)
        # Stop through the loop, not by an interrupt raised wherever the code happens to be
        # (in the middle of a database call, it could leave a connection that never returns).
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop_once)
        await super().start()

    def _stop_once(self) -> None:
        if not self._stop_task.done():
            self.manual_stop()

    async def stop(self) -> None:
        await self.core.stop()
        await super().stop()


def _fail(message: str) -> None:
    print(f"Configuration error: {message}", file=sys.stderr)
    sys.exit(EXIT_CONFIG)


def main() -> None:
    if is_audit_command(sys.argv[1:]):
        sys.exit(audit_main(sys.argv[1:]))
    ProcurementBridge().run()


if __name__ == "__main__":
    main()
