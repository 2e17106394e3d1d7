"""The schema's versions, one frozen file each, applied in order by mautrix's upgrade table."""

from __future__ import annotations

from mautrix.util.async_db import UpgradeTable

from . import v01_initial, v02_fail_closed, v03_assistant, v04_audit, v05_processes, v06_reminders

upgrade_table = UpgradeTable(database_name="procurement bridge")
upgrade_table.register(v01_initial.upgrade, description="Initial schema")
upgrade_table.register(v02_fail_closed.upgrade, description="Rooms bound to parties, fetches")
upgrade_table.register(v03_assistant.upgrade, description="The assistant: search, dialogs")
upgrade_table.register(v04_audit.upgrade, description="The transparency log")
upgrade_table.register(v05_processes.upgrade, description="Several processes: claims, leases")
upgrade_table.register(v06_reminders.upgrade, description="Reminders looked at when due")
